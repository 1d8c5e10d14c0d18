import { type ErrorInfo, type FromWorker, type Method, mutatorOptionError } from './messages.js';
import { type RawWorker, sharedPort, type WorkerLike } from './port.js';
import type { LazyStats, OpenOptions, Param, PresencePeer, Progress, RawRows, Rejection, Row, Status } from './types.js';
import { decodeRows, encodeArgs, encodeParams, syncUrl, toObjects } from './values.js';

export type { WorkerLike } from './port.js';

/** An error from the replica, with a stable code when it has one. */
export class SqlsyncError extends Error {
  /**
   * rejected (the mutator refused the mutation), not_read_only,
   * bad_request, offline (a lazy replica lacks a page the statement or
   * mutation needs and cannot fetch it: a mutation so failed is not
   * recorded), owner_lost, closed, internal, ...
   */
  readonly code: string;
  constructor(info: ErrorInfo) {
    super(info.message);
    this.name = 'SqlsyncError';
    this.code = info.code ?? 'internal';
  }
}

/** A mutation the coordinator rejected after it ran locally. */
export class RejectedMutationError extends SqlsyncError {
  readonly seq: number;
  readonly mutation: string;
  constructor(r: Rejection) {
    super({ code: 'rejected', message: `mutation ${r.seq} (${r.name}) rejected: ${r.message}` });
    this.name = 'RejectedMutationError';
    this.seq = r.seq;
    this.mutation = r.name;
  }
}

/** Events a document emits. */
export interface DocumentEvents {
  /** The sync status changed. */
  status: Status;
  /** The coordinator rejected one of this replica's mutations; its effect is gone. */
  rejected: Rejection;
  /**
   * The others' presences changed: every presence of the document but
   * this tab's own (doc.presence.others).
   */
  presence: PresencePeer[];
  /**
   * An error to show: a rejected mutation (as RejectedMutationError), a
   * worker failure, a presence update the coordinator refused (code
   * `presence_refused`), or a warning such as code `queue_only` (the
   * document's mutator module cannot be had, offline with nothing cached
   * or no coordinator: mutations are queued and pushed without running
   * locally, see status.queueOnly) or `mutator_changed` (the coordinator
   * runs another mutator module, or a queue-only replica can now have
   * one: reopen the document to run it, see status.mutatorMismatch).
   */
  error: SqlsyncError;
  /**
   * A download goes on: the wasm bundle as the document opens (stage
   * "runtime"), or a large diff of the document (stage "document"; see
   * downloadProgress and the React hook useDownload).
   */
  progress: Progress;
}

type Listener<T> = (v: T) => void;

interface Subscription {
  onRows: (rows: RawRows) => void;
  onError?: (e: SqlsyncError) => void;
}

/**
 * A tab's presence in a document: a small JSON state (who is looking, what
 * they edit) that the other clients of the document see, and theirs. It
 * is never written to the document: it lasts while the replica is
 * connected and goes when cleared, when the tab closes, or when the
 * coordinator stops hearing of it. Each tab has its own, even tabs that
 * share one replica.
 */
export class DocumentPresence<T = unknown> {
  private current: PresencePeer<T>[] = [];
  private mine: T | null = null;

  /** @internal */
  constructor(private call: (state: string | null) => Promise<unknown>) {}

  /**
   * Every presence of the document but this tab's: other clients' (while
   * connected) and this browser's other tabs (`local`), ordered by ID. A
   * new array after each change (the `presence` event).
   */
  get others(): PresencePeer<T>[] {
    return this.current;
  }

  /** This tab's state, as last set (null for none). */
  get state(): T | null {
    return this.mine;
  }

  /**
   * Publishes state (JSON-encoded; null clears). Resolves once the replica
   * has it; it reaches the others at once, or as soon as the coordinator's
   * rate allows (updates in between are coalesced, the last wins). Rejects
   * with code `presence_too_large` over the coordinator's size limit (1
   * KiB by default).
   */
  set(state: T | null): Promise<void> {
    const json = state === null || state === undefined ? null : JSON.stringify(state);
    this.mine = json === null ? null : state;
    return this.call(json).then(() => undefined);
  }

  /** Withdraws this tab's presence. */
  clear(): Promise<void> {
    return this.set(null);
  }

  /** @internal */
  update(peers: PresencePeer[]): void {
    this.current = peers as PresencePeer<T>[];
  }
}

/** An open document: a local SQLite replica kept in sync with the coordinator. */
export class SqlsyncDocument {
  /** The document's ID. */
  readonly docId: string;
  /**
   * Where opening the document spent its time: when each step ended, in
   * milliseconds on this page's performance.now() clock. From the worker:
   * init (it began), request / response / downloaded / compiled / started
   * (the wasm bundle fetched, compiled and the Go runtime started; shared
   * by every document of the tab, so they may precede init), mutator (the
   * document's mutator resolved), runtime (the runtime was ready for it),
   * go.storage / go.mutator / go.state / go.replayed (inside the Go
   * runtime: storage opened, mutator module started, snapshot and pending
   * log opened, pending mutations replayed), opened (the replica open);
   * from this page: called (openDocument was called) and ready (it
   * resolved).
   */
  readonly startup: Record<string, number> = {};
  /** This tab's presence and the others': see DocumentPresence. */
  readonly presence: DocumentPresence = new DocumentPresence((state) => this.call('presence', [state]));
  private w: WorkerLike;
  private nextId = 1;
  private calls = new Map<number, { resolve(v: unknown): void; reject(e: SqlsyncError): void }>();
  private subs = new Map<number, Subscription>();
  private listeners = new Map<keyof DocumentEvents, Set<Listener<never>>>();
  private current?: Status;
  private download?: Progress;
  private closed = false;
  private ready: Promise<void>;
  private bigint: boolean;

  /** @internal Use openDocument. */
  constructor(worker: WorkerLike, docId: string, onProgress?: (p: Progress) => void, bigint = false) {
    this.w = worker;
    this.docId = docId;
    this.bigint = bigint;
    if (onProgress) this.on('progress', onProgress);
    this.ready = new Promise((resolve, reject) => {
      this.w.onmessage = (ev) => {
        const m = ev.data;
        if (m.t === 'status' && !this.current) {
          this.current = m.status;
          this.startup.ready = now();
          resolve();
        }
        if (m.t === 'fatal') reject(new SqlsyncError(m.error));
        this.receive(m);
      };
      this.w.onerror = (ev) => {
        const err = new SqlsyncError({ code: 'worker', message: `sqlsync worker: ${ev.message ?? 'failed to start'}` });
        reject(err);
        this.emit('error', err);
      };
    });
  }

  /** @internal */
  whenReady(): Promise<void> {
    return this.ready;
  }

  private receive(m: FromWorker): void {
    switch (m.t) {
      case 'ret': {
        const c = this.calls.get(m.id);
        if (!c) return;
        this.calls.delete(m.id);
        if (m.ok) c.resolve(m.value);
        else c.reject(new SqlsyncError(m.error));
        return;
      }
      case 'rows': {
        const s = this.subs.get(m.subId);
        if (!s) return;
        if (m.error) {
          const err = new SqlsyncError(m.error);
          if (s.onError) s.onError(err);
          else this.emit('error', err);
        } else if (m.json !== undefined) {
          s.onRows(decodeRows(m.json, this.bigint));
        }
        return;
      }
      case 'status':
        this.current = m.status;
        this.emit('status', m.status);
        return;
      case 'rejected':
        this.emit('rejected', m.rejection);
        this.emit('error', new RejectedMutationError(m.rejection));
        return;
      case 'presence':
        this.presence.update(m.peers);
        this.emit('presence', m.peers);
        return;
      case 'progress':
        if (m.progress.stage === 'document') this.download = m.progress;
        this.emit('progress', m.progress);
        return;
      case 'timing':
        for (const [k, v] of Object.entries(m.marks)) this.startup[k] = v - pageOrigin();
        return;
      case 'warning':
      case 'fatal':
        this.emit('error', new SqlsyncError(m.error));
        return;
    }
  }

  private emit<K extends keyof DocumentEvents>(event: K, v: DocumentEvents[K]): void {
    for (const l of this.listeners.get(event) ?? []) {
      try {
        (l as unknown as Listener<DocumentEvents[K]>)(v);
      } catch (e) {
        console.error('sqlsync: listener failed', e);
      }
    }
  }

  /** Calls fn on every `event` until the returned function is called. */
  on<K extends keyof DocumentEvents>(event: K, fn: Listener<DocumentEvents[K]>): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    const l = fn as unknown as Listener<never>;
    set.add(l);
    return () => {
      set.delete(l);
    };
  }

  private call(method: Method, args: unknown[]): Promise<unknown> {
    if (this.closed) return Promise.reject(new SqlsyncError({ code: 'closed', message: 'document closed' }));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.calls.set(id, { resolve, reject });
      this.w.postMessage({ t: 'call', id, method, args });
    });
  }

  /**
   * Runs mutation `name` locally with `args` (JSON-encoded, or bytes as
   * is) and queues it for the coordinator. Resolves with its sequence
   * number once it is durable locally; queries see it from then on.
   * Rejects with a SqlsyncError (code "rejected") if the mutator refuses it.
   */
  async mutate(name: string, args?: unknown): Promise<number> {
    return (await this.call('mutate', [name, encodeArgs(args)])) as number;
  }

  /** Runs a read-only query; resolves with its rows as objects. */
  async query<T = Row>(sql: string, params?: readonly Param[]): Promise<T[]> {
    return toObjects<T>(await this.queryRaw(sql, params));
  }

  /** Runs a read-only query; resolves with its columns and rows as arrays. */
  async queryRaw(sql: string, params?: readonly Param[]): Promise<RawRows> {
    return decodeRows((await this.call('query', [sql, encodeParams(params)])) as string, this.bigint);
  }

  /**
   * Calls onRows with the query's rows now and again whenever a local
   * mutation or a sync changes them (only queries reading a changed table
   * re-run, and only changed results are delivered), until the returned
   * function is called.
   */
  subscribe<T = Row>(
    sql: string,
    params: readonly Param[] | undefined,
    onRows: (rows: T[]) => void,
    onError?: (e: SqlsyncError) => void,
  ): () => void {
    return this.subscribeRaw(sql, params, (r) => onRows(toObjects<T>(r)), onError);
  }

  /** subscribe with rows as arrays. */
  subscribeRaw(
    sql: string,
    params: readonly Param[] | undefined,
    onRows: (rows: RawRows) => void,
    onError?: (e: SqlsyncError) => void,
  ): () => void {
    const subId = this.nextId++;
    this.subs.set(subId, { onRows, onError });
    this.w.postMessage({ t: 'sub', subId, sql, params: encodeParams(params) });
    return () => {
      if (this.subs.delete(subId) && !this.closed) this.w.postMessage({ t: 'unsub', subId });
    };
  }

  /** The latest status. */
  get status(): Status {
    return this.current!;
  }

  /**
   * The latest progress of a large download of the document (stage
   * "document": a first sync, or any diff the coordinator streams), or
   * undefined if there has been none since the document opened. It stays
   * at the last event (done: true) once a download ends.
   */
  get downloadProgress(): Progress | undefined {
    return this.download;
  }

  /**
   * What the replica fetched from the coordinator and holds, if it is lazy
   * (opened with `lazy: true` by the tab that owns it), else null.
   */
  async lazyStats(): Promise<LazyStats | null> {
    return (await this.call('lazyStats', [])) as LazyStats | null;
  }

  /** Asks the replica for its status now. */
  async fetchStatus(): Promise<Status> {
    const s = (await this.call('status', [])) as Status;
    this.current = s;
    return s;
  }

  /**
   * Resolves once the replica is synced: online, nothing pending, and
   * everything the coordinator told of applied (status.synced). Rejects
   * with a SqlsyncError if the replica stops (code 'stopped'), it has
   * pending mutations it will not push because the coordinator runs
   * another mutator module (code 'mutator_mismatch', see
   * status.mutatorMismatch), the document closes (code 'closed'), or
   * timeoutMs passes first (code 'timeout'; no limit by default).
   */
  waitSynced(timeoutMs?: number): Promise<void> {
    return new Promise((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const done = (err?: SqlsyncError) => {
        stop();
        stopClosed();
        clearTimeout(timer);
        if (err) reject(err);
        else resolve();
      };
      const check = (s: Status | undefined) => {
        if (this.closed) done(new SqlsyncError({ code: 'closed', message: 'document closed' }));
        else if (s?.synced) done();
        else if (s?.state === 'stopped') done(new SqlsyncError({ code: 'stopped', message: `sync stopped: ${s.lastError ?? ''}` }));
        else if (s?.mutatorMismatch && s.pending > 0) done(new SqlsyncError({ code: 'mutator_mismatch', message: s.lastError }));
      };
      const stop = this.on('status', check);
      const stopClosed = this.onClose(() => check(undefined));
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => done(new SqlsyncError({ code: 'timeout', message: `not synced after ${timeoutMs} ms` })), timeoutMs);
      }
      check(this.current);
    });
  }

  private closeListeners = new Set<() => void>();

  private onClose(fn: () => void): () => void {
    this.closeListeners.add(fn);
    return () => this.closeListeners.delete(fn);
  }

  /** Switches syncing on or off ("work offline"); local mutations go on either way. */
  async setOnline(on: boolean): Promise<void> {
    await this.call('setOnline', [on]);
  }

  /**
   * Closes the document. If this tab owned the document's storage, another
   * tab that has it open takes over.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    const id = this.nextId++;
    const done = new Promise<void>((resolve) => {
      this.calls.set(id, { resolve: () => resolve(), reject: () => resolve() });
    });
    this.w.postMessage({ t: 'close', id });
    await Promise.race([done, new Promise((r) => setTimeout(r, 5000))]);
    this.closed = true;
    for (const fn of [...this.closeListeners]) fn();
    for (const [, c] of this.calls) c.reject(new SqlsyncError({ code: 'closed', message: 'document closed' }));
    this.calls.clear();
    this.subs.clear();
    this.w.terminate();
  }
}

function now(): number {
  return typeof performance !== 'undefined' ? performance.now() : Date.now();
}

function pageOrigin(): number {
  return typeof performance !== 'undefined' ? performance.timeOrigin : 0;
}

/**
 * The package's own worker, started with the literal pattern bundlers
 * recognise (Vite, webpack 5, Rollup, esbuild): a production build bundles
 * dist/worker.js and the app needs no configuration.
 */
function packagedWorker(): RawWorker {
  return new Worker(new URL('./worker.js', import.meta.url), { type: 'module' }) as unknown as RawWorker;
}

/** The package's own wasm bundle, by the pattern bundlers emit as an asset. */
function packagedWasm(): URL {
  return new URL('./sqlsync.wasm', import.meta.url);
}

/** Starts the worker at url, across origins through a same-origin blob if needed. */
function startWorker(url: URL): RawWorker {
  if (typeof location !== 'undefined' && url.origin !== location.origin) {
    const blob = new Blob([`importScripts(${JSON.stringify(url.href)});`], { type: 'text/javascript' });
    return new Worker(URL.createObjectURL(blob)) as unknown as RawWorker;
  }
  return new Worker(url) as unknown as RawWorker;
}

/**
 * Opens a document: starts its worker, loads the wasm bundle (reporting
 * progress), and resolves once the replica is ready to query, as the owner
 * of the document's storage in this origin or through the tab that owns it.
 */
export async function openDocument(opts: OpenOptions, worker?: WorkerLike): Promise<SqlsyncDocument> {
  if (!opts.docId) throw new TypeError('openDocument: docId is required');
  const badMutator = mutatorOptionError(opts.mutator);
  if (badMutator) throw new SqlsyncError({ code: 'bad_request', message: badMutator });
  if (opts.cacheBytes !== undefined && !(Number.isSafeInteger(opts.cacheBytes) && opts.cacheBytes >= 0)) {
    throw new SqlsyncError({ code: 'bad_request', message: `openDocument: cacheBytes ${opts.cacheBytes} is not a whole number of bytes` });
  }
  const here = typeof location !== 'undefined' ? location.href : undefined;
  const base = opts.baseUrl ? new URL(opts.baseUrl, here) : undefined;
  const workerUrl = opts.workerUrl || base ? new URL(opts.workerUrl ?? 'worker.js', base ?? here) : undefined;
  const wasmUrl = opts.wasmUrl || base ? new URL(opts.wasmUrl ?? 'sqlsync.wasm', base ?? here) : packagedWasm();
  // Every document of the tab shares one worker (one Go runtime) per worker script.
  const w = worker ?? (workerUrl ? sharedPort(workerUrl.href, () => startWorker(workerUrl)) : sharedPort('', packagedWorker));
  const called = now();
  const doc = new SqlsyncDocument(w, opts.docId, opts.onProgress, opts.bigint);
  doc.startup.called = called;
  w.postMessage({
    t: 'init',
    config: {
      url: syncUrl(opts.url, typeof location !== 'undefined' ? location.href : undefined),
      docId: opts.docId,
      storage: opts.storage,
      token: opts.token,
      mutator: opts.mutator,
      mutatorUrl: opts.mutatorUrl ? new URL(opts.mutatorUrl, typeof location !== 'undefined' ? location.href : undefined).href : undefined,
      mutatorHash: opts.mutatorHash,
      offline: opts.online === false,
      presence: opts.presence !== false,
      lazy: opts.lazy,
      cacheBytes: opts.cacheBytes,
      logLevel: opts.logLevel,
      wasmUrl: wasmUrl.href,
    },
  });
  try {
    await doc.whenReady();
  } catch (e) {
    w.terminate();
    throw e;
  }
  return doc;
}
