/**
 * @sqlsync-go/client: multiplayer SQLite for web apps. Open a document, run
 * mutations locally, query and subscribe; a Web Worker keeps the replica in
 * OPFS or IndexedDB and in sync with the sqlsync coordinator.
 * @packageDocumentation
 */
export { openDocument, SqlsyncDocument, SqlsyncError, RejectedMutationError, DocumentPresence } from './document.js';
export type { DocumentEvents } from './document.js';
export type {
  ConnectionState,
  LazyStats,
  MutatorInfo,
  OpenOptions,
  Param,
  PresencePeer,
  Progress,
  RawRows,
  Rejection,
  Row,
  Status,
  Storage,
  Value,
} from './types.js';
