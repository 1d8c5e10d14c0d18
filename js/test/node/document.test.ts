import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openDocument, RejectedMutationError, SqlsyncError } from '../../src/document.js';
import type { FromWorker, ToWorker } from '../../src/messages.js';
import type { WorkerLike } from '../../src/document.js';
import { Origin } from './fakes.js';

/** A WorkerLike running a WorkerCore in this thread. */
function inProcessWorker(o: Origin, id: string): WorkerLike & { terminated: boolean } {
  const tab = o.tab(id);
  const w = {
    onmessage: null as ((ev: { data: FromWorker }) => void) | null,
    onerror: null,
    terminated: false,
    postMessage: (m: ToWorker) => setTimeout(() => tab.send(structuredClone(m)), 0),
    terminate: () => {
      w.terminated = true;
      tab.kill();
    },
  };
  tab.onPost((m) => setTimeout(() => w.onmessage?.({ data: structuredClone(m) }), 0));
  return w;
}

test('openDocument, mutate, query, subscribe, events, close', async () => {
  const o = new Origin();
  const w = inProcessWorker(o, 'a');
  const doc = await openDocument({ docId: 'doc', url: 'http://127.0.0.1:1', baseUrl: 'http://127.0.0.1:1/x/' }, w);
  assert.equal(doc.status.role, 'owner');
  const seen: string[][] = [];
  const stop = doc.subscribe<{ id: string }>('SELECT id FROM items', [], (rows) => seen.push(rows.map((r) => r.id)));
  assert.equal(await doc.mutate('add', { id: 'x' }), 1);
  assert.deepEqual(await doc.query('SELECT id FROM items'), [{ id: 'x' }]);
  await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(seen, [[], ['x']]);
  stop();
  await assert.rejects(doc.mutate('fail', { message: 'nope' }), (e: unknown) => e instanceof SqlsyncError && e.code === 'rejected' && e.message === 'nope');
  const errors: unknown[] = [];
  doc.on('error', (e) => errors.push(e));
  w.onmessage!({ data: { t: 'rejected', rejection: { seq: 3, name: 'add', message: 'UNIQUE constraint failed: items.id' } } });
  assert.ok(errors[0] instanceof RejectedMutationError);
  assert.match((errors[0] as Error).message, /UNIQUE/);
  await doc.close();
  assert.equal(w.terminated, true);
  await assert.rejects(doc.query('SELECT 1'), /closed/);
});

test('openDocument rejects when the replica cannot open', async () => {
  const w: WorkerLike = {
    onmessage: null,
    onerror: null,
    postMessage(m: ToWorker) {
      if (m.t === 'init') setTimeout(() => this.onmessage?.({ data: { t: 'fatal', error: { message: 'no storage', code: 'internal' } } }), 0);
    },
    terminate() {},
  };
  await assert.rejects(openDocument({ docId: 'd', baseUrl: 'http://h/' }, w), /no storage/);
});

test("openDocument rejects a mutator option other than 'auto' or 'none' before it starts a worker", async () => {
  let posted = 0;
  const w: WorkerLike = {
    onmessage: null,
    onerror: null,
    postMessage() {
      posted++;
    },
    terminate() {},
  };
  // A JavaScript app (or a stale cast) can still pass the name of a
  // built-in mutator the wasm bundle used to have.
  const opts = { docId: 'd', baseUrl: 'http://h/', mutator: 'todo' } as unknown as Parameters<typeof openDocument>[0];
  await assert.rejects(
    openDocument(opts, w),
    (e: unknown) => e instanceof SqlsyncError && e.code === 'bad_request' && /"todo" is neither 'auto' nor 'none'/.test(e.message),
  );
  assert.equal(posted, 0);
});

test('openDocument passes lazy and cacheBytes to the worker, rejects a cacheBytes that is no whole number of bytes; a lazy document runs its mutator; lazyStats', async () => {
  for (const cacheBytes of [-1, 1.5, Number.NaN, 2 ** 60]) {
    let posted = 0;
    const w: WorkerLike = { onmessage: null, onerror: null, postMessage: () => posted++, terminate() {} };
    await assert.rejects(
      openDocument({ docId: 'd', baseUrl: 'http://h/', lazy: true, cacheBytes }, w),
      (e: unknown) => e instanceof SqlsyncError && e.code === 'bad_request' && /cacheBytes/.test(e.message),
    );
    assert.equal(posted, 0, `cacheBytes ${cacheBytes}`);
  }
  const o = new Origin();
  o.resolveMutator = async () => ({ info: { kind: 'module', hash: 'ab'.repeat(32), source: 'coordinator' }, module: new Uint8Array([0, 0x61, 0x73, 0x6d]) });
  const lazy = await openDocument(
    { docId: 'doc', url: 'http://127.0.0.1:1', baseUrl: 'http://127.0.0.1:1/x/', lazy: true, cacheBytes: 1 << 20, storage: 'indexeddb' },
    inProcessWorker(o, 'a'),
  );
  assert.deepEqual(await lazy.lazyStats(), { fetches: 1, pagesFetched: 2, prefetched: 0, stale: 0, evicted: 0, cachedPages: 3, cachedBytes: 3 * 4096, cacheBytes: 1 << 20 });
  // A lazy document runs its mutator: not queue-only, its mutations answered by its replica.
  assert.equal(lazy.status.queueOnly, false);
  assert.equal(lazy.status.mutator?.kind, 'module');
  assert.equal(await lazy.mutate('add', { id: 'x' }), 1);
  assert.deepEqual(await lazy.query('SELECT id FROM items'), [{ id: 'x' }]);
  // A page it lacks, offline: the replica's code comes through.
  await assert.rejects(lazy.mutate('fail', { message: 'page 7 not held, offline', code: 'offline' }), (e: unknown) => e instanceof SqlsyncError && e.code === 'offline');
  await lazy.close();
  const whole = await openDocument({ docId: 'doc', url: 'http://127.0.0.1:1', baseUrl: 'http://127.0.0.1:1/x/' }, inProcessWorker(new Origin(), 'b'));
  assert.equal(await whole.lazyStats(), null);
  await whole.close();
});

test('waitSynced resolves on a synced status, rejects when sync stops, the document closes or time runs out', async () => {
  const status = (s: Partial<import('../../src/types.js').Status>) => ({
    state: 'online',
    pending: 0,
    lsn: 1,
    serverLsn: 1,
    lastError: '',
    synced: false,
    storage: 'memory',
    clientId: 'c',
    role: 'owner',
    ...s,
  });
  const w: WorkerLike = {
    onmessage: null,
    onerror: null,
    postMessage(m: ToWorker) {
      if (m.t === 'init') setTimeout(() => this.onmessage?.({ data: { t: 'status', status: status({ pending: 1 }) as never } }), 0);
      if (m.t === 'close') setTimeout(() => this.onmessage?.({ data: { t: 'ret', id: m.id, ok: true, value: null } }), 0);
    },
    terminate() {},
  };
  const doc = await openDocument({ docId: 'd', baseUrl: 'http://h/' }, w);
  const push = (s: object) => w.onmessage!({ data: { t: 'status', status: status(s) as never } });

  let synced = false;
  const waiting = doc.waitSynced().then(() => (synced = true));
  await new Promise((r) => setTimeout(r, 5));
  assert.equal(synced, false, 'not synced while a mutation is pending');
  push({ synced: true });
  await waiting;
  assert.equal(synced, true);
  await doc.waitSynced(); // already synced: at once

  push({ state: 'connecting', synced: false });
  await assert.rejects(doc.waitSynced(10), (e: SqlsyncError) => e.code === 'timeout');
  const stopped = doc.waitSynced();
  push({ state: 'stopped', lastError: 'bad token' });
  await assert.rejects(stopped, (e: SqlsyncError) => e.code === 'stopped' && /bad token/.test(e.message));
  push({ state: 'connecting', synced: false });
  const closing = doc.waitSynced();
  await doc.close();
  await assert.rejects(closing, (e: SqlsyncError) => e.code === 'closed');
});
