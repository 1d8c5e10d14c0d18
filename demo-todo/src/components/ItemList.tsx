import { useQuery, useStatus } from '@sqlsync-go/client/react';
import { useCallback, useRef } from 'react';
import { ITEMS_SQL, moveItem, type Item, type SqlsyncDocument } from '../todo';
import { ItemRow } from './ItemRow';

/** The list's items, live: local changes and synced ones alike re-render it. */
export function ItemList({ doc }: { doc: SqlsyncDocument }) {
  const { rows, error } = useQuery<Item>(doc, ITEMS_SQL);
  // A tab that opened the list without its todo code (see HowItWorks) and
  // has not synced yet has no tables: the list comes with the first sync.
  const queueOnly = useStatus(doc)?.queueOnly;
  // Rows get the latest list through a ref, so that a change elsewhere in
  // the list does not re-render them all.
  const latest = useRef(rows);
  latest.current = rows;
  const move = useCallback((index: number, by: -1 | 1) => moveItem(doc, latest.current ?? [], index, by), [doc]);
  if (error && queueOnly) return <p className="muted">The list shows once the server has sent it; changes made meanwhile wait in the queue.</p>;
  if (error) return <p role="alert">Could not read the items: {error.message}</p>;
  if (!rows) return <p className="muted">Loading…</p>;
  if (rows.length === 0) return <p className="muted empty">Nothing here yet. Add the first item above.</p>;
  return (
    <>
      <ul className="items" aria-label="Items">
        {rows.map((item, i) => (
          <ItemRow key={item.id} doc={doc} item={item} index={i} last={i === rows.length - 1} move={move} />
        ))}
      </ul>
      <p id="move-hint" className="hint">
        Tip: <kbd>Alt</kbd> + <kbd>↑</kbd> / <kbd>↓</kbd> moves the item that has focus.
      </p>
    </>
  );
}
