// The contract suite's test mutator (package mutatorhost/hosttest) in
// AssemblyScript, with @sqlsync-go/mutator: a port of ../full/main.go, the
// same migrations, the same mutations, the same behaviours as far as the
// language allows. What differs:
//
//   - panic is a throw: AssemblyScript cannot catch it, so the call ends as
//     a trap with "panic: boom at …" on stderr, not an error record of
//     status 4, and the instance is discarded all the same;
//   - alloc's buffer is one ArrayBuffer, which the runtime refuses past
//     about 1 GiB before it asks for memory (a trap, "Invalid length");
//     below that, a memory.grow past the memory limit fails and the
//     runtime's allocator runs unreachable;
//   - alloc takes n up to i32's range (an ArrayBuffer's length), and
//     rejects any other as bad args, where Go's make panics on a negative n.
//
// exit is the SDK's exit(3) (WASI proc_exit, as Go's os.Exit(3)), and
// print writes to stdout and stderr with the SDK's log and logError.
//
// The wasmhost tests build it with wasmtest.BuildAS; make test-mutators
// builds it for the browser's tests:
//
//   node mutator/bin/sqlsync-mutator.mjs build shared/wasmhost/testdata/full-as/full.ts -o full-as.wasm

import {
  Args,
  BadArgs,
  Decoder,
  JSONKind,
  NoArgs,
  Row,
  SqlError,
  Tx,
  Value,
  blob,
  boolean,
  exit,
  handle,
  handleRaw,
  int,
  log,
  logError,
  migrate,
  migrateWith,
  nil,
  quote,
  real,
  text,
} from "@sqlsync-go/mutator";

migrate(`CREATE TABLE vals(id INTEGER PRIMARY KEY, n, i, r, t, b);
		 CREATE TABLE items(id TEXT PRIMARY KEY NOT NULL, title TEXT NOT NULL)`);
migrateWith((tx: Tx): Error | null => tx.exec(`CREATE TABLE big(id INTEGER PRIMARY KEY, body TEXT NOT NULL)`).error);

// Guest state: sink keeps what the failure mutations touch, counter
// survives between calls of one instance and is lost with it.
let sink = new Uint8Array(16);
let counter: i32 = 0;

// The text types writes and reads back.
const TEXT = "héllo, wörld \u2603 \x00 nul";

class Item extends Args {
  id: string = "";
  title: string = "";
  decode(d: Decoder): void {
    this.id = d.string("id");
    this.title = d.string("title");
  }
}

class ID extends Args {
  id: i64 = 0;
  decode(d: Decoder): void {
    this.id = d.int("id");
  }
}

class BatchArgs extends Args {
  prefix: string = "";
  n: i64 = 0;
  decode(d: Decoder): void {
    this.prefix = d.string("prefix");
    this.n = d.int("n");
  }
}

class ManyArgs extends Args {
  n: i64 = 0;
  size: i64 = 0;
  decode(d: Decoder): void {
    this.n = d.int("n");
    this.size = d.int("size");
  }
}

class SQLArgs extends Args {
  sql: string = "";
  args: Value[] = [];
  /** An arg no SQL value holds (an array, an object), as Go's Exec refuses it; "" if none. */
  unsupported: string = "";
  decode(d: Decoder): void {
    this.sql = d.string("sql");
    // As the Go mutator's []any: a number without a fraction is an
    // INTEGER, any other a REAL; a bool is an INTEGER.
    const items = d.array("args");
    for (let i = 0; i < items.length; i++) {
      const v = items[i];
      switch (v.kind) {
        case JSONKind.Null:
          this.args.push(nil());
          break;
        case JSONKind.Bool:
          this.args.push(boolean(v.bool));
          break;
        case JSONKind.Number:
          this.args.push(isFinite(v.num) && v.num == Math.trunc(v.num) ? int(<i64>v.num) : real(v.num));
          break;
        case JSONKind.String:
          this.args.push(text(v.str));
          break;
        default:
          if (this.unsupported == "") this.unsupported = "unsupported type " + (v.kind == JSONKind.Array ? "array" : "object");
      }
    }
  }
}

class QueryArgs extends Args {
  sql: string = "";
  want: i64 = 0;
  decode(d: Decoder): void {
    this.sql = d.string("sql");
    this.want = d.int("want");
  }
}

class Lines extends Args {
  lines: i64 = 0;
  decode(d: Decoder): void {
    this.lines = d.int("lines");
  }
}

class Message extends Args {
  message: string = "";
  decode(d: Decoder): void {
    this.message = d.string("message");
  }
}

class Size extends Args {
  n: i64 = 0;
  decode(d: Decoder): void {
    this.n = d.int("n");
  }
}

handleRaw("noop", (tx: Tx, args: Uint8Array): Error | null => null);
// For the benchmark: the same insert with and without JSON args.
handle<Item>("json", (tx: Tx, a: Item): Error | null => null);
handleRaw("insert-raw", (tx: Tx, args: Uint8Array): Error | null =>
  tx.exec(`INSERT INTO items(id, title) VALUES (?, ?)`, [blob(args), text("buy milk")]).error,
);
handle<Item>("add", (tx: Tx, a: Item): Error | null =>
  tx.exec(`INSERT INTO items(id, title) VALUES (?, ?)`, [text(a.id), text(a.title)]).error,
);
handle<ID>("types", types);
handle<BatchArgs>("batch", batch);
handle<ManyArgs>("many", many);
handle<NoArgs>("nested", nested);
handle<SQLArgs>("sql", (tx: Tx, a: SQLArgs): Error | null => {
  if (a.unsupported != "") return new Error(a.unsupported);
  return tx.exec(a.sql, a.args).error;
});
handle<QueryArgs>("query", query);
handle<Item>("recover", recoverSQL);
handle<Lines>("print", (tx: Tx, a: Lines): Error | null => {
  for (let i: i64 = 0; i < a.lines; i++) {
    log("line " + i.toString());
    logError("err line " + i.toString());
  }
  return null;
});
handleRaw("raw", (tx: Tx, args: Uint8Array): Error | null => {
  if (!bytesEqual(args, rawArgs())) return new Error("raw args " + quoteBytes(args));
  return null;
});
handleRaw("badargs", (tx: Tx, args: Uint8Array): Error | null => new BadArgs("bad args: always"));

// Failures.
handle<Message>("fail", (tx: Tx, a: Message): Error | null => new Error(a.message));
handleRaw("panic", (tx: Tx, args: Uint8Array): Error | null => {
  throw new Error("boom");
});
handleRaw("trap", (tx: Tx, args: Uint8Array): Error | null => {
  // A load past the end of linear memory: a real WebAssembly trap, not a
  // throw (kept in sink, so that the optimizer keeps it).
  sink[0] = load<u8>(<usize>0xfffffff0);
  return null;
});
handleRaw("loop", (tx: Tx, args: Uint8Array): Error | null => {
  for (let i = 0; ; i++) sink[i % sink.length]++;
  return null;
});
handleRaw("sqlloop", (tx: Tx, args: Uint8Array): Error | null =>
  tx.query(`WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT max(x) FROM c`).error,
);
handle<Size>("alloc", (tx: Tx, a: Size): Error | null => {
  if (a.n < 0 || a.n > i32.MAX_VALUE) return new BadArgs("bad args: n " + a.n.toString() + " is not a length");
  const b = new Uint8Array(<i32>a.n);
  for (let i = 0; i < b.length; i += 4096) b[i] = 1;
  sink = b;
  return null;
});
handleRaw("exit", (tx: Tx, args: Uint8Array): Error | null => {
  exit(3);
  return null;
});
handle<NoArgs>("counter", (tx: Tx, a: NoArgs): Error | null => {
  // Guest state that survives between calls of one instance, and is lost
  // when the instance is discarded.
  counter++;
  return tx.exec(`INSERT INTO items(id, title) VALUES (?, ?)`, [text("counter" + counter.toString()), text("counter")]).error;
});

function testBlob(): Uint8Array {
  const b = new Uint8Array(5);
  b[0] = 0;
  b[1] = 1;
  b[2] = 2;
  b[3] = 0xfe;
  b[4] = 0xff;
  return b;
}

function rawArgs(): Uint8Array {
  const b = new Uint8Array(5);
  b[0] = 0;
  b[1] = 0x72; // r
  b[2] = 0x61; // a
  b[3] = 0x77; // w
  b[4] = 0xff;
  return b;
}

// types writes every value type through parameters, reads them back, and
// checks they survived both crossings.
function types(tx: Tx, a: ID): Error | null {
  const res = tx.exec(`INSERT INTO vals(id, n, i, r, t, b) VALUES (?, ?, ?, ?, ?, ?)`, [
    int(a.id),
    nil(),
    int(i64.MIN_VALUE),
    real(Math.PI),
    text(TEXT),
    blob(testBlob()),
  ]);
  if (res.error !== null) return res.error;
  if (res.changes != 1 || res.lastInsertRowid != a.id) {
    return new Error("insert: " + res.changes.toString() + " rows, rowid " + res.lastInsertRowid.toString());
  }
  const res2 = tx.exec(`INSERT INTO vals(id, n, i, r, t, b) VALUES (?, ?, ?, ?, ?, ?)`, [
    int(a.id + 1),
    nil(),
    int(i64.MAX_VALUE),
    real(-0.5),
    text(""),
    blob(new Uint8Array(0)),
  ]);
  if (res2.error !== null) return res2.error;
  const rows = tx.query(`SELECT n, i, r, t, b, typeof(b) FROM vals WHERE id IN (?, ?) ORDER BY id`, [int(a.id), int(a.id + 1)]);
  if (rows.error !== null) return rows.error;
  const cols = rows.columns.join(",");
  if (cols != "n,i,r,t,b,typeof(b)") return new Error("columns " + cols);
  if (rows.rows.length != 2) return new Error(rows.rows.length.toString() + " rows, want 2");
  const want: string[] = [
    "null," + i64.MIN_VALUE.toString() + ",real " + Math.PI.toString() + ",text " + quote(TEXT) + ",blob " + quoteBytes(testBlob()) + ",text \"blob\"",
    "null," + i64.MAX_VALUE.toString() + ",real -0.5,text \"\",blob \"\",text \"blob\"",
  ];
  for (let i = 0; i < 2; i++) {
    const got = describe(rows.rows[i], 6);
    if (got != want[i]) return new Error("row " + i.toString() + ": got " + got + ", want " + want[i]);
  }
  // Typed reads.
  const r = tx.queryRow(`SELECT i, r, t, b, 1, 42 FROM vals WHERE id = ?`, [int(a.id)]);
  if (r === null) return new Error("typed read: no row");
  if (r.int(0) != i64.MIN_VALUE || r.real(1) != Math.PI || r.string(2) != TEXT || !bytesEqual(r.blob(3), testBlob()) || !r.bool(4) || r.int(5) != 42) {
    return new Error("typed read: " + describe(r, 6));
  }
  const none = tx.query(`SELECT 1 WHERE 0`);
  if (none.error !== null) return none.error;
  if (none.first() !== null || tx.queryRow(`SELECT 1 WHERE 0`) !== null) return new Error("no rows: got a row");
  return null;
}

// describe writes a row's first n values with their types.
function describe(r: Row, n: i32): string {
  const parts = new Array<string>(0);
  for (let i = 0; i < n; i++) {
    const v = r.get(i);
    switch (v.type) {
      case 0:
        parts.push("null");
        break;
      case 1:
        parts.push(v.i.toString());
        break;
      case 2:
        parts.push("real " + v.f.toString());
        break;
      case 3:
        parts.push("text " + quote(v.s));
        break;
      default:
        parts.push("blob " + quoteBytes(v.b!));
    }
  }
  return parts.join(",");
}

// batch runs n inserts in one crossing.
function batch(tx: Tx, a: BatchArgs): Error | null {
  const b = tx.batch();
  for (let i: i64 = 0; i < a.n; i++) {
    b.exec(`INSERT INTO items(id, title) VALUES (?, ?)`, [text(a.prefix + i.toString()), text("batch")]);
  }
  b.exec(`UPDATE items SET title = 'batched' WHERE title = 'batch'`);
  const res = b.run();
  const err = res.error;
  if (err !== null) return new Error("statement " + res.results.length.toString() + ": " + err.message);
  const n = <i32>a.n;
  if (res.results.length != n + 1 || res.results[n].changes != a.n) {
    return new Error(
      "batch: " + res.results.length.toString() + " results, last changed " + res.results[res.results.length - 1].changes.toString() + " rows",
    );
  }
  return null;
}

// many fills the big table with n rows of size bytes and reads them all
// back in one query: a response larger than the guest's buffer.
function many(tx: Tx, a: ManyArgs): Error | null {
  const body = "x".repeat(<i32>a.size);
  const b = tx.batch();
  for (let i: i64 = 0; i < a.n; i++) b.exec(`INSERT INTO big(body) VALUES (?)`, [text(body)]);
  const err = b.run().error;
  if (err !== null) return err;
  const rows = tx.query(`SELECT id, body FROM big ORDER BY id`);
  if (rows.error !== null) return rows.error;
  for (let i = 0; i < rows.rows.length; i++) {
    const got = rows.rows[i].string(1);
    if (got != body) return new Error("row " + rows.rows[i].int(0).toString() + ": body of " + got.length.toString() + " bytes");
  }
  if (<i64>rows.rows.length != a.n) return new Error("read " + rows.rows.length.toString() + " rows, want " + a.n.toString());
  return null;
}

// nested writes while going through a query's rows.
function nested(tx: Tx, a: NoArgs): Error | null {
  const rows = tx.query(`SELECT id, title FROM items ORDER BY id`);
  if (rows.error !== null) return rows.error;
  for (let i = 0; i < rows.rows.length; i++) {
    const r = rows.rows[i];
    const err = tx.exec(`UPDATE items SET title = ? WHERE id = ?`, [text(r.string(1).toUpperCase()), text(r.string(0))]).error;
    if (err !== null) return err;
  }
  return null;
}

// query runs a query and fails unless it returns want rows.
function query(tx: Tx, a: QueryArgs): Error | null {
  const rows = tx.query(a.sql);
  if (rows.error !== null) return rows.error;
  if (<i64>rows.rows.length != a.want) return new Error(rows.rows.length.toString() + " rows, want " + a.want.toString());
  return null;
}

// recoverSQL meets an SQL error, handles it, and goes on.
function recoverSQL(tx: Tx, a: Item): Error | null {
  const err: SqlError | null = tx.exec(`INSERT INTO items(id, title) VALUES (?, ?)`, [text(a.id), text(a.title)]).error;
  if (err === null || (err.code & 0xff) != 19) {
    return new Error("want a constraint error, got " + (err === null ? "none" : err.message));
  }
  return tx.exec(`INSERT INTO items(id, title) VALUES (?, ?)`, [text(a.id + "-2"), text(a.title)]).error;
}

function bytesEqual(a: Uint8Array, b: Uint8Array): bool {
  if (a.length != b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] != b[i]) return false;
  return true;
}

// quoteBytes quotes bytes as Go's %q does, printable ASCII as it is.
function quoteBytes(b: Uint8Array): string {
  let q = '"';
  for (let i = 0; i < b.length; i++) {
    const c = b[i];
    if (c == 0x22 || c == 0x5c) q += "\\" + String.fromCharCode(c);
    else if (c >= 0x20 && c < 0x7f) q += String.fromCharCode(c);
    else q += "\\x" + (c < 16 ? "0" : "") + c.toString(16);
  }
  return q + '"';
}
