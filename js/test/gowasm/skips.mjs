// Checks the tests a `go test -v` run skipped against docs/test-skips.md,
// the one list of skips and of those CI may take. A skip that is not listed,
// or listed but not allowed in CI, is a failure: a skipped test proves
// nothing.
//
// As a module: run.mjs calls checkSkips for each test binary's output.
// As a command, a filter that passes its input through:
//
//	go test -v ./... | node js/test/gowasm/skips.mjs
//
// exits 1 if any package's output shows a skip that is not allowed.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
export const skipsDoc = join(here, '..', '..', '..', 'docs', 'test-skips.md');

const lastElem = (pkg) => pkg.replace(/\/+$/, '').split('/').pop();

// loadSkipTable returns the rows of the "## Skips" table of docs/test-skips.md:
// { pkg, test, re, allowed }, one per test name (a cell may hold several).
export function loadSkipTable(path = skipsDoc) {
  const rows = [];
  let inTable = false;
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (line.startsWith('## ')) {
      inTable = line.trim() === '## Skips';
      continue;
    }
    if (!inTable || !line.startsWith('|')) continue;
    const cells = line.split('|').slice(1, -1).map((c) => c.trim());
    if (cells.length !== 5 || !cells[0].startsWith('`')) continue; // the header and its rule
    const pkg = cells[0].replaceAll('`', '');
    const allowed = /^yes\b/i.test(cells[4]);
    for (const [, test] of cells[1].matchAll(/`([^`]+)`/g)) {
      const re = new RegExp('^' + test.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*') + '$');
      rows.push({ pkg, test, re, allowed });
    }
  }
  if (rows.length === 0) throw new Error(`${path}: no rows found in its "## Skips" table`);
  return rows;
}

// skippedTests returns the names of the tests and benchmarks that output,
// from `go test -v` (or a test binary run with -test.v), shows as skipped.
export function skippedTests(output) {
  return [...output.matchAll(/^\s*--- SKIP: (\S+) \(/gm)].map((m) => m[1]);
}

// checkSkips returns one message per skip in output (of the tests of
// package pkg, or of a binary named after its last element) that the table
// does not allow in CI.
export function checkSkips(pkg, output, table = loadSkipTable()) {
  const bad = [];
  for (const name of skippedTests(output)) {
    const row = table.find((r) => lastElem(r.pkg) === lastElem(pkg) && r.re.test(name));
    if (!row) bad.push(`${pkg}: ${name} was skipped and is not listed in docs/test-skips.md`);
    else if (!row.allowed) bad.push(`${pkg}: ${name} was skipped; docs/test-skips.md does not allow that in CI (row ${row.test})`);
  }
  return bad;
}

// The command: attribute each line to the package whose result line
// ("ok  \tpkg", "FAIL\tpkg") ends its block, as `go test -v ./...` prints them.
async function main() {
  const table = loadSkipTable();
  let pending = '';
  const bad = [];
  let tail = '';
  const flush = (pkg) => {
    bad.push(...checkSkips(pkg, pending, table));
    pending = '';
  };
  const onLine = (line) => {
    const m = /^(?:ok|FAIL|\?)\s+(\S+)(?:\s|$)/.exec(line);
    if (m && m[1].includes('/')) flush(m[1]);
    else pending += line + '\n';
  };
  for await (const chunk of process.stdin) {
    process.stdout.write(chunk);
    const lines = (tail + chunk).split('\n');
    tail = lines.pop();
    lines.forEach(onLine);
  }
  if (tail) onLine(tail);
  if (pending) bad.push(...checkSkips('(unknown package)', pending, table));
  for (const b of bad) console.error(`SKIP NOT ALLOWED ${b}`);
  process.exit(bad.length ? 1 : 0);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
