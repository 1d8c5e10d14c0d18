// The second baseline's worker: Go's wasm_exec.js and bin/plainsqlite.wasm
// (bench/browser/plainsqlite), both served by ../bench.mjs beside this
// file. The Go program opens its database on OPFS and hands back its api
// through __plainReady; this script answers the page's messages with it.
importScripts('./wasm_exec.js');

self.__plainReady = (error, api, rows) => {
  if (error) {
    postMessage({ error });
    return;
  }
  postMessage({ ready: true, rows });
  onmessage = async (ev) => {
    const { id } = ev.data;
    try {
      if (ev.data.insertRows !== undefined) postMessage({ id, times: await api.insertRows(ev.data.insertRows) });
      else postMessage({ id, ms: await api.insert(ev.data.insert) });
    } catch (e) {
      postMessage({ id, error: String(e?.message ?? e) });
    }
  };
};

const go = new Go();
WebAssembly.instantiateStreaming(fetch('./plainsqlite.wasm'), go.importObject)
  .then(({ instance }) => go.run(instance))
  .catch((e) => postMessage({ error: String(e?.message ?? e) }));
