import { assert } from '../util/assert.ts';
import type { RaftStorage } from './storage.ts';
import { limitSize } from './storage.ts';
import type { Entry, Snapshot } from './types.ts';

/**
 * Entries and a snapshot that are not yet in stable storage. `entries[i]` has index `offset + i`.
 * When `snapshot` is set it precedes `entries` (offset = snapshot index + 1).
 */
class Unstable {
  snapshot: Snapshot | undefined = undefined;
  entries: Entry[] = [];
  offset: number;

  constructor(offset: number) {
    this.offset = offset;
  }

  firstIndex(): number | undefined {
    return this.snapshot === undefined ? undefined : this.snapshot.metadata.index + 1;
  }

  lastIndex(): number | undefined {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1;
    return this.snapshot === undefined ? undefined : this.snapshot.metadata.index;
  }

  term(index: number): number | undefined {
    if (index < this.offset) {
      if (this.snapshot !== undefined && this.snapshot.metadata.index === index) return this.snapshot.metadata.term;
      return undefined;
    }
    const last = this.lastIndex();
    if (last === undefined || index > last) return undefined;
    return this.entries[index - this.offset]!.term;
  }

  /** Entries up to (index, term) reached stable storage; a later truncation makes this a no-op. */
  stableTo(index: number, term: number): void {
    if (this.term(index) !== term || index < this.offset) return;
    this.entries = this.entries.slice(index + 1 - this.offset);
    this.offset = index + 1;
  }

  stableSnapTo(index: number): void {
    if (this.snapshot !== undefined && this.snapshot.metadata.index === index) this.snapshot = undefined;
  }

  restore(snapshot: Snapshot): void {
    this.offset = snapshot.metadata.index + 1;
    this.entries = [];
    this.snapshot = snapshot;
  }

  truncateAndAppend(entries: readonly Entry[]): void {
    const from = entries[0]!.index;
    if (from === this.offset + this.entries.length) {
      // In place: ready() hands out a copy, so nothing else holds this array.
      for (const entry of entries) this.entries.push(entry);
    } else if (from <= this.offset) {
      // Replaces everything unstable; the stable suffix past `from` is overwritten when saved.
      this.offset = from;
      this.entries = entries.slice();
    } else {
      this.entries = this.entries.slice(0, from - this.offset).concat(entries);
    }
  }
}

/**
 * The Raft log: stable storage plus the unstable tail. Invariant: applied <= committed <= lastIndex().
 */
export class RaftLog {
  readonly storage: RaftStorage;
  readonly unstable: Unstable;
  committed: number;
  applied: number;
  private readonly maxApplyBytes: number;

  constructor(storage: RaftStorage, maxApplyBytes: number) {
    this.storage = storage;
    this.maxApplyBytes = maxApplyBytes;
    const first = storage.firstIndex();
    this.unstable = new Unstable(storage.lastIndex() + 1);
    this.committed = first - 1;
    this.applied = first - 1;
  }

  firstIndex(): number {
    return this.unstable.firstIndex() ?? this.storage.firstIndex();
  }

  lastIndex(): number {
    return this.unstable.lastIndex() ?? this.storage.lastIndex();
  }

  /**
   * The last index of this log that is durable: everything before the first unstable entry (what
   * the driver has not yet persisted, or persists right now). 0 while a snapshot is pending.
   */
  stableIndex(): number {
    return this.unstable.snapshot === undefined ? this.unstable.offset - 1 : 0;
  }

  lastTerm(): number {
    const term = this.term(this.lastIndex());
    assert(term !== undefined, 'lastTerm: last entry has no term');
    return term;
  }

  /** The term of `index`, or undefined when it is compacted or past the end. */
  term(index: number): number | undefined {
    const dummy = this.firstIndex() - 1;
    if (index < dummy || index > this.lastIndex()) return undefined;
    const unstableTerm = this.unstable.term(index);
    if (unstableTerm !== undefined) return unstableTerm;
    return this.storage.term(index);
  }

  matchTerm(index: number, term: number): boolean {
    return this.term(index) === term;
  }

  /** §5.4.1: a candidate's log is at least as up to date as ours. */
  isUpToDate(lastIndex: number, term: number): boolean {
    const ourTerm = this.lastTerm();
    return term > ourTerm || (term === ourTerm && lastIndex >= this.lastIndex());
  }

  /**
   * The follower side of AppendEntries: if our entry at `index` has `logTerm`, append `entries`
   * (dropping any conflicting suffix), advance commit, and return the last new index.
   */
  maybeAppend(index: number, logTerm: number, committed: number, entries: readonly Entry[]): number | undefined {
    if (!this.matchTerm(index, logTerm)) return undefined;
    const lastNew = index + entries.length;
    const conflict = this.findConflict(entries);
    if (conflict !== 0) {
      assert(conflict > this.committed, `entry ${conflict} conflicts with committed entry (committed ${this.committed})`);
      this.append(entries.slice(conflict - (index + 1)));
    }
    this.commitTo(Math.min(committed, lastNew));
    return lastNew;
  }

  /** Appends entries (which may overwrite an uncommitted suffix); returns the new last index. */
  append(entries: readonly Entry[]): number {
    if (entries.length === 0) return this.lastIndex();
    assert(entries[0]!.index - 1 >= this.committed, `append at ${entries[0]!.index} would overwrite committed ${this.committed}`);
    assert(entries[0]!.index <= this.lastIndex() + 1, `append at ${entries[0]!.index} would leave a gap after ${this.lastIndex()}`);
    this.unstable.truncateAndAppend(entries);
    return this.lastIndex();
  }

  /** The first entry whose term differs from ours (or that we lack); 0 when all match. */
  private findConflict(entries: readonly Entry[]): number {
    for (const entry of entries) if (!this.matchTerm(entry.index, entry.term)) return entry.index;
    return 0;
  }

  /**
   * Fast back-off: the largest index <= `index` whose term is <= `term`, with that term (0 when
   * unknown). A leader uses it to skip a whole conflicting term per round trip.
   */
  findConflictByTerm(index: number, term: number): [number, number] {
    for (let i = index; ; i--) {
      const ourTerm = this.term(i);
      if (ourTerm === undefined) return [i, 0];
      if (ourTerm <= term) return [i, ourTerm];
    }
  }

  commitTo(index: number): void {
    if (index <= this.committed) return;
    assert(index <= this.lastIndex(), `commitTo(${index}) is past the last index ${this.lastIndex()}`);
    this.committed = index;
  }

  /** Leader commit: only an entry of `term` (the leader's) is committed by counting (§5.4.2). */
  maybeCommit(index: number, term: number, unsafeIgnoreTerm = false): boolean {
    if (index <= this.committed) return false;
    if (!unsafeIgnoreTerm && this.term(index) !== term) return false;
    this.commitTo(index);
    return true;
  }

  appliedTo(index: number): void {
    if (index === 0) return;
    assert(index <= this.committed && index >= this.applied, `appliedTo(${index}) outside [${this.applied}, ${this.committed}]`);
    this.applied = index;
  }

  /** Entries in [lo, hi), at most maxBytes (but at least one), from storage then unstable. */
  slice(lo: number, hi: number, maxBytes: number): Entry[] {
    if (lo >= hi) return [];
    assert(lo >= this.firstIndex() && hi <= this.lastIndex() + 1, `slice [${lo}, ${hi}) out of bounds`);
    let result: Entry[] = [];
    const offset = this.unstable.offset;
    if (lo < offset) {
      result = this.storage.entries(lo, Math.min(hi, offset), maxBytes).slice();
      if (result.length < Math.min(hi, offset) - lo) return result; // size limit reached in storage
    }
    if (hi > offset) {
      const from = Math.max(lo, offset) - offset;
      result = result.concat(this.unstable.entries.slice(from, hi - offset));
    }
    return limitSize(result, maxBytes);
  }

  /** Entries from `index` to the end, at most maxBytes. Undefined when `index` is compacted. */
  entriesFrom(index: number, maxBytes: number): Entry[] | undefined {
    if (index < this.firstIndex()) return undefined;
    return this.slice(index, this.lastIndex() + 1, maxBytes);
  }

  hasPendingSnapshot(): boolean {
    return this.unstable.snapshot !== undefined;
  }

  /**
   * Committed entries not yet applied, and only those already durable here (none while a snapshot
   * is pending): a committed entry still being written is handed out once the write is done, so
   * the driver may apply what it gets without waiting for the Ready's own write.
   */
  nextCommittedEntries(): Entry[] {
    if (this.hasPendingSnapshot()) return [];
    const lo = Math.max(this.applied + 1, this.firstIndex());
    return this.slice(lo, this.applicableTo() + 1, this.maxApplyBytes);
  }

  hasNextCommittedEntries(): boolean {
    return !this.hasPendingSnapshot() && this.applicableTo() > Math.max(this.applied, this.firstIndex() - 1);
  }

  /** The last index that may be applied: committed and durable. */
  private applicableTo(): number {
    return Math.min(this.committed, this.stableIndex());
  }

  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }

  restore(snapshot: Snapshot): void {
    this.committed = snapshot.metadata.index;
    this.unstable.restore(snapshot);
  }
}
