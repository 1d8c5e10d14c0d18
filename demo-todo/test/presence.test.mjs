// The demo shows who is viewing a list and who edits which item: two
// people (two browser contexts) each see the other's avatar, under the
// name each browser made up and kept; the item one renames is marked on
// the other's screen while its title field has focus, and the mark goes
// when the editing ends or the person leaves. Screenshots go to
// test-results/.
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { eventually, newPage, startServerAndBrowser, stopServerAndBrowser } from 'sqlsync-test-harness';
import { screenshot, startDemo } from './app.mjs';

let server;
let browser;

before(async () => ({ server, browser } = await startServerAndBrowser(startDemo)));
after(() => stopServerAndBrowser(server, browser));

const items = (page) => page.getByRole('list', { name: 'Items' }).getByRole('listitem');
/** The names on a page's avatars, this tab's first. */
const viewers = (page) => page.locator('.viewers .viewer').evaluateAll((els) => els.map((el) => el.getAttribute('data-name')));
const editingMarks = (page) => page.locator('.editing-by').allTextContents();

it('two people see who is viewing the list and which item the other edits', async () => {
  const alice = await browser.newContext({ viewport: { width: 1100, height: 820 } });
  const bob = await browser.newContext({ viewport: { width: 375, height: 760 } });
  try {
    const a = await newPage(alice, 'alice');
    const b = await newPage(bob, 'bob');
    await a.goto(server.url + '/');
    await a.getByRole('button', { name: 'New list' }).click();
    await a.waitForURL(/#\/list\/[a-z0-9]+$/);
    await a.getByLabel('New item').fill('milk');
    await a.getByLabel('New item').press('Enter');
    await items(a).filter({ hasText: 'milk' }).first().waitFor();
    const link = await a.getByLabel('Share link').inputValue();
    await b.goto(link);
    await items(b).filter({ hasText: 'milk' }).first().waitFor({ timeout: 30000 });

    // Each browser made up a name and keeps it; each sees the other's.
    const aliceName = await a.evaluate(() => JSON.parse(localStorage.getItem('sqlsync-demo-todo:viewer')).name);
    const bobName = await b.evaluate(() => JSON.parse(localStorage.getItem('sqlsync-demo-todo:viewer')).name);
    await eventually(async () => assert.deepEqual(await viewers(a), [aliceName, bobName]));
    await eventually(async () => assert.deepEqual(await viewers(b), [bobName, aliceName]));
    assert.match(await a.locator('.viewers').getAttribute('aria-label'), /you and 1 other/);

    // Alice opens milk's title editor: Bob sees that she edits it.
    await a.getByRole('button', { name: 'Rename “milk”' }).click();
    await eventually(async () => assert.deepEqual(await editingMarks(b), [`✎ ${aliceName} is editing`]));
    assert.equal(await items(b).filter({ hasText: aliceName }).count(), 1, 'the mark is on the milk row');
    assert.deepEqual(await editingMarks(a), [], 'nobody else edits');
    await screenshot(b, 'bob-sees-alice-editing');
    // Escape ends the editing: the mark goes.
    await a.getByLabel('New title for “milk”').press('Escape');
    await eventually(async () => assert.deepEqual(await editingMarks(b), []));

    // The name survives a reload.
    await a.reload();
    await items(a).filter({ hasText: 'milk' }).first().waitFor({ timeout: 30000 });
    await eventually(async () => assert.deepEqual(await viewers(b), [bobName, aliceName]));

    // Alice leaves: Bob is alone.
    await alice.close();
    await eventually(async () => assert.deepEqual(await viewers(b), [bobName]));
    assert.match(await b.locator('.viewers').getAttribute('aria-label'), /Only you/);
  } finally {
    await alice.close().catch(() => {});
    await bob.close();
  }
});
