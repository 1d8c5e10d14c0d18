// Builds the package: dist/index.js, dist/react.js (ESM), dist/worker.js
// (the worker, with Go's wasm_exec.js inside) and the type declarations.
// The wasm bundle itself (dist/sqlsync.wasm) is built by make. With
// --tests, also bundles the Node tests and the end-to-end test page.
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { copyFileSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const r = (...p) => join(root, ...p);
mkdirSync(r('build'), { recursive: true });
mkdirSync(r('dist'), { recursive: true });

// wasm_exec.js must come from the Go that builds the wasm bundle.
if (!existsSync(r('build/wasm_exec.js'))) {
  const goroot = execFileSync('go', ['env', 'GOROOT'], { encoding: 'utf8' }).trim();
  const lib = join(goroot, 'lib/wasm/wasm_exec.js');
  copyFileSync(existsSync(lib) ? lib : join(goroot, 'misc/wasm/wasm_exec.js'), r('build/wasm_exec.js'));
}

const common = { bundle: true, sourcemap: true, target: 'es2022', logLevel: 'warning' };
await esbuild.build({
  ...common,
  entryPoints: { index: r('src/index.ts'), react: r('src/react.ts') },
  outdir: r('dist'),
  format: 'esm',
  platform: 'browser',
  external: ['react'],
});
await esbuild.build({
  ...common,
  entryPoints: { worker: r('src/worker/main.ts') },
  outdir: r('dist'),
  format: 'iife',
  platform: 'browser',
  minify: true,
});
execFileSync(process.execPath, [createRequire(import.meta.url).resolve('typescript/bin/tsc'), '-p', r('tsconfig.json')], { stdio: 'inherit' });

if (process.argv.includes('--tests')) {
  const tests = readdirSync(r('test/node')).filter((f) => f.endsWith('.test.ts'));
  await esbuild.build({
    ...common,
    entryPoints: tests.map((f) => r('test/node', f)),
    outdir: r('build/test'),
    outExtension: { '.js': '.mjs' },
    format: 'esm',
    platform: 'node',
    packages: 'external',
  });
  await esbuild.build({
    ...common,
    entryPoints: { app: r('test/e2e/page/app.tsx') },
    outdir: r('build/page'),
    format: 'esm',
    platform: 'browser',
    jsx: 'automatic',
    define: { 'process.env.NODE_ENV': '"production"' },
  });
}
