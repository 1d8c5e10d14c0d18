// Messages for the person: mutations the mutator refused (locally, or later
// on the coordinator) and other errors. Components report through useReport.
import { SqlsyncError } from '@sqlsync-go/client';
import { createContext, useCallback, useContext, useState } from 'react';

export interface Toast {
  id: number;
  text: string;
}

let nextId = 1;

/** The toasts shown, and functions to add and dismiss one. */
export function useToasts() {
  const [toasts, setToasts] = useState<Toast[]>([]);
  const dismiss = useCallback((id: number) => setToasts((ts) => ts.filter((t) => t.id !== id)), []);
  const show = useCallback(
    (text: string) => {
      const id = nextId++;
      setToasts((ts) => [...ts, { id, text }]);
      setTimeout(() => dismiss(id), 10_000);
    },
    [dismiss],
  );
  return { toasts, show, dismiss };
}

/** Turns a failed call into a message. */
export function describeError(e: unknown): string {
  if (e instanceof SqlsyncError && e.code === 'rejected') return `Refused: ${e.message}`;
  return `Something went wrong: ${e instanceof Error ? e.message : String(e)}`;
}

const ReportContext = createContext<(e: unknown) => void>((e) => console.error(e));

export const ReportProvider = ReportContext.Provider;

/** Returns the function to pass failed calls to: mutate(...).catch(report). */
export const useReport = () => useContext(ReportContext);

export function Toasts({ toasts, dismiss }: { toasts: Toast[]; dismiss: (id: number) => void }) {
  return (
    <div className="toasts">
      {toasts.map((t) => (
        <div className="toast" role="alert" key={t.id}>
          <span>{t.text}</span>
          <button type="button" className="icon" aria-label="Dismiss message" onClick={() => dismiss(t.id)}>
            ×
          </button>
        </div>
      ))}
    </div>
  );
}
