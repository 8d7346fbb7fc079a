/**
 * LevelDB adapters. `LevelRaftStorage` is the Raft log, hard state and snapshot store of a node;
 * see raft-storage.ts for its contract and keys.ts / records.ts for the on-disk format.
 */
export { LevelRaftStorage } from './raft-storage.ts';
export type { LevelRaftStorageOptions } from './options.ts';
export { StorageClosedError, StorageCorruptError, StorageNotEmptyError, StorageOpenError, StorageWriteError } from './errors.ts';
export { SNAPSHOT_CHUNK_BYTES } from './plan.ts';
