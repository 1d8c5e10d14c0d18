// Copies the sqlsync worker and wasm bundle (with its pre-compressed copies)
// from the @sqlsync-go/client package into public/sqlsync/, so that the app
// serves them itself at /sqlsync/ (openDocument's baseUrl).
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const app = join(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = dirname(createRequire(import.meta.url).resolve('@sqlsync-go/client/package.json'));
const out = join(app, 'public', 'sqlsync');
mkdirSync(out, { recursive: true });
for (const f of ['worker.js', 'sqlsync.wasm', 'sqlsync.wasm.br', 'sqlsync.wasm.gz']) {
  const from = join(pkg, 'dist', f);
  if (!existsSync(from)) {
    console.error(`copy-sqlsync: ${from} is missing: build the package first (make js-package)`);
    process.exit(1);
  }
  copyFileSync(from, join(out, f));
}
