// doc.mutate until durable, offline, on OPFS, in Chromium: the figure of
// make bench-demo's "durable one-row write" alone, cheap enough to repeat,
// and able to compare builds in one session.
//
//   node demo-todo/test/mutate-latency.mjs [distDir...]
//
// Each distDir is a built demo (default demo-todo/dist), for instance a copy
// of it with another wasm bundle in assets/ (same name, .br and .gz removed).
// For each of MUTATE_ROUNDS rounds (default 3), each distDir in turn gets a
// coordinator serving it and, for each mode, a new Chromium profile on disk
// and a new list seeded with 20 items; then MUTATE_WARM (50) mutations
// untimed and MUTATE_N (200) timed in the page, offline, back to back, as
// bench.mjs times them (the list grows from 20 to 270 items: what a
// mutation costs grows with it). Prints p50 / p90 per round and pooled.
//
// MUTATE_MODES (default "demo") lists how to time: "demo" as bench.mjs
// does, the page rendering the list's rows and status as they come; "quiet"
// the same with the page's document dropping the worker's rows and status
// messages while timed (window.sqlsyncDoc.w, a private field of the
// package's document, wrapped): what doc.mutate costs when the page's
// thread has nothing else to do, the worker's time and the messages' hops;
// "norows" and "nostatus" drop only the one kind.
//
// MUTATE_PROBE=1 prints, after each timing, what the worker's
// globalThis.__tprobe() returns, if a build defines it: a hook for
// temporary timing probes in Go.
//
// MUTATE_TRACE=file.json also writes, for the first distDir's first round
// and first mode, a Chromium trace (every thread: tasks, V8 samples) of
// MUTATE_TRACE_N (20) more mutations timed as that mode times them, each
// between performance marks "m<i>" and "m<i>.end"; MUTATE_TRACE_CATEGORIES
// overrides its categories (add disabled-by-default-v8.cpu_profiler.hires
// for finer samples, at a cost). mutate-trace.mjs summarises it.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { launchProfile, percentile, startCoordinator } from 'sqlsync-test-harness';
import { demoDir } from './app.mjs';
import { typeItems, visit, watchRows } from './timing.mjs';

const dists = process.argv.length > 2 ? process.argv.slice(2) : [join(demoDir, 'dist')];
const ROUNDS = Number(process.env.MUTATE_ROUNDS ?? 3);
const N = Number(process.env.MUTATE_N ?? 200);
const WARM = Number(process.env.MUTATE_WARM ?? 50);
const MODES = (process.env.MUTATE_MODES ?? 'demo').split(',');
// The worker's messages each mode drops before the page's document sees them.
const dropped = { demo: [], quiet: ['rows', 'status'], norows: ['rows'], nostatus: ['status'] };
for (const m of MODES) if (!dropped[m]) throw new Error(`MUTATE_MODES: unknown mode ${m} (want ${Object.keys(dropped)})`);
const TRACE = process.env.MUTATE_TRACE;
const TRACE_N = Number(process.env.MUTATE_TRACE_N ?? 20);
const categories = (
  process.env.MUTATE_TRACE_CATEGORIES ??
  'toplevel,v8,v8.execute,devtools.timeline,disabled-by-default-devtools.timeline,blink.user_timing,disabled-by-default-v8.cpu_profiler'
).split(',');

/** In the page: n mutations back to back, each timed, marked if marks, with the worker's messages of the kinds in drop dropped. */
async function mutations([n, drop, marks]) {
  const doc = window.sqlsyncDoc;
  const onmessage = doc.w.onmessage;
  if (drop.length) doc.w.onmessage = (ev) => drop.includes(ev.data.t) || onmessage(ev);
  const times = [];
  try {
    for (let i = 0; i < n; i++) {
      if (marks) performance.mark(`m${i}`);
      const t0 = performance.now();
      await doc.mutate('add', { id: crypto.randomUUID(), title: `m${i}` });
      times.push(performance.now() - t0);
      if (marks) performance.mark(`m${i}.end`);
    }
    if (marks) await new Promise((res) => setTimeout(res, 100));
  } finally {
    doc.w.onmessage = onmessage;
  }
  return times;
}

async function trace(ctx, page, drop) {
  const cdp = await ctx.newCDPSession(page);
  const events = [];
  cdp.on('Tracing.dataCollected', (e) => events.push(...e.value));
  const done = new Promise((res) => cdp.once('Tracing.tracingComplete', res));
  await cdp.send('Tracing.start', { traceConfig: { includedCategories: categories }, transferMode: 'ReportEvents' });
  const traced = await page.evaluate(mutations, [TRACE_N, drop, true]);
  await cdp.send('Tracing.end');
  await done;
  await cdp.detach();
  writeFileSync(TRACE, JSON.stringify({ traceEvents: events }));
  console.log(`trace of ${TRACE_N} mutations (p50 ${f(percentile(traced, 0.5))} ms while traced) in ${TRACE}`);
}

const f = (x) => x.toFixed(1);
const all = new Map(dists.flatMap((d) => MODES.map((m) => [`${d} ${m}`, []])));

for (let r = 0; r < ROUNDS; r++) {
  for (const [di, dist] of dists.entries()) {
    const server = await startCoordinator({ staticDir: dist });
    try {
      for (const [mi, mode] of MODES.entries()) {
        const ctx = await launchProfile();
        try {
          const page = await ctx.newPage();
          page.on('pageerror', (e) => console.error('pageerror:', e.message));
          await page.addInitScript(watchRows, 0);
          await visit(page, `${server.url}/#/list/timed-${mode}`);
          await page.waitForSelector('#new-item', { timeout: 120000 });
          await page.evaluate(typeItems, 20);
          await page.evaluate(() => window.sqlsyncDoc.setOnline(false));
          await page.evaluate(mutations, [WARM, dropped[mode], false]);
          if (process.env.MUTATE_PROBE) for (const w of page.workers()) await w.evaluate(() => globalThis.__tprobe?.()); // reset
          const times = await page.evaluate(mutations, [N, dropped[mode], false]);
          all.get(`${dist} ${mode}`).push(...times);
          if (process.env.MUTATE_PROBE) {
            // A build with temporary timing probes in Go defines
            // globalThis.__tprobe in the worker (JSON of their figures).
            for (const w of page.workers()) console.log(await w.evaluate(() => globalThis.__tprobe?.() ?? 'no probes'));
          }
          console.log(`round ${r + 1} ${dist} ${mode}: p50 ${f(percentile(times, 0.5))} ms, p90 ${f(percentile(times, 0.9))} ms (n=${times.length})`);
          if (TRACE && r === 0 && di === 0 && mi === 0) await trace(ctx, page, dropped[mode]);
        } finally {
          await ctx.close();
        }
      }
    } finally {
      await server.stop();
    }
  }
}
console.log('');
for (const [key, xs] of all) {
  console.log(`${key}: p50 ${f(percentile(xs, 0.5))} ms, p90 ${f(percentile(xs, 0.9))} ms, max ${f(Math.max(...xs))} ms (n=${xs.length})`);
}
