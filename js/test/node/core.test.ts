import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { FromWorker } from '../../src/messages.js';
import { ownerLost } from '../../src/worker/core.js';
import { init, Origin, type Tab } from './fakes.js';

const isStatus = (m: FromWorker): m is Extract<FromWorker, { t: 'status' }> => m.t === 'status';
const ret = (id: number) => (m: FromWorker): m is Extract<FromWorker, { t: 'ret' }> => m.t === 'ret' && m.id === id;
const rows = (subId: number, n: number) => (m: FromWorker): m is Extract<FromWorker, { t: 'rows' }> =>
  m.t === 'rows' && m.subId === subId && !!m.json && JSON.parse(m.json).rows.length === n;

function mutate(tab: Tab, id: number, rowId: string) {
  tab.send({ t: 'call', id, method: 'mutate', args: ['add', new TextEncoder().encode(JSON.stringify({ id: rowId }))] });
  return tab.waitFor(ret(id));
}

async function roleOf(tab: Tab, role: 'owner' | 'follower') {
  return tab.waitFor((m): m is Extract<FromWorker, { t: 'status' }> => m.t === 'status' && m.status.role === role, 3000);
}

test('the first tab owns the document, the second goes through it', async () => {
  const o = new Origin();
  const a = o.tab('a');
  a.send(init());
  await roleOf(a, 'owner');
  const b = o.tab('b');
  b.send(init());
  await roleOf(b, 'follower');
  b.send({ t: 'sub', subId: 1, sql: 'SELECT id FROM items', params: '' });
  await b.waitFor(rows(1, 0));
  const r = await mutate(b, 7, 'x');
  assert.equal(r.ok, true);
  assert.equal(r.ok && r.value, 1);
  await b.waitFor(rows(1, 1));
  assert.equal(o.storage.opens, 1, 'one tab opened the storage');
  // Errors keep their code across tabs.
  b.send({ t: 'call', id: 8, method: 'mutate', args: ['fail', new TextEncoder().encode('{"message":"no"}')] });
  const f = await b.waitFor(ret(8));
  assert.deepEqual(f.ok ? null : f.error, { message: 'no', code: 'rejected' });
});

test('closing the owner hands over to the follower, subscriptions and all', async () => {
  const o = new Origin();
  const a = o.tab('a');
  a.send(init());
  await roleOf(a, 'owner');
  const b = o.tab('b');
  b.send(init());
  await roleOf(b, 'follower');
  b.send({ t: 'sub', subId: 1, sql: 'SELECT id FROM items', params: '' });
  await mutate(a, 1, 'x');
  await b.waitFor(rows(1, 1));
  a.send({ t: 'close', id: 2 });
  await a.waitFor(ret(2));
  assert.equal(a.go?.closed, true);
  await roleOf(b, 'owner');
  assert.equal(o.storage.opens, 2);
  await mutate(b, 3, 'y');
  await b.waitFor(rows(1, 2));
  assert.deepEqual(o.storage.rows, ['x', 'y']);
});

test('a killed owner: unanswered calls move on, an acknowledged mutation is reported lost', async () => {
  const o = new Origin();
  const a = o.tab('a');
  a.send(init());
  await roleOf(a, 'owner');
  const b = o.tab('b');
  b.send(init());
  await roleOf(b, 'follower');
  a.go!.hang = true;
  b.send({ t: 'call', id: 1, method: 'mutate', args: ['add', new TextEncoder().encode('{"id":"lost?"}')] });
  await new Promise((r) => setTimeout(r, 20)); // the owner acknowledges it
  a.kill();
  b.send({ t: 'call', id: 2, method: 'query', args: ['SELECT id FROM items', ''] });
  const lost = await b.waitFor(ret(1));
  assert.deepEqual(lost.ok ? null : lost.error, ownerLost);
  const q = await b.waitFor(ret(2));
  assert.equal(q.ok, true);
  await roleOf(b, 'owner');
});

test('the owner drops the subscriptions of a follower that died', async () => {
  const o = new Origin();
  const a = o.tab('a');
  a.send(init());
  await roleOf(a, 'owner');
  const b = o.tab('b');
  b.send(init());
  await roleOf(b, 'follower');
  b.send({ t: 'sub', subId: 1, sql: 'SELECT id FROM items', params: '' });
  await b.waitFor(rows(1, 0));
  assert.equal(a.go!.subCount(), 1);
  b.kill();
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(a.go!.subCount(), 0);
});

test('memory documents are each tab\'s own', async () => {
  const o = new Origin();
  const a = o.tab('a');
  const b = o.tab('b');
  a.send(init('doc', 'memory'));
  b.send(init('doc', 'memory'));
  await roleOf(a, 'owner');
  await roleOf(b, 'owner');
  assert.equal(o.storage.opens, 2);
});

test('status reaches followers', async () => {
  const o = new Origin();
  const a = o.tab('a');
  a.send(init());
  await roleOf(a, 'owner');
  const b = o.tab('b');
  b.send(init());
  const s = await b.waitFor(isStatus);
  assert.equal(s.status.role, 'follower');
  assert.equal(s.status.clientId, 'c1');
});

test('the owner runs the mutator it resolved, says so in its status, and warns of queue-only', async () => {
  const o = new Origin();
  o.resolveMutator = async () => ({
    info: { kind: 'none', source: 'fallback', reason: 'offline' },
    warning: { code: 'queue_only', message: 'mutations are queued and pushed without running locally' },
  });
  const a = o.tab('a');
  a.send(init());
  const s = await roleOf(a, 'owner');
  assert.deepEqual(s.status.mutator, { kind: 'none', source: 'fallback', reason: 'offline' });
  assert.equal(s.status.queueOnly, true);
  const w = await a.waitFor((m): m is Extract<FromWorker, { t: 'warning' }> => m.t === 'warning');
  assert.equal(w.error.code, 'queue_only');
  assert.ok(a.out.indexOf(w) > a.out.indexOf(s), 'the warning follows the first status');
  assert.equal(a.opened[0].config.mutator, '', 'neither a mutator name');
  assert.equal(a.opened[0].module, undefined, 'nor a module: Go opens queue-only');
  const b0 = o.tab('b0');
  b0.send(init());
  const f0 = await roleOf(b0, 'follower');
  assert.equal(f0.status.queueOnly, true, 'a follower sees the owner is queue-only');
  assert.equal(f0.status.mutator?.kind, 'none');

  // A module goes to Go beside the config; a follower sees the owner's mutator.
  const o2 = new Origin();
  const bytes = new Uint8Array([0, 0x61, 0x73, 0x6d]);
  o2.resolveMutator = async () => ({ info: { kind: 'module', hash: 'ab'.repeat(32), source: 'coordinator' }, module: bytes });
  const b = o2.tab('b');
  b.send(init());
  await roleOf(b, 'owner');
  assert.deepEqual(b.opened[0].module, bytes);
  assert.equal(b.opened[0].config.mutatorHash, 'ab'.repeat(32));
  assert.equal(b.opened[0].config.mutator, '');
  assert.equal((await roleOf(b, 'owner')).status.queueOnly, false);
  const c = o2.tab('c');
  c.send(init());
  const fs = await roleOf(c, 'follower');
  assert.equal(fs.status.mutator?.kind, 'module');

  // A mutator that cannot run fails the open.
  const o3 = new Origin();
  o3.resolveMutator = async () => {
    throw Object.assign(new Error('refusing to run it'), { code: 'mutator_mismatch' });
  };
  const d = o3.tab('d');
  d.send(init());
  const f = await d.waitFor((m): m is Extract<FromWorker, { t: 'fatal' }> => m.t === 'fatal');
  assert.equal(f.error.code, 'mutator_mismatch');
});

test('a mutator mismatch: the status says so, the worker refreshes the cached answer, then warns once', async () => {
  const o = new Origin();
  const ours = 'ab'.repeat(32);
  const theirs = 'cd'.repeat(32);
  let resolves = 0;
  let revalidations = 0;
  o.resolveMutator = async () => {
    resolves++;
    return {
      info: { kind: 'module', hash: ours, source: 'cache' },
      module: new Uint8Array([0, 0x61, 0x73, 0x6d]),
      revalidated: Promise.resolve().then(() => {
        revalidations++;
        return undefined;
      }),
    };
  };
  const a = o.tab('a');
  a.send(init());
  await roleOf(a, 'owner');
  assert.equal(resolves, 1);
  const lastError = `the coordinator runs mutator ${theirs.slice(0, 12)}, this replica runs ${ours.slice(0, 12)}: reopen the document`;
  const status = { state: 'online', lsn: 1, serverLsn: 1, pending: 1, lastError, synced: false, storage: 'opfs', clientId: 'c1', mutatorMismatch: true, coordinatorMutator: theirs };
  a.go!.emit(JSON.stringify({ type: 'status', status }));
  const s = await a.waitFor((m): m is Extract<FromWorker, { t: 'status' }> => m.t === 'status' && !!m.status.mutatorMismatch);
  assert.equal(s.status.coordinatorMutator, theirs);
  const w = await a.waitFor((m): m is Extract<FromWorker, { t: 'warning' }> => m.t === 'warning' && m.error.code === 'mutator_changed');
  assert.equal(w.error.message, lastError);
  assert.equal(resolves, 2, 'the worker asked which mutator the document uses again');
  assert.equal(revalidations, 2, 'and waited for the coordinator\'s answer');
  // The same mismatch again (a reconnect): no second warning.
  a.go!.emit(JSON.stringify({ type: 'status', status: { ...status, state: 'connecting' } }));
  await a.waitFor((m): m is Extract<FromWorker, { t: 'status' }> => m.t === 'status' && m.status.state === 'connecting');
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(a.out.filter((m) => m.t === 'warning').length, 1);
  assert.equal(resolves, 2);
});

test('without a resolver the replica opens queue-only, unwarned', async () => {
  const o = new Origin();
  const a = o.tab('a');
  a.send(init());
  const s = await roleOf(a, 'owner');
  assert.deepEqual(s.status.mutator, { kind: 'none', source: 'default' });
  assert.equal(s.status.queueOnly, true);
  assert.equal(a.opened[0].config.mutator, '');
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(a.out.filter((m) => m.t === 'warning').length, 0);
});

const warnings = (tab: Tab) => tab.out.filter((m): m is Extract<FromWorker, { t: 'warning' }> => m.t === 'warning');
const changedWarning = (m: FromWorker): m is Extract<FromWorker, { t: 'warning' }> => m.t === 'warning' && m.error.code === 'mutator_changed';

test('a queue-only replica opened from the cache learns in the background that the coordinator now names a module', async () => {
  const o = new Origin();
  const theirs = 'cd'.repeat(32);
  o.resolveMutator = async () => ({
    info: { kind: 'none', source: 'cache', reason: 'the coordinator serves no mutator module for this document' },
    revalidated: new Promise((r) => setTimeout(r, 5)).then(() => ({ info: { kind: 'module' as const, hash: theirs, source: 'coordinator' as const }, module: new Uint8Array(8) })),
  });
  const a = o.tab('a');
  a.send(init());
  const s = await roleOf(a, 'owner');
  assert.equal(s.status.queueOnly, true);
  const w = await a.waitFor(changedWarning);
  assert.match(w.error.message, new RegExp(`names the mutator module ${theirs.slice(0, 12)}.*reopen the document to run it locally`));
  // Its Welcome then names the same module: no second warning.
  a.go!.emit(JSON.stringify({ type: 'status', status: { ...JSON.parse(await a.go!.status()), state: 'online', coordinatorMutator: theirs } }));
  await a.waitFor((m): m is Extract<FromWorker, { t: 'status' }> => m.t === 'status' && m.status.state === 'online');
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(warnings(a).length, 1);
});

test('a queue-only replica opened offline warns once it reaches a coordinator that names a module, after caching it', async () => {
  const o = new Origin();
  const theirs = 'cd'.repeat(32);
  let resolves = 0;
  o.resolveMutator = async () => {
    resolves++;
    if (resolves <= 2) {
      // The open, then a refresh while the module cannot be fetched yet.
      return { info: { kind: 'none', source: 'fallback', reason: 'offline' }, warning: { code: 'queue_only', message: 'queued' } };
    }
    // Now the coordinator's answer and its module, fetched and cached.
    return { info: { kind: 'module', hash: theirs, source: 'coordinator' }, module: new Uint8Array(8) };
  };
  const a = o.tab('a');
  a.send(init());
  await roleOf(a, 'owner');
  await a.waitFor((m): m is Extract<FromWorker, { t: 'warning' }> => m.t === 'warning' && m.error.code === 'queue_only');
  const online = { ...JSON.parse(await a.go!.status()), state: 'online', coordinatorMutator: theirs };
  a.go!.emit(JSON.stringify({ type: 'status', status: online }));
  await a.waitFor((m): m is Extract<FromWorker, { t: 'status' }> => m.t === 'status' && m.status.state === 'online');
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(resolves, 2, 'the worker tried to fetch the module');
  assert.equal(warnings(a).filter((m) => m.error.code === 'mutator_changed').length, 0, 'a reopen would still be queue-only: no warning');

  // The next status tries again, and the module is cached this time.
  a.go!.emit(JSON.stringify({ type: 'status', status: { ...online, pending: 2 } }));
  const w = await a.waitFor(changedWarning);
  assert.equal(resolves, 3, 'the worker asked again, caching the module, before it warned');
  assert.match(w.error.message, new RegExp(`runs the mutator module ${theirs.slice(0, 12)}.*reopen the document to run it locally`));
  // Later statuses (a reconnect) warn no more.
  a.go!.emit(JSON.stringify({ type: 'status', status: { ...online, state: 'connecting' } }));
  await a.waitFor((m): m is Extract<FromWorker, { t: 'status' }> => m.t === 'status' && m.status.state === 'connecting');
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(warnings(a).filter((m) => m.error.code === 'mutator_changed').length, 1);
  assert.equal(resolves, 3);
});

test("a replica the app opened with mutator: 'none' is not told of the coordinator's module", async () => {
  const o = new Origin();
  let resolves = 0;
  o.resolveMutator = async () => {
    resolves++;
    return { info: { kind: 'none', source: 'option' } };
  };
  const a = o.tab('a');
  a.send({ t: 'init', config: { url: 'ws://co/v1/sync', docId: 'doc', wasmUrl: 'x.wasm', mutator: 'none' } });
  await roleOf(a, 'owner');
  a.go!.emit(JSON.stringify({ type: 'status', status: { ...JSON.parse(await a.go!.status()), state: 'online', coordinatorMutator: 'cd'.repeat(32) } }));
  await a.waitFor((m): m is Extract<FromWorker, { t: 'status' }> => m.t === 'status' && m.status.state === 'online');
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(warnings(a).length, 0);
  assert.equal(resolves, 1);
});

test('a lazy replica resolves and runs its module as a whole one does, and answers lazyStats; a whole one answers null', async () => {
  const o = new Origin();
  const ours = 'ab'.repeat(32);
  const bytes = new Uint8Array([0, 0x61, 0x73, 0x6d]);
  let resolves = 0;
  o.resolveMutator = async () => {
    resolves++;
    return { info: { kind: 'module', hash: ours, source: 'coordinator' }, module: bytes };
  };
  const a = o.tab('a');
  a.send({ t: 'init', config: { url: 'ws://co/v1/sync', docId: 'doc', wasmUrl: 'x.wasm', lazy: true, cacheBytes: 4 << 20, storage: 'indexeddb' } });
  const s = await roleOf(a, 'owner');
  assert.equal(resolves, 1, 'the module was resolved');
  assert.deepEqual(a.opened[0].module, bytes, 'and went to Go beside the config');
  assert.equal(a.opened[0].config.mutatorHash, ours);
  assert.equal(a.opened[0].config.lazy, true);
  assert.equal(a.opened[0].config.cacheBytes, 4 << 20);
  assert.equal(a.opened[0].config.storage, 'indexeddb', 'indexeddb goes to Go as asked');
  assert.equal(s.status.queueOnly, false);
  assert.deepEqual(s.status.mutator, { kind: 'module', hash: ours, source: 'coordinator' });
  // Its mutations go to the Go replica, which runs them.
  const m = await mutate(a, 9, 'x');
  assert.ok(m.ok);
  assert.deepEqual(o.storage.rows, ['x']);
  // The coordinator names the same module: nothing to warn of.
  a.go!.emit(JSON.stringify({ type: 'status', status: { ...JSON.parse(await a.go!.status()), state: 'online', coordinatorMutator: ours } }));
  await a.waitFor((m): m is Extract<FromWorker, { t: 'status' }> => m.t === 'status' && m.status.state === 'online');
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(warnings(a).length, 0);
  a.send({ t: 'call', id: 1, method: 'lazyStats', args: [] });
  const r = await a.waitFor(ret(1));
  assert.ok(r.ok);
  assert.deepEqual(r.value, { fetches: 1, pagesFetched: 2, prefetched: 0, stale: 0, evicted: 0, cachedPages: 3, cachedBytes: 3 * 4096, cacheBytes: 4 << 20 });
  // A follower's call goes to the owner's replica.
  const b = o.tab('b');
  b.send({ t: 'init', config: { url: 'ws://co/v1/sync', docId: 'doc', wasmUrl: 'x.wasm' } });
  await roleOf(b, 'follower');
  b.send({ t: 'call', id: 2, method: 'lazyStats', args: [] });
  const rb = await b.waitFor(ret(2));
  assert.ok(rb.ok);
  assert.equal((rb.value as { cacheBytes: number }).cacheBytes, 4 << 20);

  const o2 = new Origin();
  const c = o2.tab('c');
  c.send(init());
  await roleOf(c, 'owner');
  assert.equal(c.opened[0].config.lazy, false);
  c.send({ t: 'call', id: 3, method: 'lazyStats', args: [] });
  const rc = await c.waitFor(ret(3));
  assert.ok(rc.ok);
  assert.equal(rc.value, null);
});

test('a lazy replica that fell back to queue-only is told, as a whole one is, once its coordinator names a module', async () => {
  const o = new Origin();
  const theirs = 'cd'.repeat(32);
  let resolves = 0;
  o.resolveMutator = async () => {
    resolves++;
    if (resolves === 1) return { info: { kind: 'none', source: 'fallback', reason: 'offline' } };
    return { info: { kind: 'module', hash: theirs, source: 'coordinator' }, module: new Uint8Array(8) };
  };
  const a = o.tab('a');
  a.send({ t: 'init', config: { url: 'ws://co/v1/sync', docId: 'doc', wasmUrl: 'x.wasm', lazy: true } });
  const s = await roleOf(a, 'owner');
  assert.equal(s.status.queueOnly, true);
  assert.equal(s.status.mutator?.source, 'fallback');
  a.go!.emit(JSON.stringify({ type: 'status', status: { ...JSON.parse(await a.go!.status()), state: 'online', coordinatorMutator: theirs } }));
  const w = await a.waitFor(changedWarning);
  assert.match(w.error.message, new RegExp(`runs the mutator module ${theirs.slice(0, 12)}.*reopen the document to run it locally`));
});
