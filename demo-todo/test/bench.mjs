// The demo as a person meets it, timed in Chromium (make bench-demo):
//   - first visit (a new, empty browser profile on disk, as a person's
//     browser keeps it, not an off-the-record context) and reload (HTTP
//     cache and code cache warm),
//     from navigation to the list's rows on screen, with where the time
//     went (the document's startup timings: download, compile, Go start,
//     mutator, open, first rows);
//   - type an item and press Enter until its text is in the DOM, timed in
//     the page (p50 / p90 / max);
//   - opening a second list in the same tab (no new worker or runtime);
//   - doc.mutate until durable (offline, steady state), on OPFS.
// Each against, in the same run, the official @sqlite.org/sqlite-wasm
// build (what a web developer would pick instead, with no sync) in a
// worker on OPFS (test/baseline/): cold start to its first query, reload,
// a durable one-row insert, and the bytes each ships (brotli). And against
// the same SQLite sqlsync runs (ncruces go-sqlite3 in Go wasm) on sqlsync's
// own OPFS storage code, with no sync (test/baseline/plain.html, built from
// bench/browser/plainsqlite into bin/): cold start and a durable one-row
// insert, what the sync engine adds on top of the same SQLite and storage.
// Writes the figures as JSON to BENCH_DEMO_OUT (default
// demo-todo/test-results/bench.json) and a Markdown table beside it (.md),
// and prints the table.
import { createReadStream, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, extname, join, normalize } from 'node:path';
import { brotliCompressSync, constants } from 'node:zlib';
import { launchProfile, percentile as pct, repoDir } from 'sqlsync-test-harness';
import { demoDir, resultsDir, startDemo } from './app.mjs';
import { typeItems, visit, watchRows } from './timing.mjs';

const RUNS = Number(process.env.BENCH_DEMO_RUNS ?? 3);
const TYPED = Number(process.env.BENCH_DEMO_TYPED ?? 40);
const SEED = 20;
const MUTATIONS = Number(process.env.BENCH_DEMO_MUTATIONS ?? 200);
const out = process.env.BENCH_DEMO_OUT ?? join(resultsDir, 'bench.json');

const median = (xs) => pct(xs, 0.5);

/**
 * Serves test/baseline/, the sqlite-wasm package's dist/ and, as
 * /baseline/plainsqlite.wasm and /baseline/wasm_exec.js, the plain Go
 * baseline from bin/ (make bin/plainsqlite.wasm), on 127.0.0.1.
 */
async function startBaseline() {
  const files = { '/baseline/plainsqlite.wasm': join(repoDir, 'bin', 'plainsqlite.wasm'), '/baseline/wasm_exec.js': join(repoDir, 'bin', 'wasm_exec.js') };
  for (const file of Object.values(files)) {
    if (!existsSync(file)) throw new Error(`${file} is missing: run make bin/plainsqlite.wasm`);
  }
  const roots = { '/baseline/': join(demoDir, 'test', 'baseline'), '/node_modules/@sqlite.org/sqlite-wasm/dist/': join(repoDir, 'node_modules', '@sqlite.org', 'sqlite-wasm', 'dist') };
  const types = { '.html': 'text/html', '.mjs': 'text/javascript', '.js': 'text/javascript', '.wasm': 'application/wasm' };
  const srv = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    if (files[path]) {
      res.writeHead(200, { 'content-type': types[extname(path)], 'cache-control': 'no-cache' });
      createReadStream(files[path]).pipe(res);
      return;
    }
    for (const [prefix, dir] of Object.entries(roots)) {
      if (!path.startsWith(prefix)) continue;
      const file = normalize(join(dir, path.slice(prefix.length) || 'index.html'));
      if (!file.startsWith(dir) || !existsSync(file) || !statSync(file).isFile()) break;
      res.writeHead(200, { 'content-type': types[extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-cache' });
      createReadStream(file).pipe(res);
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${srv.address().port}`, stop: () => srv.close() };
}

const brotli = (file) =>
  brotliCompressSync(readFileSync(file), { params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_LGWIN]: 24 } }).length;

/** The bytes a browser fetches for sqlsync (the demo's worker, wasm bundle and package code) and for the baseline. */
function bundleBytes() {
  const assets = join(demoDir, 'dist', 'assets');
  const files = readdirSync(assets);
  const wasm = files.find((f) => /^sqlsync-.*\.wasm$/.test(f));
  const worker = files.find((f) => /^worker-.*\.js$/.test(f));
  const dist = join(repoDir, 'node_modules', '@sqlite.org', 'sqlite-wasm', 'dist');
  return {
    sqlsync: { wasmRaw: statSync(join(assets, wasm)).size, wasmBrotli: brotli(join(assets, wasm)), workerBrotli: brotli(join(assets, worker)) },
    baseline: { wasmRaw: statSync(join(dist, 'sqlite3.wasm')).size, wasmBrotli: brotli(join(dist, 'sqlite3.wasm')), jsBrotli: brotli(join(dist, 'index.mjs')) },
  };
}

const started = Date.now();
const baselineServer = await startBaseline();
const server = await startDemo();
const result = {
  date: new Date().toISOString(),
  runs: RUNS,
  first: [],
  reload: [],
  typed: [],
  secondList: [],
  mutate: [],
  baseline: { first: [], reload: [], insert: [] },
  plain: { first: [], insert: [], insertInGo: [] },
  bytes: bundleBytes(),
};
try {
  // Seed two lists through the demo itself.
  {
    const ctx = await launchProfile();
    const page = await ctx.newPage();
    await page.addInitScript(watchRows, 0);
    for (const list of ['bench-a', 'bench-b']) {
      await page.goto(`${server.url}/#/list/${list}`);
      await page.waitForSelector('#new-item', { timeout: 120000 });
      await page.evaluate(typeItems, list === 'bench-a' ? SEED : 1);
      await page.waitForFunction(() => document.querySelector('.badge')?.getAttribute('data-pending') === '0', null, { timeout: 60000 });
      await page.goto('about:blank');
    }
    await ctx.close();
  }
  for (let r = 0; r < RUNS; r++) {
    const ctx = await launchProfile(); // an empty profile, on disk
    const page = await ctx.newPage();
    await page.addInitScript(watchRows, SEED);
    result.first.push(await visit(page, `${server.url}/#/list/bench-a`));
    await page.waitForFunction(() => document.querySelector('.badge')?.getAttribute('data-state') === 'online', null, { timeout: 60000 });
    await page.reload();
    await page.waitForFunction(() => window.__rowsAt !== undefined, null, { timeout: 120000 });
    result.reload.push(await page.evaluate(() => ({ rowsMs: window.__rowsAt, startup: window.sqlsyncDoc?.startup ?? {} })));
    if (r === 0) {
      await page.waitForFunction(() => document.querySelector('.badge')?.getAttribute('data-state') === 'online', null, { timeout: 60000 });
      await page.waitForSelector('#new-item');
      await page.evaluate(typeItems, 5); // warm-up
      result.typed = await page.evaluate(typeItems, TYPED);
    }
    // A second list in the same tab: from the hash change to its row.
    const ms = await page.evaluate(async () => {
      const t0 = performance.now();
      location.hash = '#/list/bench-b';
      for (;;) {
        await new Promise((r) => requestAnimationFrame(r));
        const doc = window.sqlsyncDoc;
        if (doc?.docId === 'bench-b' && document.querySelectorAll('ul[aria-label="Items"] > li').length >= 1) {
          return { rowsMs: performance.now() - t0, startup: doc.startup, t0 };
        }
        if (performance.now() - t0 > 60000) throw new Error('the second list did not show');
      }
    });
    result.secondList.push(ms);
    await ctx.close();
  }
  // doc.mutate until durable, offline (no sync work competing), steady state.
  {
    const ctx = await launchProfile();
    const page = await ctx.newPage();
    await page.addInitScript(watchRows, SEED);
    await visit(page, `${server.url}/#/list/bench-a`);
    result.mutate = await page.evaluate(async (n) => {
      const doc = window.sqlsyncDoc;
      await doc.setOnline(false);
      const times = [];
      for (let i = 0; i < n + 50; i++) {
        const t0 = performance.now();
        await doc.mutate('add', { id: crypto.randomUUID(), title: `m${i}` });
        if (i >= 50) times.push(performance.now() - t0);
      }
      return times;
    }, MUTATIONS);
    await ctx.close();
  }
  // The baseline, in the same Chromium, each run on its own new profile.
  for (let r = 0; r < RUNS; r++) {
    const ctx = await launchProfile();
    const page = await ctx.newPage();
    await page.goto(`${baselineServer.url}/baseline/`);
    result.baseline.first.push({ rowsMs: (await page.evaluate(() => window.baseline)).firstQueryAt });
    await page.reload();
    result.baseline.reload.push({ rowsMs: (await page.evaluate(() => window.baseline)).firstQueryAt });
    if (r === 0) {
      await page.evaluate((n) => window.insertRows(n), 50);
      result.baseline.insert = await page.evaluate((n) => window.insertRows(n), MUTATIONS);
    }
    await ctx.close();
  }
  // The same SQLite on the same OPFS storage code, no sync, on a new profile.
  {
    const ctx = await launchProfile();
    const page = await ctx.newPage();
    await page.goto(`${baselineServer.url}/baseline/plain.html`);
    result.plain.first.push({ rowsMs: (await page.evaluate(() => window.plain)).firstQueryAt });
    await page.evaluate((n) => window.insertRows(n), 50);
    const { times, inGo } = await page.evaluate((n) => window.insertRows(n), MUTATIONS);
    result.plain.insert = times;
    result.plain.insertInGo = inGo;
    await ctx.close();
  }
} finally {
  await server.stop();
  baselineServer.stop();
}
result.seconds = (Date.now() - started) / 1000;
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, JSON.stringify(result, null, 2));

// The table.
const f = (v) => (v === undefined ? '–' : `${v.toFixed(0)} ms`);
const phases = (s) => {
  if (!s) return '';
  const at = (k) => s[k];
  return [
    ['owner', at('init')],
    ['download', at('downloaded') ?? at('compiled')],
    ['compiled', at('compiled')],
    ['Go started', at('started')],
    ['mutator', at('mutator')],
    ['Go: storage', at('go.storage')],
    ['mutator module', at('go.mutator')],
    ['snapshot and log', at('go.state')],
    ['replayed', at('go.replayed')],
    ['opened', at('opened')],
    ['ready', at('ready')],
  ]
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k} ${v.toFixed(0)}`)
    .join(', ');
};
const row = (name, xs, aim) => `| ${name} | ${xs.map((x) => f(x.rowsMs)).join(' / ')} | ${f(median(xs.map((x) => x.rowsMs)))} | ${aim} | ${phases(xs[Math.floor(xs.length / 2)]?.startup)} |`;
const lines = [];
const print = (l) => lines.push(l);
print(`\nThe todo demo in Chromium (${RUNS} runs, ${result.seconds.toFixed(0)} s; times from navigation, ms on the page's clock)\n`);
print('| step | runs | median | aim | where the time went (median run, ms since navigation) |');
print('|---|---|---|---|---|');
print(row('first visit, empty profile, to 20 rows', result.first, '≤ 2000 ms'));
print(row('reload, to 20 rows', result.reload, '≤ 500 ms'));
print(row('second list in the same tab, to its row', result.secondList, '≤ 100 ms'));
print(
  `| type an item, Enter, to its text in the DOM (n=${result.typed.length}) | p50 ${f(pct(result.typed, 0.5))}, p90 ${f(pct(result.typed, 0.9))}, max ${f(Math.max(...result.typed))} | ${f(pct(result.typed, 0.5))} | p50 ≤ 16, p90 ≤ 33 ms | |`,
);
const ratio = (a, b) => (b > 0 ? `${(a / b).toFixed(1)}×` : '–');
const med = (xs) => median(xs.map((x) => x.rowsMs));
const kib = (n) => `${(n / 1024).toFixed(0)} KiB`;
const B = result.bytes;
print('');
print('Against the official @sqlite.org/sqlite-wasm on OPFS (opfs-sahpool), no sync, in the same browser and run:');
print('');
print('| | sqlsync | sqlite-wasm | ratio |');
print('|---|---|---|---|');
print(`| cold start to first query (first visit; sqlsync: to 20 rows on screen) | ${f(med(result.first))} | ${f(med(result.baseline.first))} | ${ratio(med(result.first), med(result.baseline.first))} |`);
print(`| reload to first query | ${f(med(result.reload))} | ${f(med(result.baseline.reload))} | ${ratio(med(result.reload), med(result.baseline.reload))} |`);
print(`| durable one-row write p50 (sqlsync: doc.mutate offline; n=${MUTATIONS}) | ${f(pct(result.mutate, 0.5))} | ${f(pct(result.baseline.insert, 0.5))} | ${ratio(pct(result.mutate, 0.5), pct(result.baseline.insert, 0.5))} |`);
print(`| durable one-row write p90 | ${f(pct(result.mutate, 0.9))} | ${f(pct(result.baseline.insert, 0.9))} | ${ratio(pct(result.mutate, 0.9), pct(result.baseline.insert, 0.9))} |`);
print(`| wasm, brotli 11 (raw) | ${kib(B.sqlsync.wasmBrotli)} (${kib(B.sqlsync.wasmRaw)}) | ${kib(B.baseline.wasmBrotli)} (${kib(B.baseline.wasmRaw)}) | ${ratio(B.sqlsync.wasmBrotli, B.baseline.wasmBrotli)} |`);
print(`| JavaScript, brotli 11 | worker ${kib(B.sqlsync.workerBrotli)} | ${kib(B.baseline.jsBrotli)} | |`);
print('');
print("Against the same SQLite (ncruces go-sqlite3 in Go wasm) on sqlsync's OPFS storage code (vfs, filestore: a log append and flush per commit), no sync:");
print('');
print('| | sqlsync | ncruces on OPFS, no sync | ratio |');
print('|---|---|---|---|');
const P = result.plain;
const fine = (v) => (v !== undefined && v < 10 ? `${v.toFixed(1)} ms` : f(v)); // a write in Go can take under a ms
print(`| cold start to first query (first visit; sqlsync: to 20 rows on screen) | ${f(med(result.first))} | ${f(med(P.first))} | ${ratio(med(result.first), med(P.first))} |`);
print(`| durable one-row write p50 (sqlsync: doc.mutate offline; n=${MUTATIONS}) | ${fine(pct(result.mutate, 0.5))} | ${fine(pct(P.insert, 0.5))} | ${ratio(pct(result.mutate, 0.5), pct(P.insert, 0.5))} |`);
print(`| durable one-row write p90 | ${fine(pct(result.mutate, 0.9))} | ${fine(pct(P.insert, 0.9))} | ${ratio(pct(result.mutate, 0.9), pct(P.insert, 0.9))} |`);
print(`| of which in Go, BEGIN to COMMIT, p50 / p90 | | ${fine(pct(P.insertInGo, 0.5))} / ${fine(pct(P.insertInGo, 0.9))} | |`);
const table = lines.join('\n') + '\n';
writeFileSync(out.replace(/\.json$/, '') + '.md', table);
console.log(table);
