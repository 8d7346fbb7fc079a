/**
 * One simulated run, fully determined by its options (and so by its seed): a safety phase with
 * faults, checked all along by the invariant checker, then a liveness phase that heals everything
 * and requires a leader and new client progress within a bounded number of ticks, then the
 * linearizability check of the whole client history.
 */
import { SeededRandom } from '../src/util/random.ts';
import type { Message } from '../src/raft/types.ts';
import { InvariantChecker, type Violation } from './checkers/invariants.ts';
import { checkLinearizable } from './checkers/linearizability.ts';
import { registerModel } from './checkers/register-model.ts';
import type { DiskStats } from './disk.ts';
import { EventQueue } from './events.ts';
import { FaultScheduler, type FaultStats } from './faults.ts';
import { SimNetwork, type NetworkStats } from './network.ts';
import { SimNode, type NodeEnvironment } from './node.ts';
import type { SimOptions } from './options.ts';
import { Trace } from './trace.ts';
import { Workload, type WorkloadStats } from './workload.ts';

/** Everything a run counted. All of it is deterministic for a given seed. */
export interface SimStats {
  simTimeMs: number;
  events: number;
  traceEvents: number;
  network: NetworkStats;
  disk: DiskStats;
  faults: FaultStats;
  workload: WorkloadStats;
  maxTerm: number;
  maxCommit: number;
  snapshotsTaken: number;
  /** Snapshots a node received from its leader and installed (the catch-up path). */
  snapshotsInstalled: number;
  /** Simulated ms from the heal to a leader plus client progress; undefined if never reached. */
  livenessMs: number | undefined;
  linearizability: 'ok' | 'violation' | 'unknown' | 'skipped';
  historyOps: number;
}

/** The outcome of one run. */
export interface SimResult {
  readonly options: SimOptions;
  /** Empty when every checker passed. The run stops at the first safety violation. */
  readonly violations: readonly Violation[];
  readonly stats: SimStats;
  /** Digest of every traced event: equal for two runs of one seed. */
  readonly traceDigest: string;
  /** The last events before the end of the run (filled when there is a violation). */
  readonly trace: readonly string[];
}

export interface RunHooks {
  /** Receives every trace event as a line while the run goes (for --verbose). */
  readonly verbose?: (line: string) => void;
  /** How many trace lines a failed run returns (default 30). */
  readonly traceLines?: number;
}

/** Linearizability search budget per key; past it the verdict is "unknown", not a violation. */
const LINEARIZABILITY_STEPS_PER_KEY_MAX = 2_000_000;
const TRACE_CAPACITY = 512;

/** Runs one seed's simulation in-process. */
export function runSimulation(options: SimOptions, hooks: RunHooks = {}): SimResult {
  return new Simulation(options, hooks).run();
}

class Simulation {
  private readonly queue = new EventQueue();
  private readonly trace: Trace;
  private readonly checker: InvariantChecker;
  private readonly network: SimNetwork;
  private readonly nodes: SimNode[];
  private readonly workload: Workload;
  private readonly faults: FaultScheduler;
  private livenessMs: number | undefined = undefined;
  private linearizability: SimStats['linearizability'] = 'skipped';
  private historyOps = 0;
  private readonly counters = { snapshotsTaken: 0, snapshotsInstalled: 0 };

  constructor(
    private readonly options: SimOptions,
    private readonly hooks: RunHooks,
  ) {
    this.trace = new Trace(TRACE_CAPACITY, hooks.verbose);
    this.checker = new InvariantChecker(() => this.queue.nowMs, options.unsafe === 'forget-vote');
    const root = new SeededRandom(options.seed);
    this.network = new SimNetwork(this.queue, root.fork(), options, this.trace, (m) => this.deliver(m), (m, why) => this.undelivered(m, why));
    const env: NodeEnvironment = {
      queue: this.queue,
      trace: this.trace,
      options,
      checker: this.checker,
      counters: this.counters,
      sendRaft: (message) => {
        this.checker.onMessage(message);
        this.network.send(message);
      },
      reply: (nodeId, request, reply) => this.workload.reply(nodeId, request, reply),
    };
    this.nodes = Array.from({ length: options.nodes }, (_, i) => new SimNode(i + 1, env, root.fork()));
    this.workload = new Workload(this.queue, root.fork(), options, this.trace, (nodeId, request) => this.nodes[nodeId - 1]!.handleClientRequest(request));
    this.faults = new FaultScheduler(this.queue, root.fork(), options, this.trace, this.network, this.nodes);
  }

  run(): SimResult {
    try {
      for (const node of this.nodes) node.start();
      this.workload.start();
      this.faults.start();
      this.queue.runUntil(this.options.safetyPhaseMs, () => this.checker.failed);
      if (!this.checker.failed) this.livenessPhase();
      if (!this.checker.failed) this.checkLinearizability();
    } catch (error) {
      this.checker.report('exception', error instanceof Error ? `${error.name}: ${error.message}\n${error.stack ?? ''}` : String(error));
    }
    return this.result();
  }

  private deliver(message: Message): boolean {
    const taken = this.nodes[message.to - 1]!.receive(message);
    if (taken && message.type === 'snap') this.nodes[message.from - 1]!.reportSnapshot(message.to, true);
    return taken;
  }

  /**
   * What a transport would tell the sender about a failed send: a snapshot stream always knows it
   * failed; an append only when the peer was unreachable (a silently lost one goes unnoticed).
   */
  private undelivered(message: Message, why: 'unreachable' | 'lost'): void {
    if (message.type === 'snap') this.nodes[message.from - 1]!.reportSnapshot(message.to, false);
    else if (message.type === 'app' && why === 'unreachable') this.nodes[message.from - 1]!.reportUnreachable(message.to);
  }

  /** Heal everything, restart every crashed node, and wait (bounded) for a leader and progress. */
  private livenessPhase(): void {
    const healAtMs = this.queue.nowMs;
    this.trace.record(healAtMs, 0, 'liveness-phase', this.options.livenessFullRestart ? 'heal, restart all nodes' : 'heal, restart crashed nodes');
    this.faults.stop();
    this.network.healAll();
    this.workload.heal(healAtMs);
    for (const node of this.nodes) {
      if (node.up && this.options.livenessFullRestart) node.crash(false);
      if (!node.up) node.restart();
    }
    const deadlineMs = healAtMs + this.options.livenessTicksMax * this.options.tickMs;
    const progressed = (): boolean => {
      const progress = this.workload.progressSinceHeal();
      return progress.writes >= 1 && progress.operations >= this.options.clients && this.leader() !== undefined;
    };
    this.queue.runUntil(deadlineMs, () => this.checker.failed || progressed());
    if (this.checker.failed) return;
    if (progressed()) {
      this.livenessMs = this.queue.nowMs - healAtMs;
      return;
    }
    const progress = this.workload.progressSinceHeal();
    this.checker.report(
      'liveness',
      `no leader with client progress within ${this.options.livenessTicksMax} ticks of the heal ` +
        `(ops completed since heal: ${progress.operations}, writes: ${progress.writes}); nodes: ${this.describeNodes()}`,
    );
  }

  private leader(): SimNode | undefined {
    return this.nodes.find((node) => node.status()?.role === 'leader');
  }

  private describeNodes(): string {
    return this.nodes
      .map((node) => {
        const s = node.status();
        if (s === undefined) return `n${node.id}: down`;
        const progress = s.progress.map((p) => `${p.id}:${p.state} match=${p.match} next=${p.next} inflight=${p.inflightCount}`).join(', ');
        return `n${node.id}: ${s.role} term=${s.term} leader=${s.leader} commit=${s.commit} applied=${s.applied} last=${s.lastIndex} voters=${s.confState.voters.join(',')} learners=${s.confState.learners.join(',')}${progress === '' ? '' : ` progress=[${progress}]`}`;
      })
      .join('; ');
  }

  private checkLinearizability(): void {
    const history = this.workload.finalHistory();
    this.historyOps = history.length;
    const verdict = checkLinearizable(registerModel, history, { maxStepsPerKey: LINEARIZABILITY_STEPS_PER_KEY_MAX });
    if (verdict.ok === true) {
      this.linearizability = 'ok';
    } else if (verdict.ok === 'unknown') {
      this.linearizability = 'unknown';
      this.trace.record(this.queue.nowMs, 0, 'linearizability-unknown', `key ${verdict.key}: ${verdict.reason}`);
    } else {
      this.linearizability = 'violation';
      this.checker.report('linearizability', `key ${verdict.key}: ${verdict.reason}\n    ${verdict.trace.join('\n    ')}`);
    }
  }

  private result(): SimResult {
    const failed = this.checker.violations.length > 0;
    return {
      options: this.options,
      violations: this.checker.violations,
      stats: this.stats(),
      traceDigest: this.trace.digest,
      trace: failed ? this.trace.last(this.hooks.traceLines ?? 30) : [],
    };
  }

  private stats(): SimStats {
    const disk: DiskStats = { writes: 0, bytesWritten: 0, lostWrites: 0, tornWrites: 0, tornDetected: 0, folds: 0 };
    for (const node of this.nodes) for (const key of Object.keys(disk) as (keyof DiskStats)[]) disk[key] += node.disk.stats[key];
    const statuses = this.nodes.map((node) => node.status());
    return {
      simTimeMs: this.queue.nowMs,
      events: this.queue.eventsRun,
      traceEvents: this.trace.eventCount,
      network: { ...this.network.stats },
      disk,
      faults: { ...this.faults.stats },
      workload: { ...this.workload.stats },
      maxTerm: Math.max(0, ...statuses.map((s) => s?.term ?? 0)),
      maxCommit: Math.max(0, ...statuses.map((s) => s?.commit ?? 0)),
      ...this.counters,
      livenessMs: this.livenessMs,
      linearizability: this.linearizability,
      historyOps: this.historyOps,
    };
  }
}
