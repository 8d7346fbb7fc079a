/**
 * A lean in-process driver for the benchmark: N RawNodes, each with its own MemoryStorage, and a
 * FIFO in-memory network. One `cycle()` is one round of the Ready contract on every node, then
 * delivery of everything sent. Nothing is serialised: messages and entries are passed by
 * reference, which is what "the pure core with an in-memory network" measures.
 */
import { MemoryStorage, RawNode, type Entry, type Message, type Ready } from '../../src/raft/index.ts';
import { assert } from '../../src/util/assert.ts';
import { SeededRandom } from '../../src/util/random.ts';

/** Receives the committed entries a node applies, in log order. */
export type ApplyListener = (peerId: number, entries: readonly Entry[]) => void;

/** How a BenchCluster is built. */
export interface BenchClusterOptions {
  readonly nodeCount: number;
  readonly seed: number;
  /** Snapshot and compact every this many applied entries per node; 0 never. */
  readonly compactEveryEntries: number;
  readonly compactRetainEntries: number;
}

/** One node: the core, its storage, and the trivial state machine it applies to. */
interface BenchPeer {
  readonly id: number;
  readonly node: RawNode;
  readonly storage: MemoryStorage;
  appliedIndex: number;
  /** A running digest of applied entries, to check that every node applied the same log. */
  digest: number;
  lastCompactedAt: number;
}

/** Counters the benchmark reports (they only grow; take differences). */
export interface ClusterCounters {
  cycles: number;
  readies: number;
  messages: number;
  /** Entries persisted by the leader, and the number of its Readies that persisted any. */
  leaderEntriesSaved: number;
  leaderSavingReadies: number;
}

/** N in-process Raft peers following the Ready contract over a FIFO in-memory network. */
export class BenchCluster {
  readonly counters: ClusterCounters = { cycles: 0, readies: 0, messages: 0, leaderEntriesSaved: 0, leaderSavingReadies: 0 };
  leaderId = 0;
  private readonly peers: BenchPeer[] = [];
  private outbox: Message[] = [];
  private readonly options: BenchClusterOptions;
  private readonly onApply: ApplyListener;

  constructor(options: BenchClusterOptions, onApply: ApplyListener) {
    assert(options.nodeCount >= 1, 'BenchCluster: at least one node');
    this.options = options;
    this.onApply = onApply;
    const random = new SeededRandom(options.seed);
    const ids = Array.from({ length: options.nodeCount }, (_, i) => i + 1);
    for (const id of ids) {
      const storage = MemoryStorage.bootstrap(ids);
      const node = new RawNode({ id, storage, random: random.fork(), electionTicks: 10, heartbeatTicks: 1 });
      this.peers.push({ id, node, storage, appliedIndex: 0, digest: 0, lastCompactedAt: 0 });
    }
  }

  /** The leader's RawNode; asserts that there is a leader. */
  leader(): RawNode {
    const peer = this.peers[this.leaderId - 1];
    assert(peer !== undefined, 'BenchCluster: no leader');
    return peer.node;
  }

  /** Makes node 1 campaign and runs cycles until it leads (bounded). */
  elect(): void {
    this.peers[0]!.node.campaign();
    for (let i = 0; i < 100 && this.leaderId === 0; i++) this.cycle();
    assert(this.leaderId === 1, `BenchCluster: node 1 did not become leader (leader ${this.leaderId})`);
  }

  /** One Raft tick on every node (heartbeats, check-quorum). */
  tick(): void {
    for (const peer of this.peers) peer.node.tick();
  }

  /**
   * One round: every node with a Ready persists it, queues its messages, applies its committed
   * entries and advances; then every queued message is delivered, in send order.
   */
  cycle(): void {
    for (const peer of this.peers) {
      if (peer.node.hasReady()) this.handleReady(peer, peer.node.ready());
    }
    this.deliver();
    // Counted at the end, so during a cycle `cycles` is the number of the cycle running.
    this.counters.cycles++;
  }

  /** Runs cycles until no node has a Ready and no message is in flight (bounded). */
  drain(): void {
    for (let i = 0; i < 10_000; i++) {
      if (this.outbox.length === 0 && !this.peers.some((p) => p.node.hasReady())) return;
      this.cycle();
    }
    assert(false, 'BenchCluster: did not drain in 10,000 cycles');
  }

  /** Asserts that every node applied the same entries (after `drain`). */
  checkConverged(): number {
    const first = this.peers[0]!;
    for (const peer of this.peers) {
      assert(peer.appliedIndex === first.appliedIndex, `node ${peer.id} applied ${peer.appliedIndex}, node 1 applied ${first.appliedIndex}`);
      assert(peer.digest === first.digest, `node ${peer.id} applied a different log than node 1`);
    }
    return first.appliedIndex;
  }

  /** The Ready contract, in order: early messages, persist, send, apply, advance. */
  private handleReady(peer: BenchPeer, rd: Ready): void {
    this.counters.readies++;
    // Early messages may go before the write; delivery waits for the end of the cycle anyway.
    for (const m of rd.earlyMessages) this.outbox.push(m);
    if (rd.softState?.role === 'leader') this.leaderId = peer.id;
    else if (rd.softState !== undefined && this.leaderId === peer.id) this.leaderId = 0;
    peer.storage.save({ entries: rd.entries, ...(rd.hardState ? { hardState: rd.hardState } : {}), ...(rd.snapshot ? { snapshot: rd.snapshot } : {}) });
    if (peer.id === this.leaderId && rd.entries.length > 0) {
      this.counters.leaderEntriesSaved += rd.entries.length;
      this.counters.leaderSavingReadies++;
    }
    for (const m of rd.messages) this.outbox.push(m);
    this.apply(peer, rd.committedEntries);
    peer.node.advance();
    this.maybeCompact(peer);
  }

  private apply(peer: BenchPeer, entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    assert(entries[0]!.index === peer.appliedIndex + 1, `node ${peer.id}: applying ${entries[0]!.index} after ${peer.appliedIndex}`);
    let digest = peer.digest;
    for (const e of entries) digest = (Math.imul(digest, 31) + e.index + e.term + e.data.byteLength + (e.data[0] ?? 0)) | 0;
    peer.digest = digest;
    peer.appliedIndex = entries[entries.length - 1]!.index;
    this.onApply(peer.id, entries);
  }

  /** What a long-running node does: snapshot the applied state and drop old log entries. */
  private maybeCompact(peer: BenchPeer): void {
    const every = this.options.compactEveryEntries;
    if (every === 0 || peer.appliedIndex - peer.lastCompactedAt < every) return;
    // The bench's state machine is a digest; the snapshot data is empty (nothing restores it).
    peer.storage.createSnapshot(peer.appliedIndex, peer.node.status().confState, new Uint8Array(0));
    const compactTo = peer.appliedIndex - this.options.compactRetainEntries;
    if (compactTo >= peer.storage.firstIndex()) peer.storage.compact(compactTo);
    peer.lastCompactedAt = peer.appliedIndex;
  }

  private deliver(): void {
    const batch = this.outbox;
    this.outbox = [];
    this.counters.messages += batch.length;
    for (const m of batch) this.peers[m.to - 1]!.node.step(m);
  }
}
