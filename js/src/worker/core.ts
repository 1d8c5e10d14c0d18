// The document worker's logic, free of browser globals so that Node tests
// can drive it with fakes. A WorkerCore serves one document for one tab;
// the tab's one worker holds one per open document (router.ts). The
// tabs of an origin that open the same document elect one owner with a Web
// Lock: the owner runs the Go replica over the document's storage; the
// others (followers) send it their calls and subscriptions over a
// BroadcastChannel. When the owner's tab closes its lock passes to another
// tab's worker, which opens the same durable storage and carries on.
import type { ErrorInfo, FromWorker, Method, Peer, ToWorker, WirePeer, WorkerConfig } from '../messages.js';
import type { LazyStats, MutatorInfo, Progress, Rejection, Status } from '../types.js';
import type { ResolvedMutator } from './mutator.js';

/** The Go side of one open document (see wasm/main.go). */
export interface GoDoc {
  mutate(name: string, args: Uint8Array): Promise<number>;
  query(sql: string, params: string): Promise<string>;
  subscribe(sql: string, params: string, onRows: (json: string | null, err: Error | null) => void): Promise<number>;
  unsubscribe(id: number): Promise<void>;
  status(): Promise<string>;
  setOnline(on: boolean): Promise<void>;
  /** Publishes (stateJSON) or withdraws (null) the presence key: a tab's, by its worker ID. */
  presenceSet?(key: string, state: string | null): Promise<void>;
  /** A lazy replica's counts as JSON (wasm/bridge.LazyStats), or "null" for a whole replica. */
  lazyStats?(): Promise<string>;
  close(): Promise<void>;
  /** When each step of the open was passed, in ms since it began (startup timings). */
  steps?: Record<string, number>;
}

/** The Go side's entry point, globalThis.sqlsyncGo. */
export interface GoApi {
  /** Opens a document; module, if given, is its mutator module (run on the browser's engine). */
  open(configJSON: string, onEvent: (json: string) => void, module?: Uint8Array): Promise<GoDoc>;
}

/** What the worker needs of a BroadcastChannel. */
export interface ChannelLike {
  postMessage(m: unknown): void;
  onmessage: ((ev: { data: unknown }) => void) | null;
  close(): void;
}

/** What the worker needs of navigator.locks. */
export interface LocksLike {
  request(name: string, options: { signal?: AbortSignal }, callback: () => Promise<unknown>): Promise<unknown>;
}

/** The worker's surroundings. */
export interface Env {
  /** Sends a message to the main thread. */
  post(m: FromWorker): void;
  /** Opens the BroadcastChannel name, or returns null if there is none. */
  channel(name: string): ChannelLike | null;
  /** navigator.locks, or null. */
  locks: LocksLike | null;
  /** Loads and starts the Go wasm bundle. */
  loadGo(wasmUrl: string, onProgress: (p: Progress) => void): Promise<GoApi>;
  /**
   * Decides which mutator the replica runs (see mutator.ts); without it,
   * none (the replica opens queue-only).
   */
  resolveMutator?(cfg: WorkerConfig): Promise<ResolvedMutator>;
  /** Returns a fresh unique ID for this worker. */
  newId(): string;
  /** The time now in milliseconds since the epoch, for the startup timings; none without it. */
  now?(): number;
  /** The worker-wide timings of loading the Go bundle (go.ts loadMarks). */
  loadMarks?(): Record<string, number>;
}

interface Pending {
  method: Method;
  args: unknown[];
  acked: boolean;
  resolve(v: unknown): void;
  reject(e: ErrorInfo): void;
}

/** Methods that may run twice without harm when an owner is lost. */
const idempotent: Record<Method, boolean> = { mutate: false, query: true, status: true, setOnline: true, presence: true, lazyStats: true };

/** The error of a mutation whose fate the lost owner took with it. */
export const ownerLost: ErrorInfo = {
  code: 'owner_lost',
  message:
    'the tab that owned the document closed while this mutation was in flight: it may or may not have been recorded',
};

function errorInfo(e: unknown): ErrorInfo {
  if (e && typeof e === 'object' && 'message' in e) {
    const err = e as { message: string; code?: unknown };
    return { message: String(err.message), code: typeof err.code === 'string' ? err.code : undefined };
  }
  return { message: String(e) };
}

/** Lock and channel names for a document. */
export function names(docId: string) {
  return { doc: `sqlsync:doc:${docId}`, channel: `sqlsync:${docId}`, tab: (id: string) => `sqlsync:tab:${id}` };
}

export class WorkerCore {
  readonly id: string;
  private cfg?: WorkerConfig;
  private role: 'none' | 'follower' | 'owner' = 'none';
  private owner: string | null = null;
  private go: GoDoc | null = null;
  private goApi?: Promise<GoApi>;
  private ch: ChannelLike | null = null;
  private nextReq = 1;
  private pending = new Map<number, Pending>();
  private subs = new Map<number, { sql: string; params: string; goId?: number }>();
  private remoteSubs = new Map<string, Promise<number | undefined>>();
  private watched = new Set<string>();
  private closing = false;
  private abort = new AbortController();
  private release?: () => void;
  private status?: Omit<Status, 'role'>;
  private owning = false; // set once this worker starts opening the replica
  private mutator?: MutatorInfo; // what the replica runs, when this worker owns it
  private marks: Record<string, number> = {}; // startup timings (see mark)
  private changedWarned = new Set<string>(); // the module hashes ('' for none) a mutator_changed warning named
  // Presence: this tab's own state (JSON), re-sent to each new owner, and
  // every presence of the document as the owner's replica last reported
  // it (the tabs' own with their key).
  private presence: string | null = null;
  private peers: WirePeer[] = [];

  constructor(private env: Env) {
    this.id = env.newId();
  }

  /** handle takes a message from the main thread. */
  handle(m: ToWorker): void {
    switch (m.t) {
      case 'init':
        this.init(m.config);
        return;
      case 'call': {
        let args = m.args;
        if (m.method === 'presence') {
          // The page's presence is this tab's: keyed by the worker's ID.
          this.presence = (m.args[0] as string | null) ?? null;
          args = [this.id, this.presence];
        }
        this.exec(m.method, args).then(
          (value) => this.env.post({ t: 'ret', id: m.id, ok: true, value }),
          (error: ErrorInfo) => this.env.post({ t: 'ret', id: m.id, ok: false, error }),
        );
        return;
      }
      case 'sub':
        this.subs.set(m.subId, { sql: m.sql, params: m.params });
        this.subscribe(m.subId);
        return;
      case 'unsub':
        this.unsubscribe(m.subId);
        return;
      case 'dispose':
        this.close().catch(() => {}); // the page is gone from this document (after close, a no-op)
        return;
      case 'close':
        this.close().then(
          () => this.env.post({ t: 'ret', id: m.id, ok: true, value: null }),
          (e) => this.env.post({ t: 'ret', id: m.id, ok: false, error: errorInfo(e) }),
        );
        return;
    }
  }

  private init(cfg: WorkerConfig): void {
    this.cfg = cfg;
    const n = names(cfg.docId);
    const locks = this.env.locks;
    this.ch = cfg.storage === 'memory' ? null : this.env.channel(n.channel);
    if (cfg.storage === 'memory' || !locks || !this.ch) {
      // A memory replica is this tab's alone; without locks or channels
      // there is no one to share with.
      this.becomeOwner().catch(() => {});
      return;
    }
    this.ch.onmessage = (ev) => this.peer(ev.data as Peer);
    // Hold a lock for this worker's life, so that an owner learns when a
    // follower is gone and drops its subscriptions.
    locks.request(n.tab(this.id), { signal: this.abort.signal }, () => new Promise<void>(() => {})).catch(() => {});
    locks
      .request(n.doc, { signal: this.abort.signal }, async () => {
        if (this.closing) return;
        try {
          await this.becomeOwner();
        } catch {
          return; // let another tab try
        }
        await new Promise<void>((resolve) => (this.release = resolve));
      })
      .catch(() => {});
    if (this.role === 'none') this.role = 'follower';
    this.send({ k: 'hello', from: this.id });
  }

  private send(m: Peer): void {
    this.ch?.postMessage(m);
  }

  private loadGo(): Promise<GoApi> {
    this.goApi ??= this.env.loadGo(this.cfg!.wasmUrl, (p) => this.env.post({ t: 'progress', progress: p }));
    return this.goApi;
  }

  private async becomeOwner(): Promise<void> {
    const cfg = this.cfg!;
    this.owning = true;
    let go: GoDoc;
    let resolved: ResolvedMutator;
    let openedAt: number | undefined; // when the Go side's open began
    try {
      this.mark('init');
      const api = this.loadGo();
      api.catch(() => {}); // awaited below; a failure must not go unhandled meanwhile
      resolved = this.env.resolveMutator
        ? await this.env.resolveMutator(cfg)
        : { info: { kind: 'none', source: cfg.mutator === 'none' ? 'option' : 'default' } };
      this.mutator = resolved.info;
      this.mark('mutator');
      const goApi = await api;
      this.mark('runtime');
      openedAt = this.env.now?.();
      go = await goApi.open(
        JSON.stringify({
          url: cfg.url,
          docId: cfg.docId,
          storage: cfg.storage ?? '',
          token: cfg.token ?? '',
          // No module and no mutator name: the Go replica opens queue-only.
          mutator: '',
          mutatorHash: resolved.info.hash ?? '',
          offline: !!cfg.offline,
          presence: cfg.presence !== false,
          lazy: !!cfg.lazy,
          cacheBytes: cfg.cacheBytes ?? 0,
          logLevel: cfg.logLevel ?? '',
        }),
        (json) => this.goEvent(json),
        resolved.module,
      );
    } catch (e) {
      this.owning = false;
      this.env.post({ t: 'fatal', error: errorInfo(e) });
      throw e;
    }
    if (this.closing) {
      await go.close();
      return;
    }
    if (openedAt !== undefined) {
      for (const [step, ms] of Object.entries(go.steps ?? {})) this.marks[`go.${step}`] ??= openedAt + ms;
    }
    this.mark('opened');
    this.go = go;
    this.role = 'owner';
    this.owner = this.id;
    this.env.post({ t: 'timing', marks: { ...this.env.loadMarks?.(), ...this.marks } });
    for (const subId of this.subs.keys()) this.subscribe(subId);
    this.retry();
    if (this.presence !== null) go.presenceSet?.(this.id, this.presence).catch(() => {});
    this.send({ k: 'owner', owner: this.id });
    this.status = this.decorate(JSON.parse(await go.status()));
    this.postStatus();
    // After the first status, so that openDocument has resolved and the
    // app's error listeners can hear it.
    if (resolved.warning) this.env.post({ t: 'warning', error: resolved.warning });
    resolved.revalidated?.then((now) => {
      if (!now || this.closing) return;
      const hash = now.info.hash ?? '';
      if (this.changedWarned.has(hash)) return;
      this.changedWarned.add(hash);
      let message: string;
      if (!hash) {
        message = 'the coordinator now names no mutator module for this document; the replica opens queue-only from its next open';
      } else if (resolved.info.kind === 'none') {
        message = `the coordinator now names the mutator module ${hash.slice(0, 12)} for this document: reopen the document to run it locally (until then its mutations are pushed without running here)`;
      } else {
        message = `the coordinator now runs the module ${hash.slice(0, 12)} for this document; the replica runs it from its next open (the coordinator's results win meanwhile)`;
      }
      this.env.post({ t: 'warning', error: { code: 'mutator_changed', message } });
    });
  }

  /**
   * mark records when a step of opening the document happened: init (the
   * open began), mutator (its mutator resolved), runtime (the Go runtime
   * ready), go.<step> (the Go side's steps of the open: storage, mutator,
   * state, replayed), opened (the replica open).
   */
  private mark(name: string): void {
    const t = this.env.now?.();
    if (t !== undefined) this.marks[name] ??= t;
  }

  /** decorate adds to the Go replica's status what only the worker knows. */
  private decorate(s: Omit<Status, 'role'>): Omit<Status, 'role'> {
    return this.mutator ? { ...s, mutator: this.mutator } : s;
  }

  private postStatus(): void {
    if (this.status) this.env.post({ t: 'status', status: { ...this.status, role: this.owning ? 'owner' : 'follower' } });
  }

  private goEvent(json: string): void {
    const ev = JSON.parse(json) as { type: string; status?: Omit<Status, 'role'> } & Rejection;
    if (ev.type === 'status' && ev.status) {
      this.status = this.decorate(ev.status);
      this.postStatus();
      this.send({ k: 'status', status: this.status });
      const theirs = ev.status.coordinatorMutator ?? '';
      if (ev.status.mutatorMismatch) {
        this.changed(theirs, ev.status.lastError);
      } else if (theirs && this.mutator?.kind === 'none' && this.mutator.source !== 'option') {
        // A replica opened queue-only for want of its module (offline,
        // nothing cached) has reached a coordinator that names one.
        this.changed(
          theirs,
          `the coordinator runs the mutator module ${theirs.slice(0, 12)} for this document: reopen the document to run it locally (until then its mutations are pushed without running here)`,
          true,
        );
      }
    } else if (ev.type === 'rejected') {
      const rejection = { seq: ev.seq, name: ev.name, message: ev.message };
      this.env.post({ t: 'rejected', rejection });
      this.send({ k: 'rejected', rejection });
    } else if (ev.type === 'presence') {
      this.peers = (ev as unknown as { peers: WirePeer[] }).peers ?? [];
      this.postPresence();
      this.send({ k: 'presence', peers: this.peers });
    } else if (ev.type === 'progress') {
      const { type: _t, ...progress } = ev as unknown as Progress & { type: string };
      this.env.post({ t: 'progress', progress });
      this.send({ k: 'progress', progress });
    } else if (ev.type === 'presenceRefused') {
      const r = ev as unknown as { key: string; code: string; reason: string };
      const error = { code: 'presence_refused', message: `presence refused (${r.code}): ${r.reason}` };
      if (r.key === this.id) this.env.post({ t: 'warning', error });
      else this.send({ k: 'presenceRefused', to: r.key, error });
    }
  }

  /** postPresence tells the page of every presence but its own. */
  private postPresence(): void {
    const others = this.peers
      .filter((p) => !(p.local && p.key === this.id))
      .map(({ key: _key, ...p }) => p);
    this.env.post({ t: 'presence', peers: others });
  }

  /**
   * changed handles a replica that does not run the module the coordinator
   * announced when it connected (hash): one whose module differs (the Go
   * replica pushes nothing: its mutations stay pending), or, queueOnly, a
   * replica that runs none (its mutations are pushed, but do not run
   * here). Unless the app forced a module URL, the worker asks the
   * coordinator again which module the document uses, so that the answer
   * and the module are cached for the next open (else a cache-first open
   * would start the old module, or none, once more), then warns the app
   * (code mutator_changed, message) that reopening the document runs it.
   * A queue-only replica is warned only once the module is cached (a
   * reopen would be queue-only again otherwise); until then each status
   * naming the module tries again. Reopening the replica under the app's
   * feet (its subscriptions, the other tabs' calls in flight) is left to
   * the app: close() and openDocument, or a reload.
   */
  private changed(hash: string, message: string, queueOnly = false): void {
    if (!hash || this.changedWarned.has(hash)) return;
    const cfg = this.cfg!;
    const resolve = this.env.resolveMutator;
    if (queueOnly && !resolve) return;
    this.changedWarned.add(hash);
    const refreshed: Promise<boolean> =
      cfg.mutatorUrl || !resolve
        ? Promise.resolve(true)
        : resolve(cfg).then(
            async (r) => {
              const now = (await r.revalidated) ?? r;
              return !queueOnly || (now.info.kind === 'module' && now.info.hash === hash);
            },
            () => !queueOnly,
          );
    refreshed.then((ok) => {
      if (!ok) this.changedWarned.delete(hash);
      else if (!this.closing) this.env.post({ t: 'warning', error: { code: 'mutator_changed', message } });
    });
  }

  /** exec runs a call here if this worker owns the document, else at the owner. */
  private exec(method: Method, args: unknown[]): Promise<unknown> {
    if (this.role === 'owner') return this.execLocal(method, args);
    return new Promise((resolve, reject) => {
      const id = this.nextReq++;
      this.pending.set(id, { method, args, acked: false, resolve, reject });
      if (this.owner) this.send({ k: 'req', from: this.id, to: this.owner, id, method, args });
    });
  }

  private async execLocal(method: Method, args: unknown[]): Promise<unknown> {
    const go = this.go!;
    try {
      switch (method) {
        case 'mutate':
          return await go.mutate(args[0] as string, args[1] as Uint8Array);
        case 'query':
          return await go.query(args[0] as string, args[1] as string);
        case 'status':
          return { ...this.decorate(JSON.parse(await go.status())), role: 'owner' };
        case 'setOnline':
          await go.setOnline(!!args[0]);
          return null;
        case 'presence':
          await go.presenceSet?.(args[0] as string, (args[1] as string | null) ?? null);
          return null;
        case 'lazyStats':
          return go.lazyStats ? (JSON.parse(await go.lazyStats()) as LazyStats | null) : null;
      }
    } catch (e) {
      throw errorInfo(e);
    }
    throw { message: `unknown method ${method}` } as ErrorInfo;
  }

  /** retry re-sends, after an owner change, what the old owner did not answer. */
  private retry(): void {
    for (const [id, p] of this.pending) {
      if (p.acked && !idempotent[p.method]) {
        this.pending.delete(id);
        p.reject(ownerLost);
        continue;
      }
      p.acked = false;
      if (this.role === 'owner') {
        this.pending.delete(id);
        this.execLocal(p.method, p.args).then(p.resolve, p.reject);
      } else if (this.owner) {
        this.send({ k: 'req', from: this.id, to: this.owner, id, method: p.method, args: p.args });
      }
    }
  }

  private subscribe(subId: number): void {
    const s = this.subs.get(subId);
    if (!s) return;
    if (this.role === 'owner') {
      this.go!.subscribe(s.sql, s.params, (json, err) => {
        if (!this.subs.has(subId)) return;
        this.env.post(err ? { t: 'rows', subId, error: errorInfo(err) } : { t: 'rows', subId, json: json! });
      }).then(
        (goId) => {
          if (this.subs.get(subId) === s) s.goId = goId;
          else this.go?.unsubscribe(goId);
        },
        (e) => this.env.post({ t: 'rows', subId, error: errorInfo(e) }),
      );
    } else if (this.owner) {
      this.send({ k: 'sub', from: this.id, to: this.owner, subId, sql: s.sql, params: s.params });
    }
  }

  private unsubscribe(subId: number): void {
    const s = this.subs.get(subId);
    this.subs.delete(subId);
    if (!s) return;
    if (this.role === 'owner') {
      if (s.goId !== undefined) this.go?.unsubscribe(s.goId);
    } else if (this.owner) {
      this.send({ k: 'unsub', from: this.id, to: this.owner, subId });
    }
  }

  /** peer takes a message from another worker of the document. */
  private peer(m: Peer): void {
    if (this.closing) return;
    switch (m.k) {
      case 'hello':
        if (this.role === 'owner') {
          this.send({ k: 'owner', owner: this.id });
          this.send({ k: 'presence', peers: this.peers });
        }
        return;
      case 'owner':
        if (m.owner === this.id || m.owner === this.owner) return;
        this.owner = m.owner;
        if (this.role === 'owner') return; // cannot happen while we hold the lock
        this.role = 'follower';
        for (const subId of this.subs.keys()) this.subscribe(subId);
        this.retry();
        if (this.presence !== null) this.exec('presence', [this.id, this.presence]).catch(() => {});
        this.exec('status', []).then(
          (s) => {
            this.status = s as Status;
            this.postStatus();
          },
          () => {},
        );
        return;
      case 'status':
        if (this.role !== 'owner') {
          this.status = m.status;
          this.postStatus();
        }
        return;
      case 'rejected':
        if (this.role !== 'owner') this.env.post({ t: 'rejected', rejection: m.rejection });
        return;
      case 'presence':
        if (this.role !== 'owner') {
          this.peers = m.peers;
          this.postPresence();
        }
        return;
      case 'presenceRefused':
        if (m.to === this.id) this.env.post({ t: 'warning', error: m.error });
        return;
      case 'progress':
        if (this.role !== 'owner') this.env.post({ t: 'progress', progress: m.progress });
        return;
      case 'ack': {
        const p = m.to === this.id ? this.pending.get(m.id) : undefined;
        if (p) p.acked = true;
        return;
      }
      case 'res': {
        if (m.to !== this.id) return;
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        if (m.ok) p.resolve(m.value);
        else p.reject(m.error ?? { message: 'unknown error' });
        return;
      }
      case 'rows':
        if (m.to === this.id && this.subs.has(m.subId)) {
          this.env.post(m.error ? { t: 'rows', subId: m.subId, error: m.error } : { t: 'rows', subId: m.subId, json: m.json });
        }
        return;
      case 'bye':
        if (this.role === 'owner') this.dropPeer(m.from);
        return;
      case 'req':
      case 'sub':
      case 'unsub':
        if (this.role === 'owner' && m.to === this.id) this.serve(m);
        return;
    }
  }

  /** serve answers a follower's call or subscription. */
  private serve(m: Extract<Peer, { k: 'req' | 'sub' | 'unsub' }>): void {
    this.watch(m.from);
    switch (m.k) {
      case 'req':
        this.send({ k: 'ack', to: m.from, id: m.id });
        this.execLocal(m.method, m.args).then(
          (value) => this.send({ k: 'res', to: m.from, id: m.id, ok: true, value }),
          (error: ErrorInfo) => this.send({ k: 'res', to: m.from, id: m.id, ok: false, error }),
        );
        return;
      case 'sub': {
        const key = `${m.from}:${m.subId}`;
        const { from, subId } = m;
        this.remoteSubs.get(key)?.then((id) => this.unsubscribeGo(id));
        this.remoteSubs.set(
          key,
          this.go!.subscribe(m.sql, m.params, (json, err) => {
            this.send(err ? { k: 'rows', to: from, subId, error: errorInfo(err) } : { k: 'rows', to: from, subId, json: json! });
          }).catch((e) => {
            this.send({ k: 'rows', to: from, subId, error: errorInfo(e) });
            return undefined;
          }),
        );
        return;
      }
      case 'unsub': {
        const key = `${m.from}:${m.subId}`;
        this.remoteSubs.get(key)?.then((id) => this.unsubscribeGo(id));
        this.remoteSubs.delete(key);
        return;
      }
    }
  }

  private unsubscribeGo(id: number | undefined): void {
    if (id !== undefined) this.go?.unsubscribe(id).catch(() => {});
  }

  /** watch drops a follower's subscriptions once its tab is gone. */
  private watch(peer: string): void {
    if (this.watched.has(peer) || !this.env.locks) return;
    this.watched.add(peer);
    this.env.locks
      .request(names(this.cfg!.docId).tab(peer), { signal: this.abort.signal }, async () => this.dropPeer(peer))
      .catch(() => {});
  }

  private dropPeer(peer: string): void {
    this.watched.delete(peer);
    this.go?.presenceSet?.(peer, null).catch(() => {}); // its tab's presence goes with it
    for (const [key, id] of this.remoteSubs) {
      if (key.startsWith(peer + ':')) {
        this.remoteSubs.delete(key);
        id.then((goId) => this.unsubscribeGo(goId));
      }
    }
  }

  private async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      p.reject({ code: 'closed', message: 'document closed' });
    }
    if (this.role === 'owner' && this.go) {
      const go = this.go;
      this.go = null;
      await go.close();
    } else if (this.owner) {
      this.send({ k: 'bye', from: this.id });
    }
    this.release?.();
    this.abort.abort();
    this.ch?.close();
  }
}
