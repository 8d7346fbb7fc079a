/**
 * The in-memory image of what is on disk: the Raft core reads it synchronously, and it changes
 * only to the image a write produced, after that write is durable. Images are never mutated.
 */
import { assert } from '../util/assert.ts';
import { LogCompactedError, LogUnavailableError, limitSize } from '../raft/storage.ts';
import { EMPTY_SNAPSHOT, type Entry, type HardState, type Snapshot } from '../raft/types.ts';
import type { LogStart } from './records.ts';

/**
 * Invariants: `entries[i].index === logStart.index + 1 + i` for i < entryCount; `term(logStart.index)`
 * is `logStart.term`; `hardState.commit <= lastIndex(image)`; `snapshotChunkCount` is the number of
 * data chunks stored for `snapshot`.
 *
 * `entries` may be longer than `entryCount`: successive images share one array that appends grow
 * in place (each image sees only its first `entryCount` entries), so a save costs O(new entries)
 * instead of a copy of the whole log.
 */
export interface StorageImage {
  readonly hardState: HardState;
  readonly snapshot: Snapshot;
  readonly snapshotChunkCount: number;
  /** The last compacted position; the snapshot's own position after a snapshot replaced the log. */
  readonly logStart: LogStart;
  readonly entries: readonly Entry[];
  readonly entryCount: number;
}

/** The hard state of a member that never voted or learned of a term. */
export const ZERO_HARD_STATE: HardState = Object.freeze({ term: 0, vote: 0, commit: 0 });

/** The image of an empty data directory. */
export const EMPTY_IMAGE: StorageImage = Object.freeze({
  hardState: ZERO_HARD_STATE,
  snapshot: EMPTY_SNAPSHOT,
  snapshotChunkCount: 0,
  logStart: Object.freeze({ index: 0, term: 0 }),
  entries: Object.freeze([]),
  entryCount: 0,
});

/** The first index still in the log: one past the compacted (or snapshot) index. */
export function firstIndex(image: StorageImage): number {
  return image.logStart.index + 1;
}

/** The last index in the log (the compacted index when the log is empty). */
export function lastIndex(image: StorageImage): number {
  return image.logStart.index + image.entryCount;
}

/** True when nothing was ever stored: no entries, no snapshot or membership, zero hard state. */
export function isEmptyImage(image: StorageImage): boolean {
  const { metadata } = image.snapshot;
  const { hardState } = image;
  return (
    lastIndex(image) === 0 &&
    metadata.index === 0 &&
    metadata.confState.voters.length === 0 &&
    metadata.confState.learners.length === 0 &&
    hardState.term === 0 &&
    hardState.vote === 0 &&
    hardState.commit === 0
  );
}

/**
 * The term of entry `index`, for index in [firstIndex - 1, lastIndex]. Throws `LogCompactedError`
 * below and `LogUnavailableError` above that range (as MemoryStorage does).
 */
export function termAt(image: StorageImage, index: number): number {
  const offset = image.logStart.index;
  if (index < offset) throw new LogCompactedError(index, offset + 1);
  if (index > lastIndex(image)) throw new LogUnavailableError(index, lastIndex(image));
  if (index === offset) return image.logStart.term;
  return image.entries[index - offset - 1]!.term;
}

/**
 * Entries in [lo, hi), at most `maxBytes` worth but at least one when lo < hi. Throws
 * `LogCompactedError` if lo < firstIndex and `LogUnavailableError` if hi > lastIndex + 1.
 */
export function entriesIn(image: StorageImage, lo: number, hi: number, maxBytes: number): readonly Entry[] {
  const offset = image.logStart.index;
  if (lo <= offset) throw new LogCompactedError(lo, offset + 1);
  if (hi > lastIndex(image) + 1) throw new LogUnavailableError(hi - 1, lastIndex(image));
  assert(lo <= hi, `entries: lo ${lo} > hi ${hi}`);
  return limitSize(image.entries.slice(lo - offset - 1, hi - offset - 1), maxBytes);
}
