/**
 * Start-up: read every Raft record, verify each one's checksum and framing, and check that together
 * they form a valid log. Any failure is a `StorageCorruptError` naming the directory and the key;
 * nothing is ever skipped, since a skipped record could be an acknowledged write.
 */
import { EMPTY_SNAPSHOT, type Entry, type HardState, type Snapshot } from '../raft/types.ts';
import { PayloadDecodeError } from './bytes.ts';
import type { RaftDb } from './db.ts';
import { StorageCorruptError, toStartupError } from './errors.ts';
import { ZERO_HARD_STATE, type StorageImage } from './image.ts';
import { RAFT_KEY_RANGE, entryKey, keyName, parseKey, snapshotDataKey, type ParsedKey } from './keys.ts';
import {
  decodeEntry,
  decodeHardState,
  decodeLogStart,
  decodeSnapshotMetadata,
  unframeRecord,
  type LogStart,
  type StoredSnapshotMetadata,
} from './records.ts';

/** One chunk of snapshot data as found on disk. */
interface StoredChunk {
  readonly key: Uint8Array;
  readonly snapshotIndex: number;
  readonly chunk: number;
  readonly data: Uint8Array;
}

/** Every verified record, in key order, before the cross-record checks. */
interface StoredRecords {
  hardState: HardState | undefined;
  logStart: LogStart | undefined;
  snapshot: StoredSnapshotMetadata | undefined;
  readonly chunks: StoredChunk[];
  readonly entries: Entry[];
}

/**
 * Reads and verifies the Raft records of `db` and returns the image they describe. Throws
 * `StorageCorruptError` (code STORAGE_CORRUPT) on the first bad record or broken invariant.
 */
export async function loadImage(db: RaftDb, dataDir: string): Promise<StorageImage> {
  const records = await readRecords(db, dataDir);
  const logStart = records.logStart ?? { index: 0, term: 0 };
  checkEntries(records.entries, logStart, dataDir);
  const { snapshot, chunkCount } = assembleSnapshot(records, dataDir);
  checkSnapshotAgainstLog(snapshot, logStart, records.entries, dataDir);
  const hardState = records.hardState ?? ZERO_HARD_STATE;
  const lastIndex = logStart.index + records.entries.length;
  if (hardState.commit > lastIndex) {
    throw new StorageCorruptError(dataDir, 'raft/hard-state', `commit index ${hardState.commit} is past the last log index ${lastIndex}`);
  }
  return { hardState, snapshot, snapshotChunkCount: chunkCount, logStart, entries: records.entries, entryCount: records.entries.length };
}

/** Reads every key under `raft/`, verifying and decoding each record. */
async function readRecords(db: RaftDb, dataDir: string): Promise<StoredRecords> {
  const records: StoredRecords = { hardState: undefined, logStart: undefined, snapshot: undefined, chunks: [], entries: [] };
  const iterator = db.iterator({ ...RAFT_KEY_RANGE, keys: true, values: true, fillCache: false, keyEncoding: 'view', valueEncoding: 'view' });
  try {
    for await (const [key, value] of iterator) {
      const parsed = parseKey(key);
      if (parsed.kind === 'unknown') throw new StorageCorruptError(dataDir, keyName(key), 'not a key of the raft storage layout');
      addRecord(records, parsed, key, decodeFrame(key, value, dataDir), dataDir);
    }
  } catch (error) {
    throw toStartupError(error, dataDir);
  } finally {
    await iterator.close();
  }
  return records;
}

function decodeFrame(key: Uint8Array, value: Uint8Array, dataDir: string): Uint8Array {
  return decoding(key, dataDir, () => unframeRecord(key, value));
}

/** Decodes one verified payload into `records` according to its key. */
function addRecord(records: StoredRecords, parsed: Exclude<ParsedKey, { kind: 'unknown' }>, key: Uint8Array, payload: Uint8Array, dataDir: string): void {
  switch (parsed.kind) {
    case 'entry':
      records.entries.push(decoding(key, dataDir, () => decodeEntry(parsed.index, payload)));
      return;
    case 'hardState':
      records.hardState = decoding(key, dataDir, () => decodeHardState(payload));
      return;
    case 'logStart':
      records.logStart = decoding(key, dataDir, () => decodeLogStart(payload));
      return;
    case 'snapshot':
      records.snapshot = decoding(key, dataDir, () => decodeSnapshotMetadata(payload));
      return;
    case 'snapshotData':
      records.chunks.push({ key, snapshotIndex: parsed.snapshotIndex, chunk: parsed.chunk, data: payload });
      return;
  }
}

/** Runs `decode`, turning a `PayloadDecodeError` into a `StorageCorruptError` naming `key`. */
function decoding<T>(key: Uint8Array, dataDir: string, decode: () => T): T {
  try {
    return decode();
  } catch (error) {
    if (error instanceof PayloadDecodeError) throw new StorageCorruptError(dataDir, keyName(key), error.message, { cause: error });
    throw error;
  }
}

/** Entries must follow the log start contiguously, with terms that never decrease. */
function checkEntries(entries: readonly Entry[], logStart: LogStart, dataDir: string): void {
  let expected = logStart.index + 1;
  let previousTerm = logStart.term;
  for (const entry of entries) {
    const name = keyName(entryKey(entry.index));
    if (entry.index < expected) {
      throw new StorageCorruptError(dataDir, name, `entry at or below the compacted index ${logStart.index} (raft/log-start)`);
    }
    if (entry.index > expected) {
      throw new StorageCorruptError(dataDir, name, `entries are not contiguous: expected raft/entry/${expected}, entries ${expected}..${entry.index - 1} are missing`);
    }
    if (entry.term < previousTerm) {
      throw new StorageCorruptError(dataDir, name, `term ${entry.term} is lower than the term ${previousTerm} of the entry before it`);
    }
    expected++;
    previousTerm = entry.term;
  }
}

/** Joins the snapshot's chunks, which must be exactly chunks 0..n-1 of that snapshot. */
function assembleSnapshot(records: StoredRecords, dataDir: string): { snapshot: Snapshot; chunkCount: number } {
  const metadata = records.snapshot;
  const stray = records.chunks.find((c) => metadata === undefined || c.snapshotIndex !== metadata.index || c.chunk >= metadata.chunkCount);
  if (stray !== undefined) {
    throw new StorageCorruptError(dataDir, keyName(stray.key), 'snapshot data chunk that belongs to no stored snapshot (raft/snapshot)');
  }
  if (metadata === undefined) return { snapshot: EMPTY_SNAPSHOT, chunkCount: 0 };
  const { chunks } = records;
  for (let i = 0; i < metadata.chunkCount; i++) {
    if (chunks[i]?.chunk !== i) {
      throw new StorageCorruptError(dataDir, keyName(snapshotDataKey(metadata.index, i)), `snapshot data chunk ${i} of ${metadata.chunkCount} is missing`);
    }
  }
  const data = concatBytes(chunks.map((c) => c.data));
  if (data.byteLength !== metadata.dataBytes) {
    throw new StorageCorruptError(dataDir, 'raft/snapshot', `snapshot data holds ${data.byteLength} bytes, its metadata says ${metadata.dataBytes}`);
  }
  const { index, term, confState } = metadata;
  return { snapshot: { metadata: { index, term, confState }, data }, chunkCount: metadata.chunkCount };
}

/** Where the log still holds the snapshot's index, its term must be the snapshot's term. */
function checkSnapshotAgainstLog(snapshot: Snapshot, logStart: LogStart, entries: readonly Entry[], dataDir: string): void {
  const { index, term } = snapshot.metadata;
  if (index === 0 || index < logStart.index) return;
  if (index === logStart.index) {
    if (logStart.term !== term) throw new StorageCorruptError(dataDir, 'raft/log-start', `term ${logStart.term} differs from the snapshot's term ${term} at index ${index}`);
    return;
  }
  const entry = entries[index - logStart.index - 1];
  if (entry === undefined) {
    throw new StorageCorruptError(dataDir, 'raft/snapshot', `snapshot index ${index} is past the last log index ${logStart.index + entries.length}`);
  }
  if (entry.term !== term) {
    throw new StorageCorruptError(dataDir, `raft/entry/${index}`, `term ${entry.term} differs from the snapshot's term ${term} at that index`);
  }
}

function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const total = parts.reduce((sum, part) => sum + part.byteLength, 0);
  const joined = new Uint8Array(total);
  let offset = 0;
  for (const part of parts) {
    joined.set(part, offset);
    offset += part.byteLength;
  }
  return joined;
}
