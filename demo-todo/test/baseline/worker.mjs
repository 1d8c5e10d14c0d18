// The baseline's worker: opens a database on OPFS with the official build,
// answers the first query, then runs one-row inserts on request.
import sqlite3InitModule from '/node_modules/@sqlite.org/sqlite-wasm/dist/index.mjs';

try {
  const sqlite3 = await sqlite3InitModule();
  const pool = await sqlite3.installOpfsSAHPoolVfs({ name: 'bench-pool' });
  const db = new pool.OpfsSAHPoolDb('/baseline.db');
  db.exec('CREATE TABLE IF NOT EXISTS items(id INTEGER PRIMARY KEY, title TEXT NOT NULL)');
  const rows = db.selectValue('SELECT count(*) FROM items');
  postMessage({ ready: true, rows });
  onmessage = (ev) => {
    db.exec({ sql: 'INSERT INTO items(title) VALUES (?)', bind: [ev.data.insert] });
    postMessage({ id: ev.data.id });
  };
} catch (e) {
  postMessage({ error: String(e?.message ?? e) });
}
