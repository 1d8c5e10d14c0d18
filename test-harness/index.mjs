// The harness of every browser test and benchmark of sqlsync (js/test/e2e,
// js/test/gowasm, demo-todo/test, examples/*/test): Debian's Chromium
// driven by playwright-core, the real coordinator (bin/sqlsync serve) on a
// free port of 127.0.0.1 with its own temporary data directory, other
// servers a test starts (vite preview), and the polling helpers. What one
// suite alone needs (its page, its app) stays beside that suite.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

/** The repository's root directory. */
export const repoDir = join(dirname(fileURLToPath(import.meta.url)), '..');

/** The todo mutator module built from demo-todo/mutator/mutator.ts (AssemblyScript) by make (bin/mutators/todo.wasm). */
export const todoMutator = process.env.SQLSYNC_TODO_WASM ?? join(repoDir, 'bin', 'mutators', 'todo.wasm');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

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
 * Spawns cmd with args (in cwd; its stdout goes to stdout, default
 * 'inherit', its stderr to ours) and resolves once url answers with a 2xx
 * status, to an object whose stop() ends the process (SIGTERM, then SIGKILL
 * after 5 s) and resolves once it has exited. Rejects, with the process
 * stopped, if it exits first or url does not answer within about 10 s.
 */
export async function startProcess(cmd, args, { url, cwd, stdout = 'inherit' }) {
  const what = `${basename(cmd)} ${args[0] ?? ''}`.trim();
  const proc = spawn(cmd, args, { cwd, stdio: ['ignore', stdout, 'inherit'] });
  let spawnError;
  proc.once('error', (e) => (spawnError = e));
  const exited = new Promise((resolve) => proc.once('close', resolve));
  const running = () => proc.exitCode === null && proc.signalCode === null && !spawnError;
  const stop = async () => {
    if (running()) proc.kill('SIGTERM');
    await Promise.race([exited, sleep(5000)]);
    if (running()) proc.kill('SIGKILL');
  };
  try {
    for (let i = 0; ; i++) {
      try {
        if ((await fetch(url)).ok) break;
      } catch {}
      if (spawnError) throw new Error(`${what}: ${spawnError.message}`);
      if (proc.exitCode !== null) throw new Error(`${what} exited with ${proc.exitCode}`);
      if (i > 200) throw new Error(`${what} did not start`);
      await sleep(50);
    }
  } catch (e) {
    await stop();
    throw e;
  }
  return { stop };
}

/**
 * Starts the coordinator (SQLSYNC_BIN, default bin/sqlsync) on a free port
 * with a new temporary data directory, serving staticDir if given and
 * running mutator (a .wasm module, default the todo demo's) for every
 * document, plus args; resolves once it answers /healthz, to { url, stop }.
 * stop() ends it and deletes its data. prepare, if given, is called with
 * the data directory before the coordinator starts (to put documents in it).
 */
export async function startCoordinator({ staticDir, mutator = todoMutator, args = [], prepare } = {}) {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const data = mkdtempSync(join(tmpdir(), 'sqlsync-test-'));
  const bin = process.env.SQLSYNC_BIN ?? join(repoDir, 'bin', 'sqlsync');
  const serve = ['serve', '--addr', `127.0.0.1:${port}`, '--data', data, '--mutator', mutator, '--log-level', 'warn', ...args];
  if (staticDir) serve.push('--static', staticDir);
  const removeData = () => rmSync(data, { recursive: true, force: true });
  let proc;
  try {
    prepare?.(data);
    proc = await startProcess(bin, serve, { url: url + '/healthz' });
  } catch (e) {
    removeData();
    throw e;
  }
  return {
    url,
    async stop() {
      await proc.stop();
      removeData();
    },
  };
}

/**
 * Chromium's flags for every test: headless, and nothing of its own on the
 * network (no QUIC, no background requests, updates or sync) to disturb
 * the timings. Playwright adds a fresh --user-data-dir itself: a new
 * temporary one per launch(), the given one for launchProfile().
 * SQLSYNC_CHROMIUM_EXTRA adds flags for an experiment, e.g.
 * "--js-flags=--no-wasm-lazy-compilation" (how the bench-demo figures of
 * issue 10's note were split between V8's lazy compilation and the rest).
 */
export const chromiumArgs = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  ...(process.env.SQLSYNC_CHROMIUM_EXTRA ?? '').split(' ').filter(Boolean),
];

const browserOptions = () => ({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', args: chromiumArgs });

/**
 * Launches Chromium (CHROMIUM, default /usr/bin/chromium) on a fresh,
 * temporary profile. Each context of it has its own storage, off the
 * record: two contexts are two browsers' worth of replicas.
 */
export function launch() {
  return chromium.launch(browserOptions());
}

/**
 * Launches Chromium on a new, empty profile kept on disk, as a person's
 * browser is: unlike the contexts of launch() (off the record, like an
 * incognito window), its origin private file system, HTTP cache and
 * WebAssembly code cache live on disk, with their real costs. Resolves to
 * the profile's only context; close() also deletes the profile.
 */
export async function launchProfile() {
  const dir = mkdtempSync(join(tmpdir(), 'sqlsync-profile-'));
  const ctx = await chromium.launchPersistentContext(dir, browserOptions());
  const close = ctx.close.bind(ctx);
  ctx.close = async () => {
    await close();
    rmSync(dir, { recursive: true, force: true });
  };
  return ctx;
}

/**
 * What a test file's before hook does: starts its server with start()
 * (resolving to something with stop()), then launches Chromium; resolves
 * to { server, browser }. If the launch fails, the server is stopped.
 */
export async function startServerAndBrowser(start) {
  const server = await start();
  try {
    return { server, browser: await launch() };
  } catch (e) {
    await server.stop();
    throw e;
  }
}

/** What a test file's after hook does: closes browser, then stops server (either may be missing if the before hook failed). */
export async function stopServerAndBrowser(server, browser) {
  await browser?.close();
  await server?.stop();
}

/** Opens a page in context that reports its errors and warnings on the test's output, prefixed with name if given. */
export async function newPage(context, name) {
  const page = await context.newPage();
  const prefix = name ? `${name} ` : '';
  page.on('pageerror', (e) => console.error(`${prefix}pageerror:`, e.message));
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') console.error(`${prefix}console.${m.type()}:`, m.text());
  });
  return page;
}

/** Polls f in page (awaiting its promise) until it returns a truthy value, which it returns. */
export async function until(page, f, arg, timeout = 20000) {
  // Not page.waitForFunction: it takes a returned promise, being truthy, as
  // success at once, and most of these predicates are async (sq.query(...)
  // .then(...)). page.evaluate awaits f's promise; poll until its value is
  // truthy.
  const deadline = Date.now() + timeout;
  for (;;) {
    const v = await page.evaluate(f, arg);
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`until: still ${JSON.stringify(v)} after ${timeout} ms: ${f.toString().slice(0, 300)}`);
    await sleep(50);
  }
}

/** Retries check (which throws while its condition does not hold) in Node for up to timeout ms; returns its value. */
export async function eventually(check, timeout = 20000) {
  const end = Date.now() + timeout;
  for (;;) {
    try {
      return await check();
    } catch (e) {
      if (Date.now() > end) throw e;
      await sleep(100);
    }
  }
}

/** The p-quantile (0..1) of xs, nearest rank: what every benchmark reports as p50, p90, p99. */
export function percentile(xs, p) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * p))];
}
