// Fakes of the browser around a WorkerCore: Web Locks, BroadcastChannels
// and the Go replica, for an "origin" of several tabs in one Node process.
import type { FromWorker, ToWorker, WorkerConfig } from '../../src/messages.js';
import type { ResolvedMutator } from '../../src/worker/mutator.js';
import type { ChannelLike, Env, GoApi, GoDoc, LocksLike } from '../../src/worker/core.js';
import { WorkerCore } from '../../src/worker/core.js';

type Waiter = { owner: string; cb: () => Promise<unknown>; resolve(v: unknown): void; reject(e: unknown): void };

/** Web Locks of one origin. */
export class FakeLockManager {
  private held = new Map<string, string>(); // lock -> holder
  private queues = new Map<string, Waiter[]>();

  forTab(owner: string): LocksLike {
    return {
      request: (name, options, cb) =>
        new Promise((resolve, reject) => {
          const w: Waiter = { owner, cb, resolve, reject };
          options.signal?.addEventListener('abort', () => {
            const q = this.queues.get(name) ?? [];
            const i = q.indexOf(w);
            if (i >= 0) {
              q.splice(i, 1);
              reject(new Error('AbortError'));
            }
          });
          const q = this.queues.get(name) ?? [];
          q.push(w);
          this.queues.set(name, q);
          this.grant(name);
        }),
    };
  }

  private grant(name: string): void {
    if (this.held.has(name)) return;
    const q = this.queues.get(name) ?? [];
    const w = q.shift();
    if (!w) return;
    this.held.set(name, w.owner);
    Promise.resolve()
      .then(w.cb)
      .then(w.resolve, w.reject)
      .finally(() => {
        if (this.held.get(name) === w.owner) {
          this.held.delete(name);
          this.grant(name);
        }
      });
  }

  /** kill releases every lock a dead tab held or waited for. */
  kill(owner: string): void {
    for (const [name, q] of this.queues) this.queues.set(name, q.filter((w) => w.owner !== owner));
    for (const [name, holder] of [...this.held]) {
      if (holder === owner) {
        this.held.delete(name);
        this.grant(name);
      }
    }
  }
}

/** BroadcastChannels of one origin: delivery to the other instances, later. */
export class FakeBus {
  private chans = new Set<{ name: string; owner: string; ch: ChannelLike }>();

  forTab(owner: string): (name: string) => ChannelLike {
    return (name) => {
      const entry = { name, owner, ch: undefined as unknown as ChannelLike };
      const ch: ChannelLike = {
        onmessage: null,
        postMessage: (m) => {
          const data = structuredClone(m);
          for (const o of this.chans) {
            if (o !== entry && o.name === name) setTimeout(() => o.ch.onmessage?.({ data }), 0);
          }
        },
        close: () => this.chans.delete(entry),
      };
      entry.ch = ch;
      this.chans.add(entry);
      return ch;
    };
  }

  kill(owner: string): void {
    for (const e of this.chans) if (e.owner === owner) this.chans.delete(e);
  }
}

/** A document's durable state, shared by whichever tab owns it. */
export class FakeStorage {
  rows: string[] = [];
  opens = 0;
}

/** A Go replica over FakeStorage: mutate "add" appends args.id. */
export class FakeGoDoc implements GoDoc {
  private subs = new Map<number, { cb: (json: string | null, err: Error | null) => void; last: string }>();
  private next = 1;
  closed = false;
  hang = false; // mutate never settles (a worker dying mid-call)
  emit: (json: string) => void = () => {}; // sends an event as the Go replica does
  /** Opened with neither a module nor a mutator name, as the Go bridge opens a queue-only replica. */
  queueOnly = false;
  /** Opened with lazy: lazyStats reports a page cache, as the Go bridge does. */
  lazy = false;
  cacheBytes = 0;
  constructor(private st: FakeStorage) {}
  private json() {
    return JSON.stringify({ columns: ['id'], rows: this.st.rows.map((r) => [r]) });
  }
  async mutate(name: string, args: Uint8Array): Promise<number> {
    if (this.hang) return new Promise(() => {});
    const a = JSON.parse(new TextDecoder().decode(args));
    if (name === 'fail') throw Object.assign(new Error(a.message), { code: a.code ?? 'rejected' });
    this.st.rows.push(a.id);
    for (const s of this.subs.values()) {
      const j = this.json();
      if (j !== s.last) {
        s.last = j;
        s.cb(j, null);
      }
    }
    return this.st.rows.length;
  }
  async query(): Promise<string> {
    return this.json();
  }
  async subscribe(_sql: string, _params: string, cb: (json: string | null, err: Error | null) => void): Promise<number> {
    const id = this.next++;
    const last = this.json();
    this.subs.set(id, { cb, last });
    cb(last, null);
    return id;
  }
  async unsubscribe(id: number): Promise<void> {
    this.subs.delete(id);
  }
  subCount() {
    return this.subs.size;
  }
  async status(): Promise<string> {
    return JSON.stringify({ state: 'offline', lsn: 0, serverLsn: 0, pending: this.st.rows.length, lastError: '', synced: false, storage: 'opfs', clientId: 'c1', queueOnly: this.queueOnly });
  }
  async setOnline(): Promise<void> {}
  async lazyStats(): Promise<string> {
    if (!this.lazy) return 'null';
    const cacheBytes = this.cacheBytes || 64 << 20;
    return JSON.stringify({ fetches: 1, pagesFetched: 2, prefetched: 0, stale: 0, evicted: 0, cachedPages: 3, cachedBytes: 3 * 4096, cacheBytes });
  }
  /** The presences set, by key (a tab's worker ID), as the Go replica keeps them. */
  presences = new Map<string, string>();
  /** Other replicas' presences, as the coordinator would send them. */
  remote: { id: string; clientId: string; readOnly: boolean; local: false; state: unknown }[] = [];
  async presenceSet(key: string, state: string | null): Promise<void> {
    if (state === null) this.presences.delete(key);
    else this.presences.set(key, state);
    this.emitPresence();
  }
  /** emitPresence sends every presence, as the Go bridge's presence event does. */
  emitPresence(): void {
    const local = [...this.presences].map(([key, state]) => ({ id: `local/${key}`, clientId: 'c1', readOnly: false, local: true, key, state: JSON.parse(state) }));
    this.emit(JSON.stringify({ type: 'presence', peers: [...this.remote, ...local].sort((x, y) => (x.id < y.id ? -1 : 1)) }));
  }
  async close(): Promise<void> {
    this.closed = true;
  }
}

/** A tab: a WorkerCore with its messages to the main thread recorded. */
export class Tab {
  core: WorkerCore;
  out: FromWorker[] = [];
  go?: FakeGoDoc;
  /** What each open passed to Go: its config and module. */
  opened: { config: Record<string, unknown>; module?: Uint8Array }[] = [];
  private listeners = new Set<(m: FromWorker) => void>();
  constructor(
    readonly id: string,
    private origin: Origin,
  ) {
    const env: Env = {
      post: (m) => {
        this.out.push(m);
        for (const l of this.listeners) l(m);
      },
      channel: origin.bus.forTab(id),
      locks: origin.locks.forTab(id),
      loadGo: async (): Promise<GoApi> => ({
        open: async (config, onEvent, module) => {
          this.opened.push({ config: JSON.parse(config), module });
          origin.storage.opens++;
          this.go = new FakeGoDoc(origin.storage);
          this.go.emit = onEvent;
          this.go.queueOnly = !module && !JSON.parse(config).mutator;
          this.go.lazy = !!JSON.parse(config).lazy;
          this.go.cacheBytes = JSON.parse(config).cacheBytes ?? 0;
          return this.go;
        },
      }),
      resolveMutator: origin.resolveMutator,
      newId: () => id,
    };
    this.core = new WorkerCore(env);
  }
  send(m: ToWorker): void {
    this.core.handle(m);
  }
  onPost(l: (m: FromWorker) => void): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }
  /** waitFor resolves with the first message (already sent or to come) matching f. */
  waitFor<T extends FromWorker>(f: (m: FromWorker) => m is T, timeout = 2000): Promise<T> {
    const found = this.out.find(f);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`tab ${this.id}: timed out`)), timeout);
      const off = this.onPost((m) => {
        if (f(m)) {
          clearTimeout(t);
          off();
          resolve(m);
        }
      });
    });
  }
  /** kill ends the tab as closing it in the browser would: no goodbye. */
  kill(): void {
    this.origin.locks.kill(this.id);
    this.origin.bus.kill(this.id);
  }
}

/** The tabs of one origin. */
export class Origin {
  locks = new FakeLockManager();
  bus = new FakeBus();
  storage = new FakeStorage();
  resolveMutator?: (cfg: WorkerConfig) => Promise<ResolvedMutator>;
  tab(id: string): Tab {
    return new Tab(id, this);
  }
}

export const init = (docId = 'doc', storage?: 'memory'): ToWorker => ({
  t: 'init',
  config: { url: '', docId, wasmUrl: 'x.wasm', storage },
});
