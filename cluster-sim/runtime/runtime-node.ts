/**
 * One simulated node of the node target: the production node runtime (`CutoverNode` and its KV
 * store) on a simulated clock, transport and disk. It lives through incarnations. A crash drops
 * the running `CutoverNode` without calling `stop()`: its clock, transport and storage are killed,
 * so its timers never fire, it neither sends nor receives, its disk write in flight is lost or
 * torn, and its pending promises are abandoned. A restart recovers the disk (verifying every
 * record) and starts a new `CutoverNode` on it. A graceful stop calls `stop()` and waits for it.
 */
import { CutoverNode, type Member, type NodeObserver } from '../../src/node/node.ts';
import type { NodeSettings } from '../../src/node/config.ts';
import { decodeConfChange, type ConfChange, type Status } from '../../src/raft/index.ts';
import { assert } from '../../src/util/assert.ts';
import type { Clock } from '../../src/util/clock.ts';
import { silentLogger } from '../../src/util/logger.ts';
import type { SeededRandom } from '../../src/util/random.ts';
import type { KvInput, KvOutput } from '../checkers/kv-model.ts';
import { SimDisk } from '../disk.ts';
import type { FaultableNode } from '../faults.ts';
import type { SimOptions } from '../options.ts';
import type { ClientReply, ClientRequest } from '../workload.ts';
import { replyForError, serveKv } from './kv-workload.ts';
import { SimClock } from './sim-clock.ts';
import { SimStorage, type StorageEnvironment } from './sim-storage.ts';
import { simAddress, type SimTransport, type TransportHub } from './sim-transport.ts';

/** What a node needs from the simulation around it. */
export interface RuntimeEnvironment extends StorageEnvironment {
  readonly hub: TransportHub;
  reply(nodeId: number, request: ClientRequest<KvInput>, reply: ClientReply<KvOutput>): void;
  /** Something that only a bug can cause happened: the run reports it and stops. */
  fail(message: string): void;
  /**
   * Optional: runs services on each incarnation's node and clock (a scenario's controllers). The
   * returned function stops them; it is called when a graceful stop begins (`'stop'`) and when the
   * incarnation dies (`'crash'`), before its clock is killed. A promise returned on `'stop'` holds
   * the node's own `stop()` until it settles, as in production, where the services stop before
   * the node (cli/node-command.ts).
   */
  attach?(nodeId: number, node: CutoverNode, clock: Clock): Detach;
}

/** Stops a scenario's services on an incarnation (see `RuntimeEnvironment.attach`). */
export type Detach = (reason: 'stop' | 'crash') => void | Promise<void>;

/** One running `CutoverNode` and the simulated parts it was built on. */
interface Incarnation {
  readonly number: number;
  readonly node: CutoverNode;
  readonly clock: SimClock;
  readonly transport: SimTransport;
  readonly storage: SimStorage;
  readonly detach: Detach | undefined;
}

/** A simulated node running the node runtime. Ids are 1..nodes. */
export class RuntimeNode implements FaultableNode {
  readonly disk: SimDisk;
  private incarnation: Incarnation | undefined;
  private incarnations = 0;
  private phase: 'down' | 'up' | 'stopping' = 'down';
  /** Simulated ms per local ms: this node's clock drift. */
  private readonly clockRate: number;
  private readonly members: readonly Member[];

  constructor(
    readonly id: number,
    private readonly env: RuntimeEnvironment,
    private readonly random: SeededRandom,
  ) {
    const ids = Array.from({ length: env.options.nodes }, (_, i) => i + 1);
    this.disk = new SimDisk(ids);
    this.members = ids.map((member) => ({ id: member, address: simAddress(member) }));
    this.clockRate = 1 + (random.nextFloat() * 2 - 1) * env.options.tickDriftFraction;
  }

  /** Running or stopping (a stopping node still finishes its work). */
  get up(): boolean {
    return this.phase !== 'down';
  }

  /** In a graceful stop that has not finished yet. */
  get stopping(): boolean {
    return this.phase === 'stopping';
  }

  /** Starts a new `CutoverNode` on what the disk holds (first boot, or after `recover`). */
  start(): void {
    assert(this.phase === 'down', `node ${this.id}: start while ${this.phase}`);
    const number = ++this.incarnations;
    const onZombie = (what: string): void => this.env.fail(`node ${this.id} incarnation ${number} ${what} after it died`);
    const clock = new SimClock(this.env.queue, this.clockRate, onZombie);
    const transport = this.env.hub.open(this.id, onZombie);
    const storage = new SimStorage(this.id, this.disk, this.env, this.random.fork(), onZombie);
    const node: CutoverNode = new CutoverNode({
      id: this.id,
      initialMembers: this.members,
      storage,
      transport,
      clock,
      random: this.random.fork(),
      logger: silentLogger,
      settings: nodeSettings(this.env.options),
      observer: this.observer((): CutoverNode => node),
      ...(this.env.options.unsafe === 'commit-previous-term' ? { raftUnsafe: { commitPreviousTermByCount: true } } : {}),
    });
    this.incarnation = { number, node, clock, transport, storage, detach: this.env.attach?.(this.id, node, clock) };
    this.phase = 'up';
    this.env.trace.record(this.env.queue.nowMs, this.id, 'start', `incarnation=${number} snapshot=${storage.snapshot().metadata.index} last=${storage.lastIndex()}`);
    node.start().catch((error: unknown) => this.env.fail(`node ${this.id}: start failed: ${describeError(error)}`));
  }

  /** Drops the running node: no `stop()`, nothing settles, and the write in flight is lost or torn. */
  crash(tear: boolean): void {
    const incarnation = this.incarnation;
    assert(incarnation !== undefined, `node ${this.id}: crash while down`);
    this.kill(incarnation, 'crash');
    const { torn, unsyncedLost } = this.disk.crash(tear, this.random);
    const what = [torn ? 'last write torn' : '', unsyncedLost > 0 ? `lost ${unsyncedLost} write(s) made without fsync` : ''].filter((text) => text !== '');
    this.env.trace.record(this.env.queue.nowMs, this.id, 'crash', what.length === 0 ? undefined : what.join(', '));
  }

  /** Recovers the disk (verifying every record) and starts a new incarnation. */
  restart(): void {
    assert(this.phase === 'down', `node ${this.id}: restart while ${this.phase}`);
    const report = this.disk.recover(this.env.options.unsafe === 'forget-vote');
    this.env.checker.onRecovered(this.id, report, this.disk.storage.initialState().hardState);
    if (report.recordsDiscarded > 0) this.env.trace.record(this.env.queue.nowMs, this.id, 'recover', `discarded ${report.recordsDiscarded} bad record(s)`);
    this.start();
  }

  /** `CutoverNode.stop()`: the node finishes its current Ready, then is down until `restart`. A node already stopping goes on stopping. */
  stop(): void {
    const incarnation = this.incarnation;
    if (this.phase === 'stopping') return;
    assert(incarnation !== undefined && this.phase === 'up', `node ${this.id}: stop while ${this.phase}`);
    this.phase = 'stopping';
    this.env.trace.record(this.env.queue.nowMs, this.id, 'stop');
    const detached = incarnation.detach?.('stop');
    if (!(detached instanceof Promise)) return this.stopNode(incarnation);
    detached.then(
      () => {
        if (this.incarnation === incarnation) this.stopNode(incarnation); // else crashed while its services stopped
      },
      (error: unknown) => this.env.fail(`node ${this.id}: stopping its services failed: ${describeError(error)}`),
    );
  }

  /** The graceful stop's second half: `CutoverNode.stop()`, then the incarnation is gone. */
  private stopNode(incarnation: Incarnation): void {
    incarnation.node.stop().then(
      () => {
        if (this.incarnation !== incarnation) return; // crashed while stopping
        if (this.disk.writeInFlight) this.env.fail(`node ${this.id}: stop() resolved with a disk write in flight`);
        this.kill(incarnation, 'stop');
        this.disk.close();
        this.env.trace.record(this.env.queue.nowMs, this.id, 'stopped');
      },
      (error: unknown) => this.env.fail(`node ${this.id}: stop failed: ${describeError(error)}`),
    );
  }

  /** Raft status of the running node, or undefined while down. */
  status(): Status | undefined {
    return this.incarnation?.node.status();
  }

  transferLeader(target: number): void {
    if (this.phase === 'up') this.incarnation?.node.transferLeader(target);
  }

  /** Through the node's membership API; a refusal (a coded error) is traced, anything else fails the run. */
  proposeConfChange(change: ConfChange): void {
    const node = this.incarnation?.node;
    if (node === undefined || this.phase !== 'up') return;
    const proposed = change.type === 'addLearner' ? node.addLearner(change.nodeId, simAddress(change.nodeId)) : change.type === 'addNode' ? node.promote(change.nodeId) : node.removeMember(change.nodeId);
    proposed.catch((error: unknown) => {
      const code = (error as { code?: unknown }).code;
      if (typeof code === 'string') this.env.trace.record(this.env.queue.nowMs, this.id, 'conf-change-failed', `${change.type} ${change.nodeId}: ${code}`);
      else this.env.fail(`node ${this.id}: ${change.type} ${change.nodeId} failed: ${describeError(error)}`);
    });
  }

  /** A client request arrived; the answer goes back when the node settles it (never, if it crashes first). */
  handleClientRequest(request: ClientRequest<KvInput>): void {
    const node = this.incarnation?.node;
    if (node === undefined) return;
    serveKv(node, request, this.env.options.unsafe === 'stale-read').then(
      (output) => this.env.reply(this.id, request, { kind: 'ok', output }),
      (error: unknown) => {
        const reply = replyForError(error);
        if (reply === undefined) this.env.fail(`node ${this.id}: ${request.input.kind} failed with an error no client should see: ${describeError(error)}`);
        else this.env.reply(this.id, request, reply);
      },
    );
  }

  /** Kills everything the incarnation was built on: after this it cannot act. */
  private kill(incarnation: Incarnation, reason: 'stop' | 'crash'): void {
    void incarnation.detach?.(reason);
    incarnation.clock.kill();
    incarnation.transport.kill();
    incarnation.storage.kill();
    this.incarnation = undefined;
    this.phase = 'down';
  }

  /** The checkers' view of the node: Readys (a new leader's log), applied entries, fatal errors. */
  private observer(node: () => CutoverNode): NodeObserver {
    const { checker, trace, queue } = this.env;
    return {
      onReady: (ready) => {
        if (ready.softState?.role === 'leader') checker.onBecameLeader(this.id, node().status().term, this.disk.storage, ready.entries);
      },
      onApplied: (entry, appliedBefore) => {
        checker.onApplied(this.id, appliedBefore, entry);
        if (entry.type !== 'confChange') return;
        const change = decodeConfChange(entry.data);
        const { voters, learners } = node().status().confState;
        trace.record(queue.nowMs, this.id, 'apply-conf', `${change.type} ${change.nodeId} at ${entry.index} -> voters=${voters.join(',')} learners=${learners.join(',')}`);
      },
      onFatal: (error) => this.env.fail(`node ${this.id}: the Ready loop failed: ${describeError(error)}`),
    };
  }
}

/** The node settings a seed drew. */
function nodeSettings(options: SimOptions): Partial<NodeSettings> {
  return {
    tickMs: options.tickMs,
    electionTicks: options.electionTicks,
    heartbeatTicks: options.heartbeatTicks,
    requestTimeoutMs: options.nodeRequestTimeoutMs,
    snapshotEntries: options.snapshotThresholdEntries,
    compactionMarginEntries: options.compactionMarginEntries,
    maxSizePerMsg: options.maxSizePerMsgBytes,
    maxInflightMsgs: options.maxInflightMsgs,
    maxUncommittedEntriesSize: options.maxUncommittedEntriesBytes,
  };
}

function describeError(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}\n${error.stack ?? ''}` : String(error);
}
