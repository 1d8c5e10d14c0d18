/** Where a document's replica keeps its state in the browser. */
export type Storage = 'opfs' | 'indexeddb' | 'memory';

/** Options of {@link openDocument}. */
export interface OpenOptions {
  /**
   * The coordinator: its sync endpoint (`ws://host/v1/sync`) or its origin
   * (`http://host:8080`, to which `/v1/sync` is added). Omit it to keep
   * the document local.
   */
  url?: string;
  /** The document's ID. */
  docId: string;
  /**
   * Where to keep the replica; default: OPFS where the browser has
   * synchronous access handles, else IndexedDB.
   */
  storage?: Storage;
  /** Access token sent to the coordinator. */
  token?: string;
  /**
   * Which mutator runs the document's mutations in this replica.
   * `'auto'` (the default): the WebAssembly module the coordinator says the
   * document uses (fetched from it, SHA-256 checked, cached for offline
   * reloads, run on the browser's WebAssembly engine). When no module can
   * be had (the coordinator names none; no coordinator; unreachable with
   * nothing cached) the replica opens **queue-only** (`status.queueOnly`):
   * its mutations are recorded and pushed without running locally, and
   * show in queries once the coordinator has applied them. `'none'` forces
   * queue-only. The wasm bundle has no mutators of its own: any other
   * value makes openDocument reject with code `bad_request`.
   */
  mutator?: 'auto' | 'none';
  /**
   * Forces the WebAssembly mutator module at this URL (fetched, cached for
   * offline reloads); `mutator` is then ignored. openDocument fails if it
   * can be neither fetched nor found in the cache.
   */
  mutatorUrl?: string | URL;
  /** The SHA-256 (hex) the module at `mutatorUrl` must have. */
  mutatorHash?: string;
  /**
   * Where `worker.js` and `sqlsync.wasm` are served from; default: next to
   * this module.
   */
  baseUrl?: string | URL;
  /** The worker script's URL, if not `${baseUrl}/worker.js`. */
  workerUrl?: string | URL;
  /** The wasm bundle's URL, if not `${baseUrl}/sqlsync.wasm`. */
  wasmUrl?: string | URL;
  /** Start with syncing switched on (default) or off. */
  online?: boolean;
  /** Called as the wasm bundle downloads. */
  onProgress?: (p: Progress) => void;
  /**
   * Integers beyond ±(2^53−1), which a JavaScript number cannot hold
   * exactly, come back from queries as `bigint` (default: rounded to the
   * nearest number). Integers within that range stay numbers either way.
   */
  bigint?: boolean;
  /** Log level of the Go replica (to the console); default "warn". */
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
  /**
   * Take part in presence (`doc.presence`): default `true`. With `false`
   * the replica does not ask the coordinator for it, and `doc.presence`
   * shows only this browser's other tabs.
   */
  presence?: boolean;
  /**
   * Open the document lazily: the replica starts with no pages, fetches
   * from the coordinator the pages its queries and mutations read (a query
   * waits for them), and keeps at most `cacheBytes` of them in memory, the
   * least recently used dropped first. The coordinator then sends it the
   * changes of the pages it holds only. For a document too large to
   * download whole: an indexed point query reads a handful of pages.
   *
   * It runs the document's mutator (`mutator`, `mutatorUrl`) as a whole
   * replica does: a mutation shows in its queries at once. A page the
   * mutation reads that the replica lacks is fetched outside the
   * mutator's call, which then runs again (one round trip per such page;
   * the worker stays responsive meanwhile).
   *
   * Offline, a statement or mutation that needs a page the replica lacks
   * fails with code `offline` (a mutation so failed is not recorded);
   * pages it holds still answer.
   *
   * The snapshot lives in memory only (each open starts empty); the
   * pending log and the client ID are kept in `storage` as usual: `opfs`,
   * `indexeddb` (the pending log in IndexedDB, the pages in memory) or
   * `memory` (mutations not yet pushed are then lost with the tab); left
   * to default, OPFS where the browser has it, else IndexedDB, else
   * memory. Default `false`; `doc.lazyStats()` tells what the replica
   * fetched and holds. The tab that owns the document's storage decides:
   * a tab that goes through another's replica gets that one, lazy or not.
   */
  lazy?: boolean;
  /**
   * A lazy replica's page cache, in bytes; also the pages a replica with
   * `storage: 'indexeddb'` running a mutator module keeps in memory (the
   * rest are read from IndexedDB as needed). Default 64 MiB; at least 256
   * KiB are kept, whatever is asked.
   */
  cacheBytes?: number;
}

/**
 * What a lazy replica fetched from the coordinator and holds
 * (`doc.lazyStats()`), counted since the document opened.
 */
export interface LazyStats {
  /** Page requests: round trips to the coordinator. */
  fetches: number;
  /** Pages received in replies. */
  pagesFetched: number;
  /** Of them, pages fetched ahead of need (siblings of pages read in a row). */
  prefetched: number;
  /** Pages that had changed since the replica's snapshot when fetched: the statement ran again once caught up. */
  stale: number;
  /** Pages dropped to stay within the cache. */
  evicted: number;
  /** Pages held now. */
  cachedPages: number;
  /** Their bytes. */
  cachedBytes: number;
  /** The cache's bound in bytes (`cacheBytes`, or its default). */
  cacheBytes: number;
}

/**
 * A presence in the document: another person's (another replica's, sent
 * by the coordinator) or another tab's of this browser (`local`). Its
 * `state` is what that tab last passed to `doc.presence.set`.
 */
export interface PresencePeer<T = unknown> {
  /** Names the presence while it lasts (unique in the document). */
  id: string;
  /** The publishing replica's client ID: the tabs of one browser share one. */
  clientId: string;
  /** The publisher's token grants reading only. */
  readOnly: boolean;
  /** Another tab of this browser, sharing this replica (it never went to the coordinator). */
  local: boolean;
  /** Its JSON state. */
  state: T;
}

/**
 * Progress of a download, in bytes: of the Go runtime's wasm bundle while
 * a document opens (stage "runtime"), or of a large document's first sync,
 * or any diff of many pages, which the coordinator streams (stage
 * "document", with pages too). A document download that broke off (the
 * tab closed, the network went) resumes where it stood on the next open.
 */
export interface Progress {
  stage: 'runtime' | 'document';
  loaded: number;
  /** Total size: for the runtime when the server said; for a document, as far as known. */
  total?: number;
  /** Stage "document": pages received, and to receive in all as far as known. */
  pages?: number;
  totalPages?: number;
  /** Stage "document": the download is applied; queries show it. */
  done?: boolean;
  /** Stage "document": a download that broke off resumes here. */
  resumed?: boolean;
}

/** Connection state of a replica. */
export type ConnectionState = 'offline' | 'connecting' | 'online' | 'stopped';

/** A replica's sync status. */
export interface Status {
  /** Connection state. */
  state: ConnectionState;
  /** The LSN of the local snapshot. */
  lsn: number;
  /** The newest LSN the coordinator told of. */
  serverLsn: number;
  /** Mutations not yet seen applied by the coordinator. */
  pending: number;
  /**
   * Pending mutations that failed when replayed on this replica (on open or
   * after a sync): they stay pending, without their local effect, and the
   * coordinator decides their fate.
   */
  localFailed?: number;
  /** Those mutations, with the reason each failed here. */
  localFailures?: { seq: number; name: string; message: string }[];
  /** The last connection error or refusal, or "". */
  lastError: string;
  /** Online, nothing pending, and caught up. */
  synced: boolean;
  /** Where the replica keeps its state. */
  storage: Storage | '';
  /** The replica's client ID (shared by the tabs of one origin). */
  clientId: string;
  /** Whether this tab owns the document's storage or goes through the tab that does. */
  role: 'owner' | 'follower';
  /** The mutator the replica runs. */
  mutator?: MutatorInfo;
  /**
   * The coordinator runs another mutator module than this replica
   * (`coordinatorMutator`, its SHA-256): the replica still takes the
   * coordinator's changes but pushes none of its own mutations, which stay
   * pending (their local results could differ from the coordinator's) until
   * the document is reopened with the coordinator's module: `close()` and
   * `openDocument` again, or reload the page. An `error` event with code
   * `mutator_changed` tells when that is; `lastError` names both hashes.
   */
  mutatorMismatch?: boolean;
  /** The hash of the mutator module the coordinator said it runs when the replica last connected ("" when it serves none). */
  coordinatorMutator?: string;
  /**
   * The replica runs no mutator (`mutator.kind` `'none'`): its mutations
   * are recorded and pushed without running locally, so queries show them
   * only once the coordinator has applied them, and only the coordinator
   * can reject them. Reopening the document with its module (cached once
   * the coordinator has been reached, or `mutatorUrl`) runs them locally.
   */
  queueOnly?: boolean;
  /**
   * The coordinator granted presence on the current connection: this tab's
   * presence reaches the others and theirs reach it.
   */
  presence?: boolean;
}

/** The mutator a replica runs, and why that one. */
export interface MutatorInfo {
  /**
   * `'module'`: a WebAssembly module on the browser's engine; `'none'`: no
   * mutator, the replica is queue-only (see `Status.queueOnly`).
   */
  kind: 'module' | 'none';
  /** The module's SHA-256 (hex), for a module. */
  hash?: string;
  /** The module's URL, when forced with `mutatorUrl`. */
  url?: string;
  /**
   * How it was chosen: `coordinator` (the coordinator said so just now),
   * `cache` (what the coordinator said last time, with the module cached
   * then: used at once while the coordinator is asked again, or because it
   * is unreachable), `url` (`mutatorUrl`), `option` (`mutator: 'none'`),
   * `default` (no coordinator and no `mutatorUrl`: none), `fallback` (the
   * coordinator was unreachable and nothing was cached: none, see
   * `reason`).
   */
  source: 'coordinator' | 'cache' | 'url' | 'option' | 'default' | 'fallback';
  /** Why the replica runs no mutator (kind `'none'`, unless the app asked for it). */
  reason?: string;
}

/** A mutation the coordinator (or the mutator, locally) rejected. */
export interface Rejection {
  seq: number;
  name: string;
  message: string;
}

/**
 * A SQLite value as a query returns it: a bigint only for an integer beyond
 * ±(2^53−1) in a document opened with `bigint: true`.
 */
export type Value = null | number | bigint | string | Uint8Array;

/** A row as an object keyed by column name. */
export type Row = Record<string, Value>;

/** A query result in column order. */
export interface RawRows {
  columns: string[];
  rows: Value[][];
}

/** A value a query parameter may take. */
export type Param = null | boolean | number | bigint | string | Uint8Array;
