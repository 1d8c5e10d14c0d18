// Lazy replicas in Chromium: the coordinator holds a document of 64 MiB
// (table big of internal/bigdoc, written into its data directory before it
// starts by bench/cmd/sqlsync-fill: 1000-byte rows, k = id*7919 mod
// 1000003, indexed). A page opens it with the npm package, lazily, with a
// page cache of 4 MiB (storage memory; a second browser's replica uses the
// default, OPFS; a third's IndexedDB):
//
//   - an indexed point query answers within a second of the open, from
//     under 1% of the document's pages;
//   - a seeded mix of queries (point, range by id, range by k with LIMIT,
//     count(*)) answers as the coordinator's own copy does (the
//     inspector's console), the cache within its bound throughout;
//   - a lazy replica runs the document's mutator: a mutation of a row whose
//     pages it lacks runs locally (the pages fetched between attempts of
//     the mutator's call), shows in its own queries at once, and reaches
//     the coordinator and another browser; the worker answers other calls
//     meanwhile; another browser's write to a row the page has read shows
//     in it;
//   - with storage indexeddb (the pending log there, the pages in memory) a
//     lazy replica queries and mutates; its mutation shows in its queries
//     before the coordinator has it (its traffic to the coordinator goes
//     through a proxy here that holds it back);
//   - offline, a query or mutation that needs pages the replica lacks
//     fails with code offline (the mutation not recorded), one on pages
//     it holds runs, and all works again once back online.
//
// The seed comes from SQLSYNC_LAZY_SEED, else at random; it is printed.
// The mutation that writes big is a mutator of a few lines, built here
// with the AssemblyScript SDK (mutator/bin/sqlsync-mutator.mjs): the
// demo's mutator writes todo items only.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { launch, newPage, repoDir, startCoordinator, stopServerAndBrowser, until } from 'sqlsync-test-harness';

const fill = process.env.SQLSYNC_FILL_BIN ?? join(repoDir, 'bin', 'sqlsync-fill');
const docId = 'big';
const mib = 64;
const cacheBytes = 4 << 20;

const seed = process.env.SQLSYNC_LAZY_SEED ? Number(process.env.SQLSYNC_LAZY_SEED) >>> 0 : (Math.random() * 2 ** 32) >>> 0;
console.log(`lazy.test seed ${seed} (SQLSYNC_LAZY_SEED=${seed} repeats this run)`);

/** mulberry32: a small seeded generator of floats in [0, 1). */
function random(s) {
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}
const rng = random(seed);
const intn = (n) => Math.floor(rng() * n);
const kOf = (id) => (id * 7919) % 1000003;

// setBody {id, n}: the row's body becomes n zero bytes.
const mutatorSource = `import { Args, Decoder, Tx, handle, int } from "@sqlsync-go/mutator";

class SetBody extends Args {
  id: i64 = 0;
  n: i64 = 0;
  decode(d: Decoder): void {
    this.id = d.int("id");
    this.n = d.int("n");
  }
}

handle<SetBody>("setBody", (tx: Tx, a: SetBody): Error | null => {
  const res = tx.exec("UPDATE big SET body = zeroblob(?) WHERE id = ?", [int(a.n), int(a.id)]);
  if (res.error !== null) return res.error;
  if (res.changes == 0) return new Error("no such row");
  return null;
});
`;

let server;
let browser;
let tmp;
let rows; // of big
let pageCount; // of the document
let alice; // { context, page }: the lazy replica the tests share

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'sqlsync-lazy-'));
  writeFileSync(join(tmp, 'big.ts'), mutatorSource);
  const mutator = join(tmp, 'big.wasm');
  execFileSync(process.execPath, [join(repoDir, 'mutator', 'bin', 'sqlsync-mutator.mjs'), 'build', join(tmp, 'big.ts'), '-o', mutator, '--no-optimize'], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  server = await startCoordinator({
    staticDir: join(repoDir, 'js'),
    mutator,
    prepare: (data) => (rows = Number(execFileSync(fill, ['-data', data, '-doc', docId, '-mib', String(mib)], { encoding: 'utf8' }).trim())),
  });
  browser = await launch();
});
after(async () => {
  await alice?.context.close();
  await stopServerAndBrowser(server, browser);
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/**
 * The inspector's answer on the document (open while a client is
 * connected): GET (path '') or POST {sql} to /query.
 */
async function inspect(path, body) {
  const res = await fetch(`${server.url}/v1/inspect/docs/${docId}${path}`, {
    method: body ? 'POST' : 'GET',
    headers: body ? { 'Content-Type': 'application/json' } : {},
    body: body && JSON.stringify(body),
  });
  const json = await res.json();
  assert.ok(res.ok, `inspector ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

/**
 * A page of the coordinator's origin (a blank one: the package is
 * imported from /dist/ as an app would bundle it) in a new context: a
 * browser of its own.
 */
async function blankPage(name, origin = server.url) {
  const context = await browser.newContext();
  await context.route(`${origin}/lazy.html`, (r) => r.fulfill({ contentType: 'text/html', body: '<!doctype html><title>lazy</title>' }));
  const page = await newPage(context, name);
  await page.goto(`${origin}/lazy.html`);
  await page.evaluate(async () => (window.sqlsync = await import('/dist/index.js')));
  return { context, page };
}

/**
 * Opens the document lazily in page as window.doc, with storage (default:
 * the package's); resolves once it has synced, to its status and the ms
 * that took.
 */
function openLazy(page, storage) {
  return page.evaluate(
    async ({ docId, cacheBytes, storage }) => {
      const t0 = performance.now();
      window.doc = await window.sqlsync.openDocument({ url: location.origin, docId, baseUrl: '/dist/', lazy: true, cacheBytes, storage });
      await window.doc.waitSynced(20000);
      return { status: window.doc.status, ms: performance.now() - t0 };
    },
    { docId, cacheBytes, storage },
  );
}

/**
 * A TCP proxy to the coordinator on a port of its own (another origin,
 * whose pages and WebSockets reach the coordinator through it): what the
 * browser sends is passed on after delay ms (setDelay; 0 at first), in
 * order; what the coordinator sends comes back at once.
 */
async function delayProxy() {
  const target = Number(new URL(server.url).port);
  let delay = 0;
  const sockets = new Set();
  const proxy = createServer((c) => {
    const u = connect(target, '127.0.0.1');
    sockets.add(c).add(u);
    const end = () => {
      c.destroy();
      u.destroy();
      sockets.delete(c);
      sockets.delete(u);
    };
    c.on('error', end).on('close', end);
    u.on('error', end).on('close', end);
    u.pipe(c);
    let chain = Promise.resolve();
    c.on('data', (chunk) => {
      const at = Date.now() + delay;
      chain = chain.then(async () => {
        const wait = at - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        if (!u.destroyed) u.write(chunk);
      });
    });
  });
  await new Promise((r) => proxy.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${proxy.address().port}`,
    setDelay: (ms) => (delay = ms),
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((r) => proxy.close(r));
    },
  };
}

const query = (page, sql, params = []) => page.evaluate(([sql, params]) => window.doc.queryRaw(sql, params).then((r) => r.rows), [sql, params]);
const stats = (page) => page.evaluate(() => window.doc.lazyStats());

function checkBound(st, what) {
  assert.ok(st.cachedBytes <= st.cacheBytes, `${what}: the cache holds ${st.cachedBytes} bytes, over its bound of ${st.cacheBytes}`);
  assert.equal(st.cacheBytes, cacheBytes);
}

const pointId = 1 + intn(60000);

it('opened lazily, an indexed point query answers within a second, from under 1% of the pages', async () => {
  alice = await blankPage('alice');
  // The Go runtime loads once per tab, whatever the document: load it
  // with a local document first, and time the lazy document's own open.
  // In memory: what is timed is the lazy open, not the opening of OPFS
  // files for the pending log and identity (their own cost, whatever the
  // document's size; Bob's open below prints it with the runtime's).
  const runtime = await alice.page.evaluate(async () => {
    const t0 = performance.now();
    const warm = await window.sqlsync.openDocument({ docId: 'warm', baseUrl: '/dist/', storage: 'memory' });
    const ms = performance.now() - t0;
    await warm.close();
    return ms;
  });
  const t = await alice.page.evaluate(
    async ({ docId, cacheBytes, k }) => {
      const t0 = performance.now();
      const doc = await window.sqlsync.openDocument({ url: location.origin, docId, baseUrl: '/dist/', lazy: true, cacheBytes, storage: 'memory' });
      const opened = performance.now();
      await doc.waitSynced(20000);
      const synced = performance.now();
      const { rows } = await doc.queryRaw('SELECT id, length(body) FROM big WHERE k = ?', [k]);
      const first = performance.now();
      window.doc = doc;
      const steps = Object.entries(doc.startup)
        .filter(([, at]) => at >= doc.startup.called)
        .sort((x, y) => x[1] - y[1])
        .map(([step, at]) => `${step} ${(at - doc.startup.called).toFixed(0)}`);
      return { rows, opened: opened - t0, synced: synced - t0, first: first - t0, status: doc.status, steps: steps.join(', ') };
    },
    { docId, cacheBytes, k: kOf(pointId) },
  );
  assert.deepEqual(t.rows, [[pointId, 1000]]);
  // (The inspector shows a document while clients are connected to it.)
  pageCount = (await inspect('')).page_count;
  assert.ok(rows > 60000 && pageCount >= (mib << 20) / 4096, `${rows} rows on ${pageCount} pages`);
  assert.equal(t.status.storage, 'memory');
  assert.equal(t.status.queueOnly, false, 'a lazy replica runs its mutator');
  assert.equal(t.status.mutator?.kind, 'module');
  const st = await stats(alice.page);
  checkBound(st, 'the point query');
  console.log(
    `lazy open to first row: ${t.first.toFixed(0)} ms (openDocument ${t.opened.toFixed(0)} ms, synced ${t.synced.toFixed(0)} ms; ` +
      `the Go runtime loaded before, once per tab: ${runtime.toFixed(0)} ms); ` +
      `pages fetched ${st.pagesFetched}/${pageCount} (${((100 * st.pagesFetched) / pageCount).toFixed(2)}%) in ${st.fetches} fetches`,
  );
  console.log(`lazy open, ms after openDocument was called: ${t.steps}`);
  assert.ok(t.first <= 1000, `open to first row took ${t.first.toFixed(0)} ms, over 1 s`);
  assert.ok(st.pagesFetched * 100 <= pageCount, `a point query fetched ${st.pagesFetched} of ${pageCount} pages, over 1%`);
});

it("a seeded mix of queries answers as the coordinator's copy, within the cache bound", async () => {
  const { page } = alice;
  const lit = (v) => String(Math.trunc(v));
  let lsn;
  for (let i = 0; i < 40; i++) {
    let sql;
    let args;
    switch (i % 4) {
      case 0:
        sql = 'SELECT id, length(body), hex(substr(body, 1, 8)) FROM big WHERE k = ?';
        args = [kOf(1 + intn(rows))];
        break;
      case 1: {
        const a = 1 + intn(rows);
        sql = 'SELECT count(*), sum(k), hex(substr(max(body), 1, 4)) FROM big WHERE id BETWEEN ? AND ?';
        args = [a, a + intn(2000)]; // up to 500 pages: the mix reads more than the cache holds
        break;
      }
      case 2:
        sql = 'SELECT id, k FROM big WHERE k BETWEEN ? AND ? ORDER BY k LIMIT 20';
        args = [intn(1000003), 1000003];
        break;
      default:
        sql = 'SELECT count(*), max(k), min(k) FROM big';
        args = [];
    }
    const got = await query(page, sql, args);
    // The inspector's console takes no parameters: the same statement
    // with the integers in place.
    let n = 0;
    const inlined = sql.replace(/\?/g, () => lit(args[n++]));
    const want = await inspect('/query', { sql: inlined });
    lsn ??= want.lsn;
    assert.equal(want.lsn, lsn, 'the document changed during the mix');
    assert.deepEqual(got, want.rows, `query ${i} (${inlined}): lazy ${JSON.stringify(got)}, coordinator ${JSON.stringify(want.rows)}`);
    checkBound(await stats(page), `query ${i}`);
  }
  const status = await page.evaluate(() => window.doc.fetchStatus());
  assert.equal(status.lsn, lsn, 'the lazy replica answered at another LSN than the coordinator');
  const st = await stats(page);
  console.log(`after the mix: ${JSON.stringify(st)}`);
  assert.ok(st.evicted > 0, 'the mix evicted nothing: it did not test the bound');
});

/**
 * Runs setBody {id, n} in page's lazy replica while probing its worker (a
 * status and a query of a row it holds, one after the other) until the
 * mutation settles; then queries the row at once. Resolves to the
 * mutation's ms (or its error), the probes' ms, the row as the replica
 * then answers, the pending count then, and the lazy stats before and
 * after.
 */
function mutateProbing(page, id, n, heldId) {
  return page.evaluate(
    async ({ id, n, heldId }) => {
      const doc = window.doc;
      const before = await doc.lazyStats();
      const t0 = performance.now();
      let ms;
      let error;
      const m = doc.mutate('setBody', { id, n }).then(
        () => (ms = performance.now() - t0),
        (e) => (error = { code: e.code, message: e.message }),
      );
      const probes = [];
      while (ms === undefined && !error) {
        const p0 = performance.now();
        await doc.fetchStatus();
        await doc.queryRaw('SELECT length(body) FROM big WHERE id = ?', [heldId]);
        probes.push(performance.now() - p0);
      }
      await m;
      const rows = (await doc.queryRaw('SELECT length(body) FROM big WHERE id = ?', [id])).rows;
      const { pending } = await doc.fetchStatus();
      const p0 = performance.now();
      await doc.queryRaw('SELECT length(body) FROM big WHERE id = ?', [heldId]);
      const after = performance.now() - p0;
      return { ms, error, probes, rows, pending, after, before, stats: await doc.lazyStats() };
    },
    { id, n, heldId },
  );
}

/**
 * A row id near want (the first of want, want+1, ...) that page's replica,
 * offline, cannot read: one whose pages it lacks.
 */
async function lackedRow(page, want) {
  for (let id = want; ; id = (id % rows) + 1) {
    const code = await page.evaluate(
      (id) =>
        window.doc.queryRaw('SELECT length(body) FROM big WHERE id = ?', [id]).then(
          () => null,
          (e) => e.code,
        ),
      id,
    );
    if (code === 'offline') return id;
    assert.equal(code, null);
  }
}

/** The probes' count, median and max. */
function fmt(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return `${s.length}, median ${(s[Math.floor(s.length / 2)] ?? 0).toFixed(0)} ms, max ${(s.at(-1) ?? 0).toFixed(0)} ms`;
}

it("a mutation of a row whose pages the lazy replica lacks runs in it at once and reaches the others; another browser's write shows in it", async () => {
  const { page } = alice;
  const byId = 'SELECT length(body) FROM big WHERE id = ?';
  assert.deepEqual(await query(page, byId, [pointId]), [[1000]]);
  await page.evaluate(
    ([sql, id]) => {
      window.seen = [];
      window.doc.subscribeRaw(sql, [id], (r) => window.seen.push(r.rows[0]?.[0]));
    },
    [byId, pointId],
  );

  // Alice's own write, to a row she has not read (half the table away):
  // her mutator runs it, fetching the pages it lacks between attempts.
  await page.evaluate(() => window.doc.setOnline(false));
  await until(page, () => window.doc.fetchStatus().then((s) => s.state === 'offline'));
  const fresh = await lackedRow(page, 1 + ((pointId + Math.floor(rows / 2) + intn(1000)) % rows));
  await page.evaluate(() => window.doc.setOnline(true));
  await page.evaluate(() => window.doc.waitSynced(20000));
  const r = await mutateProbing(page, fresh, 7, pointId);
  assert.equal(r.error, undefined, `the mutation failed: ${JSON.stringify(r.error)}`);
  assert.ok(r.stats.fetches > r.before.fetches, `the mutation fetched no page (fetches ${r.before.fetches} -> ${r.stats.fetches}): the row's pages were held`);
  assert.deepEqual(r.rows, [[7]], 'the mutation shows in its own query at once');
  console.log(
    `alice's mutation of a row whose pages she lacked: ${r.ms.toFixed(0)} ms, ${r.stats.fetches - r.before.fetches} fetches, ` +
      `${r.stats.pagesFetched - r.before.pagesFetched} pages; pending when queried after it: ${r.pending}; ` +
      `the worker's probes (status + held query) meanwhile: ${fmt(r.probes)}; a held query after: ${r.after.toFixed(0)} ms`,
  );
  assert.ok(r.ms < 1000, `the mutation took ${r.ms.toFixed(0)} ms`);
  assert.ok(r.probes.length > 0 && Math.max(...r.probes) < 500, `the worker answered slowly during the mutation: probes ${fmt(r.probes)}`);
  assert.ok(r.after < 500, `a held query after the mutation took ${r.after.toFixed(0)} ms`);
  await page.evaluate(() => window.doc.waitSynced(20000));
  assert.deepEqual((await inspect('/query', { sql: `SELECT length(body) FROM big WHERE id = ${fresh}` })).rows, [[7]], 'the coordinator has it');

  const bob = await blankPage('bob');
  try {
    const { status, ms } = await openLazy(bob.page);
    assert.equal(status.storage, 'opfs', 'a lazy replica keeps its pending log in OPFS where the browser has it');
    assert.equal(status.queueOnly, false);
    console.log(`bob's lazy open with OPFS storage, the Go runtime loading with it: synced after ${ms.toFixed(0)} ms`);
    // Alice's write reached Bob's browser.
    assert.deepEqual(await query(bob.page, byId, [fresh]), [[7]]);

    // Bob's write, to a row Alice has read and Bob has not: it runs in
    // Bob's replica, then shows in Alice's subscription and queries.
    const b = await bob.page.evaluate(
      async ([sql, id]) => {
        const t0 = performance.now();
        await window.doc.mutate('setBody', { id, n: 900 });
        const ms = performance.now() - t0;
        const rows = (await window.doc.queryRaw(sql, [id])).rows;
        await window.doc.waitSynced(20000);
        return { ms, rows };
      },
      [byId, pointId],
    );
    assert.deepEqual(b.rows, [[900]]);
    console.log(`bob's mutation of a row whose pages he lacked (OPFS storage): ${b.ms.toFixed(0)} ms`);
    await until(page, () => window.seen.at(-1) === 900, undefined, 20000);
    assert.deepEqual(await query(page, byId, [pointId]), [[900]]);
    const want = await inspect('/query', { sql: `SELECT id, length(body) FROM big WHERE id IN (${pointId}, ${fresh}) ORDER BY id` });
    assert.deepEqual(
      want.rows,
      [
        [pointId, 900],
        [fresh, 7],
      ].sort((x, y) => x[0] - y[0]),
    );
    checkBound(await stats(page), 'after the writes');
  } finally {
    await bob.context.close();
  }
});

it('with storage indexeddb, a lazy replica queries and mutates, its mutation showing before the coordinator has it', async () => {
  const proxy = await delayProxy();
  const carol = await blankPage('carol', proxy.url);
  try {
    const { status, ms } = await openLazy(carol.page, 'indexeddb');
    assert.equal(status.storage, 'indexeddb');
    assert.equal(status.queueOnly, false);
    console.log(`carol's lazy open with IndexedDB storage, the Go runtime loading with it: synced after ${ms.toFixed(0)} ms`);
    const id = 1 + intn(rows);
    const [[length]] = (await inspect('/query', { sql: `SELECT length(body) FROM big WHERE id = ${id}` })).rows;
    assert.deepEqual(await query(carol.page, 'SELECT id, length(body) FROM big WHERE k = ?', [kOf(id)]), [[id, length]]);

    // Her traffic to the coordinator now takes 400 ms: the pages her
    // mutation lacks come slowly, and her push reaches the coordinator
    // 400 ms after the mutation has resolved and shown in her query.
    const delay = 400;
    const other = 1 + ((id + Math.floor(rows / 3)) % rows);
    proxy.setDelay(delay);
    const r = await mutateProbing(carol.page, other, 3, id);
    const coordinator = (await inspect('/query', { sql: `SELECT length(body) FROM big WHERE id = ${other}` })).rows;
    proxy.setDelay(0);
    assert.equal(r.error, undefined, `the mutation failed: ${JSON.stringify(r.error)}`);
    console.log(
      `carol's mutation of a row whose pages she lacked, ${delay} ms to the coordinator: ${r.ms.toFixed(0)} ms, ` +
        `${r.stats.fetches - r.before.fetches} fetches; pending when queried after it: ${r.pending}; the coordinator's row then: ${JSON.stringify(coordinator)}; ` +
        `the worker's probes (status + held query) meanwhile: ${fmt(r.probes)}`,
    );
    assert.deepEqual(r.rows, [[3]], 'the mutation shows in her query at once');
    assert.ok(r.pending >= 1, 'the mutation is still pending');
    assert.notDeepEqual(coordinator, [[3]], 'the coordinator had it before her query answered: the test proves nothing');
    // Each page the mutation lacked took a round trip of 400 ms or more;
    // the worker answered the probes between them.
    assert.ok(r.stats.fetches > r.before.fetches && r.ms >= delay, `the mutation fetched no page or took ${r.ms.toFixed(0)} ms`);
    assert.ok(r.probes.length >= 2 && Math.max(...r.probes) < delay, `the worker answered slowly during the mutation: probes ${fmt(r.probes)}`);
    await carol.page.evaluate(() => window.doc.waitSynced(20000));
    assert.deepEqual((await inspect('/query', { sql: `SELECT length(body) FROM big WHERE id = ${other}` })).rows, [[3]]);
    assert.equal((await carol.page.evaluate(() => window.doc.fetchStatus())).pending, 0);
  } finally {
    await carol.context.close();
    await proxy.close();
  }
});

it('offline, a query or mutation that needs pages the lazy replica lacks fails with code offline; one on held pages runs', async () => {
  const { page } = alice;
  await page.evaluate(() => window.doc.setOnline(false));
  await until(page, () => window.doc.fetchStatus().then((s) => s.state === 'offline'));
  // Held: the row just read. Lacking: a whole scan of 64 MiB, through a
  // cache of 4.
  assert.deepEqual(await query(page, 'SELECT length(body) FROM big WHERE id = ?', [pointId]), [[900]]);
  const err = await page.evaluate(() =>
    window.doc.query('SELECT sum(length(body)) FROM big').then(
      () => null,
      (e) => ({ code: e.code, message: e.message }),
    ),
  );
  assert.equal(err?.code, 'offline', `offline scan: ${JSON.stringify(err)}`);
  // A mutation of a row never read: it fails, and is not recorded.
  const lacking = await lackedRow(page, 1 + ((pointId + Math.floor((2 * rows) / 3) + intn(1000)) % rows));
  const [[was]] = (await inspect('/query', { sql: `SELECT length(body) FROM big WHERE id = ${lacking}` })).rows;
  const m = await page.evaluate(async (id) => {
    const before = (await window.doc.fetchStatus()).pending;
    const t0 = performance.now();
    const error = await window.doc.mutate('setBody', { id, n: 11 }).then(
      () => null,
      (e) => ({ code: e.code, message: e.message }),
    );
    return { error, ms: performance.now() - t0, before, after: (await window.doc.fetchStatus()).pending };
  }, lacking);
  assert.equal(m.error?.code, 'offline', `offline mutation of a row not held: ${JSON.stringify(m.error)}`);
  assert.equal(m.after, m.before, 'the failed mutation was recorded');
  assert.ok(m.ms < 1000, `the offline mutation took ${m.ms.toFixed(0)} ms to fail`);
  // A mutation of the row held: it runs, offline.
  await page.evaluate((id) => window.doc.mutate('setBody', { id, n: 900 - 1 }), pointId);
  assert.deepEqual(await query(page, 'SELECT length(body) FROM big WHERE id = ?', [pointId]), [[899]]);
  await page.evaluate(() => window.doc.setOnline(true));
  await page.evaluate(() => window.doc.waitSynced(20000));
  const back = await inspect('/query', { sql: `SELECT id, length(body) FROM big WHERE id IN (${pointId}, ${lacking}) ORDER BY id` });
  assert.deepEqual(
    back.rows,
    [
      [pointId, 899],
      [lacking, was],
    ].sort((x, y) => x[0] - y[0]),
    'the coordinator has the held write, not the failed one',
  );
  const far = rows - intn(100);
  assert.deepEqual(await query(page, 'SELECT id FROM big WHERE k = ?', [kOf(far)]), [[far]]);
  checkBound(await stats(page), 'back online');
});
