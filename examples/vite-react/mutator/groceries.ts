// The example app's own mutator, in TypeScript syntax with
// @sqlsync-go/mutator: `npm run build` compiles it into
// build/groceries.wasm, the module the coordinator runs
// (`sqlsync serve --mutator build/groceries.wasm`) and every tab fetches
// from it. It lives outside src/, which is TypeScript for the browser;
// this is AssemblyScript, compiled to WebAssembly.
import { Args, Decoder, Tx, handle, migrate, quote, text } from "@sqlsync-go/mutator";

migrate(`CREATE TABLE items(id TEXT PRIMARY KEY NOT NULL, title TEXT NOT NULL)`);

class Item extends Args {
  id: string = "";
  title: string = "";

  decode(d: Decoder): void {
    this.id = d.string("id");
    this.title = d.string("title");
  }
}

function add(tx: Tx, a: Item): Error | null {
  const title = a.title.trim();
  if (title.length == 0) return new Error("an item needs a title");
  if (title.length > 200) return new Error("a title has at most 200 characters");
  return tx.exec(`INSERT INTO items(id, title) VALUES (?, ?)`, [text(a.id), text(title)]).error;
}

function remove(tx: Tx, a: Item): Error | null {
  const res = tx.exec(`DELETE FROM items WHERE id = ?`, [text(a.id)]);
  if (res.error !== null) return res.error;
  if (res.changes == 0) return new Error("no such item: " + quote(a.id));
  return null;
}

handle<Item>("add", add);
handle<Item>("remove", remove);
