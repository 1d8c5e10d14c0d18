// End-to-end tests of WebAssembly mutators in the browser: the coordinator
// runs `sqlsync serve --mutator bin/mutators/todo.wasm` (demo-todo/mutator/mutator.ts,
// built by make), and each browser replica fetches that module from it,
// checks its hash, caches it and runs it on Chromium's own WebAssembly
// engine (wasm/jsmutator). The bundle has no mutator of its own: a replica
// that cannot have the module opens queue-only.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { startServerAndBrowser, stopServerAndBrowser, todoMutator, until } from 'sqlsync-test-harness';
import { openPage, startServer } from './testpage.mjs';

let server;
let browser;
let hash;

before(async () => {
  hash = createHash('sha256').update(readFileSync(todoMutator)).digest('hex');
  ({ server, browser } = await startServerAndBrowser(() => startServer({ mutator: todoMutator })));
});
after(() => stopServerAndBrowser(server, browser));

const items = (page) => page.evaluate(() => sq.query('SELECT id, title, done, deleted, position FROM items ORDER BY position, id'));

// Args the todo module's JSON decoding refuses, with a message naming the
// field: a local rejection shows that the module ran in the page. A
// queue-only replica takes them, and the coordinator refuses them. (The
// AssemblyScript module words it as the Go one does, less "Go struct".)
const badArgs = { id: 5, title: 'x' };
const moduleBadArgs = /cannot unmarshal number into (Go struct )?field "?(args\.)?id"? of type string/;

/** Blocks the coordinator's mutator endpoints for a context, as if it were unreachable. */
const blockMutatorEndpoints = (context) =>
  Promise.all([context.route('**/v1/docs/**', (r) => r.abort()), context.route('**/v1/mutators/**', (r) => r.abort())]);

describe('WebAssembly mutator in the browser', () => {
  it('two contexts run the coordinator\'s module and converge with it', async () => {
    const doc = 'wasm-converge';
    const a = await browser.newContext();
    const b = await browser.newContext();
    try {
      const pa = await openPage(a, server, { docId: doc });
      const pb = await openPage(b, server, { docId: doc });
      for (const p of [pa, pb]) assert.deepEqual(p.status.mutator, { kind: 'module', hash, source: 'coordinator' });

      // Added in turn, so that positions (each add goes last) are known.
      await pa.page.evaluate(async () => {
        for (const [id, title] of [['a1', 'milk'], ['a2', 'eggs'], ['a3', 'jam']]) await sq.mutate('add', { id, title });
        await sq.waitSynced();
      });
      await until(pb.page, () => sq.query('SELECT count(*) AS n FROM items').then((r) => r[0].n === 3));
      await pb.page.evaluate(() => sq.mutate('add', { id: 'b1', title: 'bread' }));
      for (const p of [pb.page, pa.page]) await p.evaluate(() => sq.waitSynced());
      await until(pa.page, () => sq.query('SELECT count(*) AS n FROM items').then((r) => r[0].n === 4));

      // Each side edits the other's items, concurrently, while offline.
      await pa.page.evaluate(() => sq.setOnline(false));
      await pb.page.evaluate(() => sq.setOnline(false));
      await pa.page.evaluate(async () => {
        await sq.mutate('rename', { id: 'b1', title: 'rye bread' });
        await sq.mutate('move', { id: 'b1', position: 0.5 }); // before a1
        await sq.mutate('delete', { id: 'a3' });
        await sq.mutate('toggle', { id: 'a1' });
      });
      await pb.page.evaluate(async () => {
        await sq.mutate('delete', { id: 'a2' });
        await sq.mutate('rename', { id: 'a3', title: 'apricot jam' }); // renaming what a deleted brings it back
        await sq.mutate('move', { id: 'a1', position: 10 });
      });
      await pa.page.evaluate(() => sq.setOnline(true));
      await pa.page.evaluate(() => sq.waitSynced());
      await pb.page.evaluate(() => sq.setOnline(true));
      await pb.page.evaluate(() => sq.waitSynced());
      await pa.page.evaluate(() => sq.waitSynced());

      const want = [
        { id: 'b1', title: 'rye bread', done: 0, deleted: 0, position: 0.5 },
        { id: 'a2', title: 'eggs', done: 0, deleted: 1, position: 2 },
        { id: 'a3', title: 'apricot jam', done: 0, deleted: 0, position: 3 },
        { id: 'a1', title: 'milk', done: 1, deleted: 0, position: 10 },
      ];
      assert.deepEqual(await items(pa.page), want);
      assert.deepEqual(await items(pb.page), want);
      for (const p of [pa.page, pb.page]) {
        assert.deepEqual(await p.evaluate(() => sq.rec.rejected), []);
        assert.equal((await p.evaluate(() => sq.query('PRAGMA integrity_check')))[0].integrity_check, 'ok');
      }
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('a mutation the module rejects locally surfaces its message', async () => {
    const a = await browser.newContext();
    try {
      const pa = await openPage(a, server, { docId: 'wasm-reject' });
      await pa.page.evaluate(() => sq.mutate('add', { id: 'x', title: 'one' }));
      const cases = [
        ['fail', { message: 'not today' }, /not today/],
        ['rename', { id: 'missing', title: 'y' }, /no such item: "missing"/],
        ['move', { id: 'x' }, /move: no position/],
        ['add', { id: 'x', title: 'again' }, /UNIQUE constraint failed: items\.id/],
        ['bulk', { prefix: 'p', n: 20000 }, /bulk: n 20000 outside 0\.\.10000/],
        ['nope', {}, /unknown mutation "nope"/],
        ['add', badArgs, moduleBadArgs],
      ];
      for (const [name, args, want] of cases) {
        const err = await pa.page.evaluate(([n, a]) => sq.mutateError(n, a), [name, args]);
        assert.ok(err, `${name} was accepted`);
        assert.equal(err.code, 'rejected', `${name}: ${err.message}`);
        assert.match(err.message, want);
      }
      // Nothing of them stayed, and nothing of them went to the coordinator.
      assert.deepEqual((await items(pa.page)).map((r) => r.id), ['x']);
      assert.equal((await pa.page.evaluate(() => sq.waitSynced())).pending, 0);
      assert.deepEqual(await pa.page.evaluate(() => sq.rec.rejected), []);
    } finally {
      await a.close();
    }
  });

  it('an offline reload runs the cached module', async () => {
    const doc = 'wasm-offline';
    const a = await browser.newContext();
    try {
      const pa = await openPage(a, server, { docId: doc });
      await pa.page.evaluate(() => sq.mutate('add', { id: 'k', title: 'kept' }));
      await pa.page.evaluate(() => sq.waitSynced());

      // The coordinator becomes unreachable for the mutator's endpoints;
      // the page reloads and the replica reopens offline.
      await blockMutatorEndpoints(a);
      await pa.page.reload();
      await pa.page.waitForFunction(() => window.sq);
      const re = await pa.page.evaluate((o) => sq.open(o), { docId: doc, online: false });
      assert.deepEqual(re.status.mutator, { kind: 'module', hash, source: 'cache' });
      assert.equal(re.status.queueOnly, false);
      const err = await pa.page.evaluate((a) => sq.mutateError('add', a), badArgs);
      assert.match(err.message, moduleBadArgs);
      await pa.page.evaluate(() => sq.mutate('rename', { id: 'k', title: 'kept offline' }));
      assert.deepEqual((await items(pa.page)).map((r) => r.title), ['kept offline']);
    } finally {
      await a.close();
    }
  });

  it('a first open with the module out of reach and nothing cached is queue-only until reopened with it', async () => {
    const doc = 'wasm-queue-only';
    const fresh = await browser.newContext();
    try {
      // A context that never saw the document has nothing cached.
      await blockMutatorEndpoints(fresh);
      const pf = await openPage(fresh, server, { docId: doc, online: false });
      assert.equal(pf.status.queueOnly, true);
      assert.equal(pf.status.mutator.kind, 'none');
      assert.equal(pf.status.mutator.source, 'fallback');
      assert.match(pf.status.mutator.reason, /never cached/);
      const warned = await until(pf.page, () => sq.rec.errors[sq.rec.codes.indexOf('queue_only')]);
      assert.match(warned, /queued and pushed without running locally .*until the document is reopened with its mutator module/);
      assert.match(warned, /mutatorUrl/);

      // Mutations are recorded, not run: the database stays as it was (here
      // empty: the schema comes with the module or the coordinator's first
      // diff), and args the module refuses are taken too (only the
      // coordinator judges).
      await pf.page.evaluate(() => sq.mutate('add', { id: 'q1', title: 'queued' }));
      assert.equal(await pf.page.evaluate((a) => sq.mutateError('add', a), badArgs), null);
      assert.deepEqual(await pf.page.evaluate(() => sq.query('SELECT name FROM sqlite_schema')), []);
      assert.equal((await pf.page.evaluate(() => sq.status())).pending, 2);

      // Online, the module still out of reach: the coordinator runs them;
      // its diff brings q1, and it refuses the other.
      await pf.page.evaluate(() => sq.setOnline(true));
      await pf.page.evaluate(() => sq.waitSynced());
      assert.deepEqual((await items(pf.page)).map((r) => r.title), ['queued']);
      const rejected = await until(pf.page, () => sq.rec.rejected[0]);
      assert.match(rejected.message, moduleBadArgs);
      const s = await pf.page.evaluate(() => sq.status());
      assert.equal(s.queueOnly, true);
      assert.equal(s.coordinatorMutator, hash);
      assert.equal(s.mutatorMismatch, false, 'a queue-only replica pushes whatever module the coordinator runs');
      assert.equal(await pf.page.evaluate(() => sq.rec.codes.includes('mutator_changed')), false, 'no reopen can run the module yet');

      // The module in reach: the next status caches it, and the app is told to reopen.
      await fresh.unrouteAll();
      await pf.page.evaluate(() => sq.mutate('add', { id: 'q2', title: 'second' }));
      const changed = await until(pf.page, () => sq.rec.errors[sq.rec.codes.indexOf('mutator_changed')]);
      assert.match(changed, new RegExp(`module ${hash.slice(0, 12)}.*reopen the document to run it locally`));
      await pf.page.evaluate(() => sq.waitSynced());

      // Reopened with the module out of reach again: the cached module runs.
      await blockMutatorEndpoints(fresh);
      await pf.page.evaluate(() => sq.close());
      const re = await pf.page.evaluate((o) => sq.open(o), { docId: doc, online: false });
      assert.deepEqual(re.status.mutator, { kind: 'module', hash, source: 'cache' });
      assert.equal(re.status.queueOnly, false);
      assert.match((await pf.page.evaluate((a) => sq.mutateError('add', a), badArgs)).message, moduleBadArgs);
      await pf.page.evaluate(() => sq.mutate('rename', { id: 'q2', title: 'renamed here' }));
      assert.deepEqual((await items(pf.page)).map((r) => r.title), ['queued', 'renamed here']);
    } finally {
      await fresh.close();
    }
  });

  it('with mutatorUrl even a first open with the coordinator out of reach runs the module', async () => {
    const doc = 'wasm-shipped';
    const a = await browser.newContext();
    try {
      // The app ships the coordinator's module beside itself.
      await blockMutatorEndpoints(a);
      const url = `${server.url}/app/todo.wasm`;
      await a.route(url, (r) => r.fulfill({ status: 200, contentType: 'application/wasm', body: readFileSync(todoMutator) }));
      const pa = await openPage(a, server, { docId: doc, online: false, mutatorUrl: url, mutatorHash: hash });
      assert.deepEqual(pa.status.mutator, { kind: 'module', hash, source: 'url', url });
      assert.equal(pa.status.queueOnly, false);
      await pa.page.evaluate(() => sq.mutate('add', { id: 's1', title: 'shipped' }));
      assert.deepEqual((await items(pa.page)).map((r) => r.title), ['shipped'], 'it ran here at once');
      assert.match((await pa.page.evaluate((a) => sq.mutateError('add', a), badArgs)).message, moduleBadArgs);
      await pa.page.evaluate(() => sq.setOnline(true));
      const s = await pa.page.evaluate(() => sq.waitSynced());
      assert.equal(s.mutatorMismatch, false, "the coordinator's own module");
      assert.deepEqual(await pa.page.evaluate(() => sq.rec.codes), []);
      assert.deepEqual(await pa.page.evaluate(() => sq.rec.rejected), []);
    } finally {
      await a.close();
    }
  });

  it('over IndexedDB, the module runs on pages read back after a reload', async () => {
    // The module's SQL runs inside a call from JavaScript into Go, where an
    // IndexedDB read cannot be awaited: the worker preloads the pages.
    const doc = 'wasm-idb';
    const a = await browser.newContext();
    try {
      const pa = await openPage(a, server, { docId: doc, storage: 'indexeddb' });
      await pa.page.evaluate(async () => {
        await sq.mutate('bulk', { prefix: 'i', n: 300 });
        await sq.waitSynced();
      });
      await pa.page.reload();
      await pa.page.waitForFunction(() => window.sq);
      const re = await pa.page.evaluate((o) => sq.open(o), { docId: doc, storage: 'indexeddb', online: false });
      assert.equal(re.status.mutator.kind, 'module');
      await pa.page.evaluate(async () => {
        await sq.mutate('rename', { id: 'i150', title: 'renamed' });
        await sq.mutate('delete', { id: 'i7' });
      });
      const rows = await pa.page.evaluate(() => sq.query("SELECT count(*) AS n, sum(deleted) AS d, max(title = 'renamed') AS r FROM items"));
      assert.deepEqual(rows, [{ n: 300, d: 1, r: 1 }]);
      assert.equal((await pa.page.evaluate(() => sq.query('PRAGMA integrity_check')))[0].integrity_check, 'ok');
    } finally {
      await a.close();
    }
  });

  it('a replica running another module than the coordinator pushes nothing until reopened with it', async () => {
    const doc = 'wasm-mismatch';
    // The todo module with a custom section appended: the same code, which
    // the engine runs as is, under another hash.
    const custom = Buffer.from([0x00, 0x04, 0x01, 0x78, 0x76, 0x32]); // section 0, name "x", payload "v2"
    const variant = Buffer.concat([readFileSync(todoMutator), custom]);
    const variantHash = createHash('sha256').update(variant).digest('hex');
    const a = await browser.newContext();
    const b = await browser.newContext();
    try {
      const url = `${server.url}/variant/todo.wasm`;
      await a.route(url, (r) => r.fulfill({ status: 200, contentType: 'application/wasm', body: variant }));
      const pa = await openPage(a, server, { docId: doc, mutatorUrl: url });
      assert.deepEqual(pa.status.mutator, { kind: 'module', hash: variantHash, source: 'url', url });
      const s = await until(pa.page, () => sq.status().then((s) => s.mutatorMismatch && s));
      assert.equal(s.coordinatorMutator, hash);
      assert.match(s.lastError, new RegExp(`coordinator runs mutator ${hash.slice(0, 12)}, this replica runs ${variantHash.slice(0, 12)}`));
      const warned = await until(pa.page, () => sq.rec.errors.find((m) => /coordinator runs mutator/.test(m)));
      assert.match(warned, /reopen/);

      // A's mutation runs locally and waits; A still takes B's.
      await pa.page.evaluate(() => sq.mutate('add', { id: 'a1', title: 'from a' }));
      const waited = await pa.page.evaluate(() => sq.waitSyncedError(20000));
      assert.equal(waited?.code, 'mutator_mismatch');
      const pb = await openPage(b, server, { docId: doc });
      await pb.page.evaluate(() => sq.mutate('add', { id: 'b1', title: 'from b' }));
      await pb.page.evaluate(() => sq.waitSynced());
      await until(pa.page, () => sq.query("SELECT count(*) AS n FROM items WHERE id = 'b1'").then((r) => r[0].n === 1));
      assert.equal((await pa.page.evaluate(() => sq.status())).pending, 1);
      assert.deepEqual((await items(pb.page)).map((r) => r.id), ['b1']);

      // Reopened with the coordinator's module, A pushes what waited.
      await pa.page.evaluate(() => sq.close());
      const re = await pa.page.evaluate((o) => sq.open(o), { docId: doc });
      assert.deepEqual(re.status.mutator, { kind: 'module', hash, source: 'coordinator' });
      await pa.page.evaluate(() => sq.waitSynced());
      assert.equal((await pa.page.evaluate(() => sq.status())).mutatorMismatch, false);
      await until(pb.page, () => sq.query('SELECT count(*) AS n FROM items').then((r) => r[0].n === 2));
      await pb.page.evaluate(() => sq.waitSynced());
      assert.deepEqual(await items(pa.page), await items(pb.page));
      for (const p of [pa.page, pb.page]) assert.deepEqual(await p.evaluate(() => sq.rec.rejected), []);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it("openDocument can force queue-only or a module URL, and refuses a built-in's name", async () => {
    const a = await browser.newContext();
    try {
      const pa = await openPage(a, server, { docId: 'wasm-forced', mutator: 'none', storage: 'memory' });
      assert.deepEqual(pa.status.mutator, { kind: 'none', source: 'option' });
      assert.equal(pa.status.queueOnly, true);
      await pa.page.evaluate(() => sq.mutate('add', { id: 'n1', title: 'run by the coordinator' }));
      await pa.page.evaluate(() => sq.waitSynced());
      assert.deepEqual((await items(pa.page)).map((r) => r.title), ['run by the coordinator']);
      assert.deepEqual(await pa.page.evaluate(() => sq.rec.codes), [], 'the app asked for it: no warning');
      await pa.page.evaluate(() => sq.close());

      const named = await pa.page.evaluate(
        (o) => sq.open(o).then(
          () => null,
          (e) => ({ code: e.code, message: e.message }),
        ),
        { docId: 'wasm-forced-1', storage: 'memory', mutator: 'todo' },
      );
      assert.equal(named?.code, 'bad_request');
      assert.match(named.message, /"todo" is neither 'auto' nor 'none'/);

      const url = `${server.url}/v1/mutators/${hash}.wasm`;
      const forced = await pa.page.evaluate((o) => sq.open(o), { docId: 'wasm-forced-2', storage: 'memory', mutatorUrl: url, mutatorHash: hash });
      assert.deepEqual(forced.status.mutator, { kind: 'module', hash, source: 'url', url });
      assert.match((await pa.page.evaluate((a) => sq.mutateError('add', a), badArgs)).message, moduleBadArgs);
      await pa.page.evaluate(() => sq.close());

      const wrong = await pa.page.evaluate(
        (o) => sq.open(o).then(
          () => null,
          (e) => ({ code: e.code, message: e.message }),
        ),
        { docId: 'wasm-forced-3', storage: 'memory', mutatorUrl: url, mutatorHash: '0'.repeat(64) },
      );
      assert.equal(wrong?.code, 'mutator_mismatch');

      // Not a mutator at all: refused with the reason.
      const bad = await pa.page.evaluate(
        (o) => sq.open(o).then(
          () => null,
          (e) => ({ code: e.code, message: e.message }),
        ),
        { docId: 'wasm-forced-4', storage: 'memory', mutatorUrl: `${server.url}/dist/index.js` },
      );
      assert.equal(bad?.code, 'mutator');
      assert.match(bad.message, /not a sqlsync mutator/);
    } finally {
      await a.close();
    }
  });
});
