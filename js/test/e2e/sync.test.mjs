// End-to-end tests in Debian's Chromium against the real coordinator: two
// replicas converge, offline work survives a reload and lands once, tabs
// share one owner, and rejected mutations roll back. The suite runs once
// per browser store.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startServerAndBrowser, stopServerAndBrowser, until } from 'sqlsync-test-harness';
import { openPage, startServer } from './testpage.mjs';

let server;
let browser;

before(async () => ({ server, browser } = await startServerAndBrowser(startServer)));
after(() => stopServerAndBrowser(server, browser));

const items = (page) => page.evaluate(() => sq.query('SELECT id, title, done FROM items ORDER BY id'));

for (const storage of ['opfs', 'indexeddb']) {
  describe(`storage ${storage}`, () => {
    it('two contexts write to one document and converge', async () => {
      const doc = `converge-${storage}`;
      const a = await browser.newContext();
      const b = await browser.newContext();
      try {
        const pa = await openPage(a, server, { docId: doc, storage });
        const pb = await openPage(b, server, { docId: doc, storage });
        assert.equal(pa.status.storage, storage);
        assert.ok((await pa.page.evaluate(() => sq.rec.progress)) > 1 << 20, 'the wasm download reported progress');
        await pb.page.evaluate(() => sq.subscribe('all', 'SELECT id FROM items ORDER BY id'));
        await pa.page.evaluate(() => Promise.all([sq.mutate('add', { id: 'a1', title: 'from a' }), sq.mutate('add', { id: 'a2', title: 'from a' })]));
        await pb.page.evaluate(() => sq.mutate('add', { id: 'b1', title: 'from b' }));
        for (const p of [pa.page, pb.page]) await until(p, () => sq.query('SELECT count(*) AS n FROM items').then((r) => r[0].n === 3));
        await pa.page.evaluate(() => sq.waitSynced());
        await pb.page.evaluate(() => sq.waitSynced());
        assert.deepEqual(await items(pa.page), await items(pb.page));
        // The live query saw the other context's writes.
        await until(pb.page, () => sq.rec.live.all?.length === 3);
        // The React bindings render the rows.
        await pa.page.waitForFunction(() => document.querySelectorAll('#items li').length === 3);
        assert.equal(await pa.page.textContent('#status'), 'online');
      } finally {
        await a.close();
        await b.close();
      }
    });

    it('offline writes survive a reload and land once', async () => {
      const doc = `offline-${storage}`;
      const a = await browser.newContext();
      const b = await browser.newContext();
      try {
        const pa = await openPage(a, server, { docId: doc, storage });
        const pb = await openPage(b, server, { docId: doc, storage });
        await pa.page.evaluate(() => sq.mutate('add', { id: 'x', title: 'shared' }));
        await pa.page.evaluate(() => sq.waitSynced());
        await until(pb.page, () => sq.query('SELECT count(*) AS n FROM items').then((r) => r[0].n === 1));

        // Chromium's network emulation holds back the frames of an open
        // WebSocket but does not close it (the replica would still report
        // "online"): the app-level switch is what takes the replica offline.
        await a.setOffline(true);
        await pa.page.evaluate(() => sq.setOnline(false));
        await until(pa.page, () => sq.status().then((s) => s.state === 'offline'));
        await pa.page.evaluate(() => sq.mutate('toggle', { id: 'x' }));
        await pa.page.evaluate(() => sq.mutate('add', { id: 'y', title: 'offline' }));
        assert.equal((await pa.page.evaluate(() => sq.status())).pending, 2);

        // Reload (the page itself needs the network) and reopen offline.
        await a.setOffline(false);
        await pa.page.reload();
        await pa.page.waitForFunction(() => window.sq);
        const reopened = await pa.page.evaluate((o) => sq.open(o), { docId: doc, storage, online: false });
        assert.equal(reopened.status.pending, 2, 'pending mutations survive the reload');
        assert.equal(reopened.status.clientId, pa.status.clientId, 'the client ID survives the reload');
        assert.ok(reopened.status.lsn > 0, 'the snapshot survives the reload');
        assert.deepEqual(
          (await items(pa.page)).map((r) => [r.id, r.done]),
          [
            ['x', 1],
            ['y', 0],
          ],
        );
        // The other replica has not seen them.
        assert.equal((await pb.page.evaluate(() => sq.query("SELECT done FROM items WHERE id = 'x'")))[0].done, 0);

        await pa.page.evaluate(() => sq.setOnline(true));
        await pa.page.evaluate(() => sq.waitSynced());
        await until(pb.page, () => sq.query('SELECT count(*) AS n FROM items').then((r) => r[0].n === 2));
        await pb.page.evaluate(() => sq.waitSynced());
        // Exactly once: toggled once (done = 1, not 0 again), y added once.
        assert.deepEqual(await items(pb.page), [
          { id: 'x', title: 'shared', done: 1 },
          { id: 'y', title: 'offline', done: 0 },
        ]);
        assert.deepEqual(await pa.page.evaluate(() => sq.rec.rejected), []);
      } finally {
        await a.close();
        await b.close();
      }
    });

    it('two tabs share one owner; closing the owner keeps the other working', async () => {
      const doc = `tabs-${storage}`;
      const ctx = await browser.newContext();
      const other = await browser.newContext();
      try {
        const t1 = await openPage(ctx, server, { docId: doc, storage });
        assert.equal(t1.status.role, 'owner');
        // A tab that takes over opens the replica with its own options:
        // this one offline, so that the handover keeps the mutations pending.
        const t2 = await openPage(ctx, server, { docId: doc, storage, online: false });
        assert.equal(t2.status.role, 'follower');
        assert.equal(t2.status.clientId, t1.status.clientId);
        // Offline: what the tabs see of each other cannot come from the network.
        await t1.page.evaluate(() => sq.setOnline(false));
        await t2.page.evaluate(() => sq.subscribe('all', 'SELECT id FROM items ORDER BY id'));
        await t1.page.evaluate(() => sq.mutate('add', { id: 't1', title: 'tab 1' }));
        await until(t2.page, () => sq.rec.live.all?.map((r) => r.id).join() === 't1');
        await t2.page.evaluate(() => sq.mutate('add', { id: 't2', title: 'tab 2' }));
        assert.deepEqual(
          (await items(t1.page)).map((r) => r.id),
          ['t1', 't2'],
        );

        // Close the owner: the other tab takes over the storage.
        await t1.page.close();
        await until(t2.page, () => sq.status().then((s) => s.role === 'owner'), undefined, 30000);
        await t2.page.evaluate(() => sq.mutate('add', { id: 't3', title: 'tab 2 as owner' }));
        const s = await t2.page.evaluate(() => sq.status());
        assert.equal(s.pending, 3, 'no pending mutation was lost in the handover');
        await until(t2.page, () => sq.rec.live.all?.length === 3);

        await t2.page.evaluate(() => sq.setOnline(true));
        await t2.page.evaluate(() => sq.waitSynced());
        const o = await openPage(other, server, { docId: doc, storage });
        await o.page.evaluate(() => sq.waitSynced());
        assert.deepEqual(
          (await items(o.page)).map((r) => r.id),
          ['t1', 't2', 't3'],
        );
      } finally {
        await ctx.close();
        await other.close();
      }
    });

    it('a rejected mutation is reported and rolled back', async () => {
      const doc = `reject-${storage}`;
      const a = await browser.newContext();
      const b = await browser.newContext();
      try {
        const pa = await openPage(a, server, { docId: doc, storage });
        const pb = await openPage(b, server, { docId: doc, storage });
        // The mutator refuses locally: mutate rejects with its message.
        const err = await pa.page.evaluate(() => sq.mutateError('fail', { message: 'not today' }));
        assert.equal(err.code, 'rejected');
        assert.match(err.message, /not today/);

        // Both offline add the same id; the second to reach the coordinator
        // is rejected there, after it succeeded locally.
        await pa.page.evaluate(() => sq.setOnline(false));
        await pb.page.evaluate(() => sq.setOnline(false));
        await pa.page.evaluate(() => sq.mutate('add', { id: 'dup', title: 'A' }));
        await pb.page.evaluate(() => sq.mutate('add', { id: 'dup', title: 'B' }));
        assert.equal((await pb.page.evaluate(() => sq.query("SELECT title FROM items WHERE id = 'dup'")))[0].title, 'B');
        await pa.page.evaluate(() => sq.setOnline(true));
        await pa.page.evaluate(() => sq.waitSynced());
        await pb.page.evaluate(() => sq.setOnline(true));
        const rejected = await until(pb.page, () => sq.rec.rejected.length > 0 && sq.rec.rejected);
        assert.equal(rejected[0].name, 'add');
        assert.match(rejected[0].message, /UNIQUE constraint failed/);
        assert.ok((await pb.page.evaluate(() => sq.rec.errors)).some((m) => /UNIQUE/.test(m)));
        await pb.page.evaluate(() => sq.waitSynced());
        // Rolled back to the truth: A's row.
        assert.deepEqual(await pb.page.evaluate(() => sq.query("SELECT title FROM items WHERE id = 'dup'")), [{ title: 'A' }]);
        assert.equal((await pb.page.evaluate(() => sq.status())).pending, 0);
      } finally {
        await a.close();
        await b.close();
      }
    });
  });
}
