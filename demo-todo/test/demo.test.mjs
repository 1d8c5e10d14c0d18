// The todo demo driven as a person would, in two browser contexts (two
// people) against the real coordinator: both add items, one works offline
// while both edit the same items, and once it reconnects both show the same
// list: the later rename to reach the coordinator wins, a rename restores an
// item the other deleted, and a rename of an item the other purged is
// refused with a message. Screenshots go to test-results/.
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { eventually, newPage, startServerAndBrowser, stopServerAndBrowser } from 'sqlsync-test-harness';
import { screenshot, startDemo } from './app.mjs';

let server;
let browser;

before(async () => ({ server, browser } = await startServerAndBrowser(startDemo)));
after(() => stopServerAndBrowser(server, browser));

// What a person sees and does.

const items = (page) => page.getByRole('list', { name: 'Items' }).getByRole('listitem');
const titles = (page) => items(page).locator('.title').allTextContents();
const deleted = (page) => page.locator('.deleted .title').allTextContents();
const badge = (page) => page.locator('.badge');

async function addItem(page, title) {
  await page.getByLabel('New item').fill(title);
  await page.getByLabel('New item').press('Enter');
  await items(page).filter({ hasText: title }).first().waitFor();
}

async function renameItem(page, from, to) {
  await page.getByRole('button', { name: `Rename “${from}”` }).click();
  const input = page.getByLabel(`New title for “${from}”`);
  await input.fill(to);
  await input.press('Enter');
  await items(page).filter({ hasText: to }).first().waitFor();
}

/** Waits until the badge says state (and, if given, that many pending). */
async function waitBadge(page, state, pending) {
  await eventually(async () => {
    assert.equal(await badge(page).getAttribute('data-state'), state);
    if (pending !== undefined) assert.equal(await badge(page).getAttribute('data-pending'), String(pending));
  });
}

async function waitTitles(page, want) {
  await eventually(async () => assert.deepEqual(await titles(page), want));
}

it('two people edit one list, one of them offline, and end with the same list', async () => {
  const alice = await browser.newContext({ viewport: { width: 1100, height: 820 } });
  const bob = await browser.newContext({ viewport: { width: 375, height: 760 } });
  try {
    const a = await newPage(alice, 'alice');
    const b = await newPage(bob, 'bob');
    // The worker takes the list's mutator as the browser runs it (rewritten
    // for time and memory limits) from the coordinator, not rewriting it
    // itself: HTTP-cached, and V8 keeps its compiled code.
    const builds = [];
    alice.on('response', (r) => /\/v1\/mutators\/[0-9a-f]{64}-p\d+-v\d+\.wasm$/.test(r.url()) && builds.push(r.status()));

    // Alice creates a list and names it.
    await a.goto(server.url + '/');
    await a.getByRole('button', { name: 'New list' }).click();
    await a.waitForURL(/#\/list\/[a-z0-9]+$/);
    await waitBadge(a, 'online');
    assert.deepEqual([...new Set(builds)], [200], "the mutator's browser build was fetched from the coordinator");
    await a.getByRole('button', { name: 'Name this list' }).click();
    await a.getByLabel('List name').fill('Groceries');
    await a.getByLabel('List name').press('Enter');
    await a.getByRole('heading', { name: 'Groceries', level: 1 }).waitFor();
    await addItem(a, 'milk');
    await addItem(a, 'bread');

    // Bob opens the shared link and adds his own.
    const link = await a.getByLabel('Share link').inputValue();
    assert.match(link, /^http:\/\/127\.0\.0\.1:\d+\/#\/list\/[a-z0-9]+$/);
    await b.goto(link);
    await b.getByRole('heading', { name: 'Groceries', level: 1 }).waitFor({ timeout: 30000 });
    await waitTitles(b, ['milk', 'bread']);
    await addItem(b, 'eggs');
    await addItem(b, 'butter');
    // Bob moves butter up with the keyboard; focus stays on it.
    await b.getByRole('checkbox', { name: 'butter' }).focus();
    await b.keyboard.press('Alt+ArrowUp');
    await waitTitles(b, ['milk', 'bread', 'butter', 'eggs']);
    assert.equal(await b.evaluate(() => document.activeElement?.labels?.[0]?.textContent), 'butter');
    await waitTitles(a, ['milk', 'bread', 'butter', 'eggs']);
    // Alice moves milk down and back up with the buttons; focus follows the item.
    await a.getByRole('button', { name: 'Move “milk” down' }).click();
    await waitTitles(a, ['bread', 'milk', 'butter', 'eggs']);
    assert.equal(await a.evaluate(() => document.activeElement?.getAttribute('aria-label')), 'Move “milk” down');
    await a.getByRole('button', { name: 'Move “milk” up' }).click();
    await waitTitles(a, ['milk', 'bread', 'butter', 'eggs']);
    await waitBadge(a, 'online', 0);
    await waitBadge(b, 'online', 0);
    await waitTitles(b, ['milk', 'bread', 'butter', 'eggs']);

    // Alice goes offline with the app's switch.
    await a.getByRole('switch', { name: 'Work offline' }).check();
    await waitBadge(a, 'offline');

    // Both rename milk; Bob's reaches the coordinator first.
    await renameItem(b, 'milk', 'oat milk');
    await renameItem(a, 'milk', 'whole milk');
    // Bob deletes butter and purges it, then deletes bread; offline, Alice
    // renames both, ticks eggs and adds jam.
    await b.getByRole('button', { name: 'Delete “butter”' }).click();
    await b.getByRole('button', { name: 'Delete these for good' }).click();
    await b.getByRole('button', { name: 'Delete “bread”' }).click();
    await waitTitles(b, ['oat milk', 'eggs']);
    await eventually(async () => assert.deepEqual(await deleted(b), ['bread']));
    await waitBadge(b, 'online', 0);
    await renameItem(a, 'bread', 'sourdough bread');
    await renameItem(a, 'butter', 'salted butter');
    // (A click, not check(): the box shows the list's state, which the
    // mutation changes a moment after the click.)
    await a.getByRole('checkbox', { name: 'eggs' }).click();
    await eventually(async () => assert.equal(await a.getByRole('checkbox', { name: 'eggs' }).isChecked(), true));
    await addItem(a, 'jam');

    // Offline really is offline: Alice sees none of Bob's changes, and her
    // five changes wait.
    await waitBadge(a, 'offline', 5);
    assert.match(await badge(a).textContent(), /Offline · 5 pending/);
    assert.deepEqual(await titles(a), ['whole milk', 'sourdough bread', 'salted butter', 'eggs', 'jam']);
    await waitTitles(b, ['oat milk', 'eggs']);
    await screenshot(a, 'alice-offline-desktop');
    await screenshot(b, 'bob-online-narrow');

    // Alice reconnects. Her renames land after Bob's changes: "whole milk"
    // wins, bread comes back, and the rename of the purged butter is refused.
    await a.getByRole('switch', { name: 'Work offline' }).uncheck();
    await waitBadge(a, 'online', 0);
    const toast = a.getByRole('alert').filter({ hasText: 'refused “rename”' });
    await toast.waitFor();
    assert.match(await toast.textContent(), /no such item/);

    const want = ['whole milk', 'sourdough bread', 'eggs', 'jam'];
    await waitTitles(a, want);
    await waitTitles(b, want);
    await waitBadge(b, 'online', 0);
    for (const page of [a, b]) {
      assert.deepEqual(await deleted(page), [], 'the rename restored bread');
      assert.equal(await page.getByRole('checkbox', { name: 'eggs' }).isChecked(), true);
      assert.equal(await page.getByRole('checkbox', { name: 'jam' }).isChecked(), false);
    }
    await screenshot(a, 'alice-synced-desktop');
    await screenshot(b, 'bob-synced-narrow');

    // The start page remembers the list, under its name.
    await b.goto(server.url + '/#/');
    await b.getByRole('link', { name: 'Groceries' }).waitFor();
    await screenshot(b, 'bob-start-narrow');
  } finally {
    await alice.close();
    await bob.close();
  }
});

it('the coordinator serves the app, its assets and the wasm bundle with the right headers', async () => {
  const index = await fetch(server.url + '/');
  assert.equal(index.status, 200);
  assert.equal(index.headers.get('cache-control'), 'no-cache');
  const html = await index.text();
  const asset = /src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1];
  assert.ok(asset, 'index.html loads a script from /assets/');
  const js = await fetch(server.url + asset);
  assert.equal(js.status, 200);
  assert.equal(js.headers.get('cache-control'), 'public, max-age=31536000, immutable');
  // Vite bundled the package's worker and emitted its wasm bundle as
  // content-hashed assets: both are immutable, the wasm pre-compressed.
  const source = await js.text();
  const wasmPath = /\/assets\/sqlsync-[\w-]+\.wasm/.exec(source)?.[0];
  const workerPath = /\/assets\/worker-[\w-]+\.js/.exec(source)?.[0];
  assert.ok(wasmPath, 'the app references the wasm bundle under /assets/');
  assert.ok(workerPath, 'the app references the worker under /assets/');
  const wasm = await fetch(server.url + wasmPath, { headers: { 'Accept-Encoding': 'br' } });
  assert.equal(wasm.status, 200);
  assert.equal(wasm.headers.get('content-type'), 'application/wasm');
  assert.equal(wasm.headers.get('content-encoding'), 'br');
  assert.equal(wasm.headers.get('cache-control'), 'public, max-age=31536000, immutable');
  await wasm.arrayBuffer();
  const worker = await fetch(server.url + workerPath);
  assert.equal(worker.headers.get('content-type'), 'text/javascript; charset=utf-8');
});
