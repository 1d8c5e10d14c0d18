/**
 * React bindings of @sqlsync-go/client: a document that opens and closes
 * with the component tree, live queries, mutations and status as hooks.
 * @packageDocumentation
 */
import {
  createContext,
  createElement,
  type ReactNode,
  useCallback,
  useContext,
  useEffect,
  useRef,
  useState,
  useSyncExternalStore,
} from 'react';
import { type DocumentPresence, openDocument, type SqlsyncDocument, SqlsyncError } from './document.js';
import type { OpenOptions, Param, PresencePeer, Progress, Row, Status } from './types.js';

const DocumentContext = createContext<SqlsyncDocument | undefined>(undefined);

/** Makes doc the document of the hooks below it that are not given one. */
export function DocumentProvider({ doc, children }: { doc: SqlsyncDocument; children?: ReactNode }) {
  return createElement(DocumentContext.Provider, { value: doc }, children);
}

/** The document of the nearest DocumentProvider, or undefined. */
export function useCurrentDocument(): SqlsyncDocument | undefined {
  return useContext(DocumentContext);
}

/** The state of a document that opens with a component. */
export interface DocumentState {
  /** The open document, undefined while it opens or if it failed. */
  doc: SqlsyncDocument | undefined;
  /** Why it could not be opened. */
  error: SqlsyncError | undefined;
  /** True until it opened or failed. */
  loading: boolean;
}

/** How long a released document stays open, so that a quick remount (React StrictMode) reuses it. */
const lingerMs = 1000;

interface Held {
  opening: Promise<SqlsyncDocument>;
  refs: number;
  timer?: ReturnType<typeof setTimeout>;
}

const held = new Map<string, Held>();

function optionsKey(opts: OpenOptions): string {
  const { onProgress: _p, ...rest } = opts;
  return JSON.stringify(rest);
}

/** acquire opens the document of opts, or shares the one already open with the same options. */
function acquire(key: string, opts: OpenOptions): Held {
  let h = held.get(key);
  if (!h) {
    const opening = openDocument(opts);
    h = { opening, refs: 0 };
    held.set(key, h);
    const mine = h;
    opening.catch(() => {
      if (held.get(key) === mine) held.delete(key);
    });
  }
  clearTimeout(h.timer);
  h.timer = undefined;
  h.refs++;
  return h;
}

/** release closes the document once no component has held it for lingerMs. */
function release(key: string, h: Held): void {
  if (--h.refs > 0) return;
  h.timer = setTimeout(() => {
    if (h.refs > 0 || held.get(key) !== h) return;
    held.delete(key);
    h.opening.then((d) => d.close()).catch(() => {});
  }, lingerMs);
}

/**
 * Opens a document while the component is mounted and closes it after.
 * Components that ask for the same options share one open document, and
 * a remount right after an unmount (React StrictMode in development)
 * reuses it rather than opening it twice.
 */
export function useDocument(opts: OpenOptions): DocumentState {
  const key = optionsKey(opts);
  const [state, setState] = useState<DocumentState & { key: string }>({ doc: undefined, error: undefined, loading: true, key });
  const optsRef = useRef(opts);
  optsRef.current = opts;
  useEffect(() => {
    let live = true;
    const h = acquire(key, optsRef.current);
    const onProgress = optsRef.current.onProgress;
    h.opening.then(
      (doc) => live && setState({ doc, error: undefined, loading: false, key }),
      (e: unknown) =>
        live &&
        setState({
          doc: undefined,
          error: e instanceof SqlsyncError ? e : new SqlsyncError({ message: e instanceof Error ? e.message : String(e) }),
          loading: false,
          key,
        }),
    );
    let stopProgress: (() => void) | undefined;
    if (onProgress) h.opening.then((d) => (stopProgress = live ? d.on('progress', onProgress) : undefined), () => {});
    return () => {
      live = false;
      stopProgress?.();
      release(key, h);
    };
  }, [key]);
  // Options changed: the last document is not this one.
  if (state.key !== key) return { doc: undefined, error: undefined, loading: true };
  return { doc: state.doc, error: state.error, loading: state.loading };
}

/** The state of a live query. */
export interface QueryState<T> {
  /** The rows, undefined until the first result for the current SQL and params. */
  rows: T[] | undefined;
  /** The last error, if the query failed. */
  error: SqlsyncError | undefined;
  /** True until the first result (or error) for the current SQL and params. */
  loading: boolean;
}

function paramsKey(params: readonly Param[] | undefined): string {
  return JSON.stringify(params ?? [], (_, v) =>
    typeof v === 'bigint' ? `${v}n` : v instanceof Uint8Array ? Array.from(v) : v,
  );
}

/**
 * Subscribes to a read-only query while the component is mounted and
 * re-renders when its rows change. With no document (or undefined, while
 * it opens) it uses the nearest DocumentProvider's. When sql or params
 * change, rows and error reset and loading is true until the new result.
 */
export function useQuery<T = Row>(sql: string, params?: readonly Param[]): QueryState<T>;
export function useQuery<T = Row>(doc: SqlsyncDocument | undefined, sql: string, params?: readonly Param[]): QueryState<T>;
export function useQuery<T = Row>(
  a: SqlsyncDocument | undefined | string,
  b?: string | readonly Param[],
  c?: readonly Param[],
): QueryState<T> {
  const fromContext = useCurrentDocument();
  const [doc, sql, params] = typeof a === 'string' ? [fromContext, a, b as readonly Param[] | undefined] : [a ?? fromContext, b as string, c];
  const key = `${sql}\u0000${paramsKey(params)}`;
  const [state, setState] = useState<{ key: string; doc?: SqlsyncDocument; rows?: T[]; error?: SqlsyncError }>({ key });
  const paramsRef = useRef(params);
  paramsRef.current = params;
  useEffect(() => {
    if (!doc) return;
    setState({ key, doc });
    return doc.subscribe<T>(
      sql,
      paramsRef.current,
      (rows) => setState({ key, doc, rows }),
      (error) => setState((s) => ({ key, doc, rows: s.key === key && s.doc === doc ? s.rows : undefined, error })),
    );
  }, [doc, key]);
  if (state.key !== key || state.doc !== doc) return { rows: undefined, error: undefined, loading: true };
  return { rows: state.rows, error: state.error, loading: state.rows === undefined && state.error === undefined };
}

/** Returns a stable function that runs a mutation and resolves with its seq (the provider's document by default). */
export function useMutate(doc?: SqlsyncDocument): (name: string, args?: unknown) => Promise<number> {
  const fromContext = useCurrentDocument();
  const d = doc ?? fromContext;
  return useCallback(
    (name: string, args?: unknown) => {
      if (!d) return Promise.reject(new SqlsyncError({ code: 'closed', message: 'useMutate: the document is not open yet' }));
      return d.mutate(name, args);
    },
    [d],
  );
}

/** Returns the document's sync status, re-rendering when it changes (the provider's document by default). */
export function useStatus(doc?: SqlsyncDocument): Status | undefined {
  const fromContext = useCurrentDocument();
  const d = doc ?? fromContext;
  const subscribe = useCallback((cb: () => void) => (d ? d.on('status', cb) : () => {}), [d]);
  return useSyncExternalStore(subscribe, () => d?.status, () => d?.status);
}

/**
 * Returns the progress of the document's large download, re-rendering as
 * it goes (the provider's document by default): undefined until the
 * coordinator streams the document a diff of many pages (a first sync of a
 * large document, or a replica far behind), then the latest progress, with
 * `done` once it is applied. Show it while `!done`:
 * `{p && !p.done && <progress value={p.loaded} max={p.total} />}`.
 */
export function useDownload(doc?: SqlsyncDocument): Progress | undefined {
  const fromContext = useCurrentDocument();
  const d = doc ?? fromContext;
  const subscribe = useCallback((cb: () => void) => (d ? d.on('progress', cb) : () => {}), [d]);
  return useSyncExternalStore(subscribe, () => d?.downloadProgress, () => d?.downloadProgress);
}

/** What usePresence returns. */
export interface PresenceState<T> {
  /** Every presence of the document but this tab's, live (see DocumentPresence.others). */
  others: PresencePeer<T>[];
  /** Publishes this tab's state (null clears it): doc.presence.set. */
  set: (state: T | null) => Promise<void>;
}

const noPeers: PresencePeer<never>[] = [];

/**
 * The others' presences in the document, re-rendering when they change
 * (the provider's document by default), and a function that sets this
 * tab's. Given a state (not undefined), the hook also publishes it
 * whenever its JSON changes and withdraws it when the component unmounts:
 * `usePresence(doc, { name, editing })`.
 */
export function usePresence<T = unknown>(doc?: SqlsyncDocument, state?: T | null): PresenceState<T> {
  const fromContext = useCurrentDocument();
  const d = doc ?? fromContext;
  const subscribe = useCallback((cb: () => void) => (d ? d.on('presence', cb) : () => {}), [d]);
  const others = useSyncExternalStore(
    subscribe,
    () => (d?.presence.others ?? noPeers) as PresencePeer<T>[],
    () => (d?.presence.others ?? noPeers) as PresencePeer<T>[],
  );
  const set = useCallback(
    (s: T | null) => (d ? (d.presence as DocumentPresence<T>).set(s) : Promise.reject(new SqlsyncError({ code: 'closed', message: 'usePresence: the document is not open yet' }))),
    [d],
  );
  const json = state === undefined ? undefined : JSON.stringify(state);
  const declared = json !== undefined;
  useEffect(() => {
    if (!d || json === undefined) return;
    d.presence.set(JSON.parse(json)).catch((e: unknown) => console.warn('sqlsync: usePresence:', e));
  }, [d, json]);
  useEffect(() => {
    if (!d || !declared) return;
    return () => {
      d.presence.clear().catch(() => {}); // closed meanwhile: gone anyway
    };
  }, [d, declared]);
  return { others, set };
}
