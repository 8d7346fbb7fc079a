import { RawNode, decodeConfChange, type ConfChange, type ConfState, type Entry, type Message, type RaftConfig, type Ready, type Snapshot, type Status, type WritableRaftStorage } from '../raft/index.ts';
import { KvStore, type ApplyOutcome, type Command, type CommandResult, type KeyValue, type KvStoreOptions, type Request, type WatchListener, validateRequest } from '../kv/index.ts';
import type { PeerTransport } from '../transport/transport.ts';
import { assert } from '../util/assert.ts';
import type { Clock } from '../util/clock.ts';
import { CutoverError, NotLeaderError, ProposalDroppedError } from '../util/errors.ts';
import type { Logger } from '../util/logger.ts';
import type { Random } from '../util/random.ts';
import { encodeRequest, decodeRequest } from './codec.ts';
import { resolveNodeSettings, type NodeSettings } from './config.ts';
import { AppliedWaiters } from './waiters.ts';

/** Prefix of the KV keys where the node records members' addresses (written on conf change). */
export const MEMBER_PREFIX = 'cluster/member/';

export interface Member {
  readonly id: number;
  readonly address: string;
}

/** A member as `memberActivity` reports it. */
export interface MemberActivity extends Member {
  readonly voter: boolean;
  /** Milliseconds since this node last heard from the member; 0 for itself, Infinity if never. */
  readonly silentForMs: number;
}

export interface NodeOptions {
  readonly id: number;
  /** The initial voters and their peer addresses (used when the log holds no membership yet). */
  readonly initialMembers: readonly Member[];
  readonly storage: WritableRaftStorage;
  readonly transport: PeerTransport;
  readonly clock: Clock;
  readonly random: Random;
  readonly logger: Logger;
  readonly settings?: Partial<NodeSettings>;
  readonly kv?: KvStoreOptions;
  /** Forward writes made on a follower to the leader (default true); else they fail NOT_LEADER. */
  readonly forwardProposals?: boolean;
  /** Observation hooks for the simulator's checkers; production leaves them unset. */
  readonly observer?: NodeObserver;
  /** Deliberately broken Raft behaviour, only for proving that the simulator's checkers fire. Never set in production. */
  readonly raftUnsafe?: RaftConfig['unsafe'];
}

/**
 * What the simulator watches a node do (cluster-sim/runtime/). The hooks are called synchronously
 * from the Ready loop; they must not throw and must not change the node (reading `status()` is fine).
 */
export interface NodeObserver {
  /** A Ready was taken from the Raft core, before any of it is persisted, sent or applied. */
  onReady?(ready: Ready): void;
  /** A committed entry (a command, a leader's no-op or a membership change) was applied; `appliedBefore` is the index applied just before it. */
  onApplied?(entry: Entry, appliedBefore: number): void;
  /**
   * The Ready loop threw (a bug, or a storage write that failed): this node can make no more
   * progress and must be discarded. Without this hook the rejection stays unhandled, so the
   * process crashes loudly, which is what production wants.
   */
  onFatal?(error: unknown): void;
}

/** The node is shutting down or stopped. */
export class NodeStoppedError extends CutoverError {
  override readonly name = 'NodeStoppedError';
  constructor() {
    super('NODE_STOPPED', 'the node is stopping; retry on another node');
  }
}

/** A request outlived its deadline; a write may still apply later (retry with the same id). */
export class TimeoutError extends CutoverError {
  override readonly name = 'TimeoutError';
  constructor(what: string, ms: number) {
    super('TIMEOUT', `${what} did not complete within ${ms} ms`);
  }
}

interface PendingProposal {
  readonly term: number;
  readonly resolve: (outcome: ApplyOutcome | ConfState) => void;
  readonly reject: (error: Error) => void;
  readonly cancelTimer: () => void;
}

interface PendingForward {
  readonly resolve: (outcome: ApplyOutcome) => void;
  readonly reject: (error: Error) => void;
  readonly cancelTimer: () => void;
}

interface PendingRead {
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
  readonly cancelTimer: () => void;
}

export interface NodeStats {
  readonly proposals: number;
  readonly proposalsFailed: number;
  readonly leaderChanges: number;
  readonly snapshotsTaken: number;
  readonly appliedIndex: number;
}

/**
 * The node runtime: drives the Raft core with a clock, storage and transport, applies committed
 * entries to the KV store, and turns proposals and reads into promises. One Ready at a time:
 * send the early messages → persist (one atomic synced write), applying the committed entries
 * while it runs → send the rest → advance.
 */
export class CutoverNode {
  readonly id: number;
  readonly kv: KvStore;
  private readonly options: NodeOptions;
  private readonly settings: NodeSettings;
  private readonly log: Logger;
  private raft!: RawNode;
  private confState: ConfState = { voters: [], learners: [] };
  private snapshotIndex = 0;
  private appliedIndex = 0;
  private readonly proposals = new Map<number, PendingProposal>();
  /** Writes this follower forwarded, by origin id (see Request.origin). */
  private readonly forwarded = new Map<string, PendingForward>();
  /**
   * `id:nonce`, the prefix of this run's origin ids; the nonce is drawn at start. A restarted node
   * applies its log again, and those entries carry the origin ids of its earlier runs: with a
   * counter alone (restarting at 0) they would match new forwarded writes and answer each with
   * another write's outcome.
   */
  private originPrefix = '';
  private originCounter = 0;
  private readonly reads = new Map<string, PendingRead>();
  private readonly appliedWaiters = new AppliedWaiters();
  private readonly leaderListeners = new Set<(leader: number, term: number) => void>();
  private leader = 0;
  /** When a message from each peer last arrived (clock ms): the leader's view of who is alive. */
  private readonly lastHeard = new Map<number, number>();
  private readCounter = 0;
  private driving: Promise<void> | undefined;
  private cancelTick: (() => void) | undefined;
  private state: 'new' | 'running' | 'stopping' | 'stopped' = 'new';
  private stats = { proposals: 0, proposalsFailed: 0, leaderChanges: 0, snapshotsTaken: 0 };

  constructor(options: NodeOptions) {
    this.options = options;
    this.id = options.id;
    this.settings = resolveNodeSettings(options.settings);
    this.log = options.logger.child({ component: 'node', nodeId: options.id });
    this.kv = new KvStore(options.kv);
  }

  /** Restores the state machine from the stored snapshot, joins the transport and starts ticking. */
  async start(): Promise<void> {
    assert(this.state === 'new', 'start() called twice');
    const { storage } = this.options;
    const snapshot = storage.snapshot();
    if (snapshot.metadata.index > 0) this.restoreSnapshot(snapshot);
    else this.confState = storage.initialState().confState;
    const { random } = this.options;
    this.originPrefix = `${this.id}:${random.nextUint32().toString(36)}${random.nextUint32().toString(36)}`;
    this.raft = new RawNode({
      id: this.id,
      storage,
      random: this.options.random,
      electionTicks: this.settings.electionTicks,
      heartbeatTicks: this.settings.heartbeatTicks,
      maxSizePerMsg: this.settings.maxSizePerMsg,
      maxInflightMsgs: this.settings.maxInflightMsgs,
      maxUncommittedEntriesSize: this.settings.maxUncommittedEntriesSize,
      ...(this.options.raftUnsafe === undefined ? {} : { unsafe: this.options.raftUnsafe }),
    });
    for (const m of this.options.initialMembers) if (m.id !== this.id) this.options.transport.addPeer(m.id, m.address);
    this.syncPeersFromKv();
    this.options.transport.setHandler({
      onMessage: (m) => this.onMessage(m),
      onUnreachable: (peer) => this.raft.reportUnreachable(peer),
      onSnapshotStatus: (peer, ok) => this.raft.reportSnapshot(peer, ok),
    });
    await this.options.transport.start();
    this.state = 'running';
    this.scheduleTick();
    this.kick();
    this.log.info({ applied: this.appliedIndex, snapshotIndex: this.snapshotIndex, voters: this.confState.voters }, 'node started');
  }

  /** Stops accepting requests, finishes the current Ready, and stops the transport. */
  async stop(): Promise<void> {
    if (this.state !== 'running') return;
    this.state = 'stopping';
    this.cancelTick?.();
    await this.driving;
    const error = new NodeStoppedError();
    for (const pending of [...this.proposals.values(), ...this.reads.values(), ...this.forwarded.values()]) {
      pending.cancelTimer();
      pending.reject(error);
    }
    this.proposals.clear();
    this.reads.clear();
    this.forwarded.clear();
    await this.options.transport.stop();
    this.state = 'stopped';
    this.log.info({}, 'node stopped');
  }

  // ---- requests ---------------------------------------------------------------------------

  /**
   * Proposes a write and resolves with its result once applied here. On a follower it is
   * forwarded to the leader over the Raft transport (unless `forwardProposals` is false, when it
   * fails with NOT_LEADER carrying the leader's id and address) and settles when this node
   * applies the entry. Other failures: PROPOSAL_DROPPED, TIMEOUT, NODE_STOPPED, or the command's
   * own code.
   */
  async propose(command: Command, identity: { clientId: number; sequence: number } = { clientId: 0, sequence: 0 }): Promise<CommandResult> {
    const request: Request = { ...identity, command };
    validateRequest(request);
    this.checkRunning();
    const forward = this.options.forwardProposals !== false && !this.raft.isLeader();
    const outcome = (forward ? await this.proposeForwarded(request) : await this.proposeEntry(() => this.raft.propose(encodeRequest(request)))) as ApplyOutcome;
    if (!outcome.ok) throw new CutoverError(outcome.code, outcome.message);
    return outcome.result;
  }

  /** A follower's write: tagged with an origin id, sent to the leader, settled when applied here. */
  private proposeForwarded(request: Request): Promise<ApplyOutcome> {
    this.checkCapacity();
    const origin = `${this.originPrefix}:${++this.originCounter}`;
    try {
      // If this node became leader meanwhile, the entry is appended here: it is still found by origin.
      this.raft.proposeOrForward(encodeRequest({ ...request, origin }));
    } catch (error) {
      this.stats.proposalsFailed++;
      throw this.withLeaderAddress(error);
    }
    this.stats.proposals++;
    this.kick();
    return new Promise((resolve, reject) => {
      const cancelTimer = this.options.clock.schedule(this.settings.requestTimeoutMs, () => {
        this.forwarded.delete(origin);
        this.stats.proposalsFailed++;
        reject(new TimeoutError('forwarded proposal', this.settings.requestTimeoutMs));
      });
      this.forwarded.set(origin, { resolve, reject, cancelTimer });
    });
  }

  private checkCapacity(): void {
    if (this.reads.size + this.proposals.size + this.forwarded.size >= this.settings.pendingRequestsMax) {
      throw new ProposalDroppedError(`${this.settings.pendingRequestsMax} requests already pending on this node`);
    }
  }

  /** Reads one key; linearizable (ReadIndex) unless `serializable` (local, possibly stale). */
  async get(key: string, options: { serializable?: boolean } = {}): Promise<{ kv: KeyValue | undefined; revision: number }> {
    if (options.serializable !== true) await this.linearizableBarrier();
    return { kv: this.kv.get(key), revision: this.kv.revision() };
  }

  /** Reads keys by prefix in key order, at most `limit` (0 = all); linearizable by default. */
  async range(prefix: string, limit: number, options: { serializable?: boolean } = {}): Promise<{ kvs: KeyValue[]; more: boolean; revision: number }> {
    if (options.serializable !== true) await this.linearizableBarrier();
    return { ...this.kv.range(prefix, limit), revision: this.kv.revision() };
  }

  /** Watches a prefix on this node's applied state (see KvStore.watch). */
  watch(prefix: string, fromRevision: number, listener: WatchListener): () => void {
    return this.kv.watch(prefix, fromRevision, listener);
  }

  /** Resolves once this node has applied everything committed before the call (ReadIndex). */
  async linearizableBarrier(): Promise<void> {
    this.checkRunning();
    this.checkCapacity();
    const context = `${this.id}:${++this.readCounter}`;
    await new Promise<void>((resolve, reject) => {
      const cancelTimer = this.options.clock.schedule(this.settings.requestTimeoutMs, () => {
        this.reads.delete(context);
        reject(new TimeoutError('linearizable read', this.settings.requestTimeoutMs));
      });
      this.reads.set(context, { resolve, reject, cancelTimer });
      try {
        this.raft.readIndex(context);
      } catch (error) {
        cancelTimer();
        this.reads.delete(context);
        reject(this.withLeaderAddress(error));
        return;
      }
      this.kick();
    });
  }

  // ---- membership -------------------------------------------------------------------------

  /** Adds a learner (it receives the log but does not vote) at `address`. */
  addLearner(id: number, address: string): Promise<ConfState> {
    return this.changeMembership({ type: 'addLearner', nodeId: id, context: address });
  }

  /** Promotes a caught-up learner to voter (PROPOSAL_DROPPED while it lags). */
  promote(id: number): Promise<ConfState> {
    return this.changeMembership({ type: 'addNode', nodeId: id });
  }

  removeMember(id: number): Promise<ConfState> {
    return this.changeMembership({ type: 'removeNode', nodeId: id });
  }

  private async changeMembership(change: ConfChange): Promise<ConfState> {
    this.checkRunning();
    return (await this.proposeEntry(() => this.raft.proposeConfChange(change))) as ConfState;
  }

  /** Asks the leader to hand leadership to `target`. Resolves when the request was passed on. */
  transferLeader(target: number): void {
    this.checkRunning();
    try {
      this.raft.transferLeader(target);
    } catch (error) {
      throw this.withLeaderAddress(error);
    }
    this.kick();
  }

  /** Members with their addresses: the voters and learners of the current configuration. */
  members(): { voters: Member[]; learners: Member[] } {
    const address = (id: number): string => (id === this.id ? this.selfAddress() : this.options.transport.address(id)) ?? '';
    return {
      voters: this.confState.voters.map((id) => ({ id, address: address(id) })),
      learners: this.confState.learners.map((id) => ({ id, address: address(id) })),
    };
  }

  /**
   * Members with their addresses and how long this node has heard nothing from each (0 for
   * itself). On the leader, followers answer every heartbeat, so a long silence means a dead or
   * cut-off node; on a follower only the leader talks to it, so the others look silent.
   */
  memberActivity(): MemberActivity[] {
    const now = this.options.clock.nowMs();
    const { voters, learners } = this.members();
    const activity = (m: Member, voter: boolean): MemberActivity => ({ ...m, voter, silentForMs: m.id === this.id ? 0 : now - (this.lastHeard.get(m.id) ?? -Infinity) });
    return [...voters.map((m) => activity(m, true)), ...learners.map((m) => activity(m, false))];
  }

  private selfAddress(): string | undefined {
    const fromKv = this.kv.get(`${MEMBER_PREFIX}${this.id}`);
    if (fromKv !== undefined) return (JSON.parse(fromKv.value) as Member).address;
    return this.options.initialMembers.find((m) => m.id === this.id)?.address;
  }

  /** Whether this node is the Raft leader right now. */
  isLeader(): boolean {
    return this.raft.isLeader();
  }

  status(): Status & { readonly appliedIndex: number; readonly snapshotIndex: number } {
    return { ...this.raft.status(), appliedIndex: this.appliedIndex, snapshotIndex: this.snapshotIndex };
  }

  nodeStats(): NodeStats {
    return { ...this.stats, appliedIndex: this.appliedIndex };
  }

  /** The leader known to this node (0 when none) and its address. */
  leaderInfo(): { id: number; address: string | undefined } {
    return { id: this.leader, address: this.leader === this.id ? this.selfAddress() : this.options.transport.address(this.leader) };
  }

  /** Called with (leader, term) whenever the known leader changes. Returns an unsubscribe. */
  onLeaderChange(listener: (leader: number, term: number) => void): () => void {
    this.leaderListeners.add(listener);
    return () => this.leaderListeners.delete(listener);
  }

  private checkRunning(): void {
    if (this.state !== 'running') throw new NodeStoppedError();
  }

  private withLeaderAddress(error: unknown): unknown {
    if (!(error instanceof NotLeaderError)) return error;
    const address = this.options.transport.address(error.leaderId);
    return new NotLeaderError(error.leaderId, error.leaderId === 0 ? undefined : `not the leader; leader is ${error.leaderId}${address ? ` at ${address}` : ''}`, address);
  }

  private proposeEntry(propose: () => { index: number; term: number }): Promise<ApplyOutcome | ConfState> {
    this.checkCapacity();
    this.stats.proposals++;
    let placed: { index: number; term: number };
    try {
      placed = propose();
    } catch (error) {
      this.stats.proposalsFailed++;
      throw this.withLeaderAddress(error);
    }
    this.kick();
    return new Promise((resolve, reject) => {
      const cancelTimer = this.options.clock.schedule(this.settings.requestTimeoutMs, () => {
        this.proposals.delete(placed.index);
        this.stats.proposalsFailed++;
        reject(new TimeoutError(`proposal at index ${placed.index}`, this.settings.requestTimeoutMs));
      });
      this.proposals.set(placed.index, { term: placed.term, resolve, reject, cancelTimer });
    });
  }

  // ---- the Ready loop -----------------------------------------------------------------------

  private scheduleTick(): void {
    this.cancelTick = this.options.clock.schedule(this.settings.tickMs, () => {
      if (this.state !== 'running') return;
      this.raft.tick();
      this.kick();
      this.scheduleTick();
    });
  }

  private onMessage(message: Message): void {
    if (this.state !== 'running') return;
    this.lastHeard.set(message.from, this.options.clock.nowMs());
    this.raft.step(message);
    this.kick();
  }

  /** Starts the Ready loop unless it is already running (it re-checks before it exits). */
  private kick(): void {
    if (this.driving !== undefined || this.state === 'stopped') return;
    const onFatal = this.options.observer?.onFatal;
    const driving = onFatal === undefined ? this.drive() : this.drive().catch(onFatal);
    this.driving = driving.finally(() => {
      this.driving = undefined;
    });
  }

  private async drive(): Promise<void> {
    // Let the caller finish its synchronous work first, so one Ready batches it all.
    await Promise.resolve();
    while (this.raft.hasReady()) {
      const rd = this.raft.ready();
      this.options.observer?.onReady?.(rd);
      await this.handleReady(rd);
      this.raft.advance();
    }
  }

  /**
   * The Ready contract (src/raft/types.ts): early messages go at once (the leader's appends, so
   * the followers write while the leader does: its own log counts toward a commit only after
   * advance()), the write starts, committed entries (durable here already) are applied and reads
   * whose index they reach are answered while it runs, and once it is done the messages that
   * promise what it made durable go.
   */
  private async handleReady(rd: Ready): Promise<void> {
    if (rd.softState !== undefined && rd.softState.leader !== this.leader) this.leaderChanged(rd.softState.leader);
    if (rd.earlyMessages.length > 0) this.options.transport.send(rd.earlyMessages);
    let saving: Promise<void> | undefined;
    if (rd.entries.length > 0 || rd.hardState !== undefined || rd.snapshot !== undefined) {
      saving = Promise.resolve(this.options.storage.save({ entries: rd.entries, sync: rd.mustSync, ...(rd.hardState ? { hardState: rd.hardState } : {}), ...(rd.snapshot ? { snapshot: rd.snapshot } : {}) }));
      // Awaited below; if applying throws first, the write's own failure is not reported twice.
      saving.catch(() => undefined);
      // Let the storage hand the write to the disk before the apply takes the thread.
      await Promise.resolve();
    }
    for (const entry of rd.committedEntries) this.applyEntry(entry);
    for (const rs of rd.readStates) this.readIndexReady(rs.context, rs.index);
    this.appliedWaiters.appliedTo(this.appliedIndex);
    await saving;
    // Only now may these go: they promise what was just made durable.
    if (rd.messages.length > 0) this.options.transport.send(rd.messages);
    if (rd.snapshot !== undefined) {
      this.restoreSnapshot(rd.snapshot);
      this.appliedWaiters.appliedTo(this.appliedIndex);
    }
    if (this.appliedIndex - this.snapshotIndex >= this.settings.snapshotEntries) await this.takeSnapshot();
  }

  private leaderChanged(leader: number): void {
    this.leader = leader;
    // A new leader gives every member a full timeout before it counts one as silent.
    if (leader === this.id) for (const id of [...this.confState.voters, ...this.confState.learners]) this.lastHeard.set(id, this.options.clock.nowMs());
    this.stats.leaderChanges++;
    const term = this.raft.status().term;
    this.log.info({ leader, term }, 'leader changed');
    for (const listener of this.leaderListeners) listener(leader, term);
  }

  private applyEntry(entry: Entry): void {
    let result: ApplyOutcome | ConfState | undefined;
    if (entry.type === 'confChange') result = this.applyConfChange(decodeConfChange(entry.data));
    else if (entry.data.byteLength > 0) result = this.applyRequest(decodeRequest(entry.data));
    const appliedBefore = this.appliedIndex;
    this.appliedIndex = entry.index;
    this.options.observer?.onApplied?.(entry, appliedBefore);
    const pending = this.proposals.get(entry.index);
    if (pending === undefined) return;
    this.proposals.delete(entry.index);
    pending.cancelTimer();
    // Another leader's entry took our index: ours was never committed.
    if (entry.term !== pending.term || result === undefined) pending.reject(new ProposalDroppedError('the entry was replaced by a new leader; retry'));
    else pending.resolve(result);
  }

  private applyRequest(request: Request): ApplyOutcome {
    const outcome = this.kv.apply(request);
    const waiting = request.origin === undefined ? undefined : this.forwarded.get(request.origin);
    if (waiting !== undefined) {
      this.forwarded.delete(request.origin!);
      waiting.cancelTimer();
      waiting.resolve(outcome);
    }
    return outcome;
  }

  private applyConfChange(change: ConfChange): ConfState {
    this.confState = this.raft.applyConfChange(change);
    const key = `${MEMBER_PREFIX}${change.nodeId}`;
    if (change.type === 'removeNode') {
      // The member leaves the KV view, but the transport keeps its address: a removed node can
      // still talk to us — a removed leader leads until it steps down, and a node removed then
      // added back may lead again in a configuration we have not applied yet — and only our
      // replies let it bring us up to date (cluster-sim/updates seed 148 on 5 nodes: a follower
      // that dropped the address pre-voted for ever). A peer stream is idle until it has a
      // message to send, so a kept address costs nothing while the node stays away.
      this.kv.apply({ clientId: 0, sequence: 0, command: { type: 'delete', key } });
    } else if (change.context !== undefined) {
      this.kv.apply({ clientId: 0, sequence: 0, command: { type: 'put', key, value: JSON.stringify({ id: change.nodeId, address: change.context }) } });
    }
    this.syncPeersFromKv();
    this.log.info({ change, confState: this.confState }, 'membership changed');
    return this.confState;
  }

  /** Points the transport at every member address recorded in the KV store. */
  private syncPeersFromKv(): void {
    for (const kv of this.kv.range(MEMBER_PREFIX, 0).kvs) {
      const member = JSON.parse(kv.value) as Member;
      if (member.id !== this.id && this.options.transport.address(member.id) !== member.address) this.options.transport.addPeer(member.id, member.address);
    }
  }

  private readIndexReady(context: string, index: number): void {
    const read = this.reads.get(context);
    if (read === undefined) return;
    this.appliedWaiters.wait(index, this.appliedIndex, () => {
      if (this.reads.delete(context)) {
        read.cancelTimer();
        read.resolve();
      }
    });
  }

  private restoreSnapshot(snapshot: Snapshot): void {
    this.kv.restore(snapshot.data);
    this.confState = snapshot.metadata.confState;
    this.snapshotIndex = snapshot.metadata.index;
    this.appliedIndex = snapshot.metadata.index;
    // Proposals the snapshot covers: we cannot tell whether ours were the entries committed.
    for (const [index, p] of this.proposals) {
      if (index > snapshot.metadata.index) continue;
      this.proposals.delete(index);
      p.cancelTimer();
      p.reject(new CutoverError('OUTCOME_UNKNOWN', `the entry at index ${index} was covered by a snapshot; read to find out whether it applied`));
    }
    this.syncPeersFromKv();
  }

  private async takeSnapshot(): Promise<void> {
    const { storage } = this.options;
    const index = this.appliedIndex;
    await storage.createSnapshot(index, this.confState, this.kv.snapshot());
    this.snapshotIndex = index;
    const compactTo = index - this.settings.compactionMarginEntries;
    if (compactTo >= storage.firstIndex()) await storage.compact(compactTo);
    this.stats.snapshotsTaken++;
    this.log.info({ index, compactedTo: compactTo }, 'snapshot taken');
  }
}
