// Opening and closing a list's document with the component that shows it.
import type { Progress } from '@sqlsync-go/client';
import { useEffect, useRef, useState } from 'react';
import { openList, type SqlsyncDocument } from './todo';

export interface ListDocument {
  /** The open document, undefined while it opens. */
  doc: SqlsyncDocument | undefined;
  /** Download progress of the wasm bundle, on the first open. */
  progress: Progress | undefined;
  error: string | undefined;
}

/**
 * Opens list listId's document while the component is mounted and closes
 * it after. `online` is used when opening; switch it later with
 * doc.setOnline.
 */
export function useList(listId: string, online: boolean): ListDocument {
  const [doc, setDoc] = useState<SqlsyncDocument>();
  const [progress, setProgress] = useState<Progress>();
  const [error, setError] = useState<string>();
  const onlineAtOpen = useRef(online);
  useEffect(() => {
    let unmounted = false;
    let opened: SqlsyncDocument | undefined;
    openList(listId, onlineAtOpen.current, setProgress).then(
      (d) => {
        if (unmounted) void d.close();
        else {
          setDoc((opened = d));
          // For devtools and the benchmark (test/bench.mjs): the open
          // document, with its startup timings.
          (window as unknown as { sqlsyncDoc?: SqlsyncDocument }).sqlsyncDoc = d;
        }
      },
      (e: Error) => !unmounted && setError(e.message),
    );
    return () => {
      unmounted = true;
      void opened?.close();
    };
  }, [listId]);
  return { doc, progress, error };
}
