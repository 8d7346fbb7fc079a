/**
 * The LevelDB database under the Raft storage, with every option passed explicitly (STYLE rule 5:
 * never rely on a library's defaults). Keys and values are raw bytes.
 */
import { ClassicLevel } from 'classic-level';
import type { RecordOp } from './plan.ts';

/** A LevelDB handle with byte keys and values. */
export type RaftDb = ClassicLevel<Uint8Array, Uint8Array>;

const MIB = 1024 * 1024;

/** Values are LevelDB's documented defaults, restated so that a library upgrade cannot change them. */
const DATABASE_OPTIONS = Object.freeze({
  keyEncoding: 'view',
  valueEncoding: 'view',
  createIfMissing: true,
  errorIfExists: false,
  // Snappy is cheap, and Raft payloads (JSON KV commands) compress well.
  compression: true,
  cacheSize: 8 * MIB,
  writeBufferSize: 4 * MIB,
  blockSize: 4096,
  maxOpenFiles: 1000,
  blockRestartInterval: 16,
  maxFileSize: 2 * MIB,
  // One storage per process owns the directory; LevelDB's lock refuses a second opener.
  multithreading: false,
});

/** Opens (creating if missing) the LevelDB database in `dataDir`. Rejects with LevelDB's error. */
export async function openDb(dataDir: string): Promise<RaftDb> {
  const db: RaftDb = new ClassicLevel<Uint8Array, Uint8Array>(dataDir, DATABASE_OPTIONS);
  await db.open({ createIfMissing: true, errorIfExists: false, passive: false });
  return db;
}

/** Writes `ops` as one atomic batch; with `sync` (the default) it is on disk (fsync) before the promise resolves. */
export async function writeSyncedBatch(db: RaftDb, ops: readonly RecordOp[], sync = true): Promise<void> {
  await db.batch([...ops], { sync, keyEncoding: 'view', valueEncoding: 'view' });
}
