/**
 * The state-machine side of one running node: the register machine, what it has applied, and the
 * client requests this node is waiting to answer (writes it proposed, reads waiting for their read
 * index). It lives as long as one incarnation of the node: a crash loses all of it, and a restart
 * rebuilds it from the snapshot on disk and the committed entries Raft hands out again.
 */
import { assert } from '../src/util/assert.ts';
import { decodeConfChange } from '../src/raft/index.ts';
import type { ConfChange, ConfState, Entry, ReadState, Snapshot } from '../src/raft/types.ts';
import type { SimDisk } from './disk.ts';
import type { NodeEnvironment } from './node.ts';
import { RegisterMachine, decodeCommand } from './register.ts';
import type { ClientRequest } from './workload.ts';

interface PendingWrite {
  readonly request: ClientRequest;
  readonly term: number;
}

interface PendingRead {
  readonly request: ClientRequest;
  readonly sinceMs: number;
  /** -1 until the read index is known; the read is served once applied reaches it. */
  index: number;
}

/** A read that never gets its read index (its leader was deposed) is forgotten after this long. */
const READ_PENDING_MS_MAX = 10_000;

/** One incarnation's state machine and pending client requests. */
export class Replica {
  private machine: RegisterMachine;
  private appliedIndex: number;
  private confState: ConfState;
  private readonly pendingWrites = new Map<number, PendingWrite>();
  private readonly pendingReads = new Map<string, PendingRead>();

  /** Starts from the snapshot on disk (an empty one on first boot). */
  constructor(
    private readonly nodeId: number,
    private readonly env: NodeEnvironment,
    snapshot: Snapshot,
  ) {
    this.machine = RegisterMachine.restore(snapshot.data);
    this.appliedIndex = snapshot.metadata.index;
    this.confState = snapshot.metadata.confState;
  }

  get applied(): number {
    return this.appliedIndex;
  }

  /** The value of `key` in local state, however stale (only the stale-read variant answers with it). */
  readLocal(key: string): string | null {
    return this.machine.read(key);
  }

  /** This node proposed `request` at (index, term); answer it when that index is applied. */
  trackWrite(index: number, term: number, request: ClientRequest): void {
    const displaced = this.pendingWrites.get(index);
    if (displaced !== undefined) this.env.reply(this.nodeId, displaced.request, { kind: 'retry' });
    this.pendingWrites.set(index, { request, term });
  }

  /** This node asked for a read index under `context` to answer `request`. */
  trackRead(context: string, request: ClientRequest): void {
    const oldestMs = this.env.queue.nowMs - READ_PENDING_MS_MAX;
    for (const [old, read] of this.pendingReads) {
      if (read.sinceMs >= oldestMs) break; // the map is in arrival order
      this.pendingReads.delete(old);
    }
    this.pendingReads.set(context, { request, sinceMs: this.env.queue.nowMs, index: -1 });
  }

  /** Replaces the state with a snapshot received from the leader. */
  restoreSnapshot(snapshot: Snapshot): void {
    const { index, term } = snapshot.metadata;
    assert(index > this.appliedIndex, `node ${this.nodeId}: snapshot at ${index} is not past applied ${this.appliedIndex}`);
    this.machine = RegisterMachine.restore(snapshot.data);
    this.appliedIndex = index;
    this.confState = snapshot.metadata.confState;
    this.env.checker.onSnapshotInstalled(this.nodeId, snapshot);
    this.env.counters.snapshotsInstalled++;
    this.env.trace.record(this.env.queue.nowMs, this.nodeId, 'install-snapshot', `index=${index} term=${term}`);
    // Writes covered by the snapshot have an unknown outcome here; the client's retry learns it.
    for (const [pendingIndex, pending] of this.pendingWrites) {
      if (pendingIndex > index) continue;
      this.pendingWrites.delete(pendingIndex);
      this.env.reply(this.nodeId, pending.request, { kind: 'retry' });
    }
  }

  /**
   * Applies one committed entry. A membership change goes to `applyConfChange` (the RawNode's),
   * which returns the new membership.
   */
  applyEntry(entry: Entry, applyConfChange: (change: ConfChange) => ConfState): void {
    this.env.checker.onApplied(this.nodeId, this.appliedIndex, entry);
    this.appliedIndex = entry.index;
    const pending = this.takePendingWrite(entry);
    if (entry.type === 'confChange') {
      const change = decodeConfChange(entry.data);
      this.confState = applyConfChange(change);
      const { voters, learners } = this.confState;
      this.env.trace.record(this.env.queue.nowMs, this.nodeId, 'apply-conf', `${change.type} ${change.nodeId} at ${entry.index} -> voters=${voters.join(',')} learners=${learners.join(',')}`);
      return;
    }
    if (entry.data.length === 0) return; // a leader's no-op
    const output = this.machine.apply(decodeCommand(entry.data));
    // An older duplicate (undefined output) gets no answer: its client has moved on.
    if (pending !== undefined && output !== undefined) this.env.reply(this.nodeId, pending.request, { kind: 'ok', output });
  }

  /** Notes the read indexes that arrived, then answers every read whose index is applied. */
  serveReads(readStates: readonly ReadState[]): void {
    for (const state of readStates) {
      const read = this.pendingReads.get(state.context);
      if (read !== undefined) read.index = state.index;
    }
    for (const [context, read] of this.pendingReads) {
      if (read.index < 0 || read.index > this.appliedIndex) continue;
      this.pendingReads.delete(context);
      this.env.reply(this.nodeId, read.request, { kind: 'ok', output: { kind: 'get', value: this.machine.read(read.request.key) } });
    }
  }

  /**
   * Snapshots the applied state and compacts the log once the threshold is passed. A member added
   * later may then be sent a snapshot whose membership predates it; Raft must install it anyway.
   */
  maybeSnapshot(disk: SimDisk): void {
    const snapshotIndex = disk.storage.snapshot().metadata.index;
    if (this.appliedIndex - snapshotIndex < this.env.options.snapshotThresholdEntries) return;
    const data = this.machine.serialise();
    disk.createSnapshot(this.appliedIndex, this.confState, data);
    disk.compact(this.appliedIndex);
    this.env.checker.onSnapshotCreated(this.nodeId, this.appliedIndex, data);
    this.env.counters.snapshotsTaken++;
    this.env.trace.record(this.env.queue.nowMs, this.nodeId, 'snapshot', `index=${this.appliedIndex}`);
  }

  /**
   * The client write this node proposed at `entry`'s index, if `entry` is it. If another entry
   * took that index (the proposal's term was overtaken), the client is told to retry.
   */
  private takePendingWrite(entry: Entry): PendingWrite | undefined {
    const pending = this.pendingWrites.get(entry.index);
    if (pending === undefined) return undefined;
    this.pendingWrites.delete(entry.index);
    if (pending.term === entry.term) return pending;
    this.env.reply(this.nodeId, pending.request, { kind: 'retry' });
    return undefined;
  }
}
