import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { WorkerConfig } from '../../src/messages.js';
import { type CacheLike, httpBase, type MutatorDeps, MutatorError, resolveMutator, subtleSha256 } from '../../src/worker/mutator.js';

const module = new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 42]);
const other = new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 7]);

class FakeCache implements CacheLike {
  entries = new Map<string, Uint8Array>();
  async match(url: string) {
    const b = this.entries.get(url);
    return b ? new Response(b) : undefined;
  }
  async put(url: string, resp: Response) {
    this.entries.set(url, new Uint8Array(await resp.arrayBuffer()));
  }
  async delete(url: string) {
    return this.entries.delete(url);
  }
}

/** A coordinator at http://co (or none, offline) and a browser's cache. */
class World {
  online = true;
  served = new Map<string, Uint8Array | string>();
  fetched: string[] = [];
  sources: [string, string][] = []; // what deps.codeSource was told
  cache = new FakeCache();
  deps(): MutatorDeps {
    return {
      fetch: async (url) => {
        this.fetched.push(url);
        if (!this.online) throw new TypeError('Failed to fetch');
        const body = this.served.get(url);
        if (body === undefined) return new Response('not found', { status: 404 });
        return new Response(body);
      },
      caches: { open: async () => this.cache },
      sha256: subtleSha256,
      codeSource: (hash, url) => this.sources.push([hash, url]),
    };
  }
  async serveModule(doc: string, bytes: Uint8Array) {
    const hash = await subtleSha256(bytes);
    this.served.set(`http://co/v1/docs/${doc}/mutator`, JSON.stringify({ hash, url: `/v1/mutators/${hash}.wasm` }));
    this.served.set(`http://co/v1/mutators/${hash}.wasm`, bytes);
    return hash;
  }
}

const cfg = (c: Partial<WorkerConfig> = {}): WorkerConfig => ({ url: 'ws://co/v1/sync', docId: 'd', wasmUrl: '', ...c });

test('httpBase turns the sync endpoint into the coordinator origin', () => {
  assert.equal(httpBase('ws://co:8080/v1/sync'), 'http://co:8080');
  assert.equal(httpBase('wss://co/prefix/v1/sync?x=1'), 'https://co/prefix');
});

test('the module the coordinator names is fetched, checked and cached; offline it comes from the cache', async () => {
  const w = new World();
  const hash = await w.serveModule('d', module);
  const r = await resolveMutator(cfg(), w.deps());
  assert.deepEqual(r.info, { kind: 'module', hash, source: 'coordinator' });
  assert.deepEqual(r.module, module);
  assert.equal(r.warning, undefined);
  assert.ok(w.cache.entries.has(`http://co/v1/mutators/${hash}.wasm`));
  // The mutator host learns where the coordinator serves the module, to
  // fetch its browser build from beside it.
  assert.deepEqual(w.sources, [[hash, `http://co/v1/mutators/${hash}.wasm`]]);

  // Online again: what was cached runs at once, and only the answer is
  // asked for again, in the background; it has not changed.
  w.fetched = [];
  const again = await resolveMutator(cfg(), w.deps());
  assert.deepEqual(again.info, { kind: 'module', hash, source: 'cache' });
  assert.deepEqual(again.module, module);
  assert.equal(await again.revalidated, undefined);
  assert.deepEqual(w.fetched, ['http://co/v1/docs/d/mutator']);

  // The coordinator switches modules: the cached one runs this time, the
  // background answer says so and caches the new one for the next open.
  const newHash = await w.serveModule('d', other);
  const stale = await resolveMutator(cfg(), w.deps());
  assert.equal(stale.info.hash, hash);
  const changed = await stale.revalidated;
  assert.deepEqual(changed?.info, { kind: 'module', hash: newHash, source: 'coordinator' });
  const next = await resolveMutator(cfg(), w.deps());
  assert.deepEqual(next.info, { kind: 'module', hash: newHash, source: 'cache' });
  await next.revalidated;

  w.online = false;
  w.sources = [];
  const off = await resolveMutator(cfg(), w.deps());
  assert.deepEqual(off.info, { kind: 'module', hash: newHash, source: 'cache' });
  assert.deepEqual(off.module, other);
  assert.deepEqual(w.sources, [[newHash, `http://co/v1/mutators/${newHash}.wasm`]], 'a cached module is placed too');
});

test('a coordinator that names no module makes the replica queue-only, without a warning', async () => {
  const w = new World();
  w.served.set('http://co/v1/docs/d/mutator', JSON.stringify({ hash: '' }));
  const r = await resolveMutator(cfg(), w.deps());
  assert.equal(r.info.kind, 'none');
  assert.equal(r.info.source, 'coordinator');
  assert.equal(r.module, undefined);
  assert.equal(r.warning, undefined, 'the coordinator said so: nothing to warn of');

  // That answer is cached: the next open starts queue-only at once and
  // asks again in the background, which reports a module named since.
  const again = await resolveMutator(cfg(), w.deps());
  assert.equal(again.info.kind, 'none');
  assert.equal(again.info.source, 'cache');
  assert.equal(await again.revalidated, undefined, 'unchanged');
  const hash = await w.serveModule('d', module);
  const stale = await resolveMutator(cfg(), w.deps());
  assert.equal(stale.info.kind, 'none');
  const changed = await stale.revalidated;
  assert.deepEqual(changed?.info, { kind: 'module', hash, source: 'coordinator' });
  assert.ok(w.cache.entries.has(`http://co/v1/mutators/${hash}.wasm`), 'the module is cached for the next open');
  const next = await resolveMutator(cfg(), w.deps());
  assert.deepEqual(next.info, { kind: 'module', hash, source: 'cache' });
  await next.revalidated;

  // Offline, the cached "no module" answer is still queue-only, unwarned.
  const w2 = new World();
  w2.served.set('http://co/v1/docs/d/mutator', JSON.stringify({ hash: '' }));
  await resolveMutator(cfg(), w2.deps());
  w2.online = false;
  const off = await resolveMutator(cfg(), w2.deps());
  assert.equal(off.info.kind, 'none');
  assert.equal(off.info.source, 'cache');
  assert.equal(off.warning, undefined);
  assert.equal(await off.revalidated, undefined);
});

test('offline with nothing cached opens queue-only, with a warning', async () => {
  const w = new World();
  w.online = false;
  const r = await resolveMutator(cfg(), w.deps());
  assert.equal(r.info.kind, 'none');
  assert.equal(r.info.source, 'fallback');
  assert.match(r.info.reason!, /Failed to fetch; this document's mutator was never cached here/);
  assert.equal(r.module, undefined);
  assert.equal(r.revalidated, undefined);
  assert.equal(r.warning?.code, 'queue_only');
  assert.match(r.warning!.message, /queued and pushed without running locally .*until the document is reopened with its mutator module/);
  assert.match(r.warning!.message, /never cached.*mutatorUrl/);

  // Without a Cache API, the same, and the warning says why.
  const bare = await resolveMutator(cfg(), { ...w.deps(), caches: null });
  assert.equal(bare.info.source, 'fallback');
  assert.match(bare.warning!.message, /no Cache API/);

  // A module missing on the coordinator caches nothing: the answer is
  // only cached after the module it names.
  const hash = await w.serveModule('d', module);
  w.online = true;
  w.served.delete(`http://co/v1/mutators/${hash}.wasm`);
  const missing = await resolveMutator(cfg(), w.deps());
  assert.equal(missing.info.kind, 'none');
  assert.equal(missing.info.source, 'fallback');
  assert.equal(w.cache.entries.size, 0);

  // The answer cached but its module evicted since, offline.
  w.cache.entries.set('http://co/v1/docs/d/mutator', new TextEncoder().encode(JSON.stringify({ hash })));
  w.online = false;
  const half = await resolveMutator(cfg(), w.deps());
  assert.equal(half.info.source, 'fallback');
  assert.equal(half.warning?.code, 'queue_only');
  assert.match(half.warning!.message, /not cached/);
});

test('no coordinator and no mutatorUrl: queue-only, with a warning', async () => {
  const w = new World();
  const r = await resolveMutator(cfg({ url: '' }), w.deps());
  assert.equal(r.info.kind, 'none');
  assert.equal(r.info.source, 'default');
  assert.equal(r.warning?.code, 'queue_only');
  assert.match(r.warning!.message, /queued without running locally.*no coordinator.*mutatorUrl/);
  assert.deepEqual(w.fetched, []);
});

test('a module that does not match its hash is refused', async () => {
  const w = new World();
  const hash = await w.serveModule('d', module);
  w.served.set(`http://co/v1/mutators/${hash}.wasm`, other);
  await assert.rejects(resolveMutator(cfg(), w.deps()), (e: MutatorError) => e.code === 'mutator_mismatch');
  // A damaged cached copy is dropped and fetched again.
  w.served.set(`http://co/v1/mutators/${hash}.wasm`, module);
  w.cache.entries.set(`http://co/v1/mutators/${hash}.wasm`, other);
  const r = await resolveMutator(cfg(), w.deps());
  assert.deepEqual(r.module, module);
});

test("options: 'none' forces queue-only, a module URL forces that module, anything else is refused", async () => {
  const w = new World();
  await w.serveModule('d', module);
  const none = await resolveMutator(cfg({ mutator: 'none' }), w.deps());
  assert.deepEqual(none.info, { kind: 'none', source: 'option' });
  assert.equal(none.warning, undefined, 'the app asked for it');
  assert.deepEqual(w.fetched, [], "'none' asks nothing");
  const auto = await resolveMutator(cfg({ mutator: 'auto' }), w.deps());
  assert.equal(auto.info.kind, 'module');

  for (const name of ['todo', 'builtin', 'Auto']) {
    await assert.rejects(
      resolveMutator(cfg({ mutator: name }), w.deps()),
      (e: MutatorError) => e.code === 'bad_request' && /neither 'auto' nor 'none'.*mutatorUrl/.test(e.message),
    );
  }

  w.served.set('http://cdn/m.wasm', other);
  const hash = await subtleSha256(other);
  const u = await resolveMutator(cfg({ mutatorUrl: 'http://cdn/m.wasm' }), w.deps());
  assert.deepEqual(u.info, { kind: 'module', hash, source: 'url', url: 'http://cdn/m.wasm' });
  const noCoordinator = await resolveMutator(cfg({ url: '', mutatorUrl: 'http://cdn/m.wasm', mutator: 'none' }), w.deps());
  assert.deepEqual(noCoordinator.info, { kind: 'module', hash, source: 'url', url: 'http://cdn/m.wasm' }, 'mutatorUrl wins');
  assert.equal(noCoordinator.warning, undefined);
  await assert.rejects(resolveMutator(cfg({ mutatorUrl: 'http://cdn/m.wasm', mutatorHash: '00'.repeat(32) }), w.deps()), /refusing/);
  w.online = false;
  // Offline, a first open with a module URL runs the module it cached.
  const cached = await resolveMutator(cfg({ mutatorUrl: 'http://cdn/m.wasm' }), w.deps());
  assert.equal(cached.info.kind, 'module');
  assert.equal(cached.info.source, 'cache');
  await assert.rejects(resolveMutator(cfg({ mutatorUrl: 'http://cdn/other.wasm' }), w.deps()), (e: MutatorError) => e.code === 'mutator_unavailable');
});
