// What a mutator module costs, for the todo demo's two modules (make
// bench-mutators, part of make bench): the AssemblyScript one
// (bin/mutators/todo.wasm) against the Go one (bin/mutators/todo-go.wasm),
// measured in the same run.
//
//   - bytes: each module raw and with brotli (node's zlib, quality 11,
//     window 2^24), and the browser build the coordinator serves beside it
//     (rewritten by package interrupt: loop-head ticks, a memory cap),
//     which a browser fetches too, raw;
//   - in Chromium (Debian's, through sqlsync-test-harness), each run on a
//     new, empty profile on disk (no HTTP cache, no V8 code cache):
//       client: the test page (js/test/bench/mutator-start.html) opens a
//         document through the real client against a coordinator that runs
//         the module, then runs the todo app's add three times. From the
//         client's own startup marks: the module resolved (fetched,
//         SHA-256 checked, put in the Cache API: worker marks init ->
//         mutator, while the Go runtime loads), and compiled and
//         instantiated in the worker (go.storage -> go.mutator: the browser
//         build fetched and compiled by WebAssembly.compileStreaming, its
//         imports and exports checked, an instance started, _initialize);
//         then openDocument to the first mutation applied locally, and each
//         mutation's latency. A replica with no module (mutator 'none',
//         queue-only) is the client's own floor.
//       module alone: in the same profile before the client opens the
//         document, WebAssembly.compileStreaming on the fetch of the module,
//         WebAssembly.instantiate with the host's imports stubbed,
//         _initialize and one sqlsync_mutate of add (its SQL answered by
//         the stub).
//     Then the page is reloaded and both are measured again (warm: HTTP
//     cache, Cache API and V8's caches as the first visit left them).
//   - on the coordinator (bin/sqlsync-mutator-bench, package wasmhost):
//     compiling each module, a document's first mutation (a new instance
//     and add), and add per mutation (hosttest.BenchmarkInsert) against
//     plain SQLite running the same INSERT prepared once.
//
// Medians of the runs; the ratios are AS / Go. Writes BENCH_MUTATORS_OUT
// (default bench/results/mutators.json) and a Markdown table beside it
// (.md), and prints the table. Knobs: BENCH_MUTATORS_RUNS (5; fewer, but
// at least 3, once the runs in Chromium have taken BENCH_MUTATORS_BUDGET_S,
// 35 s), BENCH_MUTATORS_ROUNDS and BENCH_MUTATORS_N (the coordinator's
// rounds and mutations per round: 11, 5000), BENCH_MUTATORS_TIMEOUT_S (240:
// the whole run is abandoned past it), BENCH_MUTATORS_VERBOSE (each
// profile's time on stderr). Needs bin/sqlsync, bin/mutators, js/dist and
// bin/sqlsync-mutator-bench, which make bench-mutators builds.
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { brotliCompressSync, constants } from 'node:zlib';
import { launch, launchProfile, newPage, repoDir, startCoordinator } from 'sqlsync-test-harness';

const RUNS = Number(process.env.BENCH_MUTATORS_RUNS ?? 5);
const MIN_RUNS = Math.min(RUNS, 3);
const BUDGET_S = Number(process.env.BENCH_MUTATORS_BUDGET_S ?? 35);
const ROUNDS = Number(process.env.BENCH_MUTATORS_ROUNDS ?? 11);
const N = Number(process.env.BENCH_MUTATORS_N ?? 5000);
const TIMEOUT_S = Number(process.env.BENCH_MUTATORS_TIMEOUT_S ?? 240);
const out = process.env.BENCH_MUTATORS_OUT ?? join(repoDir, 'bench', 'results', 'mutators.json');
const coordinatorBench = process.env.SQLSYNC_MUTATOR_BENCH ?? join(repoDir, 'bin', 'sqlsync-mutator-bench');
const pagePath = '/test/bench/mutator-start.html';

/** The modules compared, AssemblyScript first: ratios are as / go. */
const modules = {
  as: { label: 'AssemblyScript', path: process.env.SQLSYNC_TODO_WASM ?? join(repoDir, 'bin', 'mutators', 'todo.wasm') },
  go: { label: 'Go', path: process.env.SQLSYNC_TODO_GO_WASM ?? join(repoDir, 'bin', 'mutators', 'todo-go.wasm') },
};

// The whole run is bounded: past TIMEOUT_S it stops, whatever it was doing.
const stoppers = [];
const watchdog = setTimeout(async () => {
  console.error(`bench-mutators: still running after ${TIMEOUT_S} s: giving up`);
  for (const stop of stoppers) await stop().catch(() => {});
  process.exit(1);
}, TIMEOUT_S * 1000);

/** Rejects if p takes longer than ms. */
function within(p, ms, what) {
  let t;
  return Promise.race([p, new Promise((_, reject) => (t = setTimeout(() => reject(new Error(`${what}: no answer after ${ms} ms`)), ms)))]).finally(() =>
    clearTimeout(t),
  );
}

const median = (xs) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const brotli = (buf) =>
  brotliCompressSync(buf, {
    params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_LGWIN]: 24, [constants.BROTLI_PARAM_SIZE_HINT]: buf.length },
  }).length;

/** Runs the coordinator's half (bin/sqlsync-mutator-bench) and returns its JSON. */
function runCoordinatorBench() {
  return new Promise((resolve, reject) => {
    const args = ['-rounds', String(ROUNDS), '-n', String(N), ...Object.entries(modules).map(([k, m]) => `${k}=${m.path}`)];
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
  const phases = { launch: Date.now() - t0 };
  try {
    const page = await newPage(ctx, key);
    const url = server.url + pagePath;
    await page.goto(url);
    await page.waitForFunction(() => window.bench);
    const res = {};
    if (key !== 'none') {
      res.alone = await within(page.evaluate((u) => bench.module({ url: u }), `/v1/mutators/${server.hash}.wasm?alone`), 60000, 'module alone');
    }
    const opts = key === 'none' ? { docId, mutator: 'none' } : { docId };
    const cold = await within(page.evaluate((o) => bench.client(o), opts), 60000, 'client');
    if (key !== 'none' && cold.rows !== 3) throw new Error(`${key}: ${cold.rows} rows after 3 adds`);
    if (key !== 'none' && cold.mutator?.hash !== server.hash) throw new Error(`${key}: the replica runs ${JSON.stringify(cold.mutator)}`);
    if (key === 'none' && cold.mutator?.kind !== 'none') throw new Error(`none: the replica runs ${JSON.stringify(cold.mutator)}`);
    res.client = clientFigures(cold);
    if (key !== 'none') {
      await page.reload();
      await page.waitForFunction(() => window.bench);
      res.aloneWarm = await within(page.evaluate((u) => bench.module({ url: u }), `/v1/mutators/${server.hash}.wasm?alone`), 60000, 'module alone');
      // The same document again: its module from the Cache API, its
      // browser build from the HTTP cache (and V8's code cache if it kept one).
      const warm = await within(page.evaluate((o) => bench.client(o), { docId, tag: 'warm' }), 60000, 'client');
      if (warm.rows !== 6) throw new Error(`${key}: ${warm.rows} rows after 6 adds`);
      res.clientWarm = clientFigures(warm);
    }
    phases.run = Date.now() - t0 - phases.launch;
    return res;
  } finally {
    await ctx.close();
    phases.total = Date.now() - t0;
    if (process.env.BENCH_MUTATORS_VERBOSE) console.error(key, JSON.stringify(phases));
  }
}

const started = Date.now();
const load = { start: loadavg() };
const result = { date: new Date().toISOString(), runs: 0, env: {}, bytes: {}, browser: {}, coordinator: null };

// The coordinator's half first, alone on the machine.
result.coordinator = await runCoordinatorBench();
const hashes = Object.fromEntries(result.coordinator.modules.map((m) => [m.name, m.hash]));

const servers = {}; // by module; a queue-only replica ('none') uses the first one's
const stopServers = async () => {
  for (const k of Object.keys(servers)) await servers[k].stop();
};
stoppers.push(stopServers);
try {
  for (const [k, m] of Object.entries(modules)) {
    servers[k] = { ...(await startCoordinator({ staticDir: join(repoDir, 'js'), mutator: m.path })), hash: hashes[k] };
    const raw = readFileSync(m.path);
    // The coordinator serves a module once a document has asked for it.
    const info = await (await fetch(`${servers[k].url}/v1/docs/mutators-warm-up/mutator`)).json();
    if (info.hash !== hashes[k]) throw new Error(`${k}: the coordinator names module ${info.hash}, not ${hashes[k]}`);
    // The build the browser runs, as the coordinator serves it (built now, not during a run).
    const buildUrl = `${servers[k].url}/v1/mutators/${hashes[k]}-p${result.coordinator.memory_pages}-v${result.coordinator.interrupt_version}.wasm`;
    const resp = await fetch(buildUrl);
    if (!resp.ok) throw new Error(`${buildUrl}: ${resp.status}`);
    const build = Buffer.from(await resp.arrayBuffer());
    // (Brotli at quality 11 takes 8 s for the Go module: the browser build, a few KB larger, is not compressed too.)
    result.bytes[k] = { raw: raw.length, brotli: brotli(raw), browserBuild: build.length };
  }
  {
    // Chromium's first start on this machine (its files into the page cache), not timed.
    const b = await launch();
    result.env.chromium = b.version();
    await b.close();
  }
  const keys = ['as', 'go', 'none'];
  for (const k of keys) result.browser[k] = [];
  const browserStart = Date.now();
  for (let r = 0; r < RUNS; r++) {
    if (r >= MIN_RUNS && Date.now() - browserStart > BUDGET_S * 1000) break;
    // Rotate the order so that no variant always comes first.
    for (let i = 0; i < keys.length; i++) {
      const k = keys[(i + r) % keys.length];
      result.browser[k].push(await profileRun(k, servers[k === 'none' ? 'as' : k], `mutators-${r}-${k}`));
    }
    result.runs = r + 1;
  }
} finally {
  await stopServers();
  clearTimeout(watchdog);
}
load.end = loadavg();
result.env.load = load;
result.env.node = process.version;
result.seconds = (Date.now() - started) / 1000;

// Medians and ratios.
const pick = (k, part, f) => median(result.browser[k].map((run) => run[part]?.[f]));
const S = {};
for (const k of ['as', 'go']) {
  const c = result.coordinator.modules.find((m) => m.name === k);
  S[k] = {
    raw: result.bytes[k].raw,
    brotli: result.bytes[k].brotli,
    browserBuild: result.bytes[k].browserBuild,
    clientResolve: pick(k, 'client', 'resolveMs'),
    clientCompile: pick(k, 'client', 'compileMs'),
    clientFirst: pick(k, 'client', 'firstMutationMs'),
    clientSecond: pick(k, 'client', 'secondMutationMs'),
    clientToFirst: pick(k, 'client', 'toFirstMutationMs'),
    clientRuntime: pick(k, 'client', 'runtimeMs'),
    warmCompile: pick(k, 'clientWarm', 'compileMs'),
    warmFirst: pick(k, 'clientWarm', 'firstMutationMs'),
    warmToFirst: pick(k, 'clientWarm', 'toFirstMutationMs'),
    aloneFetch: pick(k, 'alone', 'fetchMs'),
    aloneCompile: pick(k, 'alone', 'compileMs'),
    aloneInstantiate: pick(k, 'alone', 'instantiateMs'),
    aloneMutate: pick(k, 'alone', 'mutateMs'),
    aloneTotal: pick(k, 'alone', 'totalMs'),
    aloneWarmTotal: pick(k, 'aloneWarm', 'totalMs'),
    coordCompile: c.compile_ms,
    coordStart: median(c.start_ms),
    coordAdd: median(c.add_ns) / 1000,
  };
  // What the module adds to a cold start: compiled and instantiated in the
  // worker (the client's marks), plus its first mutation's own work (the
  // module alone: the client's first mutation also holds the engine's
  // first statement and commit, which are the same with either module).
  S[k].startCost = S[k].clientCompile + S[k].aloneMutate;
}
const plain = median(result.coordinator.plain_ns) / 1000;
for (const k of ['as', 'go']) S[k].coordOverhead = S[k].coordAdd - plain;
const none = {
  first: pick('none', 'client', 'firstMutationMs'),
  toFirst: pick('none', 'client', 'toFirstMutationMs'),
  runtime: pick('none', 'client', 'runtimeMs'),
};
const ratio = (f) => S.as[f] / S.go[f];
const aims = {
  size: { text: '≤ 100 KB raw', value: S.as.raw, met: S.as.raw <= 100 * 1000 },
  start: { text: "≤ 1/10 of the Go module's browser start cost", value: ratio('startCost'), met: ratio('startCost') <= 0.1 },
  startAlone: { text: '≤ 1/10 (the module alone: compile + instantiate + first mutation)', value: ratio('aloneTotal'), met: ratio('aloneTotal') <= 0.1 },
  overhead: { text: "per-mutation overhead on the coordinator no worse than the Go module's", value: ratio('coordOverhead'), met: S.as.coordOverhead <= S.go.coordOverhead },
};
result.summary = { as: S.as, go: S.go, plainInsertUs: plain, queueOnly: none, aims };

// The table.
const kb = (b) => `${(b / 1000).toFixed(1)} KB`;
const msf = (v) => (Number.isFinite(v) ? `${v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : v.toFixed(0)} ms` : '—');
const usf = (v) => `${v.toFixed(1)} µs`;
const x = (v) => (Number.isFinite(v) ? `${v < 0.1 ? v.toFixed(3) : v.toFixed(2)}×` : '—');
const yes = (a) => (a.met ? 'yes' : '**NO**');
const rows = [
  ['module bytes, raw', kb(S.as.raw), kb(S.go.raw), x(ratio('raw')), `${aims.size.text}: ${yes(aims.size)}`],
  ['module bytes, brotli (q 11)', kb(S.as.brotli), kb(S.go.brotli), x(ratio('brotli')), ''],
  ['browser build (served beside it, fetched too), raw', kb(S.as.browserBuild), kb(S.go.browserBuild), x(ratio('browserBuild')), ''],
  ['**browser start cost**: compile + instantiate in the client + the module\'s first mutation (alone)', msf(S.as.startCost), msf(S.go.startCost), x(ratio('startCost')), `≤ 0.1×: ${yes(aims.start)}`],
  ['client, cold: compile + instantiate (worker marks go.storage → go.mutator)', msf(S.as.clientCompile), msf(S.go.clientCompile), x(ratio('clientCompile')), ''],
  ['client, cold: module fetched + SHA-256 + cached (init → mutator, beside the Go runtime\'s load)', msf(S.as.clientResolve), msf(S.go.clientResolve), x(ratio('clientResolve')), `Go runtime ready: ${msf(S.as.clientRuntime)} / ${msf(S.go.clientRuntime)}`],
  ['client, cold: first mutation (doc.mutate, applied locally)', msf(S.as.clientFirst), msf(S.go.clientFirst), x(ratio('clientFirst')), `queue-only replica: ${msf(none.first)}`],
  ['client, cold: second mutation', msf(S.as.clientSecond), msf(S.go.clientSecond), x(ratio('clientSecond')), ''],
  ['client, cold: openDocument → first mutation applied', msf(S.as.clientToFirst), msf(S.go.clientToFirst), x(ratio('clientToFirst')), `queue-only replica: ${msf(none.toFirst)}`],
  ['module alone, cold: fetch, to the response\'s headers', msf(S.as.aloneFetch), msf(S.go.aloneFetch), x(ratio('aloneFetch')), ''],
  ['module alone, cold: compileStreaming (the body streamed in, compiled)', msf(S.as.aloneCompile), msf(S.go.aloneCompile), x(ratio('aloneCompile')), ''],
  ['module alone, cold: instantiate + _initialize', msf(S.as.aloneInstantiate), msf(S.go.aloneInstantiate), x(ratio('aloneInstantiate')), ''],
  ['module alone, cold: first sqlsync_mutate (add)', msf(S.as.aloneMutate), msf(S.go.aloneMutate), x(ratio('aloneMutate')), ''],
  ['module alone, cold: total', msf(S.as.aloneTotal), msf(S.go.aloneTotal), x(ratio('aloneTotal')), `≤ 0.1×: ${yes(aims.startAlone)}`],
  ['warm (reload): client compile + instantiate', msf(S.as.warmCompile), msf(S.go.warmCompile), x(ratio('warmCompile')), ''],
  ['warm (reload): client first mutation', msf(S.as.warmFirst), msf(S.go.warmFirst), x(ratio('warmFirst')), ''],
  ['warm (reload): module alone, total', msf(S.as.aloneWarmTotal), msf(S.go.aloneWarmTotal), x(ratio('aloneWarmTotal')), ''],
  ['coordinator: compile (wasmhost.Compile, no cache)', msf(S.as.coordCompile), msf(S.go.coordCompile), x(ratio('coordCompile')), ''],
  ['coordinator: a document\'s first mutation (new instance + add)', msf(S.as.coordStart), msf(S.go.coordStart), x(ratio('coordStart')), ''],
  ['coordinator: add per mutation', usf(S.as.coordAdd), usf(S.go.coordAdd), x(ratio('coordAdd')), `plain SQLite, same INSERT prepared: ${usf(plain)}`],
  ['**coordinator: overhead per mutation** (add − plain SQLite)', usf(S.as.coordOverhead), usf(S.go.coordOverhead), x(ratio('coordOverhead')), `≤ Go's: ${yes(aims.overhead)}`],
];
const fmtLoad = (l) => l.map((v) => v.toFixed(2)).join(' ');
const md = [
  `Measured ${result.date.slice(0, 16).replace('T', ' ')} UTC, ${result.coordinator.cpus} CPUs, ${result.coordinator.go_version}, Chromium ${result.env.chromium}, node ${process.version}; ${result.runs} runs in Chromium (a new profile each), medians; coordinator: ${ROUNDS} rounds of ${N} mutations, medians; load average ${fmtLoad(load.start)} at the start, ${fmtLoad(load.end)} at the end; ${result.seconds.toFixed(0)} s.`,
  '',
  '| figure | AssemblyScript | Go | AS / Go | aim, baseline |',
  '|---|---|---|---|---|',
  ...rows.map((r) => `| ${r.join(' | ')} |`),
  '',
].join('\n');
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, JSON.stringify(result, null, 2) + '\n');
writeFileSync(out.replace(/\.json$/, '') + '.md', md);
console.log(md);
