/**
 * The placement scenario on the node target: every simulated node runs the production node
 * runtime with a `PlacementController` (only the leader's acts) and a stand-in instance reporter,
 * an operator writes blueprints, and the usual faults (crashes, graceful stops, partitions, clogs,
 * leader transfers, membership changes) run during the safety phase. Raft's checkers run as on
 * the node target, plus the placement checks of `checker.ts`:
 *
 * 1. Safety phase: every 50 ms, every node's applied state must have unique instance ids and no
 *    node above `nodeInstancesMax`, and the term in the placement guard must never go back.
 * 2. Liveness phase: partitions heal and crashed nodes restart, except (in half the seeds) one node
 *    kept down for good. Within the controller's timeout plus `livenessTicksMax` ticks, the
 *    leader's state must converge (`convergedProblems` empty).
 * 3. Stability: `stableMs` more without faults or writes, the assignments must not change.
 */
import type { CutoverNode } from '../../src/node/node.ts';
import { nodeClusterPort } from '../../src/node/cluster-port.ts';
import { yieldToEventLoop } from '../../src/platform/yield.ts';
import { PLACEMENT_GUARD_KEY, PlacementController } from '../../src/slices/placement-controller.ts';
import { ASSIGNMENT_PREFIX, BLUEPRINT_PREFIX } from '../../src/slices/keys.ts';
import type { Clock } from '../../src/util/clock.ts';
import { SeededRandom } from '../../src/util/random.ts';
import { InvariantChecker, type ViolationKind } from '../checkers/invariants.ts';
import { EventQueue } from '../events.ts';
import { FaultScheduler, type FaultStats } from '../faults.ts';
import { SimNetwork } from '../network.ts';
import { TRACE_CAPACITY, describeException, describeNodes, type RunHooks } from '../outcome.ts';
import { RuntimeNode, type RuntimeEnvironment } from '../runtime/runtime-node.ts';
import { TransportHub } from '../runtime/sim-transport.ts';
import { Trace } from '../trace.ts';
import { BlueprintOperator, InstanceReporter, traceLogger } from './actors.ts';
import { alwaysProblems, convergedProblems, type Liveness } from './checker.ts';
import type { PlacementRunOptions } from './options.ts';

/** The placement scenario's own violations, next to Raft's. */
export type PlacementViolationKind = 'placement-safety' | 'placement-liveness' | 'placement-churn';

export interface PlacementViolation {
  readonly kind: ViolationKind | PlacementViolationKind;
  readonly atMs: number;
  readonly message: string;
}

export interface PlacementStats {
  simTimeMs: number;
  events: number;
  faults: FaultStats;
  operator: { sent: number; ok: number; failed: number };
  /** Plans committed by any leader, conflicts (failed compares), and moves off down nodes. */
  plans: number;
  conflicts: number;
  downMoves: number;
  /** Simulated ms from the heal to convergence; undefined if never reached. */
  convergedMs: number | undefined;
  /** The node kept down in the liveness phase, or 0. */
  keptDown: number;
  /** Assignments and blueprints in the converged state. */
  assignments: number;
  blueprints: number;
}

export interface PlacementResult {
  readonly options: PlacementRunOptions;
  readonly violations: readonly PlacementViolation[];
  readonly stats: PlacementStats;
  readonly traceDigest: string;
  readonly trace: readonly string[];
}

/** One running node's services, for the samplers and the final judgement. */
interface Attached {
  readonly node: CutoverNode;
  readonly controller: PlacementController;
  guardTerm: number;
}

const SAMPLE_INTERVAL_MS = 50;
const CONVERGENCE_CHECK_INTERVAL_MS = 20;

/** Runs one seed of the placement scenario in-process. */
export function runPlacementSimulation(options: PlacementRunOptions, hooks: RunHooks = {}): Promise<PlacementResult> {
  return new PlacementSimulation(options, hooks).run();
}

class PlacementSimulation {
  private readonly queue = new EventQueue();
  private readonly trace: Trace;
  private readonly checker: InvariantChecker;
  private readonly network: SimNetwork;
  private readonly nodes: RuntimeNode[];
  private readonly faults: FaultScheduler;
  private readonly operator: BlueprintOperator;
  private readonly random: SeededRandom;
  private readonly attached = new Map<number, Attached>();
  private readonly violations: PlacementViolation[] = [];
  private readonly stats: PlacementStats;
  private sampling = true;

  constructor(
    private readonly options: PlacementRunOptions,
    private readonly hooks: RunHooks,
  ) {
    const sim = options.sim;
    this.trace = new Trace(TRACE_CAPACITY, hooks.verbose);
    this.checker = new InvariantChecker(() => this.queue.nowMs, false);
    const root = new SeededRandom(sim.seed);
    const hub = new TransportHub(this.queue, this.trace, this.checker);
    this.network = new SimNetwork(this.queue, root.fork(), sim, this.trace, (m) => hub.deliver(m), (m, why) => hub.undelivered(m, why));
    hub.connect(this.network);
    const env: RuntimeEnvironment = {
      queue: this.queue,
      trace: this.trace,
      options: sim,
      checker: this.checker,
      counters: { snapshotsTaken: 0, snapshotsInstalled: 0 },
      hub,
      reply: () => this.fail('a KV client reply arrived, but the placement scenario has no KV clients'),
      fail: (message) => this.fail(message),
      attach: (nodeId, node, clock) => this.attach(nodeId, node, clock),
    };
    this.nodes = Array.from({ length: sim.nodes }, (_, i) => new RuntimeNode(i + 1, env, root.fork()));
    this.faults = new FaultScheduler(this.queue, root.fork(), sim, this.trace, this.network, this.nodes);
    this.operator = new BlueprintOperator(this.queue, root.fork(), options.placement, this.trace, () => [...this.attached.values()].map((a) => a.node), (message) => this.fail(message));
    this.random = root.fork();
    this.stats = { simTimeMs: 0, events: 0, faults: this.faults.stats, operator: this.operator.stats, plans: 0, conflicts: 0, downMoves: 0, convergedMs: undefined, keptDown: 0, assignments: 0, blueprints: 0 };
  }

  private get failed(): boolean {
    return this.checker.failed || this.violations.length > 0;
  }

  private fail(message: string): void {
    if (!this.checker.failed) this.checker.report('exception', message);
  }

  private report(kind: PlacementViolationKind, message: string): void {
    if (!this.failed) this.violations.push({ kind, atMs: this.queue.nowMs, message });
  }

  /** Starts the controller and the reporter on a new incarnation (once its node has started). */
  private attach(nodeId: number, node: CutoverNode, clock: Clock): () => void {
    const p = this.options.placement;
    const logger = traceLogger(this.trace, this.queue, nodeId, (fields) => {
      this.stats.plans++;
      const moves = Array.isArray(fields.moves) ? (fields.moves as unknown[]) : [];
      this.stats.downMoves += moves.filter((m) => typeof m === 'string' && m.includes('is down')).length;
    });
    const controller = new PlacementController({ port: nodeClusterPort(node), clock, logger, nodeDownAfterMs: p.nodeDownAfterMs, nodeInstancesMax: p.nodeInstancesMax, recheckIntervalMs: p.recheckIntervalMs });
    const reporter = new InstanceReporter(node, clock, p.reportIntervalMs, (message) => this.fail(message));
    const attached: Attached = { node, controller, guardTerm: 0 };
    this.attached.set(nodeId, attached);
    let detached = false;
    // The node's Raft state exists once its start() has begun, which is right after this call.
    const cancel = clock.schedule(0, () => {
      if (detached) return;
      controller.start();
      reporter.start();
    });
    return () => {
      if (detached) return;
      detached = true;
      cancel();
      this.stats.conflicts += controller.status().conflicts;
      controller.stop();
      reporter.stop();
      if (this.attached.get(nodeId) === attached) this.attached.delete(nodeId);
    };
  }

  async run(): Promise<PlacementResult> {
    const sim = this.options.sim;
    try {
      for (const node of this.nodes) this.queue.after(this.random.nextFloat() * sim.tickMs, () => node.start());
      this.operator.start();
      this.faults.start();
      this.sample();
      await this.runUntil(sim.safetyPhaseMs, () => this.failed);
      if (!this.failed) await this.livenessPhase();
      if (!this.failed && this.stats.convergedMs !== undefined) await this.stabilityPhase();
    } catch (error) {
      this.fail(describeException(error));
    }
    for (const a of this.attached.values()) this.stats.conflicts += a.controller.status().conflicts;
    this.stats.simTimeMs = this.queue.nowMs;
    this.stats.events = this.queue.eventsRun;
    const violations = [...this.checker.violations, ...this.violations];
    return { options: this.options, violations, stats: this.stats, traceDigest: this.trace.digest, trace: violations.length > 0 ? this.trace.last(this.hooks.traceLines ?? 30) : [] };
  }

  private runUntil(untilMs: number, shouldStop: () => boolean): Promise<number> {
    return this.queue.runUntilSettled(untilMs, shouldStop, yieldToEventLoop);
  }

  /** The always-true checks on every running node's applied state, every SAMPLE_INTERVAL_MS. */
  private sample(): void {
    if (!this.sampling || this.failed) return;
    for (const [id, a] of this.attached) {
      const problems = alwaysProblems(a.node.kv, this.options.placement.nodeInstancesMax);
      if (problems.length > 0) return this.report('placement-safety', `node ${id}: ${problems.join('; ')}`);
      const guard = a.node.kv.get(PLACEMENT_GUARD_KEY);
      const term = guard === undefined ? 0 : (JSON.parse(guard.value) as { term: number }).term;
      if (term < a.guardTerm) return this.report('placement-safety', `node ${id}: the placement guard went back from term ${a.guardTerm} to ${term}`);
      a.guardTerm = term;
    }
    this.queue.after(SAMPLE_INTERVAL_MS, () => this.sample());
  }

  /** Heals, restarts all but (maybe) one node, and waits (bounded) for placement to converge. */
  private async livenessPhase(): Promise<void> {
    const sim = this.options.sim;
    const p = this.options.placement;
    const healAtMs = this.queue.nowMs;
    this.faults.stop();
    this.operator.stop();
    this.network.healAll();
    const keptDown = p.keepOneDown ? this.pickKeptDown() : 0;
    this.stats.keptDown = keptDown;
    this.trace.record(healAtMs, 0, 'liveness-phase', `heal, restart ${sim.livenessFullRestart ? 'all nodes' : 'crashed nodes'}${keptDown === 0 ? '' : `, keep node ${keptDown} down`}`);
    for (const node of this.nodes) {
      if (node.up && (node.id === keptDown || sim.livenessFullRestart || node.stopping)) node.crash(false);
      if (!node.up && node.id !== keptDown) node.restart();
    }
    await yieldToEventLoop();
    // The kept-down node counts as gone once the timeout has surely passed on the leader's drifting clock.
    const goneAfterMs = healAtMs + p.nodeDownAfterMs * (1 + sim.tickDriftFraction) * 1.01 + p.recheckIntervalMs;
    const deadlineMs = goneAfterMs + sim.livenessTicksMax * sim.tickMs;
    let nextCheckMs = 0;
    let last: string[] = ['not checked yet'];
    const converged = (): boolean => {
      if (this.queue.nowMs < nextCheckMs) return false;
      nextCheckMs = this.queue.nowMs + CONVERGENCE_CHECK_INTERVAL_MS;
      last = this.convergenceProblems(keptDown, this.queue.nowMs >= goneAfterMs);
      return last.length === 0;
    };
    await this.runUntil(deadlineMs, () => this.failed || converged());
    if (this.failed) return;
    if (converged() || last.length === 0) this.stats.convergedMs = this.queue.nowMs - healAtMs;
    else this.report('placement-liveness', `placement did not converge within ${(deadlineMs - healAtMs).toFixed(0)} ms of the heal: ${last.join('; ')}; nodes: ${describeNodes(this.nodes)}`);
  }

  /**
   * A node whose loss leaves a quorum of voters in every membership a running node holds (they
   * differ while a change is under way, or on a member removed while cut off), drawn from the
   * seed; 0 when none.
   */
  private pickKeptDown(): number {
    const configs = [...this.attached.values()].map((a) => a.node.status().confState.voters);
    if (configs.length === 0) return 0;
    const spareable = (id: number): boolean => configs.every((voters) => !voters.includes(id) || voters.length - 1 >= Math.floor(voters.length / 2) + 1);
    const candidates = this.nodes.map((n) => n.id).filter(spareable);
    return candidates.length === 0 ? 0 : candidates[this.random.nextInt(0, candidates.length)]!;
  }

  /** The running leader with the highest term. */
  private leader(): Attached | undefined {
    let best: Attached | undefined;
    for (const a of this.attached.values()) {
      const status = a.node.status();
      if (status.role === 'leader' && (best === undefined || status.term > best.node.status().term)) best = a;
    }
    return best;
  }

  private convergenceProblems(keptDown: number, keptDownIsGone: boolean): string[] {
    const leader = this.leader();
    if (leader === undefined) return ['no leader'];
    // Judge only a state the leader's controller has planned on: one that includes its claim, so
    // everything committed before its term has been applied (a restarted leader replays its log).
    const status = leader.node.status();
    const guard = leader.node.kv.get(PLACEMENT_GUARD_KEY);
    const claimedTerm = guard === undefined ? 0 : (JSON.parse(guard.value) as { term: number }).term;
    if (claimedTerm !== status.term) return [`the leader (node ${leader.node.id}, term ${status.term}) has not claimed placement yet (guard term ${claimedTerm})`];
    const { voters, learners } = status.confState;
    const running = new Set(this.nodes.filter((n) => n.up && !n.stopping).map((n) => n.id));
    const liveness: Liveness = {
      liveMembers: new Set([...voters, ...learners].filter((id) => running.has(id))),
      goneNodes: new Set(keptDown !== 0 && keptDownIsGone ? [keptDown] : []),
      nodeInstancesMax: this.options.placement.nodeInstancesMax,
    };
    const problems = convergedProblems(leader.node.kv, liveness);
    if (keptDown !== 0 && !keptDownIsGone) problems.push(`node ${keptDown} is not down for long enough yet`);
    return problems;
  }

  /** With nothing happening, the converged placement must stay as it is. */
  private async stabilityPhase(): Promise<void> {
    const leader = this.leader();
    if (leader === undefined) return;
    // A write or a membership change proposed before the heal may still land: then a change is legitimate.
    const inputs = (a: Attached): string => JSON.stringify([a.node.kv.range(BLUEPRINT_PREFIX, 0).kvs.map((e) => [e.key, e.modRevision]), a.node.status().confState]);
    const placement = (a: Attached): string[] => a.node.kv.range(ASSIGNMENT_PREFIX, 0).kvs.map((e) => e.key);
    const [inputsBefore, before] = [inputs(leader), placement(leader)];
    this.stats.assignments = before.length;
    this.stats.blueprints = leader.node.kv.range(BLUEPRINT_PREFIX, 0).kvs.length;
    await this.runUntil(this.queue.nowMs + this.options.placement.stableMs, () => this.failed);
    if (this.failed) return;
    this.sampling = false;
    const now = this.leader();
    if (now === undefined) return this.report('placement-churn', 'no leader after the stability period');
    if (inputs(now) !== inputsBefore) {
      this.trace.record(this.queue.nowMs, 0, 'stability-skipped', 'blueprints or membership changed after convergence');
      return;
    }
    const after = placement(now);
    if (JSON.stringify(after) !== JSON.stringify(before)) this.report('placement-churn', `the converged placement changed with nothing happening:\n    before ${before.join(' ')}\n    after  ${after.join(' ')}`);
  }
}
