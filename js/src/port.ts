// The page's side of the tab's one worker: every document the tab opens
// talks to the same worker (one Go runtime, one download and compile of the
// wasm bundle) through a Port that tags its messages with a channel number.
import type { FromWorker, Routed, ToWorker } from './messages.js';

/** The minimal part of Worker a document needs (a fake in tests). */
export interface WorkerLike {
  postMessage(m: ToWorker): void;
  onmessage: ((ev: { data: FromWorker }) => void) | null;
  onerror: ((ev: { message?: string }) => void) | null;
  terminate(): void;
}

/** The minimal part of Worker the tab's worker is used through. */
export interface RawWorker {
  postMessage(m: Routed<ToWorker>): void;
  onmessage: ((ev: { data: Routed<FromWorker> }) => void) | null;
  onerror: ((ev: { message?: string }) => void) | null;
  terminate(): void;
}

/** How long the tab's worker outlives its last document (a reopen, React StrictMode). */
export const idleMs = 30_000;

/** A shared worker and the documents on it. */
export class SharedWorker {
  private ports = new Map<number, Port>();
  private next = 1;
  private idle?: ReturnType<typeof setTimeout>;
  private dead = false;

  constructor(
    private w: RawWorker,
    private onEmpty: () => void,
  ) {
    w.onmessage = (ev) => this.ports.get(ev.data.d)?.onmessage?.({ data: ev.data.m });
    w.onerror = (ev) => {
      // A worker that fails to start fails every document on it.
      this.dead = true;
      this.onEmpty();
      for (const p of this.ports.values()) p.onerror?.(ev);
    };
  }

  /** Whether the worker failed. */
  get failed(): boolean {
    return this.dead;
  }

  /** port opens a new channel to the worker for one document. */
  port(): Port {
    clearTimeout(this.idle);
    this.idle = undefined;
    const p = new Port(this.next++, this);
    this.ports.set(p.channel, p);
    return p;
  }

  /** @internal */
  send(channel: number, m: ToWorker): void {
    this.w.postMessage({ d: channel, m });
  }

  /** @internal The document on channel is closed: drop it, and the worker once idle. */
  drop(channel: number): void {
    if (!this.ports.delete(channel)) return;
    this.w.postMessage({ d: channel, m: { t: 'dispose' } });
    if (this.ports.size === 0) {
      this.idle = setTimeout(() => {
        if (this.ports.size > 0) return;
        this.onEmpty();
        this.w.terminate();
      }, idleMs);
    }
  }
}

/** One document's channel to the tab's worker, used as if it were a Worker of its own. */
export class Port implements WorkerLike {
  onmessage: ((ev: { data: FromWorker }) => void) | null = null;
  onerror: ((ev: { message?: string }) => void) | null = null;

  constructor(
    readonly channel: number,
    private shared: SharedWorker,
  ) {}

  postMessage(m: ToWorker): void {
    this.shared.send(this.channel, m);
  }

  terminate(): void {
    this.shared.drop(this.channel);
  }
}

const workers = new Map<string, SharedWorker>();

/**
 * sharedPort returns a channel to the tab's worker for key (the worker's
 * script URL), starting the worker with start if there is none yet.
 */
export function sharedPort(key: string, start: () => RawWorker): Port {
  let s = workers.get(key);
  if (!s || s.failed) {
    const created: SharedWorker = new SharedWorker(start(), () => {
      if (workers.get(key) === created) workers.delete(key);
    });
    s = created;
    workers.set(key, s);
  }
  return s.port();
}
