// The coordinator's inspector (/inspector) in Chromium: two people write to
// one list in the demo while a third page watches the inspector, which
// shows the list open with both clients and their lag, their presences, the commits of their
// mutations, and runs a query in its SQL console (and refuses a write).
// Against a coordinator with a token key, the inspector's API refuses a
// request without a token, and the page gets in with an admin token.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { eventually, launch, newPage, repoDir, startCoordinator } from 'sqlsync-test-harness';
import { screenshot, startDemo } from './app.mjs';

const secret = 'inspector-e2e-secret-0123456789abcdef';
const bin = process.env.SQLSYNC_BIN ?? join(repoDir, 'bin', 'sqlsync');

let demo;
let keyed;
let browser;

before(async () => {
  demo = await startDemo();
  keyed = await startCoordinator({ args: ['--jwt-secret', secret] });
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await demo?.stop();
  await keyed?.stop();
});

const items = (page) => page.getByRole('list', { name: 'Items' }).getByRole('listitem');

async function addItem(page, title) {
  await page.getByLabel('New item').fill(title);
  await page.getByLabel('New item').press('Enter');
  await items(page).filter({ hasText: title }).first().waitFor();
}

/** The cells of a table's body, row by row. */
async function cells(table) {
  return table.locator('tbody tr').evaluateAll((rows) => rows.map((r) => [...r.cells].map((c) => c.textContent)));
}

it('the inspector shows two people writing to one list, and queries it', async () => {
  const alice = await browser.newContext();
  const bob = await browser.newContext();
  const admin = await browser.newContext({ viewport: { width: 1200, height: 1000 } });
  try {
    const a = await newPage(alice, 'alice');
    const b = await newPage(bob, 'bob');
    await a.goto(demo.url + '/');
    await a.getByRole('button', { name: 'New list' }).click();
    await a.waitForURL(/#\/list\/[a-z0-9]+$/);
    const listId = /#\/list\/([a-z0-9]+)$/.exec(a.url())[1];
    await addItem(a, 'milk');
    await b.goto(a.url());
    await items(b).filter({ hasText: 'milk' }).waitFor({ timeout: 30000 });
    await addItem(b, 'eggs');
    await items(a).filter({ hasText: 'eggs' }).waitFor();

    const page = await newPage(admin, 'inspector');
    await page.goto(demo.url + '/inspector');
    await page.getByRole('heading', { name: 'sqlsync inspector', level: 1 }).waitFor();
    assert.match(await page.locator('#mode').textContent(), /Open development mode/);
    const docs = page.getByRole('table', { name: 'Open documents' });
    await docs.getByRole('link', { name: listId }).click();
    await page.getByRole('heading', { name: `Document ${listId}`, level: 2 }).waitFor();

    // Both people are connected, neither behind, nothing pending.
    const clients = page.getByRole('table', { name: 'Clients' });
    await eventually(async () => {
      const rows = await cells(clients);
      assert.equal(rows.length, 2, `two clients, got ${JSON.stringify(rows)}`);
      for (const [, remote, role, , lag, pending] of rows) {
        assert.match(remote, /^127\.0\.0\.1:\d+$/);
        assert.equal(role, 'write');
        assert.equal(lag, '0');
        assert.equal(pending, '0');
      }
    });
    const headers = await clients.getByRole('columnheader').allTextContents();
    assert.deepEqual(headers.slice(0, 6), ['Client', 'Remote', 'Role', 'Sent LSN', 'Lag', 'Pending']);

    // Who is present: each person's viewer (the name the demo made up for
    // their browser), as the other sees it.
    const names = await Promise.all(
      [a, b].map((p) => p.evaluate(() => JSON.parse(localStorage.getItem('sqlsync-demo-todo:viewer')).name)),
    );
    const presence = page.getByRole('table', { name: 'Presence' });
    await eventually(async () => {
      const rows = await cells(presence);
      assert.equal(rows.length, 2, `two presences, got ${JSON.stringify(rows)}`);
      const shown = rows.map(([, , role, state]) => (assert.equal(role, 'write'), JSON.parse(state).name));
      assert.deepEqual(shown.sort(), [...names].sort());
    });

    // The page polls: a new item shows up as a commit without a reload.
    const commits = page.getByRole('table', { name: 'Recent commits' });
    const before = (await cells(commits)).length;
    await addItem(b, 'bread');
    await eventually(async () => {
      const rows = await cells(commits);
      assert.ok(rows.length > before, 'a new commit is listed');
      assert.match(rows[0][1], /^add \(/, `the newest commit is an add: ${rows[0][1]}`);
    });
    const lsn = Number((await cells(commits))[0][0]);
    await eventually(async () => {
      for (const [, , , sent, lag] of await cells(clients)) {
        assert.equal(Number(sent), lsn);
        assert.equal(lag, '0');
      }
    });
    const mutator = await page.locator('#doc-facts').textContent();
    assert.match(mutator, /WebAssembly module, ABI version 1/);

    // The SQL console.
    await page.getByLabel('SQL (one read-only statement)').fill('SELECT title FROM items ORDER BY title');
    await page.getByRole('button', { name: 'Run query' }).click();
    const result = page.getByRole('table', { name: 'Query result' });
    await result.waitFor();
    assert.deepEqual(await cells(result), [['bread'], ['eggs'], ['milk']]);
    assert.match(await page.locator('#console-note').textContent(), /^3 rows at LSN \d+/);
    await screenshot(page, 'inspector');

    await page.getByLabel('SQL (one read-only statement)').fill('DELETE FROM items');
    await page.getByRole('button', { name: 'Run query' }).click();
    const refusal = page.getByRole('alert').filter({ hasText: 'read-only' });
    await refusal.waitFor();
    assert.match(await refusal.textContent(), /delete from items/);
    assert.equal(await result.isVisible(), false);
    await page.getByLabel('SQL (one read-only statement)').fill('SELEC title FROM items');
    await page.getByRole('button', { name: 'Run query' }).click();
    await page.getByRole('alert').filter({ hasText: 'syntax error' }).waitFor();
    // Nothing was deleted.
    await eventually(async () => assert.equal(await items(a).count(), 3));
  } finally {
    await alice.close();
    await bob.close();
    await admin.close();
  }
});

it('with a token key the inspector refuses requests without an admin token', async () => {
  const none = await fetch(keyed.url + '/v1/inspect/docs');
  assert.equal(none.status, 401);
  assert.match((await none.json()).error, /no token: the inspector needs a token with role admin/);
  const mint = (role) => execFileSync(bin, ['token', '--jwt-secret', secret, '--doc', '*', '--role', role]).toString().trim();
  const writer = await fetch(keyed.url + '/v1/inspect/docs', { headers: { Authorization: 'Bearer ' + mint('write') } });
  assert.equal(writer.status, 403);
  assert.match((await writer.json()).error, /role admin/);

  const ctx = await browser.newContext();
  try {
    const page = await newPage(ctx, 'inspector');
    await page.goto(keyed.url + '/inspector');
    await page.getByRole('alert').filter({ hasText: 'no token' }).waitFor();
    await page.getByLabel('Admin token').fill(mint('admin'));
    await page.getByRole('button', { name: 'Use token' }).click();
    await eventually(async () => assert.match(await page.getByRole('status').first().textContent(), /0 documents open/));
    assert.equal(await page.locator('#error').textContent(), '');
    assert.match(await page.locator('#mode').textContent(), /needs a token with role admin/);
  } finally {
    await ctx.close();
  }
});
