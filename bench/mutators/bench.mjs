// What a mutator module costs, for the todo demo's two modules (make
// bench-mutators, part of make bench): the AssemblyScript one
// (bin/mutators/todo.wasm) against the Go one (bin/mutators/todo-go.wasm),
// measured in the same run, with a third as the floor: the smallest module
// that runs the same INSERT and nothing else (floor.mjs), which shows what
// the host and the engine cost any module.
//
//   - bytes: each module raw and with brotli (node's zlib, quality 11,
//     window 2^24), and raw the browser build the coordinator serves
//     beside it (rewritten by package interrupt: loop-head ticks, a memory
//     cap), which a browser fetches too;
//   - in Chromium (Debian's, through sqlsync-test-harness), each run on a
//     new, empty profile on disk (no HTTP cache, no V8 code cache):
//       module alone: the test page (js/test/bench/mutator-start.html)
//         fetches the module, compiles it with
//         WebAssembly.compileStreaming, instantiates it with the host's
//         imports stubbed, runs _initialize and one sqlsync_mutate of add
//         (its SQL answered by the stub);
//       client: then, in the same page, it opens a document through the
//         real client (js/dist) against a coordinator that runs the module,
//         and runs the todo app's add three times. From the client's own
//         startup marks: the module resolved (fetched, SHA-256 checked, put
//         in the Cache API: worker marks init -> mutator, while the Go
//         runtime loads), and compiled and instantiated (go.storage ->
//         go.mutator: the browser build fetched and compiled with
//         WebAssembly.compileStreaming, its imports and exports checked, an
//         instance started, _initialize); then each mutation's latency
//         (doc.mutate, until applied locally), and openDocument to the
//         first mutation applied.
//     Then the page is reloaded and both are measured again (warm: HTTP
//     cache, Cache API and V8's caches as the first visit left them; the
//     client reopens the same document).
//   - on the coordinator (bin/sqlsync-mutator-bench, package wasmhost):
//     compiling each module, a document's first mutation (a new instance
//     and add), and add per mutation (hosttest.BenchmarkInsert) against
//     plain SQLite running the same INSERT prepared once.
//
// The browser start cost of a module is its compile + instantiate in the
// client plus its first mutation's own work (the module alone's); the
// floor module's shows what any module costs. Medians of the runs; the ratios are AS / Go. Writes
// BENCH_MUTATORS_OUT (default bench/results/mutators.json) and a Markdown
// table beside it (.md), and prints the table. Knobs: BENCH_MUTATORS_RUNS
// (3; more than 3 stop early once the runs in Chromium have taken
// BENCH_MUTATORS_BUDGET_S, 35 s), BENCH_MUTATORS_ROUNDS and
// BENCH_MUTATORS_N (the coordinator's rounds and mutations per round: 11,
// 5000), BENCH_MUTATORS_TIMEOUT_S (240: the whole run is abandoned past
// it), BENCH_MUTATORS_VERBOSE (each profile's time on stderr). Needs
// bin/sqlsync, bin/mutators, js/dist and bin/sqlsync-mutator-bench, which
// make bench-mutators builds.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { brotliCompressSync, constants } from 'node:zlib';
import { launch, launchProfile, newPage, repoDir, startCoordinator } from 'sqlsync-test-harness';
import { floorModule } from './floor.mjs';

const RUNS = Number(process.env.BENCH_MUTATORS_RUNS ?? 3);
const MIN_RUNS = Math.min(RUNS, 3);
const BUDGET_S = Number(process.env.BENCH_MUTATORS_BUDGET_S ?? 35);
const ROUNDS = Number(process.env.BENCH_MUTATORS_ROUNDS ?? 11);
const N = Number(process.env.BENCH_MUTATORS_N ?? 5000);
const TIMEOUT_S = Number(process.env.BENCH_MUTATORS_TIMEOUT_S ?? 240);
const VERBOSE = !!process.env.BENCH_MUTATORS_VERBOSE;
const out = process.env.BENCH_MUTATORS_OUT ?? join(repoDir, 'bench', 'results', 'mutators.json');
const coordinatorBench = process.env.SQLSYNC_MUTATOR_BENCH ?? join(repoDir, 'bin', 'sqlsync-mutator-bench');
const pagePath = '/test/bench/mutator-start.html';

// The modules: AssemblyScript and Go (ratios are as / go), and the floor.
const tmp = mkdtempSync(join(tmpdir(), 'sqlsync-bench-mutators-'));
const floorPath = join(tmp, 'floor.wasm');
writeFileSync(floorPath, floorModule());
const modules = {
  as: process.env.SQLSYNC_TODO_WASM ?? join(repoDir, 'bin', 'mutators', 'todo.wasm'),
  go: process.env.SQLSYNC_TODO_GO_WASM ?? join(repoDir, 'bin', 'mutators', 'todo-go.wasm'),
  floor: floorPath,
};
const keys = Object.keys(modules);

// The whole run is bounded: past TIMEOUT_S it stops, whatever it was doing.
const servers = {}; // a coordinator per module
async function stopServers() {
  for (const k of Object.keys(servers)) {
    const s = servers[k];
    delete servers[k];
    await s.stop();
  }
  rmSync(tmp, { recursive: true, force: true });
}
const watchdog = setTimeout(async () => {
  console.error(`bench-mutators: still running after ${TIMEOUT_S} s: giving up`);
  await stopServers().catch(() => {});
  process.exit(1);
}, TIMEOUT_S * 1000);

/** Rejects if p takes longer than ms. */
function within(p, ms, what) {
  let t;
  const late = new Promise((_, reject) => (t = setTimeout(() => reject(new Error(`${what}: no answer after ${ms} ms`)), ms)));
  return Promise.race([p, late]).finally(() => clearTimeout(t));
}

const median = (xs) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
/**
 * The size of buf compressed with brotli at quality 11. It takes 8 s for
 * the Go module, so sizes are kept in the temporary directory by the bytes'
 * SHA-256 and the brotli library's version.
 */
function brotli(buf) {
  const dir = join(tmpdir(), 'sqlsync-bench-brotli');
  const file = join(dir, `${createHash('sha256').update(buf).digest('hex')}-q11-w24-${process.versions.brotli}`);
  try {
    const n = Number(readFileSync(file, 'utf8'));
    if (n > 0) return n;
  } catch {}
  const params = { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_LGWIN]: 24, [constants.BROTLI_PARAM_SIZE_HINT]: buf.length };
  const n = brotliCompressSync(buf, { params }).length;
  mkdirSync(dir, { recursive: true });
  writeFileSync(file, String(n));
  return n;
}

/** Runs the coordinator's half (bin/sqlsync-mutator-bench) and returns its JSON. */
function runCoordinatorBench() {
  return new Promise((resolve, reject) => {
    const args = ['-rounds', String(ROUNDS), '-n', String(N), ...keys.map((k) => `${k}=${modules[k]}`)];
    const p = spawn(coordinatorBench, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let text = '';
    p.stdout.on('data', (b) => (text += b));
    p.once('error', reject);
    const t = setTimeout(() => p.kill('SIGKILL'), 120000);
    p.once('close', (code, signal) => {
      clearTimeout(t);
      if (code !== 0) return reject(new Error(`${coordinatorBench} exited with ${code ?? signal}`));
      resolve(JSON.parse(text));
    });
  });
}

/** The client's figures of one openDocument (bench.client's answer), in ms. */
function clientFigures(r) {
  const s = r.startup;
  return {
    openMs: r.openMs,
    firstMutationMs: r.mutations[0],
    secondMutationMs: r.mutations[1],
    thirdMutationMs: r.mutations[2],
    toFirstMutationMs: r.openMs + r.mutations[0],
    resolveMs: s.mutator - s.init,
    compileMs: s['go.mutator'] - s['go.storage'],
    runtimeMs: s.runtime - s.init,
    mutator: r.mutator,
  };
}

/** One fresh profile: the module alone, then the client, then both again after a reload. */
async function profileRun(key, server, docId) {
  const t0 = Date.now();
  const ctx = await launchProfile();
  try {
    const page = await newPage(ctx, key);
    await page.goto(server.url + pagePath);
    await page.waitForFunction(() => window.bench);
    const moduleUrl = `/v1/mutators/${server.hash}.wasm?alone`; // not the URL the client fetches: caches apart
    const alone = () => within(page.evaluate((u) => bench.module({ url: u }), moduleUrl), 60000, `${key}: module alone`);
    const client = async (tag, rows) => {
      const r = await within(page.evaluate((o) => bench.client(o), { docId, tag }), 60000, `${key}: client`);
      if (r.mutator?.hash !== server.hash) throw new Error(`${key}: the replica runs ${JSON.stringify(r.mutator)}`);
      if (r.rows !== rows) throw new Error(`${key}: ${r.rows} rows, want ${rows}`);
      return clientFigures(r);
    };
    const res = {};
    res.alone = await alone();
    res.client = await client('cold', 3);
    await page.reload();
    await page.waitForFunction(() => window.bench);
    res.aloneWarm = await alone();
    // The same document again: its module from the Cache API, its browser
    // build from the HTTP cache (and V8's code cache if it kept one).
    res.clientWarm = await client('warm', 6);
    return res;
  } finally {
    await ctx.close();
    if (VERBOSE) console.error(`${key}: ${Date.now() - t0} ms`);
  }
}

const started = Date.now();
const load = { start: loadavg() };
const result = { date: new Date().toISOString(), runs: 0, env: { node: process.version }, bytes: {}, browser: {}, coordinator: null };
try {
  // The coordinator's half first, alone on the machine.
  result.coordinator = await runCoordinatorBench();
  const hashes = Object.fromEntries(result.coordinator.modules.map((m) => [m.name, m.hash]));
  const { memory_pages: pages, interrupt_version: version } = result.coordinator;

  for (const k of keys) {
    servers[k] = { ...(await startCoordinator({ staticDir: join(repoDir, 'js'), mutator: modules[k] })), hash: hashes[k] };
    // The coordinator serves a module once a document has asked for it.
    const info = await (await fetch(`${servers[k].url}/v1/docs/mutators-warm-up/mutator`)).json();
    if (info.hash !== hashes[k]) throw new Error(`${k}: the coordinator names module ${info.hash}, not ${hashes[k]}`);
    // The build the browser runs, as the coordinator serves it (made now, not during a run).
    const resp = await fetch(`${servers[k].url}/v1/mutators/${hashes[k]}-p${pages}-v${version}.wasm`);
    if (!resp.ok) throw new Error(`${k}: the browser build: ${resp.status}`);
    const build = Buffer.from(await resp.arrayBuffer());
    // (Not the browser build's brotli size too: the Go one takes 8 s more, and it is within a few KB of the module's.)
    const raw = readFileSync(modules[k]);
    result.bytes[k] = { raw: raw.length, brotli: brotli(raw), browserBuild: build.length };
  }
  {
    // Chromium's first start on this machine (its files into the page cache), not timed.
    const b = await launch();
    result.env.chromium = b.version();
    await b.close();
  }
  for (const k of keys) result.browser[k] = [];
  const browserStart = Date.now();
  for (let r = 0; r < RUNS; r++) {
    if (r >= MIN_RUNS && Date.now() - browserStart > BUDGET_S * 1000) break;
    // Rotate the order so that no module always comes first.
    for (let i = 0; i < keys.length; i++) {
      const k = keys[(i + r) % keys.length];
      result.browser[k].push(await profileRun(k, servers[k], `mutators-${r}-${k}`));
    }
    result.runs = r + 1;
  }
} finally {
  clearTimeout(watchdog);
  await stopServers();
}
load.end = loadavg();
result.env.load = load;
result.seconds = (Date.now() - started) / 1000;

// Medians, and what each module adds to the floor.
const pick = (k, part, f) => median(result.browser[k].map((run) => (typeof f === 'function' ? f(run[part]) : run[part]?.[f])));
const S = {};
for (const k of keys) {
  const c = result.coordinator.modules.find((m) => m.name === k);
  S[k] = {
    raw: result.bytes[k].raw,
    brotli: result.bytes[k].brotli,
    browserBuild: result.bytes[k].browserBuild,
    clientCompile: pick(k, 'client', 'compileMs'),
    clientFirst: pick(k, 'client', 'firstMutationMs'),
    clientSecond: pick(k, 'client', 'secondMutationMs'),
    clientThird: pick(k, 'client', 'thirdMutationMs'),
    clientResolve: pick(k, 'client', 'resolveMs'),
    clientRuntime: pick(k, 'client', 'runtimeMs'),
    clientToFirst: pick(k, 'client', 'toFirstMutationMs'),
    warmCompile: pick(k, 'clientWarm', 'compileMs'),
    warmFirst: pick(k, 'clientWarm', 'firstMutationMs'),
    aloneFetch: pick(k, 'alone', 'fetchMs'),
    aloneCompile: pick(k, 'alone', 'compileMs'),
    aloneInstantiate: pick(k, 'alone', 'instantiateMs'),
    aloneMutate: pick(k, 'alone', 'mutateMs'),
    aloneTotal: pick(k, 'alone', 'totalMs'),
    aloneOwn: pick(k, 'alone', (a) => a.totalMs - a.fetchMs), // compile + instantiate + first mutation, without the round trip
    aloneWarmTotal: pick(k, 'aloneWarm', 'totalMs'),
    coordCompile: c.compile_ms,
    coordStart: median(c.start_ms),
    coordAdd: median(c.add_ns) / 1000,
  };
}
const plain = median(result.coordinator.plain_ns) / 1000;
for (const k of keys) {
  // The start cost: compiled and instantiated in the client (its own marks),
  // plus the module's own work in its first mutation, measured alone: the
  // client's first mutation is mostly the engine's (the floor module's
  // takes as long), and varies by tens of ms from run to run.
  S[k].start = S[k].clientCompile + S[k].aloneMutate;
  S[k].coordOverhead = S[k].coordAdd - plain;
}
for (const k of ['as', 'go']) S[k].compileOverFloor = S[k].clientCompile - S.floor.clientCompile;
const ratio = (f) => S.as[f] / S.go[f];
const aims = {
  size: { text: '≤ 100 KB raw', value: S.as.raw, met: S.as.raw <= 100 * 1000 },
  start: { text: "≤ 1/10 of the Go module's browser start cost (compile + instantiate in the client + first mutation)", ratio: ratio('start'), met: ratio('start') <= 0.1 },
  overhead: { text: "per-mutation overhead on the coordinator no worse than the Go module's", ratio: ratio('coordOverhead'), met: S.as.coordOverhead <= S.go.coordOverhead },
};
result.summary = { ...S, plainInsertUs: plain, aims };

// The table.
const kb = (b) => `${(b / 1000).toFixed(1)} KB`;
const msf = (v) => (Number.isFinite(v) ? `${Math.abs(v) < 10 ? v.toFixed(2) : Math.abs(v) < 100 ? v.toFixed(1) : v.toFixed(0)} ms` : '—');
const usf = (v) => `${v.toFixed(1)} µs`;
const x = (v) => (Number.isFinite(v) && v >= 0 ? `${v < 0.1 ? v.toFixed(3) : v.toFixed(2)}×` : '—'); // no ratio of a negative difference
const yes = (a) => (a.met ? 'yes' : '**NO**');
const row = (label, f, fmt, note = '') => [label, fmt(S.as[f]), fmt(S.go[f]), x(ratio(f)), note];
const floor = (f, fmt) => `floor: ${fmt(S.floor[f])}`;
const rows = [
  row('module bytes, raw', 'raw', kb, `${aims.size.text}: ${yes(aims.size)}; ${floor('raw', kb)}`),
  row('module bytes, brotli (quality 11)', 'brotli', kb),
  row('browser build (served beside it, fetched too), raw', 'browserBuild', kb),
  row('**browser start cost**, cold: compile + instantiate in the client + the module\'s first mutation (alone)', 'start', msf, `≤ 0.1×: ${yes(aims.start)}; ${floor('start', msf)}`),
  row('client, cold: compile + instantiate (worker marks go.storage → go.mutator)', 'clientCompile', msf, floor('clientCompile', msf)),
  row('client, cold: compile + instantiate above the floor module\'s', 'compileOverFloor', msf),
  row('client, cold: first mutation (doc.mutate, until applied locally)', 'clientFirst', msf, floor('clientFirst', msf)),
  row('client, cold: second / third mutation', 'clientSecond', msf, `third: ${msf(S.as.clientThird)} / ${msf(S.go.clientThird)}; ${floor('clientSecond', msf)}`),
  row('client, cold: module fetched + SHA-256 + cached (init → mutator, while the Go runtime loads)', 'clientResolve', msf, `Go runtime ready (init → runtime): ${msf(S.as.clientRuntime)} / ${msf(S.go.clientRuntime)}`),
  row('client, cold: openDocument → first mutation applied', 'clientToFirst', msf, floor('clientToFirst', msf)),
  row('module alone, cold: fetch, to the response\'s headers', 'aloneFetch', msf, floor('aloneFetch', msf)),
  row('module alone, cold: compileStreaming (the body streamed in, compiled)', 'aloneCompile', msf, floor('aloneCompile', msf)),
  row('module alone, cold: instantiate + _initialize', 'aloneInstantiate', msf, floor('aloneInstantiate', msf)),
  row('module alone, cold: first sqlsync_mutate (add, SQL stubbed)', 'aloneMutate', msf, floor('aloneMutate', msf)),
  row('module alone, cold: total', 'aloneTotal', msf, floor('aloneTotal', msf)),
  row('module alone, cold: total without the fetch\'s round trip', 'aloneOwn', msf, floor('aloneOwn', msf)),
  row('warm (reload, same document): compile + instantiate in the client', 'warmCompile', msf, floor('warmCompile', msf)),
  row('warm (reload): first mutation in the client', 'warmFirst', msf, floor('warmFirst', msf)),
  row('warm (reload): module alone, total', 'aloneWarmTotal', msf, floor('aloneWarmTotal', msf)),
  row('coordinator: compile (wasmhost.Compile, no cache)', 'coordCompile', msf, floor('coordCompile', msf)),
  row('coordinator: a document\'s first mutation (new instance + add)', 'coordStart', msf, floor('coordStart', msf)),
  row('coordinator: add per mutation', 'coordAdd', usf, `plain SQLite, the same INSERT prepared: ${usf(plain)}; ${floor('coordAdd', usf)}`),
  row('**coordinator: overhead per mutation** (add − plain SQLite)', 'coordOverhead', usf, `≤ Go's: ${yes(aims.overhead)}; ${floor('coordOverhead', usf)}`),
];
const fmtLoad = (l) => l.map((v) => v.toFixed(2)).join(' ');
const c = result.coordinator;
const md = [
  `Measured ${result.date.slice(0, 16).replace('T', ' ')} UTC on ${c.goos}/${c.goarch}, ${c.cpus} CPUs, ${c.go_version}, Chromium ${result.env.chromium}, node ${process.version}; ${result.runs} runs in Chromium per module (a new profile each), medians; coordinator: ${c.rounds} rounds of ${c.n} mutations, medians; load average ${fmtLoad(load.start)} at the start, ${fmtLoad(load.end)} at the end; ${result.seconds.toFixed(0)} s. Floor: the smallest module running the same INSERT (bench/mutators/floor.mjs).`,
  '',
  '| figure | AssemblyScript | Go | AS / Go | aim, baselines |',
  '|---|---|---|---|---|',
  ...rows.map((r) => `| ${r.join(' | ')} |`),
  '',
].join('\n');
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, JSON.stringify(result, null, 2) + '\n');
writeFileSync(out.replace(/\.json$/, '') + '.md', md);
console.log(md);
