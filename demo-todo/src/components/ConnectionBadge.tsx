import type { Status } from '@sqlsync-go/client';
import { useStatus } from '@sqlsync-go/client/react';
import type { SqlsyncDocument } from '../todo';

type Shown = 'online' | 'syncing' | 'offline' | 'connecting';

/** What the badge says for a status. */
export function connection(status: Status | undefined): Shown {
  if (!status || status.state === 'connecting') return 'connecting';
  if (status.state !== 'online') return 'offline';
  return status.synced ? 'online' : 'syncing';
}

const labels: Record<Shown, string> = {
  online: 'Online',
  syncing: 'Syncing',
  offline: 'Offline',
  connecting: 'Connecting',
};

/** The replica's connection state and the number of changes not yet synced. */
export function ConnectionBadge({ doc }: { doc: SqlsyncDocument | undefined }) {
  const status = useStatus(doc);
  const shown = connection(status);
  const pending = status?.pending ?? 0;
  return (
    <p className={`badge ${shown}`} role="status" data-state={shown} data-pending={pending}>
      <span className="dot" aria-hidden="true" />
      {labels[shown]}
      {pending > 0 && <span className="pending"> · {pending} pending</span>}
    </p>
  );
}
