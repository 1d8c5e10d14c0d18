// @sqlsync-go/mutator: write a sqlsync mutator in TypeScript syntax.
//
// A mutator is a WebAssembly module holding an app's schema migrations and
// its named mutations; the same module runs in every browser tab and on the
// coordinator. This SDK implements the guest side of the mutator ABI
// (docs/mutator-abi.md, version 1) for AssemblyScript, so a mutator is a
// file of TypeScript-syntax code:
//
//   import { migrate, handle, Args, Decoder, Tx, text } from "@sqlsync-go/mutator";
//
//   migrate(`CREATE TABLE items(id TEXT PRIMARY KEY, title TEXT NOT NULL)`);
//
//   class Add extends Args {
//     id: string = "";
//     title: string = "";
//     decode(d: Decoder): void { this.id = d.string("id"); this.title = d.string("title"); }
//   }
//   handle<Add>("add", (tx: Tx, a: Add): Error | null =>
//     tx.exec(`INSERT INTO items(id, title) VALUES (?, ?)`, [text(a.id), text(a.title)]).error);
//
// built with `npx sqlsync-mutator build src/mutator.ts -o mutator.wasm`.
//
// A handler returns null to commit or an Error to reject the mutation with
// its message; the host rolls back everything the handler did. A `throw`
// (or a failed assertion, an index out of range) cannot be caught in
// AssemblyScript: it ends the call as a trap, its message on stderr, and
// the host discards the instance.

// ---- The host's imports (module "sqlsync") and the WASI calls used.

// @ts-ignore: decorator
@external("sqlsync", "run")
declare function hostRun(req: usize, reqLen: u32, out: usize, outCap: u32): u32;

// @ts-ignore: decorator
@external("sqlsync", "result")
declare function hostResult(out: usize, outCap: u32): u32;

// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "fd_write")
declare function fdWrite(fd: u32, iovs: usize, iovsLen: u32, written: usize): u16;

// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "proc_exit")
declare function procExit(code: u32): void;

// ---- Values.

/** The type of an SQL value, as SQLite's fundamental types. */
export enum Type {
  Null = 0,
  Integer = 1,
  Real = 2,
  Text = 3,
  Blob = 4,
}

/** An SQL value: a statement's parameter or a column of a row. */
export class Value {
  constructor(
    public type: Type,
    public i: i64 = 0,
    public f: f64 = 0,
    public s: string = "",
    public b: Uint8Array | null = null,
  ) {}

  /** Reports whether the value is NULL. */
  isNull(): bool {
    return this.type == Type.Null;
  }

  /** The value as an integer: a REAL truncated, TEXT and BLOB and NULL 0. */
  asInt(): i64 {
    if (this.type == Type.Integer) return this.i;
    if (this.type == Type.Real) return <i64>this.f;
    return 0;
  }

  /** The value as a float: an INTEGER converted, TEXT and BLOB and NULL 0. */
  asReal(): f64 {
    if (this.type == Type.Real) return this.f;
    if (this.type == Type.Integer) return <f64>this.i;
    return 0;
  }

  /** The value as text: numbers formatted, a BLOB decoded as UTF-8, NULL "". */
  asString(): string {
    switch (this.type) {
      case Type.Text:
        return this.s;
      case Type.Integer:
        return this.i.toString();
      case Type.Real:
        return this.f.toString();
      case Type.Blob: {
        const b = this.b!;
        return String.UTF8.decodeUnsafe(b.dataStart, b.length);
      }
    }
    return "";
  }

  /** The value as bytes: TEXT as its UTF-8, NULL and numbers empty. */
  asBlob(): Uint8Array {
    if (this.type == Type.Blob) return this.b!;
    if (this.type == Type.Text) return Uint8Array.wrap(String.UTF8.encode(this.s));
    return new Uint8Array(0);
  }
}

/** The SQL NULL, as a parameter. */
export function nil(): Value {
  return new Value(Type.Null);
}

/** An INTEGER parameter. */
export function int(v: i64): Value {
  return new Value(Type.Integer, v);
}

/** A REAL parameter. */
export function real(v: f64): Value {
  return new Value(Type.Real, 0, v);
}

/** A TEXT parameter. */
export function text(v: string): Value {
  return new Value(Type.Text, 0, 0, v);
}

/** A BLOB parameter. */
export function blob(v: Uint8Array): Value {
  return new Value(Type.Blob, 0, 0, "", v);
}

/** A boolean parameter: the INTEGER 1 or 0, as SQLite stores booleans. */
export function boolean(v: bool): Value {
  return new Value(Type.Integer, v ? 1 : 0);
}

// ---- Errors.

/** An error SQLite (or the host, in SQLite's codes) reported for a statement. */
export class SqlError extends Error {
  constructor(
    /** SQLite's extended result code; code & 0xff is the primary code. */
    public code: i32,
    message: string,
  ) {
    super(message);
    this.name = "SqlError";
  }
}

/** Rejects a mutation as one whose args are wrong (status "bad args"). */
export class BadArgs extends Error {
  constructor(message: string) {
    super(message);
    this.name = "BadArgs";
  }
}

// ---- The wire encoding of requests and responses (docs/mutator-abi.md).

/** A growable byte buffer in linear memory. */
class Writer {
  buf: ArrayBuffer = new ArrayBuffer(256);
  len: i32 = 0;

  reset(): void {
    this.len = 0;
  }

  ptr(): usize {
    return changetype<usize>(this.buf);
  }

  reserve(n: i32): usize {
    const need = this.len + n;
    let cap = this.buf.byteLength;
    if (need > cap) {
      while (cap < need) cap <<= 1;
      const grown = new ArrayBuffer(cap);
      memory.copy(changetype<usize>(grown), changetype<usize>(this.buf), this.len);
      this.buf = grown;
    }
    const at = changetype<usize>(this.buf) + <usize>this.len;
    this.len = need;
    return at;
  }

  u8(v: u8): void {
    store<u8>(this.reserve(1), v);
  }

  u32(v: u32): void {
    store<u32>(this.reserve(4), v);
  }

  i64(v: i64): void {
    store<i64>(this.reserve(8), v);
  }

  f64(v: f64): void {
    store<f64>(this.reserve(8), v);
  }

  raw(ptr: usize, n: i32): void {
    this.u32(<u32>n);
    memory.copy(this.reserve(n), ptr, n);
  }

  str(s: string): void {
    const n = String.UTF8.byteLength(s);
    this.u32(<u32>n);
    const at = this.reserve(n);
    String.UTF8.encodeUnsafe(changetype<usize>(s), s.length, at);
  }

  value(v: Value): void {
    this.u8(<u8>v.type);
    switch (v.type) {
      case Type.Integer:
        this.i64(v.i);
        break;
      case Type.Real:
        this.f64(v.f);
        break;
      case Type.Text:
        this.str(v.s);
        break;
      case Type.Blob: {
        const b = v.b!;
        this.raw(b.dataStart, b.length);
        break;
      }
    }
  }
}

/** Reads a response in linear memory. */
class Reader {
  constructor(
    public p: usize,
    public end: usize,
  ) {}

  u8(): u8 {
    this.need(1);
    const v = load<u8>(this.p);
    this.p += 1;
    return v;
  }

  u32(): u32 {
    this.need(4);
    const v = load<u32>(this.p);
    this.p += 4;
    return v;
  }

  i64(): i64 {
    this.need(8);
    const v = load<i64>(this.p);
    this.p += 8;
    return v;
  }

  f64(): f64 {
    this.need(8);
    const v = load<f64>(this.p);
    this.p += 8;
    return v;
  }

  str(): string {
    const n = this.u32();
    this.need(n);
    const s = String.UTF8.decodeUnsafe(this.p, n);
    this.p += n;
    return s;
  }

  bytes(): Uint8Array {
    const n = this.u32();
    this.need(n);
    const b = new Uint8Array(n);
    memory.copy(b.dataStart, this.p, n);
    this.p += n;
    return b;
  }

  value(): Value {
    const t = <i32>this.u8();
    switch (t) {
      case Type.Null:
        return new Value(Type.Null);
      case Type.Integer:
        return new Value(Type.Integer, this.i64());
      case Type.Real:
        return new Value(Type.Real, 0, this.f64());
      case Type.Text:
        return new Value(Type.Text, 0, 0, this.str());
      case Type.Blob:
        return new Value(Type.Blob, 0, 0, "", this.bytes());
    }
    throw new Error("sqlsync: the host sent a value of unknown type " + t.toString());
    return new Value(Type.Null);
  }

  need(n: u32): void {
    if (this.p + <usize>n > this.end) throw new Error("sqlsync: the host's response is truncated");
  }
}

/** What one statement did. */
export class Result {
  /** The statement's error, or null if it ran. */
  error: SqlError | null = null;
  /** Rows inserted, updated or deleted (the sum, for several statements). */
  changes: i64 = 0;
  /** The connection's most recent rowid, as SQLite reports it. */
  lastInsertRowid: i64 = 0;
  /** The statement's column names, when it was run for its rows. */
  columns: string[] = [];
  /** The statement's rows, when it was run for its rows. */
  rows: Row[] = [];

  /** Reports whether the statement ran without error. */
  get ok(): bool {
    return this.error === null;
  }

  /** The first row, or null if there is none (or the statement failed). */
  first(): Row | null {
    return this.rows.length > 0 ? this.rows[0] : null;
  }

  /** The index of the column called name, or -1. */
  column(name: string): i32 {
    return this.columns.indexOf(name);
  }
}

/** One row of a query's result. */
export class Row {
  constructor(public values: Value[]) {}

  /** The value of column i. */
  get(i: i32): Value {
    return this.values[i];
  }

  /** Reports whether column i is NULL. */
  isNull(i: i32): bool {
    return this.values[i].isNull();
  }

  /** Column i as an integer (see Value.asInt). */
  int(i: i32): i64 {
    return this.values[i].asInt();
  }

  /** Column i as a float (see Value.asReal). */
  real(i: i32): f64 {
    return this.values[i].asReal();
  }

  /** Column i as text (see Value.asString). */
  string(i: i32): string {
    return this.values[i].asString();
  }

  /** Column i as bytes (see Value.asBlob). */
  blob(i: i32): Uint8Array {
    return this.values[i].asBlob();
  }

  /** Column i as a boolean: a nonzero number. */
  bool(i: i32): bool {
    return this.values[i].asReal() != 0;
  }
}

const FLAG_ROWS: u8 = 1;
const OUT_CAP: i32 = 64 << 10;

// The request being built and the output buffer for responses (64 KiB, so
// nearly every statement is one crossing). A larger response goes into a
// buffer of its own, which lives until the call ends: the minimal runtime
// collects only then.
const req = new Writer();
const out = new ArrayBuffer(OUT_CAP);
let inCall = false;

/** Sends the request built in req and decodes its n statements' results. */
function roundTrip(): Result[] {
  if (!inCall) throw new Error("sqlsync: statements run only inside a mutation or a migration");
  const outPtr = changetype<usize>(out);
  const n = hostRun(req.ptr(), <u32>req.len, outPtr, <u32>OUT_CAP);
  let p = outPtr;
  if (n > <u32>OUT_CAP) {
    const b = new ArrayBuffer(<i32>n);
    const got = hostResult(changetype<usize>(b), n);
    if (got != n) throw new Error("sqlsync: the host lost a response");
    p = changetype<usize>(b);
  }
  const r = new Reader(p, p + <usize>n);
  const count = r.u32();
  const results = new Array<Result>(0);
  for (let i: u32 = 0; i < count; i++) {
    const res = new Result();
    const code = <i32>r.u32();
    if (code != 0) {
      res.error = new SqlError(code, r.str());
    } else {
      res.changes = r.i64();
      res.lastInsertRowid = r.i64();
      const ncols = r.u32();
      for (let c: u32 = 0; c < ncols; c++) res.columns.push(r.str());
      const nrows = r.u32();
      for (let j: u32 = 0; j < nrows; j++) {
        const vals = new Array<Value>(0);
        for (let c: u32 = 0; c < ncols; c++) vals.push(r.value());
        res.rows.push(new Row(vals));
      }
    }
    results.push(res);
  }
  return results;
}

function addStatement(sql: string, params: Value[], flags: u8): void {
  req.u8(flags);
  req.str(sql);
  req.u32(<u32>params.length);
  for (let i = 0; i < params.length; i++) req.value(params[i]);
}

function one(sql: string, params: Value[], flags: u8): Result {
  req.reset();
  req.u32(1);
  addStatement(sql, params, flags);
  return roundTrip()[0];
}

// ---- Transactions.

/** The transaction a mutation or a migration runs in. */
export class Tx {
  /**
   * Runs sql with params bound in order (?, ?NNN, :name alike). SQL text
   * without params may hold several statements. The result's error says
   * whether it failed; a failed statement changed nothing.
   */
  exec(sql: string, params: Value[] = []): Result {
    return one(sql, params, 0);
  }

  /** Runs one statement for its rows: result.columns and result.rows. */
  query(sql: string, params: Value[] = []): Result {
    return one(sql, params, FLAG_ROWS);
  }

  /** Runs one statement for its first row: null if none or on error. */
  queryRow(sql: string, params: Value[] = []): Row | null {
    return one(sql, params, FLAG_ROWS).first();
  }

  /** Starts a batch: statements sent to the host in one crossing. */
  batch(): Batch {
    return new Batch();
  }
}

/** Statements to run in order in one crossing. */
export class Batch {
  private sql: string[] = [];
  private params: Value[][] = [];
  private flags: u8[] = [];

  /** Adds a statement run for its effect. */
  exec(sql: string, params: Value[] = []): Batch {
    this.sql.push(sql);
    this.params.push(params);
    this.flags.push(0);
    return this;
  }

  /** Adds a statement run for its rows. */
  query(sql: string, params: Value[] = []): Batch {
    this.sql.push(sql);
    this.params.push(params);
    this.flags.push(FLAG_ROWS);
    return this;
  }

  /** The number of statements added. */
  get length(): i32 {
    return this.sql.length;
  }

  /**
   * Runs the statements in order, stopping at the first that fails: the
   * results hold one entry per statement run, and only the last can have
   * an error (BatchResult.error).
   */
  run(): BatchResult {
    req.reset();
    req.u32(<u32>this.sql.length);
    for (let i = 0; i < this.sql.length; i++) addStatement(this.sql[i], this.params[i], this.flags[i]);
    const results = this.sql.length == 0 ? new Array<Result>(0) : roundTrip();
    this.sql = [];
    this.params = [];
    this.flags = [];
    return new BatchResult(results);
  }
}

/** What a batch did. */
export class BatchResult {
  constructor(
    /** One result per statement run. */
    public results: Result[],
  ) {}

  /** The error of the statement that failed, or null if all ran. */
  get error(): SqlError | null {
    const n = this.results.length;
    return n > 0 ? this.results[n - 1].error : null;
  }
}

// ---- JSON args.

/** The kind of a JSON value. */
export enum JSONKind {
  Null,
  Bool,
  Number,
  String,
  Array,
  Object,
}

/** A parsed JSON value. */
export class JSONValue {
  kind: JSONKind = JSONKind.Null;
  bool: bool = false;
  num: f64 = 0;
  /** The number's literal text (for exact integers), or the string. */
  str: string = "";
  /** Whether the number was written as an integer (no fraction, no exponent). */
  integer: bool = false;
  items: JSONValue[] = [];
  keys: string[] = [];

  /**
   * The member called key of an object, or null: the last member whose
   * name equals key ignoring ASCII case, as Go's encoding/json sets a
   * field from every member that matches it.
   */
  get(key: string): JSONValue | null {
    if (this.kind != JSONKind.Object) return null;
    for (let i = this.keys.length - 1; i >= 0; i--) if (foldEqual(this.keys[i], key)) return this.items[i];
    return null;
  }
}

function foldEqual(a: string, b: string): bool {
  if (a.length != b.length) return false;
  for (let i = 0; i < a.length; i++) {
    let x = a.charCodeAt(i),
      y = b.charCodeAt(i);
    if (x >= 65 && x <= 90) x += 32;
    if (y >= 65 && y <= 90) y += 32;
    if (x != y) return false;
  }
  return true;
}

/** Parses JSON text, wording its errors as Go's encoding/json does. */
class Parser {
  p: usize;
  error: string = "";
  depth: i32 = 0;

  constructor(
    public start: usize,
    public end: usize,
  ) {
    this.p = start;
  }

  fail(msg: string): JSONValue {
    if (this.error == "") this.error = msg;
    this.p = this.end;
    return new JSONValue();
  }

  unexpected(context: string): JSONValue {
    if (this.p >= this.end) return this.fail("unexpected end of JSON input");
    return this.fail("invalid character " + quoteChar(load<u8>(this.p)) + " " + context);
  }

  ws(): void {
    while (this.p < this.end) {
      const c = load<u8>(this.p);
      if (c != 0x20 && c != 0x09 && c != 0x0a && c != 0x0d) return;
      this.p++;
    }
  }

  parseAll(): JSONValue {
    const v = this.value();
    if (this.error != "") return v;
    this.ws();
    if (this.p < this.end) return this.unexpected("after top-level value");
    return v;
  }

  value(): JSONValue {
    this.ws();
    if (this.p >= this.end) return this.fail("unexpected end of JSON input");
    const c = load<u8>(this.p);
    if (c == 0x7b) return this.object();
    if (c == 0x5b) return this.array();
    if (c == 0x22) {
      const v = new JSONValue();
      v.kind = JSONKind.String;
      v.str = this.string();
      return v;
    }
    if (c == 0x2d || (c >= 0x30 && c <= 0x39)) return this.number();
    if (this.word("true")) {
      const v = new JSONValue();
      v.kind = JSONKind.Bool;
      v.bool = true;
      return v;
    }
    if (this.word("false")) {
      const v = new JSONValue();
      v.kind = JSONKind.Bool;
      return v;
    }
    if (this.word("null")) return new JSONValue();
    return this.unexpected("looking for beginning of value");
  }

  word(w: string): bool {
    const n = <usize>w.length;
    if (this.p + n > this.end) {
      // A prefix of the word cut short is the end of the input.
      for (let i: usize = 0; this.p + i < this.end; i++) if (load<u8>(this.p + i) != <u8>w.charCodeAt(<i32>i)) return false;
      if (load<u8>(this.p) == <u8>w.charCodeAt(0)) this.fail("unexpected end of JSON input");
      return false;
    }
    for (let i: usize = 0; i < n; i++) if (load<u8>(this.p + i) != <u8>w.charCodeAt(<i32>i)) return false;
    this.p += n;
    return true;
  }

  enter(): bool {
    if (++this.depth > 10000) {
      this.fail("exceeded max depth");
      return false;
    }
    return true;
  }

  object(): JSONValue {
    const v = new JSONValue();
    v.kind = JSONKind.Object;
    if (!this.enter()) return v;
    this.p++;
    this.ws();
    if (this.p < this.end && load<u8>(this.p) == 0x7d) {
      this.p++;
      this.depth--;
      return v;
    }
    for (;;) {
      this.ws();
      if (this.p >= this.end || load<u8>(this.p) != 0x22) return this.unexpected("looking for beginning of object key string");
      const key = this.string();
      if (this.error != "") return v;
      this.ws();
      if (this.p >= this.end || load<u8>(this.p) != 0x3a) return this.unexpected("after object key");
      this.p++;
      const item = this.value();
      if (this.error != "") return v;
      v.keys.push(key);
      v.items.push(item);
      this.ws();
      if (this.p >= this.end) return this.fail("unexpected end of JSON input");
      const c = load<u8>(this.p);
      this.p++;
      if (c == 0x7d) break;
      if (c != 0x2c) {
        this.p--;
        return this.unexpected("after object key:value pair");
      }
    }
    this.depth--;
    return v;
  }

  array(): JSONValue {
    const v = new JSONValue();
    v.kind = JSONKind.Array;
    if (!this.enter()) return v;
    this.p++;
    this.ws();
    if (this.p < this.end && load<u8>(this.p) == 0x5d) {
      this.p++;
      this.depth--;
      return v;
    }
    for (;;) {
      const item = this.value();
      if (this.error != "") return v;
      v.items.push(item);
      this.ws();
      if (this.p >= this.end) return this.fail("unexpected end of JSON input");
      const c = load<u8>(this.p);
      this.p++;
      if (c == 0x5d) break;
      if (c != 0x2c) {
        this.p--;
        return this.unexpected("after array element");
      }
    }
    this.depth--;
    return v;
  }

  string(): string {
    this.p++; // the opening quote
    let s = "";
    let run = this.p; // start of the run of plain bytes not yet appended
    while (this.p < this.end) {
      const c = load<u8>(this.p);
      if (c == 0x22) {
        s += decodeUTF8(run, this.p - run);
        this.p++;
        return s;
      }
      if (c < 0x20) {
        this.unexpected("in string literal");
        return "";
      }
      if (c != 0x5c) {
        this.p++;
        continue;
      }
      s += decodeUTF8(run, this.p - run);
      this.p++;
      if (this.p >= this.end) break;
      const e = load<u8>(this.p);
      this.p++;
      switch (e) {
        case 0x22:
          s += '"';
          break;
        case 0x5c:
          s += "\\";
          break;
        case 0x2f:
          s += "/";
          break;
        case 0x62:
          s += "\b";
          break;
        case 0x66:
          s += "\f";
          break;
        case 0x6e:
          s += "\n";
          break;
        case 0x72:
          s += "\r";
          break;
        case 0x74:
          s += "\t";
          break;
        case 0x75: {
          if (this.p + 4 > this.end) {
            this.fail("unexpected end of JSON input");
            return "";
          }
          let u: i32 = 0;
          for (let i = 0; i < 4; i++) {
            const h = hexDigit(load<u8>(this.p));
            if (h < 0) {
              this.unexpected("in \\u hexadecimal character escape");
              return "";
            }
            u = (u << 4) | h;
            this.p++;
          }
          // A surrogate pair is one character; a lone surrogate is
          // U+FFFD, as in Go.
          if (u >= 0xd800 && u < 0xdc00 && this.p + 6 <= this.end && load<u8>(this.p) == 0x5c && load<u8>(this.p + 1) == 0x75) {
            let lo: i32 = 0;
            for (let i: usize = 2; i < 6; i++) {
              const h = hexDigit(load<u8>(this.p + i));
              lo = h < 0 ? -1 : (lo << 4) | h;
              if (lo < 0) break;
            }
            if (lo >= 0xdc00 && lo < 0xe000) {
              s += String.fromCharCode(u, lo);
              this.p += 6;
              break;
            }
          }
          s += String.fromCharCode(u >= 0xd800 && u < 0xe000 ? 0xfffd : u);
          break;
        }
        default:
          this.p--;
          this.unexpected("in string escape code");
          return "";
      }
      run = this.p;
    }
    this.fail("unexpected end of JSON input");
    return "";
  }

  number(): JSONValue {
    const v = new JSONValue();
    v.kind = JSONKind.Number;
    const from = this.p;
    let integer = true;
    if (load<u8>(this.p) == 0x2d) this.p++;
    if (this.p >= this.end) return this.fail("unexpected end of JSON input");
    let c = load<u8>(this.p);
    if (c == 0x30) this.p++;
    else if (c >= 0x31 && c <= 0x39) this.digits();
    else return this.unexpected("in numeric literal");
    if (this.p < this.end && load<u8>(this.p) == 0x2e) {
      integer = false;
      this.p++;
      if (this.p >= this.end) return this.fail("unexpected end of JSON input");
      c = load<u8>(this.p);
      if (c < 0x30 || c > 0x39) return this.unexpected("after decimal point in numeric literal");
      this.digits();
    }
    if (this.p < this.end && (load<u8>(this.p) | 0x20) == 0x65) {
      integer = false;
      this.p++;
      if (this.p < this.end && (load<u8>(this.p) == 0x2b || load<u8>(this.p) == 0x2d)) this.p++;
      if (this.p >= this.end) return this.fail("unexpected end of JSON input");
      c = load<u8>(this.p);
      if (c < 0x30 || c > 0x39) return this.unexpected("in exponent of numeric literal");
      this.digits();
    }
    v.str = String.UTF8.decodeUnsafe(from, this.p - from);
    v.num = parseFloat(v.str);
    v.integer = integer;
    return v;
  }

  digits(): void {
    while (this.p < this.end) {
      const c = load<u8>(this.p);
      if (c < 0x30 || c > 0x39) return;
      this.p++;
    }
  }
}

/**
 * Decodes n bytes of UTF-8 at p as Go does: each byte that does not start
 * a valid sequence (overlong forms and surrogates included) is U+FFFD.
 */
function decodeUTF8(p: usize, n: usize): string {
  const end = p + n;
  let ascii = true;
  for (let q = p; q < end; q++) {
    if (load<u8>(q) >= 0x80) {
      ascii = false;
      break;
    }
  }
  if (ascii) return String.UTF8.decodeUnsafe(p, n);
  let s = "";
  while (p < end) {
    const c = <u32>load<u8>(p);
    if (c < 0x80) {
      s += String.fromCharCode(c);
      p++;
      continue;
    }
    let need = 0,
      cp: u32 = 0,
      min: u32 = 0;
    if (c >= 0xc2 && c <= 0xdf) {
      need = 1;
      cp = c & 0x1f;
      min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
      need = 2;
      cp = c & 0x0f;
      min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
      need = 3;
      cp = c & 0x07;
      min = 0x10000;
    }
    let ok = need > 0 && p + <usize>need < end;
    if (ok) {
      for (let i = 1; i <= need; i++) {
        const b = <u32>load<u8>(p + <usize>i);
        if ((b & 0xc0) != 0x80) {
          ok = false;
          break;
        }
        cp = (cp << 6) | (b & 0x3f);
      }
    }
    if (!ok || cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp < 0xe000)) {
      s += "\ufffd";
      p++;
      continue;
    }
    s += String.fromCodePoint(cp);
    p += <usize>need + 1;
  }
  return s;
}

function hexDigit(c: u8): i32 {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}

function quoteChar(c: u8): string {
  if (c == 0x27) return "'\\''";
  if (c == 0x22) return "'\"'";
  if (c < 0x20 || c >= 0x7f) {
    if (c == 0x0a) return "'\\n'";
    if (c == 0x0d) return "'\\r'";
    if (c == 0x09) return "'\\t'";
    return "'\\x" + (c < 16 ? "0" : "") + c.toString(16) + "'";
  }
  return "'" + String.fromCharCode(c) + "'";
}

/** Parses JSON text from bytes; throws nothing: the error is returned in parsed.error. */
export function parseJSON(bytes: Uint8Array): ParsedJSON {
  const p = new Parser(bytes.dataStart, bytes.dataStart + <usize>bytes.length);
  const v = p.parseAll();
  return new ParsedJSON(v, p.error);
}

/** The result of parseJSON: a value, or an error ("" if none). */
export class ParsedJSON {
  constructor(
    public value: JSONValue,
    public error: string,
  ) {}
}

/**
 * Reads a mutation's JSON args into a typed class (see Args): each getter
 * returns the member's value, the type's zero value when the member is
 * missing or null (as Go's encoding/json leaves a field alone), and notes
 * an error when the member has the wrong type. Keys match exactly, else
 * ignoring ASCII case; members nobody asks for are ignored.
 */
export class Decoder {
  /** The first decoding error, or "" if none. */
  error: string = "";

  constructor(
    /** The JSON value being decoded. */
    public value: JSONValue,
  ) {}

  /** Reports whether member key is present and not null. */
  has(key: string): bool {
    const v = this.value.get(key);
    return v !== null && v.kind != JSONKind.Null;
  }

  /** The member key, or null if it is missing or null. */
  get(key: string): JSONValue | null {
    const v = this.value.get(key);
    return v === null || v.kind == JSONKind.Null ? null : v;
  }

  private wrong(key: string, v: JSONValue, want: string): void {
    if (this.error != "") return;
    this.error = "json: cannot unmarshal " + kindName(v) + ' into field "' + key + '" of type ' + want;
  }

  /** The string member key ("" if missing). */
  string(key: string): string {
    const v = this.get(key);
    if (v === null) return "";
    if (v.kind != JSONKind.String) {
      this.wrong(key, v, "string");
      return "";
    }
    return v.str;
  }

  /** The number member key (0 if missing); one past the range of f64 is an error. */
  number(key: string): f64 {
    const v = this.get(key);
    if (v === null) return 0;
    if (v.kind != JSONKind.Number) {
      this.wrong(key, v, "float64");
      return 0;
    }
    if (!isFinite(v.num)) {
      if (this.error == "") this.error = "json: cannot unmarshal number " + v.str + ' into field "' + key + '" of type float64';
      return 0;
    }
    return v.num;
  }

  /** The integer member key (0 if missing): a number written without fraction or exponent, in range. */
  int(key: string): i64 {
    const v = this.get(key);
    if (v === null) return 0;
    if (v.kind != JSONKind.Number) {
      this.wrong(key, v, "integer");
      return 0;
    }
    const n = parseInt64(v.str);
    if (!v.integer || n.overflow) {
      if (this.error == "") this.error = "json: cannot unmarshal number " + v.str + ' into field "' + key + '" of type int64';
      return 0;
    }
    return n.value;
  }

  /** The boolean member key (false if missing). */
  bool(key: string): bool {
    const v = this.get(key);
    if (v === null) return false;
    if (v.kind != JSONKind.Bool) {
      this.wrong(key, v, "bool");
      return false;
    }
    return v.bool;
  }

  /** The array member key (empty if missing). */
  array(key: string): JSONValue[] {
    const v = this.get(key);
    if (v === null) return [];
    if (v.kind != JSONKind.Array) {
      this.wrong(key, v, "array");
      return [];
    }
    return v.items;
  }

  /** A decoder of the object member key (of an empty object if missing). */
  object(key: string): Decoder {
    const v = this.get(key);
    if (v === null) return new Decoder(emptyObject());
    if (v.kind != JSONKind.Object) {
      this.wrong(key, v, "object");
      return new Decoder(emptyObject());
    }
    const d = new Decoder(v);
    return d;
  }

  /** Notes a decoding error of the caller's own (the first one counts). */
  fail(message: string): void {
    if (this.error == "") this.error = message;
  }
}

function emptyObject(): JSONValue {
  const v = new JSONValue();
  v.kind = JSONKind.Object;
  return v;
}

function kindName(v: JSONValue): string {
  switch (v.kind) {
    case JSONKind.Bool:
      return "bool";
    case JSONKind.Number:
      return "number";
    case JSONKind.String:
      return "string";
    case JSONKind.Array:
      return "array";
    case JSONKind.Object:
      return "object";
  }
  return "null";
}

class Int64 {
  value: i64 = 0;
  overflow: bool = false;
}

function parseInt64(s: string): Int64 {
  const r = new Int64();
  let i = 0;
  const neg = s.charCodeAt(0) == 45;
  if (neg) i = 1;
  // Accumulate negatively: the range of i64 is one larger below zero.
  let v: i64 = 0;
  for (; i < s.length; i++) {
    const d = <i64>(s.charCodeAt(i) - 48);
    if (v < (i64.MIN_VALUE + d) / 10) {
      r.overflow = true;
      return r;
    }
    v = v * 10 - d;
  }
  if (!neg) {
    if (v == i64.MIN_VALUE) {
      r.overflow = true;
      return r;
    }
    v = -v;
  }
  r.value = v;
  return r;
}

/**
 * The base of a mutation's typed args: a class with a zero-argument
 * constructor whose decode method reads its fields from a Decoder.
 */
export abstract class Args {
  /** Reads this object's fields from d; a wrong type is noted on d. */
  abstract decode(d: Decoder): void;
}

/** Args for a mutation that takes none: any JSON object is accepted. */
export class NoArgs extends Args {
  decode(d: Decoder): void {}
}

// ---- Registration.

/** A registered mutation: runs with the raw args bytes. */
abstract class Entry {
  constructor(public name: string) {}
  abstract call(tx: Tx, args: Uint8Array): Error | null;
}

class RawEntry extends Entry {
  constructor(
    name: string,
    public fn: (tx: Tx, args: Uint8Array) => Error | null,
  ) {
    super(name);
  }

  call(tx: Tx, args: Uint8Array): Error | null {
    return this.fn(tx, args);
  }
}

class JSONEntry<A extends Args> extends Entry {
  constructor(
    name: string,
    public fn: (tx: Tx, args: A) => Error | null,
  ) {
    super(name);
  }

  call(tx: Tx, raw: Uint8Array): Error | null {
    const parsed = parseJSON(raw);
    if (parsed.error != "") return new BadArgs("bad args: " + parsed.error);
    const v = parsed.value;
    if (v.kind != JSONKind.Object && v.kind != JSONKind.Null) {
      return new BadArgs("bad args: json: cannot unmarshal " + kindName(v) + " into args of mutation " + this.name);
    }
    const d = new Decoder(v.kind == JSONKind.Null ? emptyObject() : v);
    const a = instantiate<A>();
    a.decode(d);
    if (d.error != "") return new BadArgs("bad args: " + d.error);
    return this.fn(tx, a);
  }
}

const handlers = new Map<string, Entry>();

class Step {
  constructor(
    public sql: string,
    public fn: ((tx: Tx) => Error | null) | null,
  ) {}
}

const migrations = new Array<Step>(0);

function register(e: Entry): void {
  if (e.name.length == 0) throw new Error("sqlsync: a mutation needs a name");
  if (handlers.has(e.name)) throw new Error('sqlsync: mutation "' + e.name + '" registered twice');
  handlers.set(e.name, e);
}

/**
 * Registers fn for the mutation called name, its JSON args decoded into
 * an A first. Args that are not JSON, not an object, or of the wrong
 * types reject the mutation as bad args.
 */
export function handle<A extends Args>(name: string, fn: (tx: Tx, args: A) => Error | null): void {
  register(new JSONEntry<A>(name, fn));
}

/** Registers fn for the mutation called name, given its args as raw bytes. */
export function handleRaw(name: string, fn: (tx: Tx, args: Uint8Array) => Error | null): void {
  register(new RawEntry(name, fn));
}

/**
 * Appends a schema step (SQL text, possibly several statements) to the
 * ordered migrations. The document records the number of steps applied in
 * PRAGMA user_version and a migration applies only the steps after it;
 * never edit or reorder a released step, only append.
 */
export function migrate(sql: string): void {
  migrations.push(new Step(sql, null));
}

/** Appends a schema step written as code (a backfill, say). */
export function migrateWith(fn: (tx: Tx) => Error | null): void {
  migrations.push(new Step("", fn));
}

/** Writes a line to the mutator's stdout: the host's log, at debug level. */
export function log(message: string): void {
  writeFd(1, message + "\n");
}

/**
 * Writes a line to the mutator's stderr: the host's log, at debug level,
 * and the end of the message of a call that then traps (its first 4 KiB).
 */
export function logError(message: string): void {
  writeFd(2, message + "\n");
}

/** Ends the instance at once with the exit code (the call fails as a trap). */
export function exit(code: u32): void {
  procExit(code);
}

function writeFd(fd: u32, s: string): void {
  const bytes = String.UTF8.encode(s);
  const iov = memory.data(8);
  store<u32>(iov, changetype<usize>(bytes));
  store<u32>(iov, <u32>bytes.byteLength, 4);
  const written = memory.data(4);
  fdWrite(fd, iov, 1, written);
}

// ---- The ABI's exports (re-exported by the build's entry, exports.ts).

const STATUS_ERROR: u8 = 1;
const STATUS_UNKNOWN: u8 = 2;
const STATUS_BAD_ARGS: u8 = 3;

let input = new ArrayBuffer(1024);
let record = new ArrayBuffer(256);

/** sqlsync_alloc: a region of at least size bytes for the host's input. */
export function abiAlloc(size: i32): usize {
  if (size > input.byteLength) {
    let n = input.byteLength;
    while (n < size) n <<= 1;
    input = new ArrayBuffer(n);
  }
  return changetype<usize>(input);
}

/** The error record: status then message, packed as ptr << 32 | len. */
function fail(status: u8, message: string): i64 {
  if (message.length == 0) message = "error without a message";
  const n = String.UTF8.byteLength(message);
  if (n + 1 > record.byteLength) record = new ArrayBuffer(n + 1);
  const p = changetype<usize>(record);
  store<u8>(p, status);
  String.UTF8.encodeUnsafe(changetype<usize>(message), message.length, p + 1);
  return (<i64>p << 32) | <i64>(n + 1);
}

function verdict(err: Error | null): i64 {
  if (err === null) return 0;
  if (err instanceof BadArgs) return fail(STATUS_BAD_ARGS, err.message);
  return fail(STATUS_ERROR, err.message);
}

/** sqlsync_mutate: runs the named mutation on its args. */
export function abiMutate(namePtr: usize, nameLen: i32, argsPtr: usize, argsLen: i32): i64 {
  const name = String.UTF8.decodeUnsafe(namePtr, nameLen);
  let result: i64 = 0;
  if (!handlers.has(name)) {
    result = fail(STATUS_UNKNOWN, "unknown mutation " + quote(name));
  } else {
    const args = new Uint8Array(argsLen);
    memory.copy(args.dataStart, argsPtr, argsLen);
    inCall = true;
    result = verdict(handlers.get(name).call(new Tx(), args));
    inCall = false;
  }
  __collect();
  return result;
}

/** sqlsync_migrate: applies the migration steps the document lacks. */
export function abiMigrate(): i64 {
  inCall = true;
  const result = runMigrations();
  inCall = false;
  __collect();
  return result;
}

function runMigrations(): i64 {
  const tx = new Tx();
  const cur = tx.query("PRAGMA user_version");
  if (cur.error !== null) return fail(STATUS_ERROR, "read schema version: " + cur.error!.message);
  let v = cur.rows[0].int(0);
  if (v < 0) v = 0;
  let b = tx.batch();
  let steps = new Array<i32>(0); // steps[i]: the migration number of b's statement i
  for (let i = <i32>v; i < migrations.length; i++) {
    const m = migrations[i];
    if (m.fn !== null) {
      const err = flush(b, steps);
      if (err !== null) return fail(STATUS_ERROR, err);
      steps = [];
      const fnErr = m.fn!(tx);
      if (fnErr !== null) return fail(STATUS_ERROR, "migration " + (i + 1).toString() + ": " + fnErr.message);
    } else {
      b.exec(m.sql);
      steps.push(i + 1);
    }
    b.exec("PRAGMA user_version = " + (i + 1).toString());
    steps.push(i + 1);
  }
  const err = flush(b, steps);
  if (err !== null) return fail(STATUS_ERROR, err);
  return 0;
}

function flush(b: Batch, steps: i32[]): string | null {
  if (b.length == 0) return null;
  const res = b.run();
  const e = res.error;
  if (e !== null) return "migration " + steps[res.results.length - 1].toString() + ": " + e.message;
  return null;
}

/** A string quoted as Go's %q would for plain text. */
export function quote(s: string): string {
  let q = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c == 0x22) q += '\\"';
    else if (c == 0x5c) q += "\\\\";
    else if (c == 0x0a) q += "\\n";
    else if (c == 0x09) q += "\\t";
    else if (c == 0x0d) q += "\\r";
    else if (c < 0x20) q += "\\x" + (c < 16 ? "0" : "") + c.toString(16);
    else q += String.fromCharCode(c);
  }
  return q + '"';
}

/**
 * The handler of a throw, a failed assertion or a runtime error (the
 * build's --use abort=): the message goes to stderr, as a Go guest's
 * panic does, and the call ends as a trap.
 */
export function abortHandler(message: string | null = null, file: string | null = null, line: u32 = 0, column: u32 = 0): void {
  let s = "panic: " + (message !== null ? message : "abort");
  if (file !== null) s += " at " + file + ":" + line.toString() + ":" + column.toString();
  writeFd(2, s + "\n");
  unreachable();
}
