// node --test js/test/gowasm/skips.test.mjs
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkSkips, loadSkipTable, skippedTests } from './skips.mjs';

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
