// Opening and closing a list's document with the component that shows it.
import type { Progress } from '@sqlsync-go/client';
import { useDocument } from '@sqlsync-go/client/react';
import { useEffect, useRef, useState } from 'react';
import { listOptions, type SqlsyncDocument } from './todo';

export interface ListDocument {
  /** The open document, undefined while it opens. */
  doc: SqlsyncDocument | undefined;
  /** Download progress of the wasm bundle, on the first open. */
  progress: Progress | undefined;
  error: string | undefined;
}

/**
 * Opens list listId's document while the component is mounted and closes
 * it after, through the package's useDocument (so React StrictMode's
 * remount reuses it). `online` is used when opening; switch it later with
 * doc.setOnline.
 */
export function useList(listId: string, online: boolean): ListDocument {
  const [progress, setProgress] = useState<Progress>();
  const onlineAtOpen = useRef(online);
  const { doc, error } = useDocument({ ...listOptions(listId, onlineAtOpen.current), onProgress: (p) => p.stage === 'runtime' && setProgress(p) });
  useEffect(() => {
    // For devtools and the benchmark (test/bench.mjs): the open document,
    // with its startup timings.
    if (doc) (window as unknown as { sqlsyncDoc?: SqlsyncDocument }).sqlsyncDoc = doc;
  }, [doc]);
  return { doc, progress, error: error?.message };
}
