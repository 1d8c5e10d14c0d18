// Loading the Go wasm bundle in the worker, with download progress.
import type { Progress } from '../types.js';
import type { GoApi } from './core.js';

declare const Go: new () => {
  argv: string[];
  env: Record<string, string>;
  importObject: WebAssembly.Imports;
  run(instance: WebAssembly.Instance): Promise<void>;
};

/**
 * countProgress reads a clone of resp to report download progress, so that
 * the original, untouched fetch Response can go to instantiateStreaming:
 * only a real fetch Response compiles while it downloads and is eligible
 * for V8's WebAssembly code cache (a Response rebuilt from a stream is not).
 */
function countProgress(resp: Response, onProgress: (p: Progress) => void): void {
  // With Content-Encoding, Content-Length counts compressed bytes while the
  // stream yields decoded ones: the server may say the decoded size.
  const encoded = !!resp.headers.get('content-encoding');
  const header = encoded ? resp.headers.get('x-decoded-content-length') : resp.headers.get('content-length');
  const total = header ? Number(header) : undefined;
  const body = resp.clone().body;
  if (!body) return;
  const reader = body.getReader();
  let loaded = 0;
  let last = 0;
  const pump = async (): Promise<void> => {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) {
        mark('downloaded');
        onProgress({ stage: 'runtime', loaded, total: total ?? loaded });
        return;
      }
      loaded += value.byteLength;
      const now = Date.now();
      if (now - last > 50) {
        last = now;
        onProgress({ stage: 'runtime', loaded, total });
      }
    }
  };
  pump().catch(() => {}); // the original response reports the failure
}

/**
 * When each step of loading the bundle happened, in milliseconds since the
 * epoch (performance.timeOrigin + performance.now()): request, response
 * (headers), downloaded, compiled, started (the Go runtime is ready).
 */
export const loadMarks: Record<string, number> = {};

function mark(name: string): void {
  loadMarks[name] ??= performance.timeOrigin + performance.now();
}

/** loadGo fetches, compiles and starts the wasm bundle at url. */
export async function loadGo(url: string, onProgress: (p: Progress) => void): Promise<GoApi> {
  const go = new Go();
  go.argv = ['sqlsync'];
  const g = globalThis as unknown as { __sqlsyncReady?: (api: GoApi) => void };
  const ready = new Promise<GoApi>((resolve) => {
    g.__sqlsyncReady = (api) => {
      mark('started');
      resolve(api);
    };
  });
  mark('request');
  const resp = await fetch(url);
  mark('response');
  if (!resp.ok) throw new Error(`fetch ${url}: HTTP ${resp.status}`);
  countProgress(resp, onProgress);
  let instance: WebAssembly.Instance;
  // instantiateStreaming refuses a response not served as application/wasm.
  const streamable = (resp.headers.get('content-type') ?? '').split(';')[0].trim() === 'application/wasm';
  if (typeof WebAssembly.instantiateStreaming === 'function' && streamable) {
    instance = (await WebAssembly.instantiateStreaming(resp, go.importObject)).instance;
  } else {
    instance = (await WebAssembly.instantiate(await resp.arrayBuffer(), go.importObject)).instance;
  }
  mark('compiled');
  go.run(instance).then(
    () => console.error('sqlsync: the Go runtime exited'),
    (e) => console.error('sqlsync: the Go runtime failed', e),
  );
  return ready;
}
