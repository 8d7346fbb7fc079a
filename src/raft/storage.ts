import { assert } from '../util/assert.ts';
import { CutoverError } from '../util/errors.ts';
import { EMPTY_SNAPSHOT, entrySize, type ConfState, type Entry, type HardState, type Snapshot } from './types.ts';

/** Asked for entries at or below the compacted index. */
export class LogCompactedError extends CutoverError {
  override readonly name = 'LogCompactedError';
  constructor(index: number, firstIndex: number) {
    super('LOG_COMPACTED', `log index ${index} is compacted (first available index is ${firstIndex})`);
  }
}

/** Asked for entries past the last index. */
export class LogUnavailableError extends CutoverError {
  override readonly name = 'LogUnavailableError';
  constructor(index: number, lastIndex: number) {
    super('LOG_UNAVAILABLE', `log index ${index} is past the last index ${lastIndex}`);
  }
}

/** A snapshot older than the one already held was offered. */
export class SnapshotOutOfDateError extends CutoverError {
  override readonly name = 'SnapshotOutOfDateError';
  constructor(index: number, current: number) {
    super('SNAPSHOT_OUT_OF_DATE', `snapshot at index ${index} is older than the current snapshot at ${current}`);
  }
}

/**
 * The read side of Raft's stable storage, used synchronously by the core. Implementations keep
 * what the core needs in memory (or cache it) so reads never block.
 *
 * Invariants: `firstIndex() - 1` is the snapshot index; `term(firstIndex() - 1)` is the snapshot
 * term; every index in [firstIndex(), lastIndex()] is present. Returned arrays are owned by the
 * caller only for reading: the core never mutates them.
 */
export interface RaftStorage {
  /** The persisted hard state and membership at start-up. */
  initialState(): { hardState: HardState; confState: ConfState };
  /**
   * Entries in [lo, hi), at most `maxBytes` worth but always at least one when lo < hi.
   * Throws `LogCompactedError` if lo < firstIndex(), `LogUnavailableError` if hi > lastIndex()+1.
   */
  entries(lo: number, hi: number, maxBytes: number): readonly Entry[];
  /**
   * The term of entry `index`, for index in [firstIndex()-1, lastIndex()]. Throws
   * `LogCompactedError` below that range and `LogUnavailableError` above it.
   */
  term(index: number): number;
  firstIndex(): number;
  lastIndex(): number;
  /** The most recent snapshot (EMPTY_SNAPSHOT when none). */
  snapshot(): Snapshot;
}

/** One Ready's durable part, written atomically by `save`. */
export interface StorageUpdate {
  readonly hardState?: HardState;
  readonly entries: readonly Entry[];
  readonly snapshot?: Snapshot;
  /**
   * False when the update only moves the commit index (Ready.mustSync): it may then be written
   * without an fsync, since a commit index lost in a crash is learned again from the leader.
   * Absent means true.
   */
  readonly sync?: boolean;
}

/**
 * Storage the driver writes to. `save` persists one Ready as a single atomic write: the snapshot
 * (if any) first, replacing the whole log; then the entries, which replace any suffix from their
 * first index on (entries at or below the snapshot index are ignored); then the hard state.
 * When `save` settles the write is durable. A snapshot no newer than the current one fails
 * with `SnapshotOutOfDateError` and changes nothing. The test suite in
 * test/raft/storage-contract.ts pins this contract down.
 */
export interface WritableRaftStorage extends RaftStorage {
  save(update: StorageUpdate): void | Promise<void>;
  /** Record a snapshot of the applied state at `index` (<= the applied index). */
  createSnapshot(index: number, confState: ConfState, data: Uint8Array): Snapshot | Promise<Snapshot>;
  /** Discard entries up to and including `index` (which must be <= the snapshot index). */
  compact(index: number): void | Promise<void>;
}

/**
 * Raft storage held in memory: the reference implementation of the contract, used by tests,
 * the benchmark and as the simulator's base. `ents[0]` is a dummy entry at the snapshot index
 * that carries the snapshot term, so `term(firstIndex()-1)` needs no special case.
 */
export class MemoryStorage implements WritableRaftStorage {
  private hardState: HardState = { term: 0, vote: 0, commit: 0 };
  private snap: Snapshot = EMPTY_SNAPSHOT;
  private ents: Entry[] = [{ term: 0, index: 0, type: 'normal', data: new Uint8Array(0) }];

  /**
   * Builds a storage whose membership is `voters` and `learners`: a new cluster's, or the one a
   * new member joins (it then replays the log's membership changes on top). The membership is
   * held in a snapshot at index 0, which is never sent to peers, so every member needs one.
   */
  static bootstrap(voters: readonly number[], learners: readonly number[] = []): MemoryStorage {
    const storage = new MemoryStorage();
    storage.snap = { metadata: { index: 0, term: 0, confState: { voters: [...voters], learners: [...learners] } }, data: new Uint8Array(0) };
    return storage;
  }

  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: this.hardState, confState: this.snap.metadata.confState };
  }

  private offset(): number {
    return this.ents[0]!.index;
  }

  firstIndex(): number {
    return this.offset() + 1;
  }

  lastIndex(): number {
    return this.offset() + this.ents.length - 1;
  }

  term(index: number): number {
    const offset = this.offset();
    if (index < offset) throw new LogCompactedError(index, offset + 1);
    if (index > this.lastIndex()) throw new LogUnavailableError(index, this.lastIndex());
    return this.ents[index - offset]!.term;
  }

  entries(lo: number, hi: number, maxBytes: number): readonly Entry[] {
    const offset = this.offset();
    if (lo <= offset) throw new LogCompactedError(lo, offset + 1);
    if (hi > this.lastIndex() + 1) throw new LogUnavailableError(hi - 1, this.lastIndex());
    assert(lo <= hi, `entries: lo ${lo} > hi ${hi}`);
    return limitSize(this.ents.slice(lo - offset, hi - offset), maxBytes);
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  save(update: StorageUpdate): void {
    if (update.snapshot !== undefined && update.snapshot.metadata.index > 0) this.applySnapshot(update.snapshot);
    if (update.entries.length > 0) this.append(update.entries);
    if (update.hardState !== undefined) this.hardState = update.hardState;
  }

  /** Replace the whole log with `snap`; entries it covers are dropped. */
  applySnapshot(snap: Snapshot): void {
    const current = this.snap.metadata.index;
    if (snap.metadata.index <= current && current > 0) throw new SnapshotOutOfDateError(snap.metadata.index, current);
    this.snap = snap;
    this.ents = [{ term: snap.metadata.term, index: snap.metadata.index, type: 'normal', data: new Uint8Array(0) }];
  }

  /** Append `entries`, truncating any existing suffix that they overlap. */
  append(entries: readonly Entry[]): void {
    const first = entries[0]!;
    for (let i = 1; i < entries.length; i++) assert(entries[i]!.index === first.index + i, 'append: entries not contiguous');
    const offset = this.offset();
    const last = entries[entries.length - 1]!.index;
    if (last <= offset) return; // entirely compacted away already
    assert(first.index <= this.lastIndex() + 1, `append: gap (first ${first.index}, last stored ${this.lastIndex()})`);
    const skip = Math.max(0, offset + 1 - first.index);
    const from = first.index + skip - offset;
    // Truncate any conflicting suffix in place, then append: O(new entries), not O(log length).
    if (from < this.ents.length) this.ents.length = from;
    for (let i = skip; i < entries.length; i++) this.ents.push(entries[i]!);
  }

  createSnapshot(index: number, confState: ConfState, data: Uint8Array): Snapshot {
    const current = this.snap.metadata.index;
    if (index <= current) throw new SnapshotOutOfDateError(index, current);
    assert(index <= this.lastIndex(), `createSnapshot: index ${index} > last ${this.lastIndex()}`);
    this.snap = { metadata: { index, term: this.term(index), confState }, data };
    return this.snap;
  }

  compact(index: number): void {
    const offset = this.offset();
    if (index <= offset) return;
    assert(index <= this.lastIndex(), `compact: index ${index} > last ${this.lastIndex()}`);
    const dummy: Entry = { term: this.ents[index - offset]!.term, index, type: 'normal', data: new Uint8Array(0) };
    this.ents = [dummy, ...this.ents.slice(index - offset + 1)];
  }
}

/** The longest prefix of `entries` within `maxBytes`, but never empty when `entries` is not. */
export function limitSize<T extends Entry>(entries: readonly T[], maxBytes: number): T[] {
  let size = 0;
  let count = 0;
  for (const entry of entries) {
    size += entrySize(entry);
    if (count > 0 && size > maxBytes) break;
    count++;
  }
  return entries.slice(0, count);
}
