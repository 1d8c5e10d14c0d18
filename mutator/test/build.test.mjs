// The build command as a user meets it: the package packed as npm would
// publish it, installed into a fresh project, and `npx sqlsync-mutator
// build` run there as a separate process. The module it writes is a
// mutator (the ABI's exports, only granted imports); what it refuses, it
// refuses with a message that says why and a nonzero exit.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const pkgDir = join(dirname(fileURLToPath(import.meta.url)), '..');
let project;

/** Runs the installed command in the project; resolves to { code, stdout, stderr }. */
async function cli(...args) {
  try {
    const { stdout, stderr } = await run(join(project, 'node_modules', '.bin', 'sqlsync-mutator'), args, { cwd: project });
    return { code: 0, stdout, stderr };
  } catch (e) {
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

function source(name, text) {
  mkdirSync(join(project, 'src'), { recursive: true });
  writeFileSync(join(project, 'src', name), text);
  return `src/${name}`;
}

before(async () => {
  project = mkdtempSync(join(tmpdir(), 'sqlsync-mutator-user-'));
  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', project], { cwd: pkgDir });
  const [{ filename, files }] = JSON.parse(stdout);
  const shipped = files.map((f) => f.path);
  for (const want of ['index.ts', 'assembly/index.ts', 'assembly/exports.ts', 'bin/sqlsync-mutator.mjs', 'bin/build.mjs', 'README.md']) {
    assert.ok(shipped.includes(want), `the package lacks ${want}: ${shipped.join(', ')}`);
  }
  assert.ok(!shipped.some((f) => f.startsWith('test/') || f.endsWith('_test.go')), `the package ships tests: ${shipped.join(', ')}`);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'user-app', private: true, type: 'module' }));
  // From npm's cache (npm ci filled it): no network needed.
  await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', join(project, filename)], { cwd: project });
});

after(() => rmSync(project, { recursive: true, force: true }));

describe('sqlsync-mutator build, installed from the packed package', () => {
  it('builds a mutator module with the ABI exports and only granted imports', async () => {
    const entry = source('mutator.ts', `
import { Args, Decoder, Tx, handle, migrate, text } from "@sqlsync-go/mutator";
migrate("CREATE TABLE notes(id TEXT PRIMARY KEY, body TEXT NOT NULL)");
class Note extends Args {
  id: string = "";
  body: string = "";
  decode(d: Decoder): void { this.id = d.string("id"); this.body = d.string("body"); }
}
function add(tx: Tx, a: Note): Error | null {
  return tx.exec("INSERT INTO notes(id, body) VALUES (?, ?)", [text(a.id), text(a.body)]).error;
}
handle<Note>("add", add);
`);
    const r = await cli('build', entry, '-o', 'out/notes.wasm');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /wrote out\/notes\.wasm \(\d+ bytes\)/);
    const wasm = readFileSync(join(project, 'out', 'notes.wasm'));
    assert.ok(wasm.length < 100_000, `module of ${wasm.length} bytes`);
    const mod = new WebAssembly.Module(wasm);
    const exports = WebAssembly.Module.exports(mod).map((e) => `${e.name}:${e.kind}`).sort();
    for (const want of ['_initialize:function', 'memory:memory', 'sqlsync_abi_version:function', 'sqlsync_alloc:function', 'sqlsync_migrate:function', 'sqlsync_mutate:function']) {
      assert.ok(exports.includes(want), `exports ${exports.join(', ')} lack ${want}`);
    }
    assert.ok(!exports.includes('_start:function'), 'a reactor must not export _start');
    for (const i of WebAssembly.Module.imports(mod)) assert.match(`${i.module}.${i.name}`, /^(sqlsync\.(run|result)|wasi_snapshot_preview1\.\w+)$/);
    // Function names are kept, so traps can name the function.
    assert.ok(WebAssembly.Module.customSections(mod, 'name').length === 1, 'no name section');
  });

  it('refuses Math.random and Date, naming them', async () => {
    const entry = source('random.ts', `
import { NoArgs, Tx, handle, int } from "@sqlsync-go/mutator";
handle<NoArgs>("roll", (tx: Tx, a: NoArgs): Error | null =>
  tx.exec("SELECT ?, ?", [int(<i64>(Math.random() * 6)), int(<i64>Date.now())]).error);
`);
    const r = await cli('build', entry, '-o', 'out/random.wasm');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /imports what a sqlsync host does not grant/);
    assert.match(r.stderr, /env\.seed: Math\.random/);
    assert.match(r.stderr, /env\.Date\.now: Date/);
    assert.ok(!existsSync(join(project, 'out', 'random.wasm')), 'a refused module was written');
  });

  it('reports compile errors with their place', async () => {
    const entry = source('broken.ts', `
import { Tx, handle } from "@sqlsync-go/mutator";
const x: i32 = "not a number";
`);
    const r = await cli('build', entry, '-o', 'out/broken.wasm');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /does not compile/);
    assert.match(r.stderr, /broken\.ts/);
  });

  it('writes a source map when asked, and smaller modules without names', async () => {
    const entry = 'src/mutator.ts';
    const named = await cli('build', entry, '-o', 'out/named.wasm', '--source-map');
    assert.equal(named.code, 0, named.stderr);
    const map = JSON.parse(readFileSync(join(project, 'out', 'named.wasm.map'), 'utf8'));
    assert.ok(map.sources.some((s) => s.endsWith('mutator.ts')), `sources ${map.sources}`);
    const bare = await cli('build', entry, '-o', 'out/bare.wasm', '--no-names');
    assert.equal(bare.code, 0, bare.stderr);
    assert.ok(readFileSync(join(project, 'out', 'bare.wasm')).length < readFileSync(join(project, 'out', 'named.wasm')).length);
  });

  it('says how to use it on a usage error', async () => {
    for (const args of [[], ['build'], ['make', 'src/mutator.ts'], ['build', 'a.ts', 'b.ts'], ['build', 'src/mutator.ts', '--bogus']]) {
      const r = await cli(...args);
      assert.equal(r.code, 2, `${args.join(' ')}: exit ${r.code}`);
      assert.match(r.stderr, /usage: sqlsync-mutator build/);
    }
    const help = await cli('--help');
    assert.equal(help.code, 0);
    assert.match(help.stdout, /usage: sqlsync-mutator build/);
  });
});
