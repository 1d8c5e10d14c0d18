// Test harness: the real sqlsync coordinator on a free port of 127.0.0.1,
// serving the js/ directory (test page, dist/, build/), and Debian's
// Chromium driven by playwright-core.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const jsDir = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const repo = join(jsDir, '..');

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

/** The todo mutator module built from demo-todo/mutator by make (bin/mutators/todo.wasm). */
export const todoMutator = process.env.SQLSYNC_TODO_WASM ?? join(repo, 'bin', 'mutators', 'todo.wasm');

/**
 * The generic test mutator shared/wasmhost/testdata/full built by make
 * test-mutators: its "sql" mutation runs the SQL it is given.
 */
export const fullMutator = process.env.SQLSYNC_FULL_WASM ?? join(jsDir, 'build', 'gotest', 'mutators', 'full.wasm');

/**
 * Starts bin/sqlsync serve; resolves once it answers /healthz. opts.mutator
 * is a mutator module (.wasm) for every document (default: the built-in Go
 * todo mutator).
 */
export async function startServer(opts = {}) {
  const port = await freePort();
  const data = mkdtempSync(join(tmpdir(), 'sqlsync-e2e-'));
  const bin = process.env.SQLSYNC_BIN ?? join(repo, 'bin', 'sqlsync');
  const args = ['serve', '--addr', `127.0.0.1:${port}`, '--data', data, '--static', jsDir, '--log-level', 'warn'];
  if (opts.mutator) args.push('--mutator', opts.mutator);
  const proc = spawn(bin, args, {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  for (let i = 0; ; i++) {
    try {
      const r = await fetch(url + '/healthz');
      if (r.ok) break;
    } catch {}
    if (proc.exitCode !== null) throw new Error(`sqlsync serve exited with ${proc.exitCode}`);
    if (i > 200) throw new Error('sqlsync serve did not start');
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url,
    page: url + '/test/e2e/page/index.html',
    async stop() {
      proc.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      if (proc.exitCode === null) proc.kill('SIGKILL');
      rmSync(data, { recursive: true, force: true });
    },
  };
}

/** Launches Chromium (CHROMIUM, default /usr/bin/chromium). */
export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** Opens a page of the test app in context and opens a document in it. */
export async function openPage(context, server, opts) {
  const page = await context.newPage();
  page.on('pageerror', (e) => console.error('pageerror:', e.message));
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') console.error(`console.${m.type()}:`, m.text());
  });
  await page.goto(server.page);
  await page.waitForFunction(() => window.sq);
  const res = await page.evaluate((o) => window.sq.open(o), opts);
  return { page, ...res };
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
    await new Promise((r) => setTimeout(r, 50));
  }
}
