// The example app as an npm user ships it: `vite build`'s output served by
// `vite preview` on one origin, the sqlsync coordinator on another (with
// --allowed-origins naming the app's), two people in two Chromium
// contexts. Both see both items, and the pages log no errors: the worker
// and the wasm bundle reached dist/ with no configuration. The coordinator
// runs the app's own mutator, mutator/groceries.ts, which `npm run build`
// compiled with @sqlsync-go/mutator into build/groceries.wasm.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { eventually, freePort, startCoordinator, startProcess, startServerAndBrowser, stopServerAndBrowser } from 'sqlsync-test-harness';

const app = join(dirname(fileURLToPath(import.meta.url)), '..');
const mutator = join(app, 'build', 'groceries.wasm');
let server;
let preview;
let previewUrl;
let browser;

/** Starts `vite preview` on a free port; resolves to { url, stop } once it answers. */
async function startPreview() {
  const port = await freePort();
  const vite = join(app, 'node_modules', '.bin', 'vite');
  const bin = existsSync(vite) ? vite : join(app, '..', '..', 'node_modules', '.bin', 'vite');
  const url = `http://127.0.0.1:${port}`;
  const proc = await startProcess(bin, ['preview', '--host', '127.0.0.1', '--port', String(port), '--strictPort'], { url, cwd: app, stdout: 'ignore' });
  return { url, stop: proc.stop };
}

before(async () => {
  preview = await startPreview();
  previewUrl = preview.url;
  ({ server, browser } = await startServerAndBrowser(() => startCoordinator({ mutator, args: ['--allowed-origins', previewUrl] })));
});

after(async () => {
  await stopServerAndBrowser(server, browser);
  await preview?.stop();
});

/** Opens the app in a new context, recording every console error and page error. */
async function person(name, errors) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on('pageerror', (e) => errors.push(`${name} pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`${name} console.error: ${m.text()}`);
  });
  page.on('requestfailed', (r) => errors.push(`${name} request failed: ${r.url()} ${r.failure()?.errorText}`));
  await page.goto(`${previewUrl}/?sync=${encodeURIComponent(server.url)}`);
  return { context, page };
}

const items = (page) => page.getByRole('list', { name: 'Items' }).getByRole('listitem');

async function add(page, title) {
  await page.getByLabel('New item').fill(title);
  await page.getByRole('button', { name: 'Add' }).click();
  await items(page).filter({ hasText: title }).first().waitFor();
}

it('a stock Vite build works across origins: two people see each other’s items', async () => {
  const errors = [];
  const alice = await person('alice', errors);
  const bob = await person('bob', errors);
  try {
    await alice.page.getByRole('heading', { name: 'Groceries' }).waitFor();
    await bob.page.getByRole('heading', { name: 'Groceries' }).waitFor();
    await add(alice.page, 'milk');
    await add(bob.page, 'bread');
    for (const { page } of [alice, bob]) {
      await eventually(async () => assert.deepEqual(await items(page).allTextContents(), ['bread', 'milk']));
      await eventually(async () => assert.equal(await page.getByText('Sync: online').count(), 1));
    }
    // The document runs the app's module as the coordinator serves it
    // (fetched across origins, so CORS works), not a fallback.
    const hash = createHash('sha256').update(readFileSync(mutator)).digest('hex');
    for (const { page } of [alice, bob]) assert.equal(await page.getByText(`Mutator: module ${hash.slice(0, 12)} from the coordinator`).count(), 1);
    assert.deepEqual(errors, []);
  } finally {
    await alice.context.close();
    await bob.context.close();
  }
});
