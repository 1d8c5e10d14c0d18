// Loading the Go wasm bundle in the worker, with download progress.
import type { Progress } from '../types.js';
import type { GoApi } from './core.js';

declare const Go: new () => {
  argv: string[];
  env: Record<string, string>;
  importObject: WebAssembly.Imports;
  run(instance: WebAssembly.Instance): Promise<void>;
};

/** A response whose body reports progress as it is read. */
function counted(resp: Response, onProgress: (p: Progress) => void): Response {
  // With Content-Encoding, Content-Length counts compressed bytes while the
  // stream yields decoded ones: the server may say the decoded size.
  const encoded = !!resp.headers.get('content-encoding');
  const header = encoded ? resp.headers.get('x-decoded-content-length') : resp.headers.get('content-length');
  const total = header ? Number(header) : undefined;
  if (!resp.body) return resp;
  let loaded = 0;
  let last = 0;
  const body = resp.body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, ctl) {
        loaded += chunk.byteLength;
        const now = Date.now();
        if (now - last > 50) {
          last = now;
          onProgress({ loaded, total });
        }
        ctl.enqueue(chunk);
      },
      flush() {
        onProgress({ loaded, total: total ?? loaded });
      },
    }),
  );
  return new Response(body, { status: resp.status, headers: { 'content-type': 'application/wasm' } });
}

/** loadGo fetches, compiles and starts the wasm bundle at url. */
export async function loadGo(url: string, onProgress: (p: Progress) => void): Promise<GoApi> {
  const go = new Go();
  go.argv = ['sqlsync'];
  const g = globalThis as unknown as { __sqlsyncReady?: (api: GoApi) => void };
  const ready = new Promise<GoApi>((resolve) => {
    g.__sqlsyncReady = resolve;
  });
  const resp = await fetch(url);
  if (!resp.ok) throw new Error(`fetch ${url}: HTTP ${resp.status}`);
  const body = counted(resp, onProgress);
  let instance: WebAssembly.Instance;
  if (typeof WebAssembly.instantiateStreaming === 'function') {
    instance = (await WebAssembly.instantiateStreaming(body, go.importObject)).instance;
  } else {
    instance = (await WebAssembly.instantiate(await body.arrayBuffer(), go.importObject)).instance;
  }
  go.run(instance).then(
    () => console.error('sqlsync: the Go runtime exited'),
    (e) => console.error('sqlsync: the Go runtime failed', e),
  );
  return ready;
}
