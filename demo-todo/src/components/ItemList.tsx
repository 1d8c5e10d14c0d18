import { useQuery } from '@sqlsync-go/client/react';
import { ITEMS_SQL, type Item, type SqlsyncDocument } from '../todo';
import { ItemRow } from './ItemRow';

/** The list's items, live: local changes and synced ones alike re-render it. */
export function ItemList({ doc }: { doc: SqlsyncDocument }) {
  const { rows, error } = useQuery<Item>(doc, ITEMS_SQL);
  if (error) return <p role="alert">Could not read the items: {error.message}</p>;
  if (!rows) return <p className="muted">Loading…</p>;
  if (rows.length === 0) return <p className="muted empty">Nothing here yet. Add the first item above.</p>;
  return (
    <>
      <ul className="items" aria-label="Items">
        {rows.map((item, i) => (
          <ItemRow key={item.id} doc={doc} items={rows} index={i} />
        ))}
      </ul>
      <p id="move-hint" className="hint">
        Tip: <kbd>Alt</kbd> + <kbd>↑</kbd> / <kbd>↓</kbd> moves the item that has focus.
      </p>
    </>
  );
}
