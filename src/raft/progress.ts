import { assert } from '../util/assert.ts';
import type { ProgressState } from './types.ts';

/**
 * The in-flight window of append messages to one peer, bounded by count and bytes. Each slot is
 * the last index of one message; a response for index i frees every slot <= i.
 */
export class Inflights {
  private readonly indexes: number[] = [];
  private readonly sizes: number[] = [];
  private bytesTotal = 0;

  constructor(
    private readonly countMax: number,
    private readonly bytesMax: number,
  ) {}

  add(index: number, bytes: number): void {
    assert(!this.full(), 'inflights: add to a full window');
    const last = this.indexes[this.indexes.length - 1];
    assert(last === undefined || index > last, 'inflights: indexes must increase');
    this.indexes.push(index);
    this.sizes.push(bytes);
    this.bytesTotal += bytes;
  }

  freeLE(index: number): void {
    let n = 0;
    while (n < this.indexes.length && this.indexes[n]! <= index) {
      this.bytesTotal -= this.sizes[n]!;
      n++;
    }
    this.indexes.splice(0, n);
    this.sizes.splice(0, n);
  }

  /** Frees the oldest slot: its message was probably lost (see the heartbeat response handler). */
  freeFirstOne(): void {
    const first = this.indexes[0];
    if (first !== undefined) this.freeLE(first);
  }

  full(): boolean {
    return this.indexes.length >= this.countMax || this.bytesTotal >= this.bytesMax;
  }

  count(): number {
    return this.indexes.length;
  }

  bytes(): number {
    return this.bytesTotal;
  }

  reset(): void {
    this.indexes.length = 0;
    this.sizes.length = 0;
    this.bytesTotal = 0;
  }
}

/**
 * The leader's view of one follower. Invariant: match < next. In `probe` one append is in flight
 * at a time until the follower's position is found; in `replicate` appends are pipelined up to
 * the in-flight window; in `snapshot` nothing is sent until the snapshot is reported.
 */
export class Progress {
  match: number;
  next: number;
  state: ProgressState = 'probe';
  /** Index of the snapshot being sent (state `snapshot`), else 0. */
  pendingSnapshot = 0;
  /** Heard from within the current election timeout (check-quorum). */
  recentActive = false;
  /** In `probe`: an append was sent and its answer (or a heartbeat answer) is awaited. */
  probeSent = false;
  isLearner: boolean;
  readonly inflights: Inflights;

  constructor(match: number, next: number, isLearner: boolean, inflights: Inflights) {
    this.match = match;
    this.next = next;
    this.isLearner = isLearner;
    this.inflights = inflights;
  }

  private resetState(state: ProgressState): void {
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.state = state;
    this.inflights.reset();
  }

  becomeProbe(): void {
    if (this.state === 'snapshot') {
      const pending = this.pendingSnapshot;
      this.resetState('probe');
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.resetState('probe');
      this.next = this.match + 1;
    }
  }

  becomeReplicate(): void {
    this.resetState('replicate');
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.resetState('snapshot');
    this.pendingSnapshot = snapshotIndex;
  }

  /** A successful append response for `index`; false when it is stale. */
  maybeUpdate(index: number): boolean {
    let updated = false;
    if (this.match < index) {
      this.match = index;
      updated = true;
      this.probeSent = false;
    }
    this.next = Math.max(this.next, index + 1);
    return updated;
  }

  /**
   * A rejected append at `rejected`, with the follower's hint `matchHint`. Returns false when the
   * rejection is stale (it answers an older probe).
   */
  maybeDecreaseTo(rejected: number, matchHint: number): boolean {
    if (this.state === 'replicate') {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.probeSent = false;
    return true;
  }

  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
        return this.probeSent;
      case 'replicate':
        return this.inflights.full();
      case 'snapshot':
        return true;
    }
  }
}
