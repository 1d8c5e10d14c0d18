// Runs Go test binaries built for GOOS=js GOARCH=wasm (go test -c) in a
// dedicated worker of Chromium, where OPFS synchronous access handles and
// IndexedDB exist, and exits non-zero if any fails. Usage:
//
//	node test/gowasm/run.mjs pkg1.test.wasm pkg2.test.wasm ...
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launch } from '../e2e/harness.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const wasmExec = join(here, '..', '..', 'build', 'wasm_exec.js');
const binaries = process.argv.slice(2).map((f) => resolve(f));
if (binaries.length === 0) {
  console.error('usage: run.mjs pkg.test.wasm ...');
  process.exit(2);
}

const worker = `
console.log = (...a) => postMessage({ out: a.join(' ') });
console.error = console.log;
importScripts('/wasm_exec.js');
onmessage = async (ev) => {
  const go = new Go();
  go.argv = [ev.data.name, '-test.v', '-test.timeout=5m'];
  go.exit = (code) => postMessage({ exit: code });
  const { instance } = await WebAssembly.instantiateStreaming(fetch('/bin/' + ev.data.name), go.importObject);
  await go.run(instance);
};`;
const page = `<!doctype html><script>
window.run = (name) => new Promise((resolve) => {
  const out = [];
  const w = new Worker('/worker.js');
  w.onmessage = (ev) => {
    if ('out' in ev.data) out.push(ev.data.out);
    if ('exit' in ev.data) { w.terminate(); resolve({ code: ev.data.exit, out: out.join('\\n') }); }
  };
  w.onerror = (e) => resolve({ code: 1, out: out.join('\\n') + '\\nworker error: ' + e.message });
  w.postMessage({ name });
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
    const { code, out } = await p.evaluate((n) => window.run(n), name);
    console.log(`=== ${name} (in Chromium)\n${out}`);
    if (code !== 0) {
      failed++;
      console.log(`FAIL ${name}: exit code ${code}`);
    }
    await context.close();
  }
} finally {
  await browser.close();
  server.close();
}
process.exit(failed ? 1 : 0);
