// The end-to-end test page: window.sq drives the package from Playwright,
// and a small React app shows the hooks at work.
import { createRoot, type Root } from 'react-dom/client';
import {
  openDocument,
  type OpenOptions,
  type Param,
  type PresencePeer,
  type Rejection,
  type Row,
  type SqlsyncDocument,
  type Status,
} from '../../../src/index.js';
import { useMutate, usePresence, useQuery, useStatus } from '../../../src/react.js';

interface Recorded {
  rejected: Rejection[];
  errors: string[];
  /** The code of each of errors, in the same order. */
  codes: string[];
  statuses: Status[];
  progress: number;
  live: Record<string, Row[]>;
  liveCalls: Record<string, number>;
  /** Every presence event, with when it came (ms since the epoch, this machine's clock). */
  presence: { at: number; peers: PresencePeer[] }[];
  /** Every presence this page set, with when. */
  presenceSent: { at: number; state: unknown }[];
}

/** The time now in ms since the epoch, sub-millisecond: comparable across pages of one machine. */
const epochNow = () => performance.timeOrigin + performance.now();

let doc: SqlsyncDocument | undefined;
let root: Root | undefined;
const rec: Recorded = { rejected: [], errors: [], codes: [], statuses: [], progress: 0, live: {}, liveCalls: {}, presence: [], presenceSent: [] };

function Todos({ d }: { d: SqlsyncDocument }) {
  const { rows } = useQuery<{ id: string; title: string }>(d, 'SELECT id, title FROM items WHERE NOT deleted ORDER BY id');
  const status = useStatus(d);
  const mutate = useMutate(d);
  const { others } = usePresence<{ name?: string }>(d);
  return (
    <div>
      <p id="status">{status?.state}</p>
      <ul id="peers">
        {others.map((p) => (
          <li key={p.id}>{p.state?.name}</li>
        ))}
      </ul>
      <ul id="items">
        {rows?.map((r) => (
          <li key={r.id}>{r.title}</li>
        ))}
      </ul>
      <button id="add" onClick={() => mutate('add', { id: 'react-' + Date.now(), title: 'from react' })}>
        add
      </button>
    </div>
  );
}

const sq = {
  rec,
  async open(opts: Partial<OpenOptions> & { docId: string }) {
    const t0 = performance.now();
    doc = await openDocument({
      url: location.origin,
      baseUrl: '/dist/',
      onProgress: (p) => (rec.progress = p.loaded),
      ...opts,
    });
    const opened = performance.now() - t0;
    doc.on('rejected', (r) => rec.rejected.push(r));
    doc.on('error', (e) => {
      rec.errors.push(e.message);
      rec.codes.push(e.code);
    });
    doc.on('status', (s) => rec.statuses.push(s));
    doc.on('presence', (peers) => rec.presence.push({ at: epochNow(), peers }));
    root ??= createRoot(document.getElementById('root')!);
    root.render(<Todos d={doc} />);
    return { status: doc.status, opened };
  },
  mutate: (name: string, args: unknown) => doc!.mutate(name, args),
  async mutateError(name: string, args: unknown) {
    try {
      await doc!.mutate(name, args);
      return null;
    } catch (e) {
      const err = e as { message: string; code: string };
      return { message: err.message, code: err.code };
    }
  },
  query: (sql: string, params?: Param[]) => doc!.query(sql, params),
  status: () => doc!.fetchStatus(),
  setOnline: (on: boolean) => doc!.setOnline(on),
  /** Sets this tab's presence, recording when. */
  presenceSet(state: unknown) {
    rec.presenceSent.push({ at: epochNow(), state });
    return doc!.presence.set(state);
  },
  presenceOthers: () => doc!.presence.others,
  close: () => doc!.close(),
  subscribe(key: string, sql: string, params?: Param[]) {
    rec.liveCalls[key] = 0;
    doc!.subscribe(sql, params, (rows) => {
      rec.live[key] = rows;
      rec.liveCalls[key]++;
    });
  },
  /** doc.waitSynced's outcome: null once synced, else its error's code and message. */
  waitSyncedError: (timeoutMs: number) =>
    doc!.waitSynced(timeoutMs).then(
      () => null,
      (e: { code: string; message: string }) => ({ code: e.code, message: e.message }),
    ),
  async waitSynced(timeoutMs = 20000) {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const s = await doc!.fetchStatus();
      if (s.synced) return s;
      if (Date.now() > end) throw new Error('not synced: ' + JSON.stringify(s));
      await new Promise((r) => setTimeout(r, 50));
    }
  },
  async bench(n: number) {
    const times: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      await doc!.mutate('add', { id: `bench-${i}-${Math.random()}`, title: 'bench' });
      times.push(performance.now() - t0);
    }
    return times;
  },
};

(window as unknown as { sq: typeof sq }).sq = sq;
