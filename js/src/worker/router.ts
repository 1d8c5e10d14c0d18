// One worker per tab hosts every document the tab opens: one Go runtime,
// one wasm bundle download and compile, many documents. The page tags each
// message with the document's channel number (see ../port.ts); the router
// keeps one WorkerCore per channel, all sharing one loader of the Go bundle.
import type { FromWorker, Routed, ToWorker } from '../messages.js';
import type { Progress } from '../types.js';
import { type Env, type GoApi, WorkerCore } from './core.js';

/** What the router needs: the worker's surroundings, with post taking tagged messages. */
export interface RouterEnv extends Omit<Env, 'post'> {
  post(m: Routed<FromWorker>): void;
}

/**
 * sharedLoader wraps load so that the bundle at a URL is fetched, compiled
 * and started once for the worker's life, however many documents ask;
 * every caller hears the download's progress while it lasts.
 */
export function sharedLoader(load: Env['loadGo']): Env['loadGo'] {
  const started = new Map<string, { api: Promise<GoApi>; listeners: Set<(p: Progress) => void> }>();
  return (url, onProgress) => {
    let s = started.get(url);
    if (!s) {
      const listeners = new Set<(p: Progress) => void>();
      const api = load(url, (p) => {
        for (const l of listeners) l(p);
      });
      s = { api, listeners };
      started.set(url, s);
      api.then(
        () => listeners.clear(),
        () => started.delete(url), // a later open may try again
      );
    }
    s.listeners.add(onProgress);
    return s.api;
  };
}

/** Router hands each tagged message to its document's WorkerCore. */
export class Router {
  private cores = new Map<number, WorkerCore>();
  private env: Env;

  constructor(private renv: RouterEnv) {
    this.env = { ...renv, post: () => {}, loadGo: sharedLoader(renv.loadGo) };
  }

  /** The number of documents this worker hosts. */
  get size(): number {
    return this.cores.size;
  }

  /** handle takes a tagged message from the page. */
  handle({ d, m }: Routed<ToWorker>): void {
    if (m.t === 'dispose') {
      this.cores.delete(d);
      return;
    }
    let core = this.cores.get(d);
    if (!core) {
      if (m.t !== 'init') return; // a message for a document already disposed of
      core = new WorkerCore({ ...this.env, post: (x) => this.renv.post({ d, m: x }) });
      this.cores.set(d, core);
    }
    core.handle(m);
  }
}
