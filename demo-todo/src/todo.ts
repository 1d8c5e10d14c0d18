// Everything the demo asks of sqlsync is in this file: how a list's
// document is opened, the SQL the screens read, and the mutations they run.
// The mutations are the todo mutator's (demo-todo/mutator, the WebAssembly
// module the coordinator runs with --mutator and the worker fetches from
// it): each runs at once in this tab's SQLite replica, then again on the
// coordinator, in the order the coordinator received them.
import type { OpenOptions, SqlsyncDocument } from '@sqlsync-go/client';

export type { SqlsyncDocument };

/**
 * The options that open the document of list `listId`. The coordinator is
 * the server that served this page. The worker and the wasm bundle need
 * nothing here: Vite bundles them from the package (the build then
 * pre-compresses the wasm for the coordinator to serve).
 */
export function listOptions(listId: string, online: boolean): OpenOptions {
  return { url: location.origin, docId: listId, online };
}

/** An item as the list shows it. */
export interface Item {
  id: string;
  title: string;
  done: number;
  position: number;
}

/** The list's items, in order. Live: see useQuery. */
export const ITEMS_SQL = 'SELECT id, title, done, position FROM items WHERE NOT deleted ORDER BY position, id';

/** Items deleted but not purged: renaming one brings it back. */
export const DELETED_SQL = 'SELECT id, title, done, position FROM items WHERE deleted ORDER BY title, id';

/** The list's own title (no row until someone names the list). */
export const TITLE_SQL = 'SELECT title FROM list WHERE id = 1';

export const addItem = (doc: SqlsyncDocument, title: string) => doc.mutate('add', { id: crypto.randomUUID(), title });

/** Renames an item; renaming a deleted item restores it. */
export const renameItem = (doc: SqlsyncDocument, id: string, title: string) => doc.mutate('rename', { id, title });

export const toggleItem = (doc: SqlsyncDocument, id: string) => doc.mutate('toggle', { id });

export const deleteItem = (doc: SqlsyncDocument, id: string) => doc.mutate('delete', { id });

/** Removes the deleted items for good: a later rename of one is refused. */
export const purgeDeleted = (doc: SqlsyncDocument) => doc.mutate('purge', {});

export const retitleList = (doc: SqlsyncDocument, title: string) => doc.mutate('retitle', { title });

/**
 * Moves items[index] one place up (-1) or down (+1): its new position is
 * halfway between the two items it lands between, so a move touches only
 * the item that moves. Items sort by position, then id; if two neighbours
 * share a position (two tabs added items at once), they are first spread out.
 */
export async function moveItem(doc: SqlsyncDocument, items: Item[], index: number, by: -1 | 1): Promise<void> {
  const to = index + by;
  if (to < 0 || to >= items.length) return;
  const positions = items.map((it) => it.position);
  if (new Set(positions).size !== positions.length) {
    for (let i = 0; i < items.length; i++) {
      if (items[i].position !== i + 1) await doc.mutate('move', { id: items[i].id, position: i + 1 });
      positions[i] = i + 1;
    }
  }
  // The neighbours it lands between: items[to] and the one beyond it.
  const near = positions[to];
  const far = positions[to + by];
  const position = far === undefined ? near + by : (near + far) / 2;
  await doc.mutate('move', { id: items[index].id, position });
}
