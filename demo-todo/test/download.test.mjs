// A large list's first sync in the demo: the coordinator holds a list of
// 16 MiB (written into its data directory before it starts, by
// bench/cmd/sqlsync-fill). Alice opens it in a fresh browser: the
// coordinator streams it, and the page shows "Downloading the list…" with a
// progress bar that counts up, then the list, where she adds "milk". Bob,
// in another fresh browser, opens her link: the same, and he sees "milk".
// Carol closes her tab a third of the way through the download and opens
// the list again: the download goes on from where it stood.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { newPage, repoDir, startServerAndBrowser, stopServerAndBrowser } from 'sqlsync-test-harness';
import { screenshot, startDemo } from './app.mjs';

const fill = process.env.SQLSYNC_FILL_BIN ?? join(repoDir, 'bin', 'sqlsync-fill');
const listId = 'biglist';
const mib = 16;

let server;
let browser;

before(
  async () =>
    ({ server, browser } = await startServerAndBrowser(() =>
      startDemo((data) => execFileSync(fill, ['-data', data, '-doc', listId, '-mib', String(mib)])),
    )),
);
after(() => stopServerAndBrowser(server, browser));

const items = (page) => page.getByRole('list', { name: 'Items' }).getByRole('listitem');

/** Records, from the first paint on, every state of the download the page shows. */
async function watchDownload(page) {
  await page.addInitScript(() => {
    window.downloadSeen = [];
    new MutationObserver(() => {
      const bar = document.querySelector('.download progress');
      const label = document.getElementById('download-label');
      if (bar && label) window.downloadSeen.push({ value: bar.value, max: bar.max, text: label.textContent });
    }).observe(document, { subtree: true, childList: true, attributes: true, characterData: true });
  });
}

/** Checks what the page showed of the download, and that it is over. */
async function checkDownload(page, who) {
  // Shown, and gone again.
  await page.waitForFunction(() => window.downloadSeen.length > 0 && !document.querySelector('.download'), null, { timeout: 60000 });
  const seen = await page.evaluate(() => window.downloadSeen);
  assert.match(seen[0].text, /^Downloading the list… [\d.]+ of [\d.]+ MB$/);
  const last = seen[seen.length - 1];
  assert.ok(last.max >= mib << 20, `${who}: the download's total is ${last.max} bytes, want the list's ${mib} MiB or more`);
  for (let i = 1; i < seen.length; i++) assert.ok(seen[i].value >= seen[i - 1].value, `${who}: the progress bar went back`);
  const p = await page.evaluate(() => window.sqlsyncDoc.downloadProgress);
  assert.ok(p && p.stage === 'document' && p.done && p.pages === p.totalPages && p.loaded >= mib << 20, `${who}: downloadProgress ${JSON.stringify(p)}`);
}

it('a large list downloads with a progress bar, then shows its items', async () => {
  const alice = await browser.newContext();
  const bob = await browser.newContext();
  try {
    const a = await newPage(alice, 'alice');
    await watchDownload(a);
    await a.goto(`${server.url}/#/list/${listId}`);
    await a.getByLabel('New item').fill('milk');
    await a.getByLabel('New item').press('Enter');
    await items(a).filter({ hasText: 'milk' }).first().waitFor();
    await checkDownload(a, 'alice');

    const b = await newPage(bob, 'bob');
    await watchDownload(b);
    await b.goto(a.url());
    await items(b).filter({ hasText: 'milk' }).first().waitFor({ timeout: 60000 });
    await checkDownload(b, 'bob');
    await screenshot(b, 'download-done');
  } finally {
    await alice.close();
    await bob.close();
  }
});

it('a download cut short by closing the tab resumes where it stood', async () => {
  const carol = await browser.newContext();
  try {
    const first = await newPage(carol, 'carol');
    await watchDownload(first);
    await first.goto(`${server.url}/#/list/${listId}`);
    let reached = 0;
    for (const deadline = Date.now() + 60000; reached < 1 / 3; ) {
      assert.ok(Date.now() < deadline, 'the download never reached a third');
      const seen = await first.evaluate(() => window.downloadSeen.at(-1));
      if (seen) reached = seen.value / seen.max;
      await new Promise((r) => setTimeout(r, 20));
    }
    const before = await first.evaluate(() => window.downloadSeen.at(-1).value);
    await first.close(); // the tab goes, and its worker with it
    const resumed0 = await resumedStreams();

    const again = await newPage(carol, 'carol');
    await watchDownload(again);
    await again.goto(`${server.url}/#/list/${listId}`);
    await again.getByLabel('New item').waitFor();
    await checkDownload(again, 'carol');
    const seen = await again.evaluate(() => window.downloadSeen);
    assert.ok(seen[0].value >= before * 0.9, `the second tab's download started at ${seen[0].value} bytes, the first had ${before}`);
    assert.equal(await resumedStreams(), resumed0 + 1, 'the coordinator resumed no stream');
    await items(again).filter({ hasText: 'milk' }).first().waitFor();
  } finally {
    await carol.close();
  }
});

/** The coordinator's count of streams it resumed. */
async function resumedStreams() {
  const text = await (await fetch(server.url + '/metrics')).text();
  const m = /^sqlsync_streams_total\{event="resumed"\} (\d+)$/m.exec(text);
  return m ? Number(m[1]) : 0;
}
