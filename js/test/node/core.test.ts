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
