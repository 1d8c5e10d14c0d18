// Test harness of the demo: the real sqlsync coordinator on a free port of
// 127.0.0.1 serving the built demo (dist/), with its own temporary data
// directory, and Debian's Chromium driven by playwright-core (the same
// approach as js/test/e2e).
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const demoDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const repo = join(demoDir, '..');

/** Where screenshots go (gitignored). */
export const resultsDir = join(demoDir, 'test-results');

/** A free TCP port on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/**
 * Starts bin/sqlsync serve with the built demo (or staticDir, or nothing if
 * staticDir is null), and with the todo mutator built to WebAssembly
 * (bin/mutators/todo.wasm) as `make run` does, if it is there, plus args;
 * resolves once it answers /healthz. Other apps' tests use it too
 * (examples/).
 */
export async function startServer({ staticDir = join(demoDir, 'dist'), args: extra = [] } = {}) {
  const port = await freePort();
  const data = mkdtempSync(join(tmpdir(), 'sqlsync-demo-'));
  const bin = process.env.SQLSYNC_BIN ?? join(repo, 'bin', 'sqlsync');
  const args = ['serve', '--addr', `127.0.0.1:${port}`, '--data', data, '--log-level', 'warn', ...extra];
  if (staticDir) args.push('--static', staticDir);
  const mutator = join(repo, 'bin', 'mutators', 'todo.wasm');
  if (existsSync(mutator)) args.push('--mutator', mutator);
  const proc = spawn(bin, args, { stdio: ['ignore', 'inherit', 'inherit'] });
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(url + '/healthz')).ok) break;
    } catch {}
    if (proc.exitCode !== null) throw new Error(`sqlsync serve exited with ${proc.exitCode}`);
    if (i > 200) throw new Error('sqlsync serve did not start');
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url,
    async stop() {
      proc.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      if (proc.exitCode === null) proc.kill('SIGKILL');
      rmSync(data, { recursive: true, force: true });
    },
  };
}

/**
 * Launches Chromium (CHROMIUM, default /usr/bin/chromium). Playwright gives
 * each launch a fresh, temporary user data directory, and each context of
 * it its own storage: two contexts are two browsers' worth of replicas.
 */
export function launch() {
  return chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', args: chromiumArgs });
}

const chromiumArgs = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/**
 * Launches Chromium on a new, empty profile kept on disk, as a person's
 * browser is: unlike the contexts of launch() (off the record, like an
 * incognito window), its origin private file system, HTTP cache and
 * WebAssembly code cache live on disk, with their real costs. Resolves to
 * the profile's only context; close() also deletes the profile.
 */
export async function launchProfile() {
  const dir = mkdtempSync(join(tmpdir(), 'sqlsync-profile-'));
  const ctx = await chromium.launchPersistentContext(dir, { executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', args: chromiumArgs });
  const close = ctx.close.bind(ctx);
  ctx.close = async () => {
    await close();
    rmSync(dir, { recursive: true, force: true });
  };
  return ctx;
}

/** Opens a page that reports its errors on the test's output. */
export async function newPage(context, name) {
  const page = await context.newPage();
  page.on('pageerror', (e) => console.error(`${name} pageerror:`, e.message));
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') console.error(`${name} console.${m.type()}:`, m.text());
  });
  return page;
}

/** Saves a screenshot of page as test-results/<name>.png. */
export async function screenshot(page, name) {
  mkdirSync(resultsDir, { recursive: true });
  await page.screenshot({ path: join(resultsDir, `${name}.png`), fullPage: true });
}

/** Retries check (which throws while its condition does not hold) for up to timeout ms. */
export async function eventually(check, timeout = 20000) {
  const end = Date.now() + timeout;
  for (;;) {
    try {
      return await check();
    } catch (e) {
      if (Date.now() > end) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
