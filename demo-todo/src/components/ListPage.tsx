import { useDownload, usePresence, useStatus } from '@sqlsync-go/client/react';
import { useCallback, useEffect, useMemo, useState } from 'react';
import { me, type Viewer } from '../presence';
import { rememberList } from '../recentLists';
import { describeError, ReportProvider, Toasts, useToasts } from '../toasts';
import type { SqlsyncDocument } from '../todo';
import { useList } from '../useList';
import { AddItem } from './AddItem';
import { ConnectionBadge } from './ConnectionBadge';
import { DeletedItems } from './DeletedItems';
import { HowItWorks } from './HowItWorks';
import { ItemList } from './ItemList';
import { ListTitle } from './ListTitle';
import { OfflineSwitch } from './OfflineSwitch';
import { ShareLink } from './ShareLink';
import { Viewers } from './Viewers';

interface Props {
  listId: string;
  offline: boolean;
  onOfflineChange: (offline: boolean) => void;
}

/** One list: its document opened for as long as the page shows it. */
export function ListPage({ listId, offline, onOfflineChange }: Props) {
  const { doc, progress, error } = useList(listId, !offline);
  const { toasts, show, dismiss } = useToasts();
  const report = (e: unknown) => show(describeError(e));

  useEffect(() => rememberList(listId), [listId]);

  // Who is looking: this tab publishes its viewer (name and colour, kept
  // in localStorage) and the item whose title it is editing; the others'
  // show in the top bar and on the items they edit.
  const viewer = useMemo(me, []);
  const [editing, setEditing] = useState<string | null>(null);
  const onEditing = useCallback(
    (id: string, focused: boolean) => setEditing((current) => (focused ? id : current === id ? null : current)),
    [],
  );
  const { others } = usePresence<Viewer>(doc, doc ? { ...viewer, editing } : undefined);

  // A mutation the coordinator refused after it ran here: its effect is
  // already rolled back; say why.
  useEffect(
    () => doc?.on('rejected', (r) => show(`The server refused “${r.name}”: ${r.message}. It has been undone.`)),
    [doc, show],
  );

  // The server runs other todo code than this tab (it was updated, or this
  // tab opened the list without it and only queues changes): the worker
  // has fetched it, and a reload runs it.
  useEffect(
    () =>
      doc?.on('error', (e) => {
        if (e.code !== 'mutator_changed') return;
        show(
          doc.status.queueOnly
            ? 'This tab can now run the list’s code: reload the page so that your changes show at once.'
            : 'The list’s code changed on the server: reload the page to send your changes.',
        );
      }),
    [doc, show],
  );

  const switchOffline = (off: boolean) => {
    onOfflineChange(off);
    doc?.setOnline(!off).catch(report);
  };

  // The tabs of one browser share one replica, run by one of them (the
  // owner). When this tab takes over from a closed one, its replica starts
  // as this tab opened it: apply the switch as it is now.
  const role = useStatus(doc)?.role;
  useEffect(() => {
    if (role === 'owner') doc?.setOnline(!offline).catch(report);
  }, [doc, role]); // not on `offline`: the switch itself calls setOnline

  return (
    <ReportProvider value={report}>
      <div className="page">
        <header className="topbar">
          <a href="#/" className="home">
            <span aria-hidden="true">←</span> All lists
          </a>
          <div className="sync-controls">
            {doc && <Viewers me={viewer} others={others} />}
            <ConnectionBadge doc={doc} />
            <OfflineSwitch offline={offline} onChange={switchOffline} />
          </div>
        </header>
        <div className="layout">
          <main className="list-panel card">
            {error ? (
              <p role="alert">Could not open the list: {error}</p>
            ) : !doc ? (
              <Opening loaded={progress?.loaded} total={progress?.total} />
            ) : (
              <>
                <ListTitle doc={doc} listId={listId} />
                <ShareLink listId={listId} />
                <AddItem doc={doc} />
                <Download doc={doc} />
                <ItemList doc={doc} others={others} onEditing={onEditing} />
                <DeletedItems doc={doc} />
              </>
            )}
          </main>
          <HowItWorks doc={doc} />
        </div>
        <Toasts toasts={toasts} dismiss={dismiss} />
      </div>
    </ReportProvider>
  );
}

/**
 * A large list's first sync (or a return after a long time away): the
 * coordinator streams it, and this shows how far it has come. The items
 * show once it is all here; a download cut short resumes on the next visit.
 */
function Download({ doc }: { doc: SqlsyncDocument }) {
  const p = useDownload(doc);
  if (!p || p.done) return null;
  return (
    <div className="download">
      <p id="download-label">
        Downloading the list… {mib(p.loaded)} of {mib(p.total ?? p.loaded)} MB
      </p>
      <progress aria-labelledby="download-label" value={p.loaded} max={p.total} />
    </div>
  );
}

const mib = (n: number) => (n / (1 << 20)).toFixed(1);

function Opening({ loaded, total }: { loaded?: number; total?: number }) {
  return (
    <div className="opening">
      <p id="opening-label">Opening the list…</p>
      {/* The first visit downloads the database engine (a few MB). */}
      <progress aria-labelledby="opening-label" value={loaded} max={total} />
    </div>
  );
}
