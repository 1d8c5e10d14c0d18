/**
 * React bindings of @sqlsync-go/client: live queries, mutations and status
 * as hooks.
 * @packageDocumentation
 */
import { useCallback, useEffect, useRef, useState, useSyncExternalStore } from 'react';
import type { SqlsyncDocument, SqlsyncError } from './document.js';
import type { Param, Row, Status } from './types.js';

/** The state of a live query. */
export interface QueryState<T> {
  /** The rows, undefined until the first result. */
  rows: T[] | undefined;
  /** The last error, if the query failed. */
  error: SqlsyncError | undefined;
}

/**
 * Subscribes to a read-only query while the component is mounted; re-renders
 * when its rows change. `doc` may be undefined while the document opens.
 */
export function useQuery<T = Row>(
  doc: SqlsyncDocument | undefined,
  sql: string,
  params?: readonly Param[],
): QueryState<T> {
  const [state, setState] = useState<QueryState<T>>({ rows: undefined, error: undefined });
  const key = JSON.stringify(params ?? [], (_, v) => (typeof v === 'bigint' ? v.toString() : v));
  const paramsRef = useRef(params);
  paramsRef.current = params;
  useEffect(() => {
    if (!doc) return;
    return doc.subscribe<T>(
      sql,
      paramsRef.current,
      (rows) => setState({ rows, error: undefined }),
      (error) => setState((s) => ({ rows: s.rows, error })),
    );
  }, [doc, sql, key]);
  return state;
}

/** Returns a stable function that runs a mutation and resolves with its seq. */
export function useMutate(doc: SqlsyncDocument | undefined): (name: string, args?: unknown) => Promise<number> {
  return useCallback(
    (name: string, args?: unknown) => {
      if (!doc) return Promise.reject(new Error('useMutate: the document is not open yet'));
      return doc.mutate(name, args);
    },
    [doc],
  );
}

/** Returns the document's sync status, re-rendering when it changes. */
export function useStatus(doc: SqlsyncDocument | undefined): Status | undefined {
  const subscribe = useCallback((cb: () => void) => (doc ? doc.on('status', cb) : () => {}), [doc]);
  return useSyncExternalStore(subscribe, () => doc?.status, () => doc?.status);
}
