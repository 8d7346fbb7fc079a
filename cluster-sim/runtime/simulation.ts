/**
 * One simulated run of the node target: every node runs the production node runtime
 * (`CutoverNode` with its KV store) on the simulated clock, network and disk, under the same
 * faults, checkers and phases as the raft target (safety phase, liveness phase, linearizability of
 * the KV history), fully determined by its seed.
 *
 * The node runtime is asynchronous: it awaits its disk writes and hands work to microtasks. The
 * event queue is not, so the run loop awaits `yieldToEventLoop()` after each event: every promise
 * chain that event started has then run to its end before the next event, and since nothing else
 * is queued on the event loop, the order of everything is fixed by the seed.
 */
import { yieldToEventLoop } from '../../src/platform/yield.ts';
import { assert } from '../../src/util/assert.ts';
import { SeededRandom } from '../../src/util/random.ts';
import { InvariantChecker } from '../checkers/invariants.ts';
import { kvModel, kvValueModel, type KvInput, type KvOutput } from '../checkers/kv-model.ts';
import { EventQueue } from '../events.ts';
import { FaultScheduler } from '../faults.ts';
import { SimNetwork } from '../network.ts';
import type { SimOptions } from '../options.ts';
import { TRACE_CAPACITY, buildResult, collectStats, describeException, judgeHistory, livenessFailure, livenessReached, type RunHooks, type SimResult, type SimStats } from '../outcome.ts';
import { Trace } from '../trace.ts';
import { Workload } from '../workload.ts';
import { kvOperations } from './kv-workload.ts';
import { RuntimeNode, type RuntimeEnvironment } from './runtime-node.ts';
import { TransportHub } from './sim-transport.ts';

/** Runs one seed's simulation of the node target in-process. */
export function runNodeSimulation(options: SimOptions, hooks: RunHooks = {}): Promise<SimResult> {
  assert(options.target === 'node', `runNodeSimulation runs the node target, not ${options.target}`);
  // The node runtime has no switch for these: its runs must not claim otherwise.
  assert(options.preVote && options.checkQuorum, 'the node target always runs with pre-vote and check-quorum');
  return new NodeSimulation(options, hooks).run();
}

class NodeSimulation {
  private readonly queue = new EventQueue();
  private readonly trace: Trace;
  private readonly checker: InvariantChecker;
  private readonly network: SimNetwork;
  private readonly nodes: RuntimeNode[];
  private readonly workload: Workload<KvInput, KvOutput>;
  private readonly faults: FaultScheduler;
  private readonly startRandom: SeededRandom;
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
    const hub = new TransportHub(this.queue, this.trace, this.checker);
    this.network = new SimNetwork(this.queue, root.fork(), options, this.trace, (m) => hub.deliver(m), (m, why) => hub.undelivered(m, why));
    hub.connect(this.network);
    const env: RuntimeEnvironment = {
      queue: this.queue,
      trace: this.trace,
      options,
      checker: this.checker,
      counters: this.counters,
      hub,
      reply: (nodeId, request, reply) => this.workload.reply(nodeId, request, reply),
      fail: (message) => {
        if (!this.checker.failed) this.checker.report('exception', message);
      },
    };
    this.nodes = Array.from({ length: options.nodes }, (_, i) => new RuntimeNode(i + 1, env, root.fork()));
    this.workload = new Workload(this.queue, root.fork(), options, this.trace, (nodeId, request) => this.nodes[nodeId - 1]!.handleClientRequest(request), kvOperations);
    this.faults = new FaultScheduler(this.queue, root.fork(), options, this.trace, this.network, this.nodes);
    this.startRandom = root.fork();
  }

  async run(): Promise<SimResult> {
    try {
      // Nodes boot within one tick of each other, so their ticks are out of phase.
      for (const node of this.nodes) this.queue.after(this.startRandom.nextFloat() * this.options.tickMs, () => node.start());
      this.workload.start();
      this.faults.start();
      await this.runUntil(this.options.safetyPhaseMs, () => this.checker.failed);
      if (!this.checker.failed) await this.livenessPhase();
      if (!this.checker.failed) this.checkLinearizability();
    } catch (error) {
      this.checker.report('exception', describeException(error));
    }
    const parts = { queue: this.queue, trace: this.trace, network: this.network, faults: this.faults, workload: this.workload, nodes: this.nodes, counters: this.counters };
    const stats = collectStats(parts, { livenessMs: this.livenessMs, ...this.linearizability, historyOps: this.historyOps });
    return buildResult(this.options, this.checker, this.trace, stats, this.hooks);
  }

  private runUntil(untilMs: number, shouldStop: () => boolean): Promise<number> {
    return this.queue.runUntilSettled(untilMs, shouldStop, yieldToEventLoop);
  }

  /** Heal everything, restart every crashed or stopped node, and wait (bounded) for a leader and progress. */
  private async livenessPhase(): Promise<void> {
    const healAtMs = this.queue.nowMs;
    this.trace.record(healAtMs, 0, 'liveness-phase', this.options.livenessFullRestart ? 'heal, restart all nodes' : 'heal, restart crashed nodes');
    this.faults.stop();
    this.network.healAll();
    this.workload.heal(healAtMs);
    for (const node of this.nodes) {
      // A node still stopping gracefully is crashed instead: the heal restarts every node at once.
      if (node.up && (this.options.livenessFullRestart || node.stopping)) node.crash(false);
      if (!node.up) node.restart();
    }
    await yieldToEventLoop();
    const deadlineMs = healAtMs + this.options.livenessTicksMax * this.options.tickMs;
    const progressed = (): boolean => livenessReached(this.options, this.workload.progressSinceHeal(), this.nodes);
    await this.runUntil(deadlineMs, () => this.checker.failed || progressed());
    if (this.checker.failed) return;
    if (progressed()) this.livenessMs = this.queue.nowMs - healAtMs;
    else this.checker.report('liveness', livenessFailure(this.options, this.workload.progressSinceHeal(), this.nodes));
  }

  private checkLinearizability(): void {
    const history = this.workload.finalHistory();
    this.historyOps = history.length;
    this.linearizability = judgeHistory([kvModel, kvValueModel], history, this.checker, this.trace, this.queue.nowMs);
  }
}
