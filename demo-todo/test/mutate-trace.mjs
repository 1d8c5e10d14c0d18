// Summarises a trace written by mutate-latency.mjs (MUTATE_TRACE): where
// each doc.mutate's time went, between the page's thread and the worker's.
//
//   node demo-todo/test/mutate-trace.mjs trace.json [names.wasm]
//
// For each mutation (page marks m<i> .. m<i>.end) it finds the request's
// message (its traceId) and the reply's, and splits the call into:
//   to worker   mark to the worker's handling the request
//   worker      the request's handling to the reply's post (Go's mutate)
//   page busy   the reply's post to the page's handling it: the page's
//               thread was running something else (what, below)
//   tail        the reply's handling to the awaited promise going on
// and, over every mutation, the CPU samples of each thread by function
// (self time), Go functions named from names.wasm (an unstripped build of
// the same source: GOOS=js GOARCH=wasm go build -ldflags=-w ./wasm).
import { readFileSync } from 'node:fs';

const [file, namesFile] = process.argv.slice(2);
if (!file) throw new Error('usage: mutate-trace.mjs trace.json [names.wasm]');
const events = JSON.parse(readFileSync(file, 'utf8')).traceEvents;

/** The function names of a wasm module's name section, by index. */
function wasmNames(path) {
  const names = new Map();
  if (!path) return names;
  const b = readFileSync(path);
  let p = 8;
  const u32 = () => {
    let r = 0;
    for (let shift = 0; ; shift += 7) {
      const x = b[p++];
      r += (x & 0x7f) * 2 ** shift;
      if (x < 0x80) return r;
    }
  };
  while (p < b.length) {
    const id = b[p++];
    const size = u32();
    const end = p + size;
    if (id === 0) {
      const n = u32();
      const name = b.subarray(p, p + n).toString();
      p += n;
      while (name === 'name' && p < end) {
        const sub = b[p++];
        const subEnd = u32() + p;
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
    p = end;
  }
  return names;
}
const names = wasmNames(namesFile);

const threadName = new Map();
for (const e of events) if (e.ph === 'M' && e.name === 'thread_name') threadName.set(`${e.pid}:${e.tid}`, e.args.name);
const thread = (e) => threadName.get(`${e.pid}:${e.tid}`);
const marks = new Map();
let pageKey;
for (const e of events) {
  if (/^m\d+(\.end)?$/.test(e.name) && e.cat?.includes('blink.user_timing')) {
    marks.set(e.name, e.ts);
    pageKey = `${e.pid}:${e.tid}`;
  }
}
const isPage = (e) => `${e.pid}:${e.tid}` === pageKey;
const isWorker = (e) => thread(e) === 'DedicatedWorker thread';
const posts = events.filter((e) => e.name === 'SchedulePostMessage' && e.ph === 'I' || (e.name === 'SchedulePostMessage' && e.ph === 'X'));
const handles = events.filter((e) => e.name === 'HandlePostMessage');
const tasks = events.filter((e) => e.name === 'ThreadControllerImpl::RunTask' && e.ph === 'X');
const traceId = (e) => e.args?.data?.traceId;

const med = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ms = (us) => (us / 1000).toFixed(2);
const rows = [];
for (let i = 0; marks.has(`m${i}`); i++) {
  const t0 = marks.get(`m${i}`);
  const t1 = marks.get(`m${i}.end`);
  const req = posts.filter((e) => isPage(e) && e.ts >= t0 && e.ts <= t1).sort((a, b) => a.ts - b.ts)[0];
  const reqHandled = req && handles.find((e) => isWorker(e) && traceId(e) === traceId(req));
  const replyHandled = handles.filter((e) => isPage(e) && e.ts <= t1 && e.ts + e.dur >= t1)[0];
  const replyPost = replyHandled && posts.find((e) => isWorker(e) && traceId(e) === traceId(replyHandled));
  if (!reqHandled || !replyPost) {
    console.log(`m${i}: messages not found`);
    continue;
  }
  // What the page's thread ran between the reply's post and its handling.
  const busy = tasks
    .filter((e) => isPage(e) && e.ts + e.dur > replyPost.ts && e.ts < replyHandled.ts)
    .reduce((s, e) => s + Math.min(e.ts + e.dur, replyHandled.ts) - Math.max(e.ts, replyPost.ts), 0);
  // The worker's tasks in the call: their count and busy time.
  const wt = tasks.filter((e) => isWorker(e) && e.ts < t1 && e.ts + e.dur > t0);
  const wBusy = wt.reduce((s, e) => s + Math.min(e.ts + e.dur, t1) - Math.max(e.ts, t0), 0);
  rows.push({
    i,
    total: t1 - t0,
    toWorker: reqHandled.ts - t0,
    worker: replyPost.ts - reqHandled.ts,
    handler: reqHandled.dur,
    pageWait: replyHandled.ts - replyPost.ts,
    pageBusy: busy,
    tail: t1 - replyHandled.ts,
    workerTasks: wt.length,
    workerBusy: wBusy,
  });
}
const cols = ['total', 'toWorker', 'worker', 'handler', 'pageWait', 'pageBusy', 'tail', 'workerBusy'];
console.log(`${rows.length} mutations (ms); worker = request handled to reply posted; handler = the request's task; pageWait = reply posted to handled, pageBusy = of it, the page's thread running other tasks; workerBusy = the worker's tasks within the call\n`);
console.log(['i', ...cols, 'workerTasks'].map((c) => c.padStart(10)).join(''));
for (const r of rows) console.log([String(r.i), ...cols.map((c) => ms(r[c])), String(r.workerTasks)].map((c) => c.padStart(10)).join(''));
console.log(['median', ...cols.map((c) => ms(med(rows.map((r) => r[c])))), String(med(rows.map((r) => r.workerTasks)))].map((c) => c.padStart(10)).join(''));

// CPU samples: self time by function on the page's and the worker's
// threads, within the mutations' windows.
const windows = rows.map((r) => [marks.get(`m${r.i}`), marks.get(`m${r.i}.end`)]);
const inWindow = (ts) => windows.some(([a, b]) => ts >= a && ts <= b);
const profiles = new Map();
for (const e of events) {
  if (e.name === 'Profile') profiles.set(`${e.pid}:${e.id}`, { key: `${e.pid}:${e.tid}`, t: e.args.data.startTime, nodes: new Map(), self: new Map() });
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
    prof.t += deltas[i] ?? 0;
    const dt = deltas[i + 1] ?? 0;
    if (inWindow(prof.t)) prof.self.set(samples[i], (prof.self.get(samples[i]) ?? 0) + dt);
  }
}
const fnName = (cf) => {
  const fn = cf.functionName || '(anonymous)';
  const m = /^\$?(?:func|wasm-function\[)(\d+)\]?$/.exec(fn);
  return m && names.has(Number(m[1])) ? names.get(Number(m[1])) : fn;
};
for (const prof of profiles.values()) {
  const label = prof.key === pageKey ? 'page' : threadName.get(prof.key) ?? prof.key;
  const fns = new Map();
  // Inclusive time of the named sqlsync / runtime frames on the stack.
  const incl = new Map();
  let total = 0;
  for (const [id, t] of prof.self) {
    const cf = prof.nodes.get(id) ?? {};
    const fn = fnName(cf);
    if (fn === '(idle)') continue;
    total += t;
    fns.set(fn, (fns.get(fn) ?? 0) + t);
    const seen = new Set();
    for (let up = id; up !== undefined; up = prof.nodes.get(up)?.parent) {
      const n = fnName(prof.nodes.get(up) ?? {});
      if (seen.has(n)) continue;
      seen.add(n);
      incl.set(n, (incl.get(n) ?? 0) + t);
    }
  }
  if (total < 1000) continue;
  const per = (us) => (us / 1000 / rows.length).toFixed(2);
  console.log(`\n${label}: ${per(total)} ms of CPU per mutation`);
  console.log('\nself time, ms per mutation:');
  for (const [fn, t] of [...fns].sort((a, b) => b[1] - a[1]).slice(0, 30)) console.log(`${per(t).padStart(8)}  ${fn}`);
  console.log('\ninclusive time of sqlsync and syscall/js frames, ms per mutation:');
  for (const [fn, t] of [...incl].filter(([n]) => /sqlsync|syscall|runtime\.(handleEvent|gcStart|gcBgMarkWorker)|^(read|write|flush|postMessage)$|^[A-Za-z]+$/.test(n)).sort((a, b) => b[1] - a[1]).slice(0, 45)) {
    console.log(`${per(t).padStart(8)}  ${fn}`);
  }
}
