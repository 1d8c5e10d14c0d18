// One worker per tab: the router gives each document its own WorkerCore and
// all of them one Go runtime; the page's ports tag and route messages.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import type { FromWorker, Routed, ToWorker } from '../../src/messages.js';
import { type RawWorker, SharedWorker } from '../../src/port.js';
import type { GoApi, GoDoc } from '../../src/worker/core.js';
import { Router, sharedLoader } from '../../src/worker/router.js';

function fakeGo(opened: string[]): GoApi {
  return {
    async open(configJSON) {
      const cfg = JSON.parse(configJSON) as { docId: string };
      opened.push(cfg.docId);
      const doc: GoDoc = {
        mutate: async () => 1,
        query: async () => JSON.stringify({ columns: ['doc'], rows: [[cfg.docId]] }),
        subscribe: async () => 1,
        unsubscribe: async () => {},
        status: async () => JSON.stringify({ state: 'offline', pending: 0, lsn: 0, serverLsn: 0, synced: false, storage: 'memory', clientId: 'c' }),
        setOnline: async () => {},
        close: async () => {},
      };
      return doc;
    },
  };
}

it('sharedLoader loads a bundle once and tells every caller its progress', async () => {
  let loads = 0;
  let progress: ((p: { stage: 'runtime'; loaded: number }) => void) | undefined;
  const api = fakeGo([]);
  const load = sharedLoader(async (_url, onProgress) => {
    loads++;
    progress = onProgress;
    await new Promise((r) => setTimeout(r, 10));
    return api;
  });
  const heard: string[] = [];
  const a = load('x.wasm', (p) => heard.push(`a${p.loaded}`));
  const b = load('x.wasm', (p) => heard.push(`b${p.loaded}`));
  progress!({ stage: 'runtime', loaded: 5 });
  assert.equal(await a, api);
  assert.equal(await b, api);
  assert.equal(loads, 1);
  assert.deepEqual(heard, ['a5', 'b5']);
  await load('x.wasm', () => {});
  assert.equal(loads, 1, 'a later document reuses the runtime');
});

it('a failed load is tried again by the next document', async () => {
  let loads = 0;
  const load = sharedLoader(async () => {
    if (++loads === 1) throw new Error('offline');
    return fakeGo([]);
  });
  await assert.rejects(load('x.wasm', () => {}), /offline/);
  await load('x.wasm', () => {});
  assert.equal(loads, 2);
});

it('one worker hosts many documents over tagged channels, with one Go runtime', async () => {
  const opened: string[] = [];
  let loads = 0;
  const posted: Routed<FromWorker>[] = [];
  const router = new Router({
    post: (m) => posted.push(m),
    channel: () => null,
    locks: null,
    loadGo: async () => {
      loads++;
      return fakeGo(opened);
    },
    newId: () => Math.random().toString(36),
  });
  // The page side: a SharedWorker whose raw worker is the router.
  let toPage: ((ev: { data: Routed<FromWorker> }) => void) | null = null;
  const raw: RawWorker = {
    postMessage: (m: Routed<ToWorker>) => queueMicrotask(() => router.handle(m)),
    set onmessage(f) {
      toPage = f;
    },
    get onmessage() {
      return toPage;
    },
    onerror: null,
    terminate: () => {},
  };
  const shared = new SharedWorker(raw, () => {});
  const flush = async () => {
    while (posted.length) toPage?.({ data: posted.shift()! });
  };
  const ports = ['a', 'b'].map((docId) => {
    const p = shared.port();
    const got: FromWorker[] = [];
    p.onmessage = (ev) => got.push(ev.data);
    p.postMessage({ t: 'init', config: { url: '', docId, storage: 'memory', wasmUrl: 'x.wasm' } });
    return { p, got, docId };
  });
  for (let i = 0; i < 50 && ports.some((x) => !x.got.some((m) => m.t === 'status')); i++) {
    await new Promise((r) => setTimeout(r, 5));
    await flush();
  }
  assert.deepEqual(opened.sort(), ['a', 'b']);
  assert.equal(loads, 1, 'one Go runtime for both documents');
  assert.equal(router.size, 2);
  for (const { p, got, docId } of ports) {
    p.postMessage({ t: 'call', id: 7, method: 'query', args: ['SELECT 1', '[]'] });
    for (let i = 0; i < 50 && !got.some((m) => m.t === 'ret'); i++) {
      await new Promise((r) => setTimeout(r, 5));
      await flush();
    }
    const ret = got.find((m) => m.t === 'ret');
    assert.ok(ret && ret.t === 'ret' && ret.ok);
    assert.ok(String(ret.value).includes(docId), `the answer for ${docId} came on its own channel: ${ret.value}`);
  }
  ports[0].p.terminate();
  await new Promise((r) => setTimeout(r, 5));
  assert.equal(router.size, 1, 'a closed document leaves the worker');
});
