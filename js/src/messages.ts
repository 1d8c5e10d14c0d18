// Messages between the main thread and the worker, and among the workers
// of one document (tabs of one origin) over a BroadcastChannel.
import type { PresencePeer, Progress, Rejection, Status, Storage } from './types.js';

/** The worker's config, sent with 'init'. */
export interface WorkerConfig {
  url: string;
  docId: string;
  storage?: Storage;
  token?: string;
  mutator?: string;
  mutatorUrl?: string;
  mutatorHash?: string;
  offline?: boolean;
  /** Take part in presence (default true). */
  presence?: boolean;
  /** Open the replica lazily, with a page cache of cacheBytes (0: the Go default). */
  lazy?: boolean;
  cacheBytes?: number;
  logLevel?: string;
  wasmUrl: string;
}

/**
 * mutatorOptionError says what is wrong with openDocument's mutator
 * option, or returns undefined: only 'auto' (or nothing) and 'none' are
 * accepted, the wasm bundle having no mutators of its own. openDocument
 * and the worker both check it (code bad_request).
 */
export function mutatorOptionError(mutator: string | undefined): string | undefined {
  if (mutator === undefined || mutator === '' || mutator === 'auto' || mutator === 'none') return undefined;
  return (
    `openDocument: mutator ${JSON.stringify(mutator)} is neither 'auto' nor 'none': the wasm bundle has no built-in mutators; ` +
    `leave it 'auto' to run the module the coordinator names, or give the module with mutatorUrl`
  );
}

export interface ErrorInfo {
  message: string;
  code?: string;
}

/**
 * Methods a document answers; args and results cross as below. The page
 * calls 'presence' with [stateJSON | null]; workers call it with the tab's
 * ID first: [tabId, stateJSON | null].
 */
export type Method = 'mutate' | 'query' | 'status' | 'setOnline' | 'presence' | 'lazyStats';

/** A presence as the Go replica reports it: a tab's own carry their key (the tab's worker ID). */
export type WirePeer = PresencePeer & { key?: string };

/** main -> worker */
export type ToWorker =
  | { t: 'init'; config: WorkerConfig }
  | { t: 'call'; id: number; method: Method; args: unknown[] }
  | { t: 'sub'; subId: number; sql: string; params: string }
  | { t: 'unsub'; subId: number }
  | { t: 'close'; id: number }
  | { t: 'dispose' };

/**
 * A message between the page and its tab's worker, tagged with the
 * document's channel: one worker hosts every document of a tab.
 */
export interface Routed<T> {
  d: number;
  m: T;
}

/** worker -> main */
export type FromWorker =
  | { t: 'ret'; id: number; ok: true; value: unknown }
  | { t: 'ret'; id: number; ok: false; error: ErrorInfo }
  | { t: 'rows'; subId: number; json?: string; error?: ErrorInfo }
  | { t: 'status'; status: Status }
  | { t: 'rejected'; rejection: Rejection }
  | { t: 'presence'; peers: PresencePeer[] }
  | { t: 'progress'; progress: Progress }
  | { t: 'timing'; marks: Record<string, number> }
  | { t: 'warning'; error: ErrorInfo }
  | { t: 'fatal'; error: ErrorInfo };

/** among the workers of one document */
export type Peer =
  | { k: 'hello'; from: string }
  | { k: 'owner'; owner: string }
  | { k: 'req'; from: string; to: string; id: number; method: Method; args: unknown[] }
  | { k: 'ack'; to: string; id: number }
  | { k: 'res'; to: string; id: number; ok: boolean; value?: unknown; error?: ErrorInfo }
  | { k: 'sub'; from: string; to: string; subId: number; sql: string; params: string }
  | { k: 'unsub'; from: string; to: string; subId: number }
  | { k: 'rows'; to: string; subId: number; json?: string; error?: ErrorInfo }
  | { k: 'status'; status: Omit<Status, 'role'> }
  | { k: 'rejected'; rejection: Rejection }
  | { k: 'presence'; peers: WirePeer[] }
  | { k: 'presenceRefused'; to: string; error: ErrorInfo }
  | { k: 'progress'; progress: Progress }
  | { k: 'bye'; from: string };
