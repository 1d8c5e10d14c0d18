// Which mutator a document's replica runs, and where its module comes
// from. The coordinator says which module a document uses (GET
// /v1/docs/<id>/mutator: {"hash", "url"}) and serves it by content hash
// (/v1/mutators/<hash>.wasm); the worker fetches it, checks its SHA-256,
// and keeps both answers in the Cache API, so that a reload without a
// network still runs the same module. Free of browser globals (fetch, the
// Cache API and SHA-256 come in MutatorDeps) so that Node tests drive it.
import { type ErrorInfo, mutatorOptionError, type WorkerConfig } from '../messages.js';
import type { MutatorInfo } from '../types.js';

/** The Cache API cache the worker keeps mutator modules and answers in. */
export const cacheName = 'sqlsync-mutators';

/** What resolveMutator needs from the browser. */
export interface MutatorDeps {
  fetch(url: string, init?: { cache?: RequestCache; signal?: AbortSignal }): Promise<Response>;
  /** The Cache API (self.caches), or null where there is none (insecure contexts). */
  caches: { open(name: string): Promise<CacheLike> } | null;
  /** SHA-256 of bytes, lowercase hex. */
  sha256(bytes: Uint8Array): Promise<string>;
  /** How long to wait for the coordinator's answer before working from the cache; default 10 s. */
  timeoutMs?: number;
  /**
   * Told where a coordinator serves the module of hash (its URL,
   * `<base>/v1/mutators/<hash>.wasm`), so that the mutator host can fetch
   * the module's browser build from beside it (mutator-host.ts loadCode).
   */
  codeSource?(hash: string, url: string): void;
}

/** The part of a Cache the worker uses. */
export interface CacheLike {
  match(url: string): Promise<Response | undefined>;
  put(url: string, resp: Response): Promise<void>;
  delete(url: string): Promise<boolean>;
}

/** The outcome: a module to run, or none (the replica opens queue-only), and what to tell the app. */
export interface ResolvedMutator {
  info: MutatorInfo;
  /** The module's bytes (info.kind 'module'). */
  module?: Uint8Array;
  /** A warning for the app's error event (code queue_only: the document's module cannot run here). */
  warning?: ErrorInfo;
  /**
   * When the answer came from the cache while the coordinator was asked in
   * the background: resolves with the coordinator's answer if it names a
   * different mutator (now cached for the next open), else undefined.
   */
  revalidated?: Promise<ResolvedMutator | undefined>;
}

/** An error that fails openDocument: the mutator the app asked for cannot run. */
export class MutatorError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

/** The coordinator's HTTP base URL from its sync endpoint (ws://host/v1/sync -> http://host). */
export function httpBase(syncUrl: string): string {
  const u = new URL(syncUrl);
  u.protocol = u.protocol === 'wss:' ? 'https:' : u.protocol === 'ws:' ? 'http:' : u.protocol;
  u.pathname = u.pathname.replace(/\/v1\/sync\/?$/, '');
  u.search = '';
  u.hash = '';
  return u.toString().replace(/\/$/, '');
}

/** sha256 with crypto.subtle. */
export async function subtleSha256(bytes: Uint8Array): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes as unknown as ArrayBuffer));
  return Array.from(d, (b) => b.toString(16).padStart(2, '0')).join('');
}

class Unreachable extends Error {}

/**
 * resolveMutator decides which mutator the replica of cfg.docId runs:
 *
 * - cfg.mutatorUrl: that module (from the network, else the cache); its
 *   hash is checked against cfg.mutatorHash when given. Unavailable: an error.
 * - cfg.mutator 'none': no mutator, the replica opens queue-only.
 * - otherwise ('auto'): the module the coordinator says the document uses.
 *   What the coordinator said last time, when it and its module are
 *   cached, is used at once while the coordinator is asked in the
 *   background (`revalidated`). No module (info.kind 'none', the replica
 *   opens queue-only: its mutations are recorded and pushed without
 *   running locally) when the coordinator names none, and, with a warning
 *   (code queue_only), when there is no coordinator or it is unreachable
 *   with nothing cached.
 *
 * Any other cfg.mutator is an error (code bad_request): the wasm bundle
 * has no built-in mutators.
 */
export async function resolveMutator(cfg: WorkerConfig, deps: MutatorDeps): Promise<ResolvedMutator> {
  const bad = mutatorOptionError(cfg.mutator);
  if (bad) throw new MutatorError(bad, 'bad_request');
  const cache = await openCache(deps);
  if (cfg.mutatorUrl) return forcedModule(cfg.mutatorUrl, cfg.mutatorHash, cache, deps);
  if (cfg.mutator === 'none') return { info: { kind: 'none', source: 'option' } };
  if (!cfg.url) return queueOnly('default', 'no coordinator names its module and no mutatorUrl was given');

  const base = httpBase(cfg.url);
  const infoUrl = `${base}/v1/docs/${encodeURIComponent(cfg.docId)}/mutator`;
  const fromCoordinator = async (): Promise<ResolvedMutator> => {
    const resp = await fetchOK(deps, infoUrl);
    const text = await resp.text();
    const hash = parseHash(text);
    // The module is cached before the answer naming it, so a cached answer always has its module.
    const module = hash ? await moduleByHash(base, hash, cache, deps) : undefined;
    await cache?.put(infoUrl, new Response(text, { headers: { 'content-type': 'application/json' } })).catch(() => {});
    if (!hash) return { info: { kind: 'none', source: 'coordinator', reason: noModule } };
    return { info: { kind: 'module', hash, source: 'coordinator' }, module };
  };

  // What the coordinator said last time, with its module cached, starts the
  // replica at once (no round trip before the first query); the coordinator
  // is asked in the background, and a change is cached for the next open
  // (the coordinator's results win meanwhile, as always).
  const known = cache && (await cachedAnswer(infoUrl, base, cache, deps));
  if (known) {
    const revalidated = fromCoordinator().then(
      (r) => (r.info.kind !== known.info.kind || r.info.hash !== known.info.hash ? r : undefined),
      () => undefined,
    );
    return { ...known, revalidated };
  }

  let reason: string;
  try {
    return await fromCoordinator();
  } catch (e) {
    if (!(e instanceof Unreachable)) throw e;
    reason = e.message;
  }

  // Offline, or the coordinator would not say: what it said last time.
  const cached = await cache?.match(infoUrl).catch(() => undefined);
  if (cached) {
    const hash = parseHash(await cached.text());
    if (!hash) return { info: { kind: 'none', source: 'cache', reason: noModule } };
    const module = await cachedModule(moduleUrl(base, hash, deps), hash, cache!, deps);
    if (module) return { info: { kind: 'module', hash, source: 'cache' }, module };
    reason += `; this document's mutator module ${hash.slice(0, 12)} is not cached`;
  } else {
    reason += cache ? "; this document's mutator was never cached here" : '; this context has no Cache API to keep mutators in';
  }
  return queueOnly('fallback', reason);
}

/** Why a replica whose coordinator names no module opens queue-only. */
const noModule = "the coordinator serves no mutator module for this document";

/**
 * queueOnly is the outcome for a replica that cannot run its document's
 * module, with the warning (code queue_only) that tells the app why.
 */
function queueOnly(source: 'default' | 'fallback', why: string): ResolvedMutator {
  const what =
    source === 'default'
      ? "this document's mutations are queued without running locally (it has no coordinator to push them to)"
      : "this document's mutations are queued and pushed without running locally (queries show them once the coordinator has applied them)";
  const message = `${what} until the document is reopened with its mutator module: ${why}. Give openDocument a mutatorUrl to ship the module with the app`;
  return { info: { kind: 'none', source, reason: why }, warning: { code: 'queue_only', message } };
}

/** What the coordinator said last time about the document's mutator, if its module is cached too. */
async function cachedAnswer(infoUrl: string, base: string, cache: CacheLike, deps: MutatorDeps): Promise<ResolvedMutator | undefined> {
  const resp = await cache.match(infoUrl).catch(() => undefined);
  if (!resp) return undefined;
  let hash: string;
  try {
    hash = parseHash(await resp.text());
  } catch {
    return undefined;
  }
  if (!hash) return { info: { kind: 'none', source: 'cache', reason: noModule } };
  const module = await cachedModule(moduleUrl(base, hash, deps), hash, cache, deps);
  return module ? { info: { kind: 'module', hash, source: 'cache' }, module } : undefined;
}

async function openCache(deps: MutatorDeps): Promise<CacheLike | null> {
  if (!deps.caches) return null;
  try {
    return await deps.caches.open(cacheName);
  } catch {
    return null; // e.g. storage disabled
  }
}

function parseHash(text: string): string {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new MutatorError(`the coordinator's answer about the document's mutator is not JSON: ${text.slice(0, 100)}`, 'mutator_bad_answer');
  }
  const hash = (v as { hash?: unknown })?.hash;
  if (hash === undefined || hash === '') return '';
  if (typeof hash !== 'string' || !/^[0-9a-f]{64}$/.test(hash)) {
    throw new MutatorError(`the coordinator named the mutator ${JSON.stringify(hash)}, not a SHA-256`, 'mutator_bad_answer');
  }
  return hash;
}

/** fetchOK fetches url, turning network failures, time-outs and HTTP errors into Unreachable. */
async function fetchOK(deps: MutatorDeps, url: string): Promise<Response> {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), deps.timeoutMs ?? 10000);
  let resp: Response;
  try {
    resp = await deps.fetch(url, { cache: 'no-store', signal: ctl.signal });
  } catch (e) {
    throw new Unreachable(`GET ${url}: ${ctl.signal.aborted ? 'timed out' : e instanceof Error ? e.message : String(e)}`);
  } finally {
    clearTimeout(timer);
  }
  if (!resp.ok) throw new Unreachable(`GET ${url}: HTTP ${resp.status}`);
  return resp;
}

async function bytesOf(resp: Response): Promise<Uint8Array> {
  return new Uint8Array(await resp.arrayBuffer());
}

/**
 * The URL the coordinator at base serves the module of hash at, told to the
 * mutator host at once: the module's browser build can be on its way while
 * the module's own bytes are read or fetched and hashed, and the Go runtime
 * loads.
 */
function moduleUrl(base: string, hash: string, deps: MutatorDeps): string {
  const url = `${base}/v1/mutators/${hash}.wasm`;
  deps.codeSource?.(hash, url);
  return url;
}

/** The cached copy of the module at url, if its hash is still hash. */
async function cachedModule(url: string, hash: string, cache: CacheLike, deps: MutatorDeps): Promise<Uint8Array | undefined> {
  const resp = await cache.match(url).catch(() => undefined);
  if (!resp) return undefined;
  const b = await bytesOf(resp);
  if ((await deps.sha256(b)) === hash) return b;
  await cache.delete(url).catch(() => false); // damaged: fetch again
  return undefined;
}

async function moduleByHash(base: string, hash: string, cache: CacheLike | null, deps: MutatorDeps): Promise<Uint8Array> {
  const url = moduleUrl(base, hash, deps);
  const cached = cache && (await cachedModule(url, hash, cache, deps));
  if (cached) return cached;
  const b = await bytesOf(await fetchOK(deps, url));
  const got = await deps.sha256(b);
  if (got !== hash) {
    throw new MutatorError(`the mutator module served at ${url} has SHA-256 ${got}, not ${hash}: refusing to run it`, 'mutator_mismatch');
  }
  await cache?.put(url, new Response(b as unknown as BodyInit, { headers: { 'content-type': 'application/wasm' } })).catch(() => {});
  return b;
}

async function forcedModule(url: string, want: string | undefined, cache: CacheLike | null, deps: MutatorDeps): Promise<ResolvedMutator> {
  let b: Uint8Array | undefined;
  let source: MutatorInfo['source'] = 'url';
  try {
    b = await bytesOf(await fetchOK(deps, url));
  } catch (e) {
    if (!(e instanceof Unreachable)) throw e;
    const resp = await cache?.match(url).catch(() => undefined);
    if (!resp) throw new MutatorError(`the mutator module at ${url} cannot be loaded (${e.message}) and is not cached`, 'mutator_unavailable');
    b = await bytesOf(resp);
    source = 'cache';
  }
  const hash = await deps.sha256(b);
  if (want && hash !== want.toLowerCase()) {
    throw new MutatorError(`the mutator module at ${url} has SHA-256 ${hash}, not ${want}: refusing to run it`, 'mutator_mismatch');
  }
  if (source === 'url') {
    await cache?.put(url, new Response(b as unknown as BodyInit, { headers: { 'content-type': 'application/wasm' } })).catch(() => {});
  }
  return { info: { kind: 'module', hash, source, url }, module: b };
}
