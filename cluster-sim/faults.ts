/**
 * The fault scheduler ("nemesis") of the safety phase. At exponentially distributed intervals it
 * picks one action by the seed's weights: a partition of some shape, a clogged link, a crash
 * (with a restart after a random downtime; on the node target some are graceful stops instead),
 * a leader transfer, or one step of a membership cycle (remove a voter, add it back as a learner,
 * promote it). Everything it does ends on its own (partitions heal, links unclog, nodes restart)
 * unless the liveness phase takes over first.
 */
import type { SeededRandom } from '../src/util/random.ts';
import type { ConfChange, Status } from '../src/raft/types.ts';
import type { EventQueue } from './events.ts';
import { PARTITION_KINDS, partitionLinks, type SimNetwork } from './network.ts';
import type { SimOptions } from './options.ts';
import type { Trace } from './trace.ts';

/** A simulated node as the fault scheduler and the liveness phase see it (either target). */
export interface FaultableNode {
  readonly id: number;
  /** Whether the node is running, or still stopping gracefully (a crashed or stopped node is not). */
  readonly up: boolean;
  /** Kills the node (a power loss); the write in flight is lost, or with `tear`, left torn on disk. */
  crash(tear: boolean): void;
  /** Starts a crashed or stopped node again on what its disk holds. */
  restart(): void;
  /** Stops the node gracefully (only a target that has a graceful stop). */
  stop?(): void;
  /** Raft status, or undefined while down. */
  status(): Status | undefined;
  /** Throws a coded error when refused at once. */
  transferLeader(target: number): void;
  /** Throws a coded error when refused at once (a target may also report a later refusal itself). */
  proposeConfChange(change: ConfChange): void;
}

/** Fault counts, for the run summary. */
export interface FaultStats {
  partitions: number;
  clogs: number;
  crashes: number;
  /** Graceful stops (node target). */
  stops: number;
  restarts: number;
  transfers: number;
  membershipChanges: number;
}

type Action = 'partition' | 'clog' | 'crash' | 'transfer' | 'membership';

/** Drives faults until `stop()`. */
export class FaultScheduler {
  readonly stats: FaultStats = { partitions: 0, clogs: 0, crashes: 0, stops: 0, restarts: 0, transfers: 0, membershipChanges: 0 };
  private active = true;
  /** Bumped by each partition, so only the latest one's heal event heals. */
  private partitionGeneration = 0;

  constructor(
    private readonly queue: EventQueue,
    private readonly random: SeededRandom,
    private readonly options: SimOptions,
    private readonly trace: Trace,
    private readonly network: SimNetwork,
    private readonly nodes: readonly FaultableNode[],
  ) {}

  start(): void {
    this.scheduleNext();
  }

  /** No more faults; pending heals and restarts become no-ops (the liveness phase heals all). */
  stop(): void {
    this.active = false;
  }

  private scheduleNext(): void {
    const { faultIntervalMeanMs } = this.options;
    this.queue.after(-faultIntervalMeanMs * Math.log(1 - this.random.nextFloat()), () => {
      if (!this.active) return;
      this.act(this.pickAction());
      this.scheduleNext();
    });
  }

  private pickAction(): Action | undefined {
    const o = this.options;
    const weights: [Action, number][] = [
      ['partition', o.partitionWeight],
      ['clog', o.clogWeight],
      ['crash', o.crashWeight],
      ['transfer', o.transferWeight],
      ['membership', o.membershipWeight],
    ];
    const total = weights.reduce((sum, [, weight]) => sum + weight, 0);
    let draw = this.random.nextFloat() * total;
    for (const [action, weight] of weights) {
      if (draw < weight) return action;
      draw -= weight;
    }
    return undefined;
  }

  private act(action: Action | undefined): void {
    switch (action) {
      case undefined:
        return;
      case 'partition':
        return this.partition();
      case 'clog':
        return this.clog();
      case 'crash':
        return this.crash();
      case 'transfer':
        return this.transfer();
      case 'membership':
        return this.membershipStep();
    }
  }

  private partition(): void {
    const kind = PARTITION_KINDS[this.random.nextInt(0, PARTITION_KINDS.length)]!;
    const { links, description } = partitionLinks(kind, this.options.nodes, this.random);
    this.network.partition(links, description);
    this.stats.partitions++;
    const generation = ++this.partitionGeneration;
    this.queue.after(this.duration(this.options.partitionDurationMaxMs), () => {
      if (this.active && generation === this.partitionGeneration) this.network.heal();
    });
  }

  private clog(): void {
    const from = this.randomNodeId();
    let to = this.randomNodeId();
    if (to === from) to = (to % this.options.nodes) + 1;
    this.network.clog(from, to);
    this.stats.clogs++;
    this.queue.after(this.duration(this.options.clogDurationMaxMs), () => {
      if (this.active) this.network.unclog(from, to);
    });
  }

  private crash(): void {
    const node = this.nodes[this.randomNodeId() - 1]!;
    if (!node.up) return;
    // The raft target has no graceful stop, and draws nothing for it.
    if (node.stop !== undefined && this.options.gracefulStopRate > 0 && this.random.nextFloat() < this.options.gracefulStopRate) {
      node.stop();
      this.stats.stops++;
    } else {
      node.crash(this.random.nextFloat() < this.options.tornWriteRate);
      this.stats.crashes++;
    }
    this.queue.after(this.duration(this.options.downtimeMaxMs), () => {
      if (!this.active || node.up) return;
      node.restart();
      this.stats.restarts++;
    });
  }

  private transfer(): void {
    const leader = this.findLeader();
    if (leader === undefined) return;
    const voters = leader.status()?.confState.voters.filter((id) => id !== leader.id) ?? [];
    if (voters.length === 0) return;
    const target = voters[this.random.nextInt(0, voters.length)]!;
    this.trace.record(this.queue.nowMs, leader.id, 'transfer-leader', `to ${target}`);
    this.stats.transfers++;
    try {
      leader.transferLeader(target);
    } catch (error) {
      if (typeof (error as { code?: unknown }).code !== 'string') throw error;
    }
  }

  /** One step of remove → add as learner → promote, judged from the leader's membership. */
  private membershipStep(): void {
    const leader = this.findLeader();
    const confState = leader?.status()?.confState;
    if (leader === undefined || confState === undefined) return;
    const members = new Set([...confState.voters, ...confState.learners]);
    const absent = this.nodes.map((node) => node.id).filter((id) => !members.has(id));
    let change: ConfChange;
    if (confState.learners.length > 0) change = { type: 'addNode', nodeId: confState.learners[0]! };
    else if (absent.length > 0) change = { type: 'addLearner', nodeId: absent[0]! };
    else change = { type: 'removeNode', nodeId: confState.voters[this.random.nextInt(0, confState.voters.length)]! };
    try {
      leader.proposeConfChange(change);
      this.stats.membershipChanges++;
      this.trace.record(this.queue.nowMs, leader.id, 'propose-conf', `${change.type} ${change.nodeId}`);
    } catch (error) {
      // Refusals are expected (a change still pending, a learner not caught up, ...).
      const code = (error as { code?: unknown }).code;
      if (typeof code !== 'string') throw error;
      this.trace.record(this.queue.nowMs, leader.id, 'propose-conf-refused', `${change.type} ${change.nodeId}: ${code}`);
    }
  }

  private findLeader(): FaultableNode | undefined {
    const leaders = this.nodes.filter((node) => node.status()?.role === 'leader');
    // With several self-declared leaders (a deposed one has not heard yet), take the newest term.
    leaders.sort((a, b) => b.status()!.term - a.status()!.term);
    return leaders[0];
  }

  private randomNodeId(): number {
    return this.random.nextInt(1, this.options.nodes + 1);
  }

  private duration(maxMs: number): number {
    return 10 + this.random.nextFloat() * maxMs;
  }
}
