// node --test js/test/gowasm/skips.test.mjs
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { GoTestDigest, checkSkips, failureLines, loadSkipTable, skippedTests } from './skips.mjs';

const out = `=== RUN   TestBrowser
=== RUN   TestBrowser/contract
    opfs_js_test.go:23: no OPFS synchronous access handles here
    --- SKIP: TestBrowser/contract (0.00s)
--- PASS: TestBrowser (0.00s)
--- SKIP: TestCrashChild (0.00s)
--- SKIP: TestServeOpenModeLoopbackOnly/open_--addr_[::1]:0 (0.01s)
--- PASS: TestOther (0.00s)
PASS`;

test('finds skipped tests and subtests', () => {
  assert.deepEqual(skippedTests(out), ['TestBrowser/contract', 'TestCrashChild', 'TestServeOpenModeLoopbackOnly/open_--addr_[::1]:0']);
});

test('the table lists every skip and allows few', () => {
  const table = loadSkipTable();
  assert.ok(table.length >= 10);
  assert.ok(table.filter((r) => r.allowed).every((r) => ['TestCrashChild', 'TestServeOpenModeLoopbackOnly/open_--addr_[::1]:0'].includes(r.test)));
});

test('a skip in Chromium is a failure; allowed skips pass', () => {
  const bad = checkSkips('opfs', out);
  assert.equal(bad.length, 3);
  assert.match(bad[0], /TestBrowser\/contract .*does not allow/);
  assert.match(bad[1], /TestCrashChild .*not listed/); // listed for another package
  assert.deepEqual(checkSkips('vfs/filestore', '--- SKIP: TestCrashChild (0.00s)\n'), []);
  assert.deepEqual(checkSkips('github.com/x/internal/cli', '    --- SKIP: TestServeOpenModeLoopbackOnly/open_--addr_[::1]:0 (0.00s)\n'), []);
  assert.match(checkSkips('cli', '--- SKIP: TestNew (0.00s)\n')[0], /not listed/);
  assert.match(checkSkips('jsmutator', '--- SKIP: TestFeatures (0.00s)\n')[0], /does not allow/);
});

// A `go test -v ./...` run: one package passes with an allowed skip, one
// fails (a parallel test's failure among passing tests' logs), one has no
// tests, one skips a test it may not.
const run = `=== RUN   TestCrashChild
    filestore_test.go:10: child only
--- SKIP: TestCrashChild (0.00s)
=== RUN   TestA
    a_test.go:5: chatter of a passing test
--- PASS: TestA (0.01s)
PASS
ok  \tgithub.com/x/vfs/filestore\t0.10s
=== RUN   TestGood
=== PAUSE TestGood
=== RUN   TestBad
=== PAUSE TestBad
=== CONT  TestGood
    good_test.go:3: noise from a passing test
=== CONT  TestBad
=== RUN   TestBad/sub
    bad_test.go:9: the reason it failed
=== NAME  TestGood
    good_test.go:4: more noise
--- PASS: TestGood (0.00s)
--- FAIL: TestBad (0.00s)
    --- FAIL: TestBad/sub (0.00s)
FAIL
exit status 1
FAIL\tgithub.com/x/server\t0.50s
?   \tgithub.com/x/cmd/sqlsync\t[no test files]
=== RUN   TestNew
    cli_test.go:1: skipping
--- SKIP: TestNew (0.00s)
PASS
ok  \tgithub.com/x/internal/cli\t0.02s
FAIL`;

test('quiet digest: result lines, a failed package\'s failures only, a summary', () => {
  let printed = '';
  const d = new GoTestDigest({ quiet: true, write: (s) => (printed += s) });
  run.split('\n').forEach((l) => d.line(l));
  const { bad, summary } = d.end();
  assert.equal(
    printed,
    `ok  \tgithub.com/x/vfs/filestore\t0.10s
    bad_test.go:9: the reason it failed
--- FAIL: TestBad (0.00s)
    --- FAIL: TestBad/sub (0.00s)
FAIL
exit status 1
FAIL\tgithub.com/x/server\t0.50s
?   \tgithub.com/x/cmd/sqlsync\t[no test files]
ok  \tgithub.com/x/internal/cli\t0.02s
FAIL
`,
  );
  assert.equal(bad.length, 1);
  assert.match(bad[0], /^github.com\/x\/internal\/cli: TestNew was skipped and is not listed/);
  assert.deepEqual(d.failed, ['github.com/x/server']);
  assert.equal(summary, 'go test: 2 packages ok, 1 failed, 1 without tests; 2 tests skipped, 1 of them not allowed in CI by docs/test-skips.md');
});

test('without --quiet every line passes through', () => {
  let printed = '';
  const d = new GoTestDigest({ write: (s) => (printed += s) });
  run.split('\n').forEach((l) => d.line(l));
  d.end();
  assert.equal(printed, run + '\n');
});

test('a failed package without --- FAIL lines (build error, panic) shows all it printed', () => {
  const lines = ['# github.com/x/y', 'y.go:1:1: undefined: z', '=== RUN   TestP', '    p_test.go:1: before the panic', 'panic: boom', '', 'goroutine 1 [running]:', '\t/x/y.go:3 +0x1'];
  assert.deepEqual(failureLines(lines), lines.filter((l) => !l.startsWith('===')));
});

test('the command exits 1 on a skip not allowed or a failed package, keeps the log, prints the digest', () => {
  const dir = mkdtempSync(join(tmpdir(), 'skips-'));
  const log = join(dir, 'go-test.log');
  const cmd = fileURLToPath(new URL('./skips.mjs', import.meta.url));
  const r = spawnSync(process.execPath, [cmd, '--quiet', '--log', log], { input: run, encoding: 'utf8' });
  assert.equal(r.status, 1);
  assert.equal(readFileSync(log, 'utf8'), run);
  assert.match(r.stderr, /SKIP NOT ALLOWED github.com\/x\/internal\/cli: TestNew/);
  assert.doesNotMatch(r.stdout, /noise/);
  assert.match(r.stdout, /^ok  \tgithub.com\/x\/internal\/cli\t0.02s$/m);
  assert.match(r.stdout, /go test: 2 packages ok, 1 failed.*; full output in .*go-test.log\n$/);

  const clean = 'ok  \tgithub.com/x/vfs/filestore\t0.10s\n--- SKIP: TestCrashChild (0.00s)\nok  \tgithub.com/x/vfs/filestore\t0.1s\n';
  const ok = spawnSync(process.execPath, [cmd, '--quiet'], { input: clean, encoding: 'utf8' });
  assert.equal(ok.status, 0, ok.stderr);
  rmSync(dir, { recursive: true });
});
