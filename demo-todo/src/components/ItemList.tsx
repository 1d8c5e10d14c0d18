import { useQuery, useStatus } from '@sqlsync-go/client/react';
import { useCallback, useMemo, useRef } from 'react';
import { asViewer, type OtherViewer } from '../presence';
import { ITEMS_SQL, moveItem, type Item, type SqlsyncDocument } from '../todo';
import { type Editor, ItemRow } from './ItemRow';

const nobody: Editor[] = [];

interface Props {
  doc: SqlsyncDocument;
  /** The other viewers' presences: each row shows who edits it. */
  others: OtherViewer[];
  /** Called as an item's title editor takes or loses focus. */
  onEditing: (id: string, focused: boolean) => void;
}

/** The list's items, live: local changes and synced ones alike re-render it. */
export function ItemList({ doc, others, onEditing }: Props) {
  const { rows, error } = useQuery<Item>(doc, ITEMS_SQL);
  // A tab that opened the list without its todo code (see HowItWorks) and
  // has not synced yet has no tables: the list comes with the first sync.
  const queueOnly = useStatus(doc)?.queueOnly;
  // Rows get the latest list through a ref, so that a change elsewhere in
  // the list does not re-render them all.
  const latest = useRef(rows);
  latest.current = rows;
  const move = useCallback((index: number, by: -1 | 1) => moveItem(doc, latest.current ?? [], index, by), [doc]);
  // Who edits which item, by item ID.
  const editors = useMemo(() => {
    const by = new Map<string, Editor[]>();
    for (const p of others) {
      const v = asViewer(p);
      if (!v?.editing) continue;
      by.set(v.editing, [...(by.get(v.editing) ?? []), { id: p.id, name: v.name, color: v.color, local: p.local }]);
    }
    return by;
  }, [others]);
  if (error && queueOnly) return <p className="muted">The list shows once the server has sent it; changes made meanwhile wait in the queue.</p>;
  if (error) return <p role="alert">Could not read the items: {error.message}</p>;
  if (!rows) return <p className="muted">Loading…</p>;
  if (rows.length === 0) return <p className="muted empty">Nothing here yet. Add the first item above.</p>;
  return (
    <>
      <ul className="items" aria-label="Items">
        {rows.map((item, i) => (
          <ItemRow
            key={item.id}
            doc={doc}
            item={item}
            index={i}
            last={i === rows.length - 1}
            move={move}
            editors={editors.get(item.id) ?? nobody}
            onEditing={onEditing}
          />
        ))}
      </ul>
      <p id="move-hint" className="hint">
        Tip: <kbd>Alt</kbd> + <kbd>↑</kbd> / <kbd>↓</kbd> moves the item that has focus.
      </p>
    </>
  );
}
