import { useStatus } from '@sqlsync-go/client/react';
import type { SqlsyncDocument } from '../todo';
import { connection } from './ConnectionBadge';

/** A short account of what sqlsync is doing, with this tab's live numbers. */
export function HowItWorks({ doc }: { doc: SqlsyncDocument | undefined }) {
  const status = useStatus(doc);
  const shown = connection(status);
  const pending = status?.pending ?? 0;
  const step = pending > 0 ? (shown === 'offline' ? 'pending' : 'sync') : undefined;
  const current = (s: string) => (s === step ? ({ 'aria-current': 'step', className: 'current' } as const) : {});
  return (
    <aside className="how card" aria-labelledby="how-heading">
      <h2 id="how-heading">What is happening</h2>
      <ol>
        <li>
          {status?.queueOnly ? (
            <>
              <strong>Queued write.</strong> This tab could not get the list’s todo code from the server when it
              opened the list, so a change waits in the queue below and shows once the server has run it. Reload the
              page while online to run changes here at once.
            </>
          ) : (
            <>
              <strong>Local write.</strong> A change runs at once on this browser's own copy of the list, a SQLite
              database in {status?.storage === 'indexeddb' ? 'IndexedDB' : 'the browser’s private file system'}.
            </>
          )}
        </li>
        <li {...current('pending')}>
          <strong>Pending.</strong> It waits in a queue that survives reloads:{' '}
          <span className="num">{pending}</span> {pending === 1 ? 'change' : 'changes'} not yet on the server.
        </li>
        <li {...current('sync')}>
          <strong>Sync.</strong>{' '}
          {shown === 'offline'
            ? 'Offline: nothing is sent or received until you switch “Work offline” off.'
            : 'The server runs every tab’s changes in one order, with the same todo code, and sends back the changed pages.'}{' '}
          This copy is at version <span className="num">{status?.lsn ?? 0}</span>
          {status && status.serverLsn > status.lsn ? ` of ${status.serverLsn}` : ''}.
        </li>
        <li>
          <strong>Rebase.</strong> Changes the server has not applied yet are replayed on top of its version, like{' '}
          <code>git rebase</code>. So when two tabs rename the same item, the rename that reaches the server last
          wins; renaming a deleted item restores it; a change the server refuses is undone, with a message.
        </li>
      </ol>
      <p className="hint">
        Try it: open the share link in another browser or a private window, switch one to “Work offline”, edit the same
        item in both, then switch back. Tabs of one browser share one copy, so the switch applies to all of them.
      </p>
    </aside>
  );
}
