/** The pure Raft core: public surface. */
export { RawNode } from './rawnode.ts';
export type { RaftConfig } from './config.ts';
export { encodeConfChange, decodeConfChange } from './confchange.ts';
export { MemoryStorage, LogCompactedError, LogUnavailableError, SnapshotOutOfDateError, limitSize } from './storage.ts';
export type { RaftStorage, WritableRaftStorage, StorageUpdate } from './storage.ts';
export * from './types.ts';
