// Presence across the tabs of one origin: each tab has its own (keyed by
// its worker's ID) on the one replica the owner tab runs; followers
// publish through the owner and hear of the others from it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { FromWorker } from '../../src/messages.js';
import type { PresencePeer } from '../../src/types.js';
import { init, Origin, type Tab } from './fakes.js';

type PresenceMsg = Extract<FromWorker, { t: 'presence' }>;

/** Waits until the tab's page was last told of others with these states. */
async function sees(tab: Tab, want: unknown[]) {
  const matches = (peers: PresencePeer[]) => JSON.stringify(peers.map((p) => p.state)) === JSON.stringify(want);
  const last = () => [...tab.out].reverse().find((m): m is PresenceMsg => m.t === 'presence');
  const l = last();
  if (l && matches(l.peers)) return l.peers;
  const m = await tab.waitFor((m): m is PresenceMsg => m.t === 'presence' && matches(m.peers) && m === last());
  return m.peers;
}

let nextCall = 1000;
function setPresence(tab: Tab, state: unknown) {
  const id = nextCall++;
  tab.send({ t: 'call', id, method: 'presence', args: [state === null ? null : JSON.stringify(state)] });
  return tab.waitFor((m): m is Extract<FromWorker, { t: 'ret' }> => m.t === 'ret' && m.id === id);
}

async function ownerAndFollower() {
  const o = new Origin();
  const a = o.tab('a');
  a.send(init());
  await a.waitFor((m) => m.t === 'status' && m.status.role === 'owner');
  const b = o.tab('b');
  b.send(init());
  await b.waitFor((m) => m.t === 'status' && m.status.role === 'follower');
  return { o, a, b };
}

test('each tab has its own presence; a follower publishes through the owner', async () => {
  const { a, b } = await ownerAndFollower();
  const r = await setPresence(a, { name: 'A' });
  assert.equal(r.ok, true);
  await setPresence(b, { name: 'B' });
  assert.deepEqual([...a.go!.presences.keys()].sort(), ['a', 'b'], 'one replica holds both tabs\' presences');
  const seenByA = await sees(a, [{ name: 'B' }]);
  assert.equal(seenByA[0].local, true);
  assert.equal('key' in seenByA[0], false, 'the worker ID stays in the worker');
  await sees(b, [{ name: 'A' }]);
  // Other people's presences reach both tabs.
  a.go!.remote = [{ id: '7/x', clientId: 'c2', readOnly: true, local: false, state: { name: 'C' } }];
  a.go!.emitPresence();
  await sees(a, [{ name: 'C' }, { name: 'B' }]);
  await sees(b, [{ name: 'C' }, { name: 'A' }]);
  await setPresence(b, null);
  await sees(a, [{ name: 'C' }]);
});

test("a follower's tab closing or dying takes its presence with it", async () => {
  const { o, a, b } = await ownerAndFollower();
  await setPresence(b, 'b');
  await sees(a, ['b']);
  b.kill();
  await sees(a, []);
  assert.equal(a.go!.presences.size, 0);
  const c = o.tab('c');
  c.send(init());
  await c.waitFor((m) => m.t === 'status' && m.status.role === 'follower');
  await setPresence(c, 'c');
  await sees(a, ['c']);
  c.send({ t: 'close', id: 1 });
  await sees(a, []);
});

test('a new owner publishes its own presence again and hears the followers\' again', async () => {
  const { o, a, b } = await ownerAndFollower();
  const c = o.tab('c');
  c.send(init());
  await c.waitFor((m) => m.t === 'status' && m.status.role === 'follower');
  await setPresence(a, 'a');
  await setPresence(b, 'b');
  await setPresence(c, 'c');
  await sees(c, ['a', 'b']);
  a.send({ t: 'close', id: 1 });
  await b.waitFor((m) => m.t === 'status' && m.status.role === 'owner', 3000);
  // b's new replica has b's and c's presences, not the closed tab's.
  for (let i = 0; i < 100 && b.go!.presences.size < 2; i++) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual([...b.go!.presences.keys()].sort(), ['b', 'c']);
  await sees(c, ['b']);
  await sees(b, ['c']);
});

test('a refusal reaches the tab whose presence it was', async () => {
  const { a, b } = await ownerAndFollower();
  await setPresence(b, 'b');
  a.go!.emit(JSON.stringify({ type: 'presenceRefused', key: 'b', code: 'rate', reason: 'too fast' }));
  const w = await b.waitFor((m): m is Extract<FromWorker, { t: 'warning' }> => m.t === 'warning');
  assert.deepEqual(w.error, { code: 'presence_refused', message: 'presence refused (rate): too fast' });
  assert.equal(a.out.some((m) => m.t === 'warning'), false);
});

test('a new tab hears of the presences there are', async () => {
  const { o, a } = await ownerAndFollower();
  await setPresence(a, 'a');
  const c = o.tab('c');
  c.send(init());
  await sees(c, ['a']);
});
