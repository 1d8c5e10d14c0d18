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
// exits 1 if any package's output shows a skip that is not allowed, or a
// package failed. With --quiet it prints only the package result lines
// ("ok  \tpkg", "FAIL\tpkg", "?   \tpkg"), what a failed package printed
// about its failures (not the output of its passing tests), and a summary;
// --log FILE keeps the whole input in FILE. `make test-go` runs
//
//	go test -v ./... 2>&1 | node js/test/gowasm/skips.mjs --quiet --log bin/go-test.log
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
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

// failureLines returns the lines of one package's `go test -v` output worth
// showing when the package failed: everything but the === headers, the
// --- PASS/SKIP lines, and the log lines (indented by four spaces) of tests
// that did not fail. Lines outside any test (build errors, panics and their
// stacks, a timeout's report, "exit status 1") are kept, and when no test
// says it failed (a build error, a crash) so are all log lines.
export function failureLines(lines) {
  const failed = new Set();
  for (const l of lines) {
    const m = /^\s*--- FAIL: (\S+)/.exec(l);
    if (m) failed.add(m[1]);
  }
  const keep = [];
  let owner = null;
  for (const l of lines) {
    const h = /^=== (?:RUN|CONT|NAME|PAUSE)\s+(\S+)/.exec(l);
    if (h) {
      owner = h[1];
      continue;
    }
    const r = /^\s*--- (PASS|FAIL|SKIP): (\S+)/.exec(l);
    if (r) {
      owner = r[2];
      if (r[1] === 'FAIL') keep.push(l);
      continue;
    }
    if (l.startsWith('    ') && failed.size > 0 && owner !== null && !failed.has(owner)) continue;
    keep.push(l);
  }
  return keep;
}

// The most lines of one failed package printed with --quiet: its first
// headLines and last tailLines (the log has all).
const headLines = 300;
const tailLines = 100;

// GoTestDigest reads `go test -v ./...` output line by line and attributes
// each line to the package whose result line ("ok  \tpkg", "FAIL\tpkg",
// "?   \tpkg") ends its block, as go test prints them. write receives what
// is to be printed: every line, or with quiet only the digest.
export class GoTestDigest {
  constructor({ table = loadSkipTable(), quiet = false, write = (s) => process.stdout.write(s) } = {}) {
    Object.assign(this, { table, quiet, write });
    this.pending = [];
    this.bad = [];
    this.ok = 0;
    this.failed = [];
    this.noTests = 0;
    this.skips = 0;
  }

  line(l) {
    if (!this.quiet) this.write(l + '\n');
    const m = /^(ok|FAIL|\?)\s+(\S+)(?:\s|$)/.exec(l);
    if (m && m[2].includes('/')) this.package(m[1], m[2], l);
    else this.pending.push(l);
  }

  package(status, pkg, resultLine) {
    const text = this.pending.join('\n') + '\n';
    this.skips += skippedTests(text).length;
    this.bad.push(...checkSkips(pkg, text, this.table));
    if (status === 'ok') this.ok++;
    else if (status === 'FAIL') this.failed.push(pkg);
    else this.noTests++;
    if (this.quiet) {
      if (status === 'FAIL') this.printLines(failureLines(this.pending));
      this.write(resultLine + '\n');
    }
    this.pending = [];
  }

  printLines(lines) {
    if (lines.length > headLines + tailLines) {
      const cut = lines.length - headLines - tailLines;
      lines = [...lines.slice(0, headLines), `... ${cut} lines left out (the log has them) ...`, ...lines.slice(-tailLines)];
    }
    for (const l of lines) this.write(l + '\n');
  }

  // end finishes the input: it returns the messages for the skips not
  // allowed, and a one-line summary.
  end() {
    if (this.pending.some((l) => l.trim() !== '')) {
      const text = this.pending.join('\n') + '\n';
      this.skips += skippedTests(text).length;
      this.bad.push(...checkSkips('(unknown package)', text, this.table));
      if (this.quiet) this.printLines(failureLines(this.pending));
    }
    this.pending = [];
    const parts = [`${this.ok} packages ok`, `${this.failed.length} failed`, `${this.noTests} without tests`];
    const skips = `${this.skips} tests skipped` + (this.bad.length ? `, ${this.bad.length} of them not allowed in CI by docs/test-skips.md` : ', all allowed by docs/test-skips.md');
    return { bad: this.bad, summary: `go test: ${parts.join(', ')}; ${skips}` };
  }
}

async function main() {
  const args = process.argv.slice(2);
  let quiet = false;
  let logPath = null;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--quiet') quiet = true;
    else if (args[i] === '--log' && i + 1 < args.length) logPath = args[++i];
    else {
      console.error(`usage: go test -v ./... 2>&1 | node skips.mjs [--quiet] [--log FILE] (got ${JSON.stringify(args[i])})`);
      process.exit(2);
    }
  }
  const log = logPath ? openSync(logPath, 'w') : null;
  const digest = new GoTestDigest({ quiet });
  let tail = '';
  process.stdin.setEncoding('utf8');
  for await (const chunk of process.stdin) {
    if (log !== null) writeSync(log, chunk);
    const lines = (tail + chunk).split('\n');
    tail = lines.pop();
    lines.forEach((l) => digest.line(l));
  }
  if (tail) digest.line(tail);
  if (log !== null) closeSync(log);
  const { bad, summary } = digest.end();
  for (const b of bad) console.error(`SKIP NOT ALLOWED ${b}`);
  console.log(summary + (logPath ? `; full output in ${logPath}` : ''));
  process.exit(bad.length || digest.failed.length ? 1 : 0);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
