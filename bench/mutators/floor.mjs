// The floor of the mutator module comparison: the smallest module that does
// what the todo app's add does to the document, and nothing else. Its
// migration makes the todo schema (items with its two indexes, list: what
// the todo modules' six steps leave) and every mutation, whatever its name
// and args, runs one INSERT into items through sqlsync.run, with an id of
// random hex (SQLite's randomblob: no args to read) and the position the
// todo app's add gives, last. No runtime, no JSON, no allocator: what is
// left is what the host and the engine cost any module. Written in the text
// format and assembled by binaryen (the AssemblyScript compiler's, from the
// mutator SDK's dependencies).
import binaryen from 'binaryen';

const migrateSQL = `CREATE TABLE IF NOT EXISTS items(
	id TEXT PRIMARY KEY NOT NULL,
	title TEXT NOT NULL,
	done INTEGER NOT NULL DEFAULT 0,
	deleted INTEGER NOT NULL DEFAULT 0,
	note TEXT NOT NULL DEFAULT '',
	position REAL NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS items_by_title ON items(title);
CREATE TABLE IF NOT EXISTS list(id INTEGER PRIMARY KEY CHECK (id = 1), title TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS items_by_position ON items(position);`;

const addSQL = `INSERT INTO items(id, title, position)
	VALUES (lower(hex(randomblob(8))), 'buy milk', (SELECT coalesce(max(position), 0) + 1 FROM items))`;

/** A request of one statement with no flags and no parameters (docs/mutator-abi.md, "Encoding"). */
function request(sql) {
  const text = new TextEncoder().encode(sql);
  const b = new Uint8Array(4 + 1 + 4 + text.length + 4);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, 1, true);
  b[4] = 0;
  dv.setUint32(5, text.length, true);
  b.set(text, 9);
  dv.setUint32(9 + text.length, 0, true);
  return b;
}

const escape = (bytes) => Array.from(bytes, (x) => '\\' + x.toString(16).padStart(2, '0')).join('');

/** The floor module's bytes. */
export function floorModule() {
  const migrate = request(migrateSQL);
  const add = request(addSQL);
  // Memory: the requests at 1024 and 4096, the response at 16384 (the host
  // keeps any that does not fit), the host's input region at 32768.
  const wat = `(module
  (import "sqlsync" "run" (func $run (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 1024) "${escape(migrate)}")
  (data (i32.const 4096) "${escape(add)}")
  (func (export "sqlsync_abi_version") (result i32) (i32.const 1))
  (func (export "sqlsync_alloc") (param i32) (result i32)
    (if (result i32) (i32.gt_u (local.get 0) (i32.const 32768)) (then (i32.const 0)) (else (i32.const 32768))))
  (func (export "sqlsync_migrate") (result i64)
    (drop (call $run (i32.const 1024) (i32.const ${migrate.length}) (i32.const 16384) (i32.const 16384)))
    (i64.const 0))
  (func (export "sqlsync_mutate") (param i32 i32 i32 i32) (result i64)
    (drop (call $run (i32.const 4096) (i32.const ${add.length}) (i32.const 16384) (i32.const 16384)))
    (i64.const 0)))`;
  const mod = binaryen.parseText(wat);
  try {
    if (!mod.validate()) throw new Error('the floor module does not validate');
    return mod.emitBinary();
  } finally {
    mod.dispose();
  }
}
