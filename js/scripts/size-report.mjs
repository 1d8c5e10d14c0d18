// Prints the size of the wasm bundle (raw, gzip, brotli) and of the worker
// and package scripts, and with --write puts the table into js/README.md
// and the root README between <!-- size-report --> markers.
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const js = join(dirname(fileURLToPath(import.meta.url)), '..');
const size = (f) => (existsSync(f) ? statSync(f).size : NaN);
const fmt = (n) => (Number.isNaN(n) ? 'n/a' : `${(n / 1024 / 1024).toFixed(2)} MiB (${n.toLocaleString('en')} B)`);
const kb = (n) => `${(n / 1024).toFixed(1)} KiB`;
const wasm = join(js, 'dist', 'sqlsync.wasm');
const gz = (f) => gzipSync(readFileSync(f), { level: 9 }).length;
const rows = [
  ['`sqlsync.wasm` raw', fmt(size(wasm))],
  ['`sqlsync.wasm` gzip -9 (`.wasm.gz`)', fmt(size(wasm + '.gz'))],
  ['`sqlsync.wasm` brotli 11 (`.wasm.br`)', fmt(size(wasm + '.br'))],
  ['`worker.js` (minified, with wasm_exec.js) gzip', kb(gz(join(js, 'dist', 'worker.js')))],
  ['`index.js` + `react.js` gzip', kb(gz(join(js, 'dist', 'index.js')) + gz(join(js, 'dist', 'react.js')))],
];
const go = process.env.GO_VERSION ?? '';
const table =
  `| file | size |\n| --- | --- |\n` +
  rows.map(([a, b]) => `| ${a} | ${b} |`).join('\n') +
  `\n\nBuilt with \`GOOS=js GOARCH=wasm go build -trimpath -ldflags="-s -w"\`${go ? ` (${go})` : ''}; measured by \`make size-report\`.`;
console.log(table);
if (process.argv.includes('--write')) {
  for (const f of [join(js, 'README.md'), join(js, '..', 'README.md')]) {
    const text = readFileSync(f, 'utf8');
    const re = /(<!-- size-report -->\n)[\s\S]*?(\n<!-- \/size-report -->)/;
    if (!re.test(text)) {
      console.error(`${f}: no <!-- size-report --> markers`);
      continue;
    }
    writeFileSync(f, text.replace(re, `$1${table}$2`));
  }
}
