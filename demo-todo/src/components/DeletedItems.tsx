import { useQuery } from '@sqlsync-go/client/react';
import { DELETED_SQL, purgeDeleted, renameItem, type Item, type SqlsyncDocument } from '../todo';
import { useReport } from '../toasts';

/**
 * Deleted items stay in the document until purged, and the todo mutator
 * restores a deleted item that is renamed: Restore renames it to its own
 * title, and a rename from another tab, even one made offline before the
 * delete reached it, brings it back the same way.
 */
export function DeletedItems({ doc }: { doc: SqlsyncDocument }) {
  const { rows } = useQuery<Item>(doc, DELETED_SQL);
  const report = useReport();
  if (!rows || rows.length === 0) return null;
  return (
    <section className="deleted" aria-labelledby="deleted-heading">
      <h2 id="deleted-heading">Recently deleted</h2>
      <p className="hint">Renaming a deleted item brings it back, here or in any other tab.</p>
      <ul aria-labelledby="deleted-heading">
        {rows.map((item) => (
          <li key={item.id}>
            <span className="title">{item.title}</span>
            <button
              type="button"
              className="quiet"
              aria-label={`Restore “${item.title}”`}
              onClick={() => renameItem(doc, item.id, item.title).catch(report)}
            >
              Restore
            </button>
          </li>
        ))}
      </ul>
      <button type="button" className="quiet danger" onClick={() => purgeDeleted(doc).catch(report)}>
        Delete these for good
      </button>
    </section>
  );
}
