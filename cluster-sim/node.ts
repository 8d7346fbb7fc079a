/**
 * The simulator's driver of one Raft peer: a RawNode, its simulated disk and its register state
 * machine, run on simulated time. The driver follows the Ready contract (types.ts) to the letter,
 * with the disk write in step 1 taking simulated time: the Ready's early messages go and its
 * committed entries apply when the write begins; while it is in flight the node keeps ticking
 * and stepping messages, but it sends nothing else of that Ready and asks for no new one.
 */
import { assert } from '../src/util/assert.ts';
import type { SeededRandom } from '../src/util/random.ts';
import { RawNode, type RaftConfig } from '../src/raft/index.ts';
import type { ConfChange, Message, Ready, Status } from '../src/raft/types.ts';
import type { InvariantChecker } from './checkers/invariants.ts';
import { SimDisk } from './disk.ts';
import type { EventQueue } from './events.ts';
import type { SimOptions } from './options.ts';
import { encodeCommand } from './register.ts';
import { Replica } from './replica.ts';
import type { Trace } from './trace.ts';
import type { ClientReply, ClientRequest } from './workload.ts';

/** What a node needs from the simulation around it. */
export interface NodeEnvironment {
  readonly queue: EventQueue;
  readonly trace: Trace;
  readonly options: SimOptions;
  readonly checker: InvariantChecker;
  /** Counters the nodes add to, for the run summary. */
  readonly counters: { snapshotsTaken: number; snapshotsInstalled: number };
  sendRaft(message: Message): void;
  reply(nodeId: number, request: ClientRequest, reply: ClientReply): void;
}

/** One simulated node. Ids are 1..nodes. */
export class SimNode {
  readonly disk: SimDisk;
  private raw: RawNode | undefined;
  /** Bumped at each crash: events scheduled by an earlier incarnation find it changed and do nothing. */
  private incarnation = 0;
  /** The state machine and pending client requests of the running incarnation. */
  private replica: Replica | undefined;
  /** The Ready whose disk write is in flight. */
  private writing: Ready | undefined;
  private readSequence = 0;
  private readonly tickIntervalMs: number;

  constructor(
    readonly id: number,
    private readonly env: NodeEnvironment,
    private readonly random: SeededRandom,
  ) {
    const voters = Array.from({ length: env.options.nodes }, (_, i) => i + 1);
    this.disk = new SimDisk(voters);
    const drift = env.options.tickDriftFraction;
    this.tickIntervalMs = env.options.tickMs * (1 + (random.nextFloat() * 2 - 1) * drift);
  }

  get up(): boolean {
    return this.raw !== undefined;
  }

  /** Starts the node on what its disk holds (first boot, or after `recover`). */
  start(): void {
    assert(this.raw === undefined, `node ${this.id}: start while up`);
    const storage = this.disk.storage;
    const replica = new Replica(this.id, this.env, storage.snapshot());
    this.replica = replica;
    this.raw = new RawNode(this.raftConfig(replica.applied));
    this.incarnation++;
    this.env.trace.record(this.env.queue.nowMs, this.id, 'start', `incarnation=${this.incarnation} applied=${replica.applied} last=${storage.lastIndex()}`);
    this.scheduleTick(this.incarnation, this.random.nextFloat() * this.tickIntervalMs);
  }

  private raftConfig(applied: number): RaftConfig {
    const options = this.env.options;
    return {
      id: this.id,
      storage: this.disk.storage,
      random: this.random.fork(),
      electionTicks: options.electionTicks,
      heartbeatTicks: options.heartbeatTicks,
      preVote: options.preVote,
      checkQuorum: options.checkQuorum,
      maxSizePerMsg: options.maxSizePerMsgBytes,
      maxInflightMsgs: options.maxInflightMsgs,
      maxUncommittedEntriesSize: options.maxUncommittedEntriesBytes,
      applied,
      ...(options.unsafe === 'commit-previous-term' ? { unsafe: { commitPreviousTermByCount: true } } : {}),
    };
  }

  /** Crashes the node: memory is lost, and so is (or, with `tear`, torn is) the write in flight. */
  crash(tear: boolean): void {
    assert(this.raw !== undefined, `node ${this.id}: crash while down`);
    const { torn } = this.disk.crash(tear, this.random);
    this.raw = undefined;
    this.replica = undefined;
    this.writing = undefined;
    this.incarnation++;
    this.env.trace.record(this.env.queue.nowMs, this.id, 'crash', torn ? 'last write torn' : undefined);
  }

  /** Recovers the disk (verifying every record) and starts again. */
  restart(): void {
    assert(this.raw === undefined, `node ${this.id}: restart while up`);
    const report = this.disk.recover(this.env.options.unsafe === 'forget-vote');
    this.env.checker.onRecovered(this.id, report, this.disk.storage.initialState().hardState);
    if (report.recordsDiscarded > 0) this.env.trace.record(this.env.queue.nowMs, this.id, 'recover', `discarded ${report.recordsDiscarded} bad record(s)`);
    this.start();
  }

  /** A message from the network. A crashed node drops it. Returns whether it was taken. */
  receive(message: Message): boolean {
    const raw = this.raw;
    if (raw === undefined) return false;
    this.env.trace.record(this.env.queue.nowMs, this.id, 'recv', message);
    raw.step(message);
    this.pump();
    return true;
  }

  /** The transport's report on a snapshot this node sent (delivered or not). */
  reportSnapshot(to: number, delivered: boolean): void {
    if (this.raw === undefined) return;
    this.raw.reportSnapshot(to, delivered);
    if (!delivered) this.raw.reportUnreachable(to);
    this.pump();
  }

  /** The transport could not reach `to` (the leader stops pipelining to it and probes). */
  reportUnreachable(to: number): void {
    this.raw?.reportUnreachable(to);
  }

  /** Status of the Raft peer, or undefined while crashed. */
  status(): Status | undefined {
    return this.raw?.status();
  }

  /** Asks this node (if leader, else its leader) to hand leadership to `target`. */
  transferLeader(target: number): void {
    const raw = this.raw;
    if (raw === undefined) return;
    raw.transferLeader(target);
    this.pump();
  }

  /** Proposes a membership change; throws what `RawNode.proposeConfChange` throws. */
  proposeConfChange(change: ConfChange): void {
    const raw = this.raw;
    if (raw === undefined) return;
    raw.proposeConfChange(change);
    this.pump();
  }

  // ---- clients ----------------------------------------------------------------------------

  /** A client request arrived. Writes go through the log; reads through ReadIndex. */
  handleClientRequest(request: ClientRequest): void {
    const raw = this.raw;
    const replica = this.replica;
    if (raw === undefined || replica === undefined) return;
    if (request.input.kind === 'get') {
      this.handleGet(raw, replica, request);
    } else {
      const command = encodeCommand({ clientId: request.clientId, sequence: request.sequence, key: request.key, input: request.input });
      try {
        const { index, term } = raw.propose(command);
        replica.trackWrite(index, term, request);
      } catch (error) {
        this.env.reply(this.id, request, replyForError(error));
      }
    }
    this.pump();
  }

  private handleGet(raw: RawNode, replica: Replica, request: ClientRequest): void {
    if (this.env.options.unsafe === 'stale-read') {
      // The broken variant: serve the read from local state, whatever this node's role.
      this.env.reply(this.id, request, { kind: 'ok', output: { kind: 'get', value: replica.readLocal(request.key) } });
      return;
    }
    const context = `${this.id}.${this.incarnation}.${++this.readSequence}`;
    try {
      raw.readIndex(context);
      replica.trackRead(context, request);
    } catch (error) {
      this.env.reply(this.id, request, replyForError(error));
    }
  }

  // ---- the Ready loop ---------------------------------------------------------------------

  private scheduleTick(incarnation: number, delayMs: number): void {
    this.env.queue.after(delayMs, () => {
      if (this.incarnation !== incarnation || this.raw === undefined) return;
      this.raw.tick();
      this.pump();
      this.scheduleTick(incarnation, this.tickIntervalMs);
    });
  }

  /** Handles Readys until there are none, or until one needs a disk write (which takes time). */
  private pump(): void {
    const raw = this.raw;
    if (raw === undefined || this.writing !== undefined) return;
    for (let rounds = 0; raw.hasReady(); rounds++) {
      assert(rounds < 10_000, `node ${this.id}: Ready loop does not settle`);
      const ready = raw.ready();
      if (ready.softState?.role === 'leader') this.env.checker.onBecameLeader(this.id, raw.status().term, this.disk.storage, ready.entries);
      // Step 0: these may go before the write (a crash during it loses the write, not them).
      for (const message of ready.earlyMessages) this.env.sendRaft(message);
      if (ready.hardState === undefined && ready.entries.length === 0 && ready.snapshot === undefined) {
        this.applyCommitted(raw, ready);
        this.afterPersist(raw, ready);
        continue;
      }
      this.writing = ready;
      this.disk.beginWrite({ entries: ready.entries, ...(ready.hardState ? { hardState: ready.hardState } : {}), ...(ready.snapshot ? { snapshot: ready.snapshot } : {}) });
      // Also step 0: committed entries are durable here already, so they apply while the write runs.
      this.applyCommitted(raw, ready);
      const incarnation = this.incarnation;
      const { diskWriteMinMs, diskWriteMaxMs } = this.env.options;
      this.env.queue.after(diskWriteMinMs + this.random.nextFloat() * (diskWriteMaxMs - diskWriteMinMs), () => {
        if (this.incarnation === incarnation) this.finishWrite();
      });
      return;
    }
  }

  private finishWrite(): void {
    const ready = this.writing;
    const raw = this.raw;
    assert(ready !== undefined && raw !== undefined, `node ${this.id}: write completed with nothing in flight`);
    this.writing = undefined;
    this.disk.completeWrite();
    this.env.checker.onPersisted(this.id, ready, this.disk.storage);
    this.afterPersist(raw, ready);
    this.pump();
  }

  /** Applies the Ready's committed entries (step 0 or 3 of the Ready contract; a Ready with a snapshot has none). */
  private applyCommitted(raw: RawNode, ready: Ready): void {
    const replica = this.replica;
    assert(replica !== undefined, `node ${this.id}: Ready without a replica`);
    for (const entry of ready.committedEntries) replica.applyEntry(entry, (change) => raw.applyConfChange(change));
  }

  /** Steps 2-4 of the Ready contract: send what had to wait for the write, install a snapshot, advance. */
  private afterPersist(raw: RawNode, ready: Ready): void {
    const replica = this.replica;
    assert(replica !== undefined, `node ${this.id}: Ready without a replica`);
    for (const message of ready.messages) this.env.sendRaft(message);
    if (ready.snapshot !== undefined) replica.restoreSnapshot(ready.snapshot);
    replica.serveReads(ready.readStates);
    replica.maybeSnapshot(this.disk);
    raw.advance();
  }
}

/** The reply for an error thrown by propose/readIndex: only operational errors are expected. */
function replyForError(error: unknown): ClientReply {
  const code = (error as { code?: unknown }).code;
  if (code === 'NOT_LEADER') return { kind: 'notLeader', leaderId: (error as { leaderId: number }).leaderId };
  if (code === 'PROPOSAL_DROPPED') return { kind: 'retry' };
  throw error;
}
