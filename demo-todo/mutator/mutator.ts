// The todo app's mutator in TypeScript syntax (AssemblyScript, with
// @sqlsync-go/mutator): the module the demo runs. main.go beside it is the
// same mutator written with the Go SDK; the two must behave identically
// (the tests run the seeded simulation on both and compare the dumps).
// Build it with
//
//   npx sqlsync-mutator build demo-todo/mutator/mutator.ts -o todo.wasm
//
// Mutations take JSON args:
//
//   add     {"id", "title", "position"?}  insert an item (rejected if the id exists);
//                                         without a position it goes last
//   rename  {"id", "title"}    retitle an item; renaming a deleted item restores it
//   toggle  {"id"}             flip done
//   delete  {"id"}             mark deleted
//   move    {"id", "position"} set an item's position (items sort by position, then id)
//   purge   {}                 remove deleted items for good
//   retitle {"title"}          set the list's own title
//   bulk    {"prefix", "n"}    add n items at once
//   fail    {"message"}        always rejected with message

import { Args, Decoder, NoArgs, Result, Tx, handle, migrate, quote, real, text } from "@sqlsync-go/mutator";

// Released steps are never edited, only appended to.
migrate(`CREATE TABLE items(
		id TEXT PRIMARY KEY NOT NULL,
		title TEXT NOT NULL,
		done INTEGER NOT NULL DEFAULT 0,
		deleted INTEGER NOT NULL DEFAULT 0
	)`);
migrate(`CREATE INDEX items_by_title ON items(title)`);
migrate(`ALTER TABLE items ADD COLUMN note TEXT NOT NULL DEFAULT ''`);
migrate(`ALTER TABLE items ADD COLUMN position REAL NOT NULL DEFAULT 0`);
migrate(`CREATE TABLE list(id INTEGER PRIMARY KEY CHECK (id = 1), title TEXT NOT NULL)`);
migrate(`CREATE INDEX items_by_position ON items(position)`);

/** An item's id, with a title, a position, or both. */
class Item extends Args {
  id: string = "";
  title: string = "";
  hasPosition: bool = false;
  position: f64 = 0;

  decode(d: Decoder): void {
    this.id = d.string("id");
    this.title = d.string("title");
    this.hasPosition = d.has("position");
    this.position = d.number("position");
  }
}

class Bulk extends Args {
  prefix: string = "";
  n: i64 = 0;

  decode(d: Decoder): void {
    this.prefix = d.string("prefix");
    this.n = d.int("n");
  }
}

class Message extends Args {
  message: string = "";

  decode(d: Decoder): void {
    this.message = d.string("message");
  }
}

/** Turns an update that matched no row into an error. */
function changedItem(a: Item, res: Result): Error | null {
  if (res.error !== null) return res.error;
  if (res.changes == 0) return new Error("no such item: " + quote(a.id));
  return null;
}

handle<Item>("add", (tx: Tx, a: Item): Error | null => {
  if (a.hasPosition) {
    return tx.exec(`INSERT INTO items(id, title, position) VALUES (?, ?, ?)`, [text(a.id), text(a.title), real(a.position)]).error;
  }
  return tx.exec(
    `INSERT INTO items(id, title, position)
		VALUES (?, ?, (SELECT coalesce(max(position), 0) + 1 FROM items))`,
    [text(a.id), text(a.title)],
  ).error;
});

handle<Item>("rename", (tx: Tx, a: Item): Error | null =>
  changedItem(a, tx.exec(`UPDATE items SET title = ?, deleted = 0 WHERE id = ?`, [text(a.title), text(a.id)])),
);

handle<Item>("toggle", (tx: Tx, a: Item): Error | null =>
  changedItem(a, tx.exec(`UPDATE items SET done = 1 - done WHERE id = ? AND NOT deleted`, [text(a.id)])),
);

handle<Item>("delete", (tx: Tx, a: Item): Error | null =>
  changedItem(a, tx.exec(`UPDATE items SET deleted = 1 WHERE id = ?`, [text(a.id)])),
);

handle<Item>("move", (tx: Tx, a: Item): Error | null => {
  if (!a.hasPosition) return new Error("move: no position");
  return changedItem(a, tx.exec(`UPDATE items SET position = ? WHERE id = ?`, [real(a.position), text(a.id)]));
});

handle<NoArgs>("purge", (tx: Tx, a: NoArgs): Error | null => tx.exec(`DELETE FROM items WHERE deleted`).error);

handle<Item>("retitle", (tx: Tx, a: Item): Error | null =>
  tx.exec(
    `INSERT INTO list(id, title) VALUES (1, ?)
		ON CONFLICT(id) DO UPDATE SET title = excluded.title`,
    [text(a.title)],
  ).error,
);

handle<Bulk>("bulk", (tx: Tx, a: Bulk): Error | null => {
  if (a.n < 0 || a.n > 10000) return new Error("bulk: n " + a.n.toString() + " outside 0..10000");
  const b = tx.batch();
  for (let i: i64 = 0; i < a.n; i++) {
    const id = a.prefix + i.toString();
    b.exec(`INSERT INTO items(id, title) VALUES (?, ?)`, [text(id), text("bulk " + id)]);
  }
  return b.run().error;
});

handle<Message>("fail", (tx: Tx, a: Message): Error | null => new Error(a.message));
