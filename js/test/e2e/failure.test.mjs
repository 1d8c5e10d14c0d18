// End-to-end tests in Chromium of a mutation that fails only itself (issue
// "A mutation can only fail itself"): the coordinator runs the generic test
// mutator shared/wasmhost/testdata/full (built by make test-mutators),
// whose "sql" mutation runs the SQL it is given, and every page fetches
// that module from it and runs it on Chromium's WebAssembly engine. The
// native version over the CLI is internal/cli's TestDeferredFKOverCLI.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startServerAndBrowser, stopServerAndBrowser, until } from 'sqlsync-test-harness';
import { fullMutator, openPage, startServer } from './testpage.mjs';

let server;
let browser;

before(async () => ({ server, browser } = await startServerAndBrowser(() => startServer({ mutator: fullMutator }))));
after(() => stopServerAndBrowser(server, browser));

/** Runs SQL through the module's "sql" mutation in page. */
const sql = (page, text) => page.evaluate((s) => sq.mutate('sql', { sql: s }), text);
const sqlError = (page, text) => page.evaluate((s) => sq.mutateError('sql', { sql: s }), text);
const counts = (page) =>
  page.evaluate(() => sq.query('SELECT (SELECT count(*) FROM p) AS parents, (SELECT count(*) FROM c) AS children').then((r) => r[0]));
const integrity = (page) => page.evaluate(() => sq.query('PRAGMA integrity_check').then((r) => r[0].integrity_check));

for (const storage of ['opfs', 'indexeddb']) {
  describe(`storage ${storage}`, () => {
    it('an orphan child under a deferred foreign key fails alone; the replica reopens and everyone keeps writing', async () => {
      const doc = `deferred-fk-${storage}`;
      const a = await browser.newContext();
      const b = await browser.newContext();
      try {
        const pa = await openPage(a, server, { docId: doc, storage });
        assert.equal(pa.status.mutator?.kind, 'module', 'the page runs the coordinator\'s module');
        await sql(pa.page, 'CREATE TABLE p(id PRIMARY KEY)');
        await sql(pa.page, 'CREATE TABLE c(id INTEGER PRIMARY KEY, pid REFERENCES p(id) DEFERRABLE INITIALLY DEFERRED)');
        await pa.page.evaluate(() => sq.waitSynced());

        const pb = await openPage(b, server, { docId: doc, storage });
        await pb.page.evaluate(() => sq.waitSynced());
        assert.deepEqual(await counts(pb.page), { parents: 0, children: 0 });

        // The check runs at COMMIT: the mutation fails there, locally, with
        // SQLite's message, and leaves nothing behind.
        const err = await sqlError(pb.page, "INSERT INTO c(pid) VALUES ('ghost')");
        assert.ok(err, 'the orphan child was accepted');
        assert.equal(err.code, 'rejected', err.message);
        assert.match(err.message, /FOREIGN KEY constraint failed/);
        assert.equal((await pb.page.evaluate(() => sq.status())).pending, 0, 'the failed mutation is not pending');
        assert.deepEqual(await counts(pb.page), { parents: 0, children: 0 });
        assert.equal(await integrity(pb.page), 'ok');

        // B's replica reopens in the same page, and works.
        await pb.page.evaluate(() => sq.close());
        const reopened = await pb.page.evaluate((o) => sq.open(o), { docId: doc, storage });
        assert.equal(reopened.status.pending, 0);
        assert.equal(reopened.status.clientId, pb.status.clientId);
        assert.deepEqual(await counts(pb.page), { parents: 0, children: 0 });
        await sql(pb.page, "INSERT INTO p VALUES ('x')");
        await sql(pb.page, "INSERT INTO c(pid) VALUES ('x')");
        await pb.page.evaluate(() => sq.waitSynced());

        // Others keep writing, and both converge.
        await sql(pa.page, "INSERT INTO p VALUES ('y')");
        await pa.page.evaluate(() => sq.waitSynced());
        await until(pb.page, () =>
          sq.query('SELECT count(*) AS n FROM p').then((r) => r[0].n === 2),
        );
        await until(pa.page, () =>
          sq.query('SELECT count(*) AS n FROM c').then((r) => r[0].n === 1),
        );
        for (const p of [pa.page, pb.page]) await p.evaluate(() => sq.waitSynced());
        assert.deepEqual(await counts(pa.page), { parents: 2, children: 1 });
        assert.deepEqual(await counts(pb.page), { parents: 2, children: 1 });
        assert.deepEqual(await pa.page.evaluate(() => sq.query("SELECT count(*) AS n FROM c WHERE pid = 'ghost'")), [{ n: 0 }]);

        // And after a reload, B's stored replica has no trace of the ghost.
        await pb.page.reload();
        await pb.page.waitForFunction(() => window.sq);
        const reloaded = await pb.page.evaluate((o) => sq.open(o), { docId: doc, storage });
        assert.equal(reloaded.status.pending, 0);
        assert.deepEqual(await counts(pb.page), { parents: 2, children: 1 });
        assert.equal(await integrity(pb.page), 'ok');
        for (const p of [pa.page, pb.page]) assert.deepEqual(await p.evaluate(() => sq.rec.rejected), []);
      } finally {
        await a.close();
        await b.close();
      }
    });
  });
}
