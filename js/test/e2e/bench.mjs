// Measures in Chromium, for OPFS and IndexedDB: cold start (a fresh
// context: download, compile, open) to the first query; warm start (a
// reload); and mutate latency (the promise resolving once the mutation is
// durable locally) while V8 runs the wasm in its baseline tier (the first
// mutations) and in steady state, offline and online. Reports only: prints
// a Markdown table and writes js/build/bench.json.
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { launch, percentile as pct } from 'sqlsync-test-harness';
import { jsDir, openPage, startServer } from './testpage.mjs';

const N = Number(process.env.BENCH_N ?? 300);
const ms = (v) => `${v.toFixed(1)} ms`;

const started = Date.now();
const server = await startServer();
const browser = await launch();
const results = {};
try {
  for (const storage of ['opfs', 'indexeddb']) {
    const ctx = await browser.newContext();
    const t0 = Date.now();
    const { page, opened } = await openPage(ctx, server, { docId: `bench-${storage}`, storage, online: false });
    const firstQuery = await page.evaluate(async () => {
      const t = performance.now();
      await sq.query('SELECT count(*) FROM items');
      return performance.now() - t;
    });
    const cold = { open: opened, firstQuery, total: Date.now() - t0 };
    const baseline = await page.evaluate((n) => sq.bench(n), 100);
    await page.evaluate((n) => sq.bench(n), N); // warm-up
    const steady = await page.evaluate((n) => sq.bench(n), N);
    await page.reload();
    await page.waitForFunction(() => window.sq);
    const warm = await page.evaluate((o) => sq.open(o), { docId: `bench-${storage}`, storage, online: false });
    await page.evaluate(() => sq.setOnline(true));
    await page.evaluate(() => sq.waitSynced(120000));
    const online = await page.evaluate((n) => sq.bench(n), 200);
    results[storage] = {
      coldOpenMs: cold.open,
      coldFirstQueryMs: cold.firstQuery,
      coldPageToFirstQueryMs: cold.total,
      warmOpenMs: warm.opened,
      mutateFirst100: { p50: pct(baseline, 0.5), p99: pct(baseline, 0.99) },
      mutateSteadyOffline: { n: N, p50: pct(steady, 0.5), p99: pct(steady, 0.99) },
      mutateOnline: { n: 200, p50: pct(online, 0.5), p99: pct(online, 0.99) },
    };
    await ctx.close();
  }
} finally {
  await browser.close();
  await server.stop();
}
writeFileSync(join(jsDir, 'build', 'bench.json'), JSON.stringify(results, null, 2));

// The same figures as scenario 8 of the benchmark suite (bench/README.md),
// which merges bench/results/browser.json into its table.
const dist = (d, n) => ({ kind: 'dist', unit: 'ms', n, p50: d.p50, p99: d.p99, value: 0 });
const value = (v) => ({ kind: 'value', unit: 'ms', value: v });
const cold = Math.max(results.opfs.coldPageToFirstQueryMs, results.indexeddb.coldPageToFirstQueryMs);
const records = [
  {
    id: '8.cold',
    scenario: 8,
    name: 'browser cold start to first query (Chromium)',
    samples: 2,
    figure: value(cold),
    aim: { text: '≤ 1 s', max_value: 1000 },
    status: 'measured',
    also: [
      { name: 'OPFS: page load to first query', ...value(results.opfs.coldPageToFirstQueryMs) },
      { name: 'IndexedDB: page load to first query', ...value(results.indexeddb.coldPageToFirstQueryMs) },
      { name: 'OPFS: openDocument (download + compile + open)', ...value(results.opfs.coldOpenMs) },
      { name: 'reload: openDocument', ...value(results.opfs.warmOpenMs) },
    ],
    note: 'fresh browser context (empty HTTP cache); the slower of OPFS and IndexedDB; the wasm bundle is served uncompressed here',
  },
  ...['opfs', 'indexeddb'].map((st) => ({
    id: st === 'opfs' ? '8.opfs' : '8.idb',
    scenario: 8,
    name: `browser mutate p50/p99, ${st === 'opfs' ? 'OPFS' : 'IndexedDB'}`,
    samples: N,
    figure: dist(results[st].mutateSteadyOffline, N),
    status: 'measured',
    also: [
      { name: 'first 100 mutations (baseline tier)', ...dist(results[st].mutateFirst100, 100) },
      { name: 'online, syncing', ...dist(results[st].mutateOnline, 200) },
    ],
    note: 'page-side mutate() until durable locally, steady state, offline; no no-sync baseline measured',
  })),
];
mkdirSync(join(jsDir, '..', 'bench', 'results'), { recursive: true });
writeFileSync(
  join(jsDir, '..', 'bench', 'results', 'browser.json'),
  JSON.stringify({ version: 1, started: new Date(started).toISOString(), seconds: (Date.now() - started) / 1000, env: { goos: 'js', goarch: 'wasm', cpus: cpus().length }, records }, null, 2),
);
const row = (name, f) => `| ${name} | ${f(results.opfs)} | ${f(results.indexeddb)} |`;
console.log(
  [
    '| Chromium, 2 cores | OPFS | IndexedDB |',
    '| --- | --- | --- |',
    row('cold: openDocument (download + compile + open)', (r) => ms(r.coldOpenMs)),
    row('cold: first query after open', (r) => ms(r.coldFirstQueryMs)),
    row('cold: page load to first query', (r) => ms(r.coldPageToFirstQueryMs)),
    row('warm (reload): openDocument', (r) => ms(r.warmOpenMs)),
    row('mutate, first 100 (baseline tier) p50 / p99', (r) => `${ms(r.mutateFirst100.p50)} / ${ms(r.mutateFirst100.p99)}`),
    row(`mutate, steady, offline p50 / p99`, (r) => `${ms(r.mutateSteadyOffline.p50)} / ${ms(r.mutateSteadyOffline.p99)}`),
    row('mutate, online (syncing) p50 / p99', (r) => `${ms(r.mutateOnline.p50)} / ${ms(r.mutateOnline.p99)}`),
  ].join('\n'),
);
