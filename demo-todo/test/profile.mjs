// A Chromium CPU profile of the demo as a person meets it (make
// profile-demo): a reload of a list with 20 items, until its rows are on
// screen, and typing 20 items. Chromium's tracing (v8.cpu_profiler)
// samples every thread, the sqlsync worker included; the Go functions of
// the stripped wasm bundle the demo ships are named from an unstripped
// build of the same source (SQLSYNC_NAMES_WASM, default
// bin/sqlsync-names.wasm: same code, plus the name section), matched by
// function index. A third scenario times doc.mutate offline. Writes, per
// scenario, the trace
// (demo-todo/test-results/profile-<scenario>.json, loadable in DevTools'
// Performance panel) and a summary of self time by thread, by part of the
// system and by function (profile-<scenario>.md, also printed).
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { launchProfile, repoDir } from 'sqlsync-test-harness';
import { resultsDir, startDemo } from './app.mjs';
import { typeItems, watchRows } from './timing.mjs';

const namesFile = process.env.SQLSYNC_NAMES_WASM ?? join(repoDir, 'bin', 'sqlsync-names.wasm');
const TOP = Number(process.env.PROFILE_TOP ?? 25);
// How many sqlsync callers to show above each OPFS call.
const DEPTH = Number(process.env.PROFILE_DEPTH ?? 2);

/** Reads the function names of a wasm module's name section, by function index. */
function wasmNames(file) {
  const b = readFileSync(file);
  let p = 8;
  const u32 = () => {
    let r = 0;
    let shift = 0;
    for (;;) {
      const x = b[p++];
      r += (x & 0x7f) * 2 ** shift;
      if (x < 0x80) return r;
      shift += 7;
    }
  };
  const names = new Map();
  while (p < b.length) {
    const id = b[p++];
    const size = u32();
    const end = p + size;
    if (id === 0) {
      const n = u32();
      const name = b.subarray(p, p + n).toString();
      p += n;
      if (name === 'name') {
        while (p < end) {
          const sub = b[p++];
          const subSize = u32();
          const subEnd = p + subSize;
          if (sub === 1) {
            for (let count = u32(); count > 0; count--) {
              const idx = u32();
              const len = u32();
              names.set(idx, b.subarray(p, p + len).toString());
              p += len;
            }
          }
          p = subEnd;
        }
      }
    }
    p = end;
  }
  return names;
}

// Go's wasm linker writes a package path with '_' for '/' (and '.' in
// the domain kept): github.com_ncruces_go_sqlite3_wasm_v6.__Module_.X.
const goPkg = (fn) => fn.replaceAll('_', '/');

/** The part of the system a function belongs to, for the summary. */
function partOf(fn, url) {
  const g = goPkg(fn);
  if (/^\(garbage collector\)$|^runtime\.(gc|mark|scan|sweep|bgsweep|bgscavenge|greyobject|findObject|heapBits|wbBuf|typePointers)/.test(fn)) return 'garbage collection (Go and V8)';
  if (/^runtime\.(mallocgc|memclr|memmove|newobject|makeslice|growslice|nextFree|typedmemmove)/.test(fn)) return 'Go allocation and copying';
  if (/^runtime\./.test(fn)) return 'Go runtime, other';
  if (/go\/sqlite3\/wasm/.test(g)) return 'SQLite (wasm2go)';
  if (/ncruces\/go\/sqlite3/.test(g)) return 'SQLite Go API';
  if (/^crypto/.test(g)) return 'hashing (SHA-256)';
  if (/^syscall\/js\.|^(wasm-to-js|js-to-wasm)$/.test(fn) || /wasm_exec/.test(url)) return 'Go ⇄ JavaScript calls';
  if (/^encoding\/json|fxamacker\/cbor/.test(g)) return 'JSON / CBOR encoding';
  if (/sqlsync\/go\/sqlsync\/vfs/.test(g)) return 'sqlsync VFS and stores';
  if (/sqlsync\/go\/sqlsync\/(shared\/engine|client|shared\/pendinglog)/.test(g)) return 'sqlsync engine, client and pending log';
  if (/sqlsync\/go\/sqlsync\/wasm\/jsmutator/.test(g)) return 'mutator host (jsmutator)';
  if (/sqlsync\/go\/sqlsync/.test(g)) return 'sqlsync, other';
  if (/^\$?(func\d+|wasm-function)/.test(fn)) return 'wasm, unnamed (the mutator module)';
  if (!url && /^(read|write|flush|truncate|getSize|close|createSyncAccessHandle|getDirectoryHandle|getFileHandle|removeEntry|move)$/.test(fn)) return 'OPFS file access';
  if (!url && /^(postMessage|onmessage|decode|encode)$/.test(fn)) return 'messages between threads';
  if (fn === '(program)') return 'browser, outside JavaScript (compile, parse, layout…)';
  if (fn === '(idle)') return 'idle';
  if (/^(react|scheduler)|react-dom/.test(url) || /\/assets\/index-/.test(url)) return 'page JavaScript (React, app)';
  if (url) return 'JavaScript';
  return 'browser, other';
}

/** Self time by thread and function from the trace's Profile/ProfileChunk events. */
function summarise(trace, names) {
  const events = Array.isArray(trace) ? trace : trace.traceEvents;
  const threadName = new Map();
  for (const e of events) if (e.ph === 'M' && e.name === 'thread_name') threadName.set(`${e.pid}:${e.tid}`, e.args.name);
  const profiles = new Map(); // id -> {thread, nodes: Map, self: Map}
  for (const e of events) {
    if (e.name === 'Profile') profiles.set(`${e.pid}:${e.id}`, { thread: threadName.get(`${e.pid}:${e.tid}`) ?? `${e.pid}:${e.tid}`, nodes: new Map(), self: new Map() });
  }
  for (const e of events) {
    if (e.name !== 'ProfileChunk') continue;
    const prof = profiles.get(`${e.pid}:${e.id}`);
    if (!prof) continue;
    const cp = e.args.data.cpuProfile ?? {};
    for (const n of cp.nodes ?? []) prof.nodes.set(n.id, { ...n.callFrame, parent: n.parent });
    const samples = cp.samples ?? [];
    const deltas = e.args.data.timeDeltas ?? [];
    for (let i = 0; i < samples.length; i++) {
      const dt = (deltas[i + 1] ?? 0) / 1000; // µs -> ms, the time until the next sample
      prof.self.set(samples[i], (prof.self.get(samples[i]) ?? 0) + dt);
    }
  }
  const byThread = new Map();
  for (const prof of profiles.values()) {
    const t = byThread.get(prof.thread) ?? { total: 0, parts: new Map(), fns: new Map(), callers: new Map() };
    const named = (id) => {
      const cf = prof.nodes.get(id) ?? {};
      const fn = cf.functionName || '(anonymous)';
      const m = /^\$?(?:func|wasm-function\[)(\d+)\]?$/.exec(fn);
      return m && names.has(Number(m[1])) ? names.get(Number(m[1])) : fn;
    };
    for (const [id, ms] of prof.self) {
      const cf = prof.nodes.get(id) ?? {};
      let fn = cf.functionName || '(anonymous)';
      const m = /^\$?(?:func|wasm-function\[)(\d+)\]?$/.exec(fn);
      if (m && names.has(Number(m[1]))) fn = names.get(Number(m[1]));
      const part = partOf(fn, cf.url ?? '');
      if (part === 'idle') continue;
      t.total += ms;
      t.parts.set(part, (t.parts.get(part) ?? 0) + ms);
      t.fns.set(fn, (t.fns.get(fn) ?? 0) + ms);
      if (part === 'OPFS file access') {
        // Who asked: the nearest sqlsync Go function up the stack.
        const chain = [];
        for (let up = cf.parent; up !== undefined && chain.length < DEPTH; up = prof.nodes.get(up)?.parent) {
          const n = named(up);
          if (/sqlsync\/go\/sqlsync/.test(goPkg(n)) && !/vfs\/opfs|internal\/jsinterop/.test(goPkg(n))) {
            chain.push(n.replace(/^github\.com_sqlsync_go_sqlsync_/, ''));
          }
        }
        const caller = chain.join(' ← ') || '(none)';
        const key = `${fn} ← ${caller}`;
        t.callers.set(key, (t.callers.get(key) ?? 0) + ms);
      }
    }
    byThread.set(prof.thread, t);
  }
  return [...byThread.entries()].filter(([, t]) => t.total > 1).sort((a, b) => b[1].total - a[1].total);
}

function report(title, summary) {
  const lines = [`\n### ${title}\n`];
  for (const [thread, t] of summary.slice(0, 2)) {
    lines.push(`**${thread}**: ${t.total.toFixed(0)} ms of CPU\n`);
    lines.push('| part | ms | share |', '|---|---|---|');
    for (const [part, ms] of [...t.parts].sort((a, b) => b[1] - a[1])) lines.push(`| ${part} | ${ms.toFixed(0)} | ${((100 * ms) / t.total).toFixed(0)}% |`);
    lines.push('', `Top ${TOP} functions by self time:`, '', '| function | ms |', '|---|---|');
    for (const [fn, ms] of [...t.fns].sort((a, b) => b[1] - a[1]).slice(0, TOP)) lines.push(`| \`${fn.replaceAll('|', '\\|')}\` | ${ms.toFixed(1)} |`);
    if (t.callers.size > 0) {
      lines.push('', 'OPFS calls by the sqlsync function that made them:', '', '| call ← caller | ms |', '|---|---|');
      for (const [k, ms] of [...t.callers].sort((a, b) => b[1] - a[1]).slice(0, 10)) lines.push(`| \`${k}\` | ${ms.toFixed(1)} |`);
    }
    lines.push('');
  }
  return lines.join('\n');
}

const names = wasmNames(namesFile);
if (names.size === 0) throw new Error(`${namesFile} has no function names: build it without -s`);
if (process.argv[2]) {
  // Summarise traces written earlier: node profile.mjs <trace.json>...
  for (const f of process.argv.slice(2)) console.log(report(f, summarise(JSON.parse(readFileSync(f, 'utf8')), names)));
  process.exit(0);
}
const categories = ['disabled-by-default-v8.cpu_profiler', 'v8.execute', 'devtools.timeline', 'disabled-by-default-devtools.timeline'];
mkdirSync(resultsDir, { recursive: true });
const server = await startDemo();
let out = `The demo in Chromium, CPU profiled (${new Date().toISOString().slice(0, 10)}; Chromium's sampling profiler, every thread; self time)\n`;
try {
  const ctx = await launchProfile();
  const page = await ctx.newPage();
  await page.addInitScript(watchRows, 20);
  // Seed the list and warm the HTTP cache: a first visit.
  await page.goto(`${server.url}/#/list/profiled`);
  await page.waitForSelector('#new-item', { timeout: 120000 });
  await page.evaluate(typeItems, 20);
  await page.waitForFunction(() => document.querySelector('.badge')?.getAttribute('data-pending') === '0', null, { timeout: 60000 });

  const profile = async (scenario, title, run) => {
    // A persistent context has no Browser object to trace with: drive
    // tracing over the page's DevTools session (it records every process).
    const cdp = await ctx.newCDPSession(page);
    const events = [];
    cdp.on('Tracing.dataCollected', (e) => events.push(...e.value));
    const done = new Promise((r) => cdp.once('Tracing.tracingComplete', r));
    await cdp.send('Tracing.start', { traceConfig: { includedCategories: categories }, transferMode: 'ReportEvents' });
    const detail = await run();
    await cdp.send('Tracing.end');
    await done;
    await cdp.detach();
    const trace = { traceEvents: events };
    writeFileSync(join(resultsDir, `profile-${scenario}.json`), JSON.stringify(trace));
    const md = report(`${title}${detail ? ` (${detail})` : ''}`, summarise(trace, names));
    writeFileSync(join(resultsDir, `profile-${scenario}.md`), md);
    out += md;
  };
  await profile('reload', 'Reload to 20 rows on screen', async () => {
    await page.reload();
    await page.waitForFunction(() => window.__rowsAt !== undefined, null, { timeout: 120000 });
    return `rows on screen at ${(await page.evaluate(() => window.__rowsAt)).toFixed(0)} ms`;
  });
  await page.waitForFunction(() => document.querySelector('.badge')?.getAttribute('data-state') === 'online', null, { timeout: 60000 });
  await page.evaluate(typeItems, 5); // warm-up
  await profile('typing', 'Typing 20 items', async () => {
    const times = await page.evaluate(typeItems, 20);
    const s = [...times].sort((a, b) => a - b);
    return `type-to-screen p50 ${s[10].toFixed(0)} ms, max ${s[19].toFixed(0)} ms`;
  });
  await profile('mutate', 'doc.mutate until durable, offline, 100 times', async () => {
    const times = await page.evaluate(async () => {
      const doc = window.sqlsyncDoc;
      await doc.setOnline(false);
      const times = [];
      for (let i = 0; i < 100; i++) {
        const t0 = performance.now();
        await doc.mutate('add', { id: crypto.randomUUID(), title: `m${i}` });
        times.push(performance.now() - t0);
      }
      await doc.setOnline(true);
      return times;
    });
    const s = [...times].sort((a, b) => a - b);
    return `p50 ${s[50].toFixed(1)} ms, p90 ${s[90].toFixed(1)} ms`;
  });
  await ctx.close();
} finally {
  await server.stop();
}
console.log(out);
