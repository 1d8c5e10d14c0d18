import { useQuery } from '@sqlsync-go/client/react';
import { useEffect, useState } from 'react';
import { renameRememberedList } from '../recentLists';
import { retitleList, TITLE_SQL, type SqlsyncDocument } from '../todo';
import { useReport } from '../toasts';
import { InlineEdit } from './InlineEdit';

/** The list's name, live, with a button to rename it. */
export function ListTitle({ doc, listId }: { doc: SqlsyncDocument; listId: string }) {
  const { rows } = useQuery<{ title: string }>(doc, TITLE_SQL);
  const [editing, setEditing] = useState(false);
  const report = useReport();
  const title = rows?.[0]?.title ?? '';

  useEffect(() => {
    if (rows) renameRememberedList(listId, title);
    document.title = `${title || 'Untitled list'} · sqlsync todo`;
  }, [rows, listId, title]);

  return (
    <div className="list-title">
      {editing ? (
        <InlineEdit
          label="List name"
          initial={title}
          onSave={(t) => retitleList(doc, t).catch(report)}
          onDone={() => setEditing(false)}
        />
      ) : (
        <>
          <h1 id="list-title">{title || <span className="muted">Untitled list</span>}</h1>
          <button type="button" className="quiet" onClick={() => setEditing(true)}>
            {title ? 'Rename list' : 'Name this list'}
          </button>
        </>
      )}
    </div>
  );
}
