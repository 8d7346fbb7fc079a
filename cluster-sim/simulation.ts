/**
 * One simulated run of the raft target (the simulator's own driver of the bare Raft core, node.ts),
 * fully determined by its options (and so by its seed): a safety phase with faults, checked all
 * along by the invariant checker, then a liveness phase that heals everything and requires a
 * leader and new client progress within a bounded number of ticks, then the linearizability check
 * of the whole client history. The node target's run is runtime/simulation.ts.
 */
import { SeededRandom } from '../src/util/random.ts';
import type { Message } from '../src/raft/types.ts';
import { assert } from '../src/util/assert.ts';
import { InvariantChecker } from './checkers/invariants.ts';
import { registerModel } from './checkers/register-model.ts';
import { EventQueue } from './events.ts';
import { FaultScheduler } from './faults.ts';
import { SimNetwork } from './network.ts';
import { SimNode, type NodeEnvironment } from './node.ts';
import type { SimOptions } from './options.ts';
import { TRACE_CAPACITY, buildResult, collectStats, describeException, judgeHistory, livenessFailure, livenessReached, type RunHooks, type SimResult, type SimStats } from './outcome.ts';
import { registerOperations } from './register.ts';
import { Trace } from './trace.ts';
import { Workload } from './workload.ts';

export type { RunHooks, SimResult, SimStats } from './outcome.ts';

/** Runs one seed's simulation of the raft target in-process. */
export function runSimulation(options: SimOptions, hooks: RunHooks = {}): SimResult {
  assert(options.target === 'raft', `runSimulation runs the raft target; use runTarget for target ${options.target}`);
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
  private linearizability: Pick<SimStats, 'linearizability' | 'linearizabilityNote'> = { linearizability: 'skipped', linearizabilityNote: '' };
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
    this.workload = new Workload(this.queue, root.fork(), options, this.trace, (nodeId, request) => this.nodes[nodeId - 1]!.handleClientRequest(request), registerOperations);
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
      this.checker.report('exception', describeException(error));
    }
    const parts = { queue: this.queue, trace: this.trace, network: this.network, faults: this.faults, workload: this.workload, nodes: this.nodes, counters: this.counters };
    const stats = collectStats(parts, { livenessMs: this.livenessMs, ...this.linearizability, historyOps: this.historyOps });
    return buildResult(this.options, this.checker, this.trace, stats, this.hooks);
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
    const progressed = (): boolean => livenessReached(this.options, this.workload.progressSinceHeal(), this.nodes);
    this.queue.runUntil(deadlineMs, () => this.checker.failed || progressed());
    if (this.checker.failed) return;
    if (progressed()) this.livenessMs = this.queue.nowMs - healAtMs;
    else this.checker.report('liveness', livenessFailure(this.options, this.workload.progressSinceHeal(), this.nodes));
  }

  private checkLinearizability(): void {
    const history = this.workload.finalHistory();
    this.historyOps = history.length;
    this.linearizability = judgeHistory([registerModel], history, this.checker, this.trace, this.queue.nowMs);
  }
}
