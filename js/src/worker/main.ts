// The worker's entry point: a dedicated Web Worker that openDocument starts
// once per tab and that hosts every document the tab opens (router.ts).
import '../../build/wasm_exec.js';
import type { Routed, ToWorker } from '../messages.js';
import { Router } from './router.js';
import { loadGo, loadMarks } from './go.js';
import { resolveMutator, subtleSha256 } from './mutator.js';
import { installMutatorHost, mutatorHost } from './mutator-host.js';

installMutatorHost(); // for wasm/jsmutator, which runs a document's mutator module

const scope = globalThis as unknown as {
  postMessage(m: unknown): void;
  onmessage: ((ev: MessageEvent<Routed<ToWorker>>) => void) | null;
};

const router = new Router({
  post: (m) => scope.postMessage(m),
  channel: (name) => (typeof BroadcastChannel === 'function' ? new BroadcastChannel(name) : null),
  locks: typeof navigator !== 'undefined' && navigator.locks ? navigator.locks : null,
  loadGo,
  resolveMutator: (cfg) =>
    resolveMutator(cfg, {
      fetch: (url, init) => fetch(url, init),
      caches: typeof caches !== 'undefined' ? caches : null,
      sha256: subtleSha256,
      codeSource: mutatorHost.registerCodeSource,
    }),
  newId: () => crypto.randomUUID(),
  now: () => performance.timeOrigin + performance.now(),
  loadMarks: () => loadMarks,
});

scope.onmessage = (ev) => router.handle(ev.data);
