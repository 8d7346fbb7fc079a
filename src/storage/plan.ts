/**
 * Each write is planned as a pure function of the current image: the LevelDB operations that make
 * the disk match the next image, and that next image. Operational errors (an out-of-date snapshot)
 * are thrown here, before anything is written. Within a batch LevelDB applies operations in order,
 * so a later put of a key wins over an earlier delete of it.
 */
import { assert } from '../util/assert.ts';
import { SnapshotOutOfDateError, type StorageUpdate } from '../raft/storage.ts';
import type { ConfState, Entry, HardState, Snapshot } from '../raft/types.ts';
import { isEmptyImage, lastIndex, termAt, type StorageImage } from './image.ts';
import { HARD_STATE_KEY, LOG_START_KEY, SNAPSHOT_KEY, entryKey, snapshotDataKey } from './keys.ts';
import { encodeEntry, encodeHardState, encodeLogStart, encodeSnapshotMetadata, frameRecord, type LogStart } from './records.ts';

/**
 * Snapshot data is stored in chunks of at most this many bytes. 1 MiB keeps every LevelDB value
 * well under its 4 MiB write buffer and 2 MiB table files (a single huge value forces oversized
 * memtable flushes and one large copy through the native binding), while the per-chunk overhead
 * (a 31-byte key and a 9-byte header) stays negligible.
 */
export const SNAPSHOT_CHUNK_BYTES = 1 << 20;

/** One LevelDB batch operation on raw keys and framed values. */
export type RecordOp =
  | { readonly type: 'put'; readonly key: Uint8Array; readonly value: Uint8Array }
  | { readonly type: 'del'; readonly key: Uint8Array };

/** What a write does: `ops` in one atomic batch, after which the image is `next`. */
export interface WritePlan {
  readonly ops: readonly RecordOp[];
  readonly next: StorageImage;
}

/**
 * Plans `save` with MemoryStorage's semantics: the snapshot (index > 0) replaces the whole log,
 * then the entries are appended, replacing any suffix they conflict with, then the hard state.
 */
export function planSave(image: StorageImage, update: StorageUpdate): WritePlan {
  const ops: RecordOp[] = [];
  let next = image;
  if (update.snapshot !== undefined && update.snapshot.metadata.index > 0) next = replaceLogWithSnapshot(next, update.snapshot, ops);
  if (update.entries.length > 0) next = appendEntries(next, update.entries, ops);
  if (update.hardState !== undefined) next = setHardState(next, update.hardState, ops);
  // Paired with the check at open: a commit index past the log would make the next start fail.
  assert(next.hardState.commit <= lastIndex(next), `save: commit ${next.hardState.commit} > last index ${lastIndex(next)}`);
  return { ops, next };
}

/** Plans `createSnapshot`: a snapshot of the applied state at `index`; the log is unchanged. */
export function planCreateSnapshot(image: StorageImage, index: number, confState: ConfState, data: Uint8Array): WritePlan {
  const current = image.snapshot.metadata.index;
  if (index <= current) throw new SnapshotOutOfDateError(index, current);
  assert(index <= lastIndex(image), `createSnapshot: index ${index} > last ${lastIndex(image)}`);
  const snapshot: Snapshot = { metadata: { index, term: termAt(image, index), confState }, data };
  const ops: RecordOp[] = [];
  const snapshotChunkCount = putSnapshot(image, snapshot, ops);
  return { ops, next: { ...image, snapshot, snapshotChunkCount } };
}

/** Plans `compact`: entries up to and including `index` go; a no-op if already compacted. */
export function planCompact(image: StorageImage, index: number): WritePlan {
  const offset = image.logStart.index;
  if (index <= offset) return { ops: [], next: image };
  assert(index <= lastIndex(image), `compact: index ${index} > last ${lastIndex(image)}`);
  const ops: RecordOp[] = [];
  for (let i = offset + 1; i <= index; i++) ops.push({ type: 'del', key: entryKey(i) });
  const logStart: LogStart = { index, term: termAt(image, index) };
  ops.push(put(LOG_START_KEY, encodeLogStart(logStart)));
  const entries = image.entries.slice(index - offset, image.entryCount);
  return { ops, next: { ...image, logStart, entries, entryCount: entries.length } };
}

/** Plans the first write of a new member: membership `confState` as a snapshot at index 0. */
export function planBootstrap(image: StorageImage, confState: ConfState): WritePlan {
  assert(isEmptyImage(image), 'bootstrap: storage is not empty');
  const snapshot: Snapshot = { metadata: { index: 0, term: 0, confState }, data: new Uint8Array(0) };
  const ops: RecordOp[] = [];
  const snapshotChunkCount = putSnapshot(image, snapshot, ops);
  return { ops, next: { ...image, snapshot, snapshotChunkCount } };
}

/** The snapshot becomes the whole log: every stored entry is deleted; the log restarts after it. */
function replaceLogWithSnapshot(image: StorageImage, snapshot: Snapshot, ops: RecordOp[]): StorageImage {
  const current = image.snapshot.metadata.index;
  if (snapshot.metadata.index <= current && current > 0) throw new SnapshotOutOfDateError(snapshot.metadata.index, current);
  for (let i = image.logStart.index + 1; i <= lastIndex(image); i++) ops.push({ type: 'del', key: entryKey(i) });
  const snapshotChunkCount = putSnapshot(image, snapshot, ops);
  const logStart: LogStart = { index: snapshot.metadata.index, term: snapshot.metadata.term };
  ops.push(put(LOG_START_KEY, encodeLogStart(logStart)));
  return { ...image, snapshot, snapshotChunkCount, logStart, entries: [], entryCount: 0 };
}

/** Appends `entries`, deleting stored entries past the new last index (a conflicting suffix). */
function appendEntries(image: StorageImage, entries: readonly Entry[], ops: RecordOp[]): StorageImage {
  const first = entries[0]!;
  for (let i = 1; i < entries.length; i++) assert(entries[i]!.index === first.index + i, 'append: entries not contiguous');
  const offset = image.logStart.index;
  const newLast = entries[entries.length - 1]!.index;
  if (newLast <= offset) return image; // entirely compacted away already
  const oldLast = lastIndex(image);
  assert(first.index <= oldLast + 1, `append: gap (first ${first.index}, last stored ${oldLast})`);
  const appended = entries.slice(Math.max(0, offset + 1 - first.index));
  for (let i = newLast + 1; i <= oldLast; i++) ops.push({ type: 'del', key: entryKey(i) });
  for (const entry of appended) ops.push(put(entryKey(entry.index), encodeEntry(entry)));
  const keptCount = appended[0]!.index - offset - 1;
  const shared = image.entries as Entry[];
  if (keptCount === image.entryCount && shared.length === image.entryCount && !Object.isFrozen(shared)) {
    // The common case: a plain append to the newest image. Grow the shared array in place;
    // older images keep their own entryCount, so what they show does not change.
    for (const entry of appended) shared.push(entry);
    return { ...image, entryCount: shared.length };
  }
  const copied = image.entries.slice(0, keptCount).concat(appended);
  return { ...image, entries: copied, entryCount: copied.length };
}

function setHardState(image: StorageImage, hardState: HardState, ops: RecordOp[]): StorageImage {
  ops.push(put(HARD_STATE_KEY, encodeHardState(hardState)));
  return { ...image, hardState };
}

/**
 * Adds the operations that store `snapshot` (metadata and data chunks) and delete the previous
 * snapshot's chunks. Chunk keys carry the snapshot index, so a chunk of another snapshot can never
 * pass for one of this one. Returns the new chunk count.
 */
function putSnapshot(image: StorageImage, snapshot: Snapshot, ops: RecordOp[]): number {
  const previousIndex = image.snapshot.metadata.index;
  for (let chunk = 0; chunk < image.snapshotChunkCount; chunk++) ops.push({ type: 'del', key: snapshotDataKey(previousIndex, chunk) });
  const { data, metadata } = snapshot;
  const chunkCount = Math.ceil(data.byteLength / SNAPSHOT_CHUNK_BYTES);
  for (let chunk = 0; chunk < chunkCount; chunk++) {
    const bytes = data.subarray(chunk * SNAPSHOT_CHUNK_BYTES, (chunk + 1) * SNAPSHOT_CHUNK_BYTES);
    ops.push(put(snapshotDataKey(metadata.index, chunk), bytes));
  }
  ops.push(put(SNAPSHOT_KEY, encodeSnapshotMetadata({ ...metadata, dataBytes: data.byteLength, chunkCount })));
  return chunkCount;
}

function put(key: Uint8Array, payload: Uint8Array): RecordOp {
  return { type: 'put', key, value: frameRecord(key, payload) };
}
