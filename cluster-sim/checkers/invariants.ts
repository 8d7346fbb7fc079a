/**
 * Raft's safety properties (Raft paper, Figure 3), checked while the simulation runs from what
 * every node does and persists:
 * - election safety: at most one leader per term (seen from every leader-only message and from
 *   every node's own report of becoming leader);
 * - log matching: two persisted entries with the same index and term have the same data and the
 *   same term before them, so by induction the same prefix;
 * - leader completeness: a new leader's log holds every entry known to be committed so far;
 * - state-machine safety: no two nodes commit or apply different entries at one index, each node
 *   applies indexes in order without gaps, and snapshots of one index hold the same state;
 * - the persisted term and commit index never move backwards on a node, also across restarts
 *   (where a crash may take the commit index back to the last one written with fsync, never
 *   further: a write without fsync only ever moves the commit index);
 * - durability of the simulated disk itself: recovery returns what was acknowledged, and no torn
 *   record is ever accepted.
 * Linearizability and liveness are checked by the simulation and reported through `report`.
 */
import type { HardState, Entry, Message, Snapshot } from '../../src/raft/types.ts';
import type { RaftStorage, StorageUpdate } from '../../src/raft/storage.ts';
import { fnv1a } from '../codec.ts';
import type { RecoveryReport } from '../disk.ts';

export const VIOLATION_KINDS = [
  'election-safety',
  'log-matching',
  'leader-completeness',
  'state-machine-safety',
  'commit-regression',
  'ready-contract',
  'durability',
  'torn-write-undetected',
  'linearizability',
  'liveness',
  'exception',
] as const;
export type ViolationKind = (typeof VIOLATION_KINDS)[number];

/** A broken invariant: what, when (simulated ms), and a sentence with the evidence. */
export interface Violation {
  readonly kind: ViolationKind;
  readonly atMs: number;
  readonly message: string;
}

/** Messages only a leader sends: seeing one proves its sender led in the message's term. */
const LEADER_ONLY: ReadonlySet<string> = new Set(['app', 'heartbeat', 'snap', 'timeoutNow', 'readIndexResp']);
/** Terms stay below this in any run; (index, term) pairs are packed into one number with it. */
const TERM_LIMIT = 1_000_000;

interface Seen {
  readonly node: number;
  readonly term: number;
  readonly hash: number;
}

/** Collects violations; the simulation stops at the first one. */
export class InvariantChecker {
  readonly violations: Violation[] = [];
  private readonly leaderByTerm = new Map<number, number>();
  /** Log matching: (index, term) → data hash and the term of the entry before it. */
  private readonly persistedEntries = new Map<number, { node: number; hash: number; previousTerm: number }>();
  /** Committed entries: the entry's term, and the lowest term a node held when it persisted that commit. */
  private readonly committed = new Map<number, { node: number; term: number; knownInTerm: number }>();
  private committedMax = 0;
  private readonly applied = new Map<number, Seen>();
  private readonly snapshotHashes = new Map<number, { node: number; hash: number }>();
  private readonly persistedHardStates = new Map<number, HardState>();
  /** The last hard state each node made durable with an fsync (or a checkpoint). */
  private readonly syncedHardStates = new Map<number, HardState>();

  constructor(
    private readonly nowMs: () => number,
    /** The forget-vote variant drops the vote on recovery on purpose; durability ignores it then. */
    private readonly voteForgottenOnRecovery: boolean,
  ) {}

  get failed(): boolean {
    return this.violations.length > 0;
  }

  /** Records a violation found elsewhere (linearizability, liveness, a thrown error). */
  report(kind: ViolationKind, message: string): void {
    this.violations.push({ kind, atMs: this.nowMs(), message });
  }

  /** Every message a node sends. */
  onMessage(message: Message): void {
    if (LEADER_ONLY.has(message.type)) this.observeLeader(message.from, message.term, `sent ${message.type}`);
  }

  /**
   * `node` reports becoming leader of `term`. Its log is `storage` overlaid with `unstable` (the
   * entries of the Ready being handled, not yet persisted).
   */
  onBecameLeader(node: number, term: number, storage: RaftStorage, unstable: readonly Entry[]): void {
    this.observeLeader(node, term, 'became leader');
    const firstUnstable = unstable[0]?.index ?? Number.POSITIVE_INFINITY;
    const lastIndex = unstable.length > 0 ? unstable[unstable.length - 1]!.index : storage.lastIndex();
    const termAt = (index: number): number | undefined => {
      if (index >= firstUnstable) return unstable[index - firstUnstable]?.term;
      return index >= storage.firstIndex() - 1 && index <= storage.lastIndex() ? storage.term(index) : undefined;
    };
    for (let index = Math.max(1, storage.firstIndex() - 1); index <= this.committedMax; index++) {
      const committed = this.committed.get(index);
      // Leader completeness is about higher-numbered terms: an entry committed in term L must be in
      // the log of every leader of a term above L. A leader of an older term can still win its
      // election after that commit (a vote granted before the voter moved on, delivered late), and
      // owes nothing to it. L is at most the term of the first node seen persisting the commit.
      if (committed === undefined || committed.knownInTerm >= term) continue;
      const have = index <= lastIndex ? termAt(index) : undefined;
      if (have !== committed.term) {
        this.report('leader-completeness', `node ${node} became leader of term ${term} without the entry committed at index ${index} (term ${committed.term}, seen on node ${committed.node}); its log has ${have === undefined ? 'nothing' : `term ${have}`} there`);
        return;
      }
    }
  }

  /** `node` completed the disk write of `ready` (a Ready's durable part); `storage` now includes it. */
  onPersisted(node: number, ready: StorageUpdate, storage: RaftStorage): void {
    if (ready.snapshot !== undefined) this.observeCommitted(node, ready.snapshot.metadata.index, ready.snapshot.metadata.term, this.termOf(node));
    for (const entry of ready.entries) this.observePersistedEntry(node, entry, storage);
    if (ready.hardState !== undefined) this.observeHardState(node, ready.hardState, storage);
    if (ready.sync !== false) this.onDurable(node);
  }

  /** Everything `node` wrote so far is durable: a synced write, or a checkpoint. */
  onDurable(node: number): void {
    const last = this.persistedHardStates.get(node);
    if (last !== undefined) this.syncedHardStates.set(node, last);
  }

  /** `node` applies `entry`; it had applied up to `appliedBefore`. */
  onApplied(node: number, appliedBefore: number, entry: Entry): void {
    if (entry.index !== appliedBefore + 1) {
      this.report('state-machine-safety', `node ${node} applied index ${entry.index} right after ${appliedBefore} (a gap or a repeat)`);
      return;
    }
    const hash = fnv1a(entry.data);
    const seen = this.applied.get(entry.index);
    if (seen === undefined) this.applied.set(entry.index, { node, term: entry.term, hash });
    else if (seen.term !== entry.term || seen.hash !== hash) {
      this.report('state-machine-safety', `node ${node} applied term ${entry.term} at index ${entry.index}, node ${seen.node} applied term ${seen.term} there (data ${entry.data.length ? 'differs' : 'no-op'})`);
      return;
    }
    this.observeCommitted(node, entry.index, entry.term, this.termOf(node));
  }

  /** `node` took a snapshot of its state machine at `index`. */
  onSnapshotCreated(node: number, index: number, data: Uint8Array): void {
    this.observeSnapshot(node, index, fnv1a(data), 'took');
  }

  /** `node` installed a snapshot it received. */
  onSnapshotInstalled(node: number, snapshot: Snapshot): void {
    this.observeSnapshot(node, snapshot.metadata.index, fnv1a(snapshot.data), 'installed');
    this.observeCommitted(node, snapshot.metadata.index, snapshot.metadata.term, this.termOf(node));
  }

  /** The term of `node`'s last persisted hard state (at least the term of any commit it knows); unknown: +∞. */
  private termOf(node: number): number {
    return this.persistedHardStates.get(node)?.term ?? Number.POSITIVE_INFINITY;
  }

  /** `node` recovered its disk, ending with `hardState`. */
  onRecovered(node: number, report: RecoveryReport, hardState: HardState): void {
    if (report.tornAccepted > 0) this.report('torn-write-undetected', `node ${node} recovery accepted ${report.tornAccepted} torn record(s)`);
    const last = this.persistedHardStates.get(node);
    if (last === undefined) return;
    // Term and vote only change in synced writes (Ready.mustSync): they must come back as written.
    const voteKept = this.voteForgottenOnRecovery || hardState.vote === last.vote;
    const synced = this.syncedHardStates.get(node);
    const commitKept = hardState.commit <= last.commit && hardState.commit >= (synced?.commit ?? 0);
    if (hardState.term !== last.term || !commitKept || !voteKept) {
      const syncedText = synced === undefined || synced === last ? '' : ` (last synced: ${JSON.stringify(synced)})`;
      this.report('durability', `node ${node} recovered hard state ${JSON.stringify(hardState)} but had persisted ${JSON.stringify(last)}${syncedText}`);
    }
    // The node runs on from what it recovered.
    this.persistedHardStates.set(node, hardState);
    this.syncedHardStates.set(node, hardState);
  }

  private observeLeader(node: number, term: number, how: string): void {
    const leader = this.leaderByTerm.get(term);
    if (leader === undefined) this.leaderByTerm.set(term, node);
    else if (leader !== node) this.report('election-safety', `two leaders in term ${term}: node ${leader} and node ${node} (${how})`);
  }

  private observePersistedEntry(node: number, entry: Entry, storage: RaftStorage): void {
    if (entry.index < storage.firstIndex()) return; // compacted by a snapshot in the same write
    if (entry.term >= TERM_LIMIT) throw new RangeError(`term ${entry.term} exceeds the checker's limit`);
    const previousTerm = storage.term(entry.index - 1);
    const hash = fnv1a(entry.data);
    const key = entry.index * TERM_LIMIT + entry.term;
    const seen = this.persistedEntries.get(key);
    if (seen === undefined) {
      this.persistedEntries.set(key, { node, hash, previousTerm });
    } else if (seen.hash !== hash || seen.previousTerm !== previousTerm) {
      this.report('log-matching', `index ${entry.index} term ${entry.term}: node ${node} has data ${hash.toString(16)} after term ${previousTerm}, node ${seen.node} has data ${seen.hash.toString(16)} after term ${seen.previousTerm}`);
    }
  }

  private observeHardState(node: number, hardState: HardState, storage: RaftStorage): void {
    const last = this.persistedHardStates.get(node);
    if (last !== undefined && hardState.commit < last.commit) this.report('commit-regression', `node ${node} persisted commit ${hardState.commit} after ${last.commit}`);
    if (last !== undefined && hardState.term < last.term) this.report('commit-regression', `node ${node} persisted term ${hardState.term} after ${last.term}`);
    if (hardState.commit > storage.lastIndex()) this.report('ready-contract', `node ${node} persisted commit ${hardState.commit} past its last persisted index ${storage.lastIndex()}`);
    this.persistedHardStates.set(node, hardState);
    const from = Math.max((last?.commit ?? 0) + 1, storage.firstIndex() - 1, 1);
    for (let index = from; index <= Math.min(hardState.commit, storage.lastIndex()); index++) this.observeCommitted(node, index, storage.term(index), hardState.term);
  }

  private observeCommitted(node: number, index: number, term: number, knownInTerm: number): void {
    if (index === 0) return;
    const seen = this.committed.get(index);
    if (seen === undefined) {
      this.committed.set(index, { node, term, knownInTerm });
      if (index > this.committedMax) this.committedMax = index;
    } else if (seen.term !== term) {
      this.report('state-machine-safety', `index ${index} is committed with term ${term} on node ${node} but with term ${seen.term} on node ${seen.node}`);
    } else if (knownInTerm < seen.knownInTerm) {
      this.committed.set(index, { ...seen, knownInTerm });
    }
  }

  private observeSnapshot(node: number, index: number, hash: number, how: string): void {
    const seen = this.snapshotHashes.get(index);
    if (seen === undefined) this.snapshotHashes.set(index, { node, hash });
    else if (seen.hash !== hash) this.report('state-machine-safety', `node ${node} ${how} a snapshot at index ${index} whose state differs from node ${seen.node}'s`);
  }
}
