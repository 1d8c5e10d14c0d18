// The README's code compiles as written: every ```ts and ```tsx block of
// js/README.md is type-checked against the package's own declarations
// (dist/*.d.ts, as an app importing '@sqlsync-go/client' sees them). The
// app's own functions the snippets call (showProgress, render, …) are
// declared in a prelude; nothing else is added.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const js = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

const prelude = `
declare function showProgress(loaded: number, total?: number): void;
declare function render(value: unknown): void;
declare function showConnection(state: string, pending: number): void;
declare function toast(message: string): void;
`;

test("the README's TypeScript snippets type-check against the package", () => {
  const readme = readFileSync(join(js, 'README.md'), 'utf8');
  const blocks = [...readme.matchAll(/```(tsx?)\n([\s\S]*?)```/g)];
  assert.ok(blocks.length >= 3, `found ${blocks.length} snippets`);
  const dir = mkdtempSync(join(tmpdir(), 'sqlsync-readme-'));
  try {
    const files: string[] = [];
    blocks.forEach(([, lang, code], i) => {
      const name = `snippet${i}.${lang}`;
      // Each snippet is a module of its own (top-level await, imports).
      writeFileSync(join(dir, name), `${prelude}\n${code}\nexport {};\n`);
      files.push(name);
    });
    mkdirSync(join(dir, 'node_modules', '@sqlsync-go'), { recursive: true });
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          module: 'ESNext',
          moduleResolution: 'Bundler',
          lib: ['ES2022', 'DOM', 'DOM.Iterable'],
          jsx: 'react-jsx',
          strict: true,
          noEmit: true,
          skipLibCheck: true,
          types: [],
          typeRoots: [join(js, '..', 'node_modules', '@types')],
          baseUrl: '.',
          paths: {
            '@sqlsync-go/client': [join(js, 'dist', 'index.d.ts')],
            '@sqlsync-go/client/react': [join(js, 'dist', 'react.d.ts')],
            react: [join(js, '..', 'node_modules', '@types', 'react')],
            'react/jsx-runtime': [join(js, '..', 'node_modules', '@types', 'react', 'jsx-runtime')],
          },
        },
        files,
      }),
    );
    const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
    try {
      execFileSync(process.execPath, [tsc, '-p', join(dir, 'tsconfig.json')], { encoding: 'utf8', stdio: 'pipe' });
    } catch (e) {
      const out = (e as { stdout?: string }).stdout ?? String(e);
      assert.fail(`the README's snippets do not compile:\n${out}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
