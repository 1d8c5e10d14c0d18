// Runs Go test binaries built for GOOS=js GOARCH=wasm (go test -c) in a
// dedicated worker of Chromium, where OPFS synchronous access handles and
// IndexedDB exist, and exits non-zero if any fails or skips a test that
// docs/test-skips.md does not allow to skip in CI (the tests skip when OPFS,
// IndexedDB or $SQLSYNC_MUTATORS is missing: here that is a failure, not a
// pass). Usage:
//
//	node test/gowasm/run.mjs pkg1.test.wasm pkg2.test.wasm ...
//
// The worker also loads the JavaScript half of the mutator host
// (src/worker/mutator-host.ts, bundled here), as the package's worker does.
// GOWASM_DATA names a directory served at /data/, whose URL the tests find
// in $SQLSYNC_MUTATORS (the mutator modules wasm/jsmutator's tests run);
// GOWASM_ARGS adds flags to every binary (e.g. "-test.run=^$ -test.bench=.");
// other SQLSYNC_* variables pass through to the tests' environment.
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { basename, dirname, join, normalize, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';
import { launch } from 'sqlsync-test-harness';
import { checkSkips, loadSkipTable } from './skips.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const wasmExec = join(here, '..', '..', 'build', 'wasm_exec.js');
const binaries = process.argv.slice(2).map((f) => resolve(f));
const dataDir = process.env.GOWASM_DATA ? resolve(process.env.GOWASM_DATA) : '';
const extraArgs = (process.env.GOWASM_ARGS ?? '').split(/\s+/).filter(Boolean);
const extraEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('SQLSYNC_')));
const mutatorHost = (
  await esbuild.build({
    stdin: {
      contents: "import { installMutatorHost } from './mutator-host.ts'; installMutatorHost();",
      resolveDir: join(here, '..', '..', 'src', 'worker'),
      loader: 'ts',
    },
    bundle: true,
    write: false,
    format: 'iife',
    target: 'es2022',
  })
).outputFiles[0].text;
if (binaries.length === 0) {
  console.error('usage: run.mjs pkg.test.wasm ...');
  process.exit(2);
}
const skipTable = loadSkipTable();

const worker = `
console.log = (...a) => postMessage({ out: a.join(' ') });
console.error = console.log;
importScripts('/wasm_exec.js', '/mutator-host.js');
onmessage = async (ev) => {
  const go = new Go();
  go.argv = [ev.data.name, '-test.v', '-test.timeout=5m', ...ev.data.args];
  go.env = { ...ev.data.env };
  if (ev.data.data) go.env.SQLSYNC_MUTATORS = ev.data.data;
  go.exit = (code) => postMessage({ exit: code });
  const { instance } = await WebAssembly.instantiateStreaming(fetch('/bin/' + ev.data.name), go.importObject);
  await go.run(instance);
};`;
const page = `<!doctype html><script>
window.run = (name, args, data, env) => new Promise((resolve) => {
  const out = [];
  const w = new Worker('/worker.js');
  w.onmessage = (ev) => {
    if ('out' in ev.data) out.push(ev.data.out);
    if ('exit' in ev.data) { w.terminate(); resolve({ code: ev.data.exit, out: out.join('\\n') }); }
  };
  w.onerror = (e) => resolve({ code: 1, out: out.join('\\n') + '\\nworker error: ' + e.message });
  w.postMessage({ name, args, data, env });
});
</script>`;

const byName = new Map(binaries.map((b) => [basename(b), b]));
const server = createServer((req, res) => {
  const path = new URL(req.url, 'http://x').pathname;
  const send = (type, body) => {
    res.writeHead(200, { 'content-type': type });
    res.end(body);
  };
  if (path === '/') return send('text/html', page);
  if (path === '/worker.js') return send('text/javascript', worker);
  if (path === '/wasm_exec.js') return send('text/javascript', readFileSync(wasmExec));
  if (path === '/mutator-host.js') return send('text/javascript', mutatorHost);
  if (dataDir && path.startsWith('/data/')) {
    const file = normalize(join(dataDir, decodeURIComponent(path.slice(6))));
    if (file.startsWith(dataDir) && existsSync(file)) return send('application/wasm', readFileSync(file));
  }
  if (path.startsWith('/bin/') && byName.has(path.slice(5))) return send('application/wasm', readFileSync(byName.get(path.slice(5))));
  res.writeHead(404);
  res.end();
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const origin = `http://127.0.0.1:${server.address().port}`;

const browser = await launch();
let failed = 0;
try {
  for (const name of byName.keys()) {
    const context = await browser.newContext();
    const p = await context.newPage();
    await p.goto(origin + '/');
    const data = dataDir ? origin + '/data/' : '';
    const { code, out } = await p.evaluate(([n, a, d, e]) => window.run(n, a, d, e), [name, extraArgs, data, extraEnv]);
    console.log(`=== ${name} (in Chromium)\n${out}`);
    if (code !== 0) {
      failed++;
      console.log(`FAIL ${name}: exit code ${code}`);
    }
    // The binaries run with -test.v, so every skip prints "--- SKIP:".
    const badSkips = checkSkips(name.replace(/\.test\.wasm$/, ''), out, skipTable);
    if (badSkips.length) {
      failed++;
      for (const b of badSkips) console.log(`FAIL ${b}`);
    }
    await context.close();
  }
} finally {
  await browser.close();
  server.close();
}
process.exit(failed ? 1 : 0);
