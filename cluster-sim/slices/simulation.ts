/**
 * The slices scenario on the node target: every simulated node runs the production node runtime
 * and, on each incarnation, what `SliceHost` runs for slices (src/node/slice-host.ts) minus the
 * network parts: the routing table fed by `followRoutingTable`, the real `InstanceManager` with an
 * in-memory slice loader (`loader.ts`), and the `PlacementController` (only the leader's acts),
 * all over `nodeClusterPort(node)` on the simulated clock. They start after the node, in
 * SliceHost's order, and on a graceful stop they stop before it (the node's stop waits for the
 * InstanceManager to stop its instances); a crash stops nothing. The placement scenario's operator
 * writes blueprints of `org.sim:app{i}`, and a stand-in for the rolling-update controller
 * (`rollout.ts`) writes routing records and blueprints of `org.sim:svc{i}`.
 *
 * 1. Safety phase (faults on): every 50 ms, on every running node, placement's always-checks and
 *    the routing-table check (`tableProblems`: the watched table equals one loaded from the
 *    node's own applied state).
 * 2. Lag phase (most seeds): faults stop and everything heals and restarts; one node is cut off
 *    while the writers go on, until the leader's log no longer holds what it lacks (so it needs a
 *    snapshot) or `lagMsMax`; then it rejoins and installs the snapshot, its table following the
 *    jump (the KV store tells watchers the net change).
 * 3. Liveness phase: heal, restart all but (in half the seeds) one node kept down past the
 *    placement timeout; the operator stops and the rollout stand-in settles on 1:3. Within the
 *    bound, placement must converge (placement/checker.ts) and so must the instances and tables
 *    (`instancesConvergedProblems`); then each live member routes whole periods of calls and the
 *    split must be exact (`checkRouting`).
 * 4. Stability: `stableMs` more without writes; assignments and ACTIVE reports must not change,
 *    and the always-checks keep running.
 */
import type { CutoverNode } from '../../src/node/node.ts';
import { nodeClusterPort, type ClusterPort } from '../../src/node/cluster-port.ts';
import { RoutingTable } from '../../src/invoker/routing-table.ts';
import { followRoutingTable } from '../../src/invoker/table-feed.ts';
import { yieldToEventLoop } from '../../src/platform/yield.ts';
import { InstanceManager } from '../../src/slices/instance-manager.ts';
import { PLACEMENT_GUARD_KEY, PlacementController } from '../../src/slices/placement-controller.ts';
import { ASSIGNMENT_PREFIX, BLUEPRINT_PREFIX, INSTANCE_PREFIX, VERSION_ROUTING_PREFIX } from '../../src/slices/keys.ts';
import type { Clock } from '../../src/util/clock.ts';
import type { Logger } from '../../src/util/logger.ts';
import { SeededRandom } from '../../src/util/random.ts';
import { InvariantChecker, type ViolationKind } from '../checkers/invariants.ts';
import { EventQueue } from '../events.ts';
import { FaultScheduler, type FaultStats } from '../faults.ts';
import { SimNetwork } from '../network.ts';
import { TRACE_CAPACITY, describeException, describeNodes, type RunHooks } from '../outcome.ts';
import { BlueprintOperator, traceLogger } from '../placement/actors.ts';
import { alwaysProblems, convergedProblems, type Liveness } from '../placement/checker.ts';
import { RuntimeNode, type Detach, type RuntimeEnvironment } from '../runtime/runtime-node.ts';
import { TransportHub, simAddress } from '../runtime/sim-transport.ts';
import { Trace } from '../trace.ts';
import { activeReports, checkRouting, instancesConvergedProblems, tableProblems, type MemberSlices } from './checker.ts';
import { MemorySliceLoader, type LoaderStats } from './loader.ts';
import type { SlicesRunOptions } from './options.ts';
import { RolloutActor } from './rollout.ts';

/** The scenario's own violations, next to Raft's. */
export type SlicesViolationKind = 'placement-safety' | 'routing-table' | 'slices-liveness' | 'routing-split' | 'slices-churn';

export interface SlicesViolation {
  readonly kind: ViolationKind | SlicesViolationKind;
  readonly atMs: number;
  readonly message: string;
}

export interface SlicesStats {
  simTimeMs: number;
  events: number;
  faults: FaultStats;
  operator: { sent: number; ok: number; failed: number };
  rollout: { sent: number; ok: number; failed: number; malformed: number; updates: number };
  loader: LoaderStats;
  plans: number;
  conflicts: number;
  downMoves: number;
  /** Table comparisons made by the always-check. */
  tableChecks: number;
  /** Snapshots installed by running nodes (each one a jump their tables had to follow). */
  snapshotsInstalled: number;
  /** The node cut off in the lag phase (0: none), whether it fell behind the leader's log, and the snapshots installed after it rejoined. */
  lagNode: number;
  lagNeededSnapshot: boolean;
  lagSnapshots: number;
  keptDown: number;
  /** Simulated ms from the heal to convergence; undefined if never reached. */
  convergedMs: number | undefined;
  /** Route checks run (per node and artifact), and the calls they routed. */
  routeChecks: number;
  routeCalls: number;
  /** In the converged state. */
  assignments: number;
  activeInstances: number;
}

export interface SlicesResult {
  readonly options: SlicesRunOptions;
  readonly violations: readonly SlicesViolation[];
  readonly stats: SlicesStats;
  readonly traceDigest: string;
  readonly trace: readonly string[];
}

/** One running incarnation's slice services. */
interface Attached {
  readonly id: number;
  readonly node: CutoverNode;
  readonly port: ClusterPort;
  readonly controller: PlacementController;
  readonly instances: InstanceManager;
  readonly table: RoutingTable;
  /** The table is fed: from here on it must match the node's state. */
  fed: boolean;
  guardTerm: number;
}

const SAMPLE_INTERVAL_MS = 50;
const CONVERGENCE_CHECK_INTERVAL_MS = 20;
/**
 * Beyond placement's bound (the timeout plus livenessTicksMax ticks), what the instance lifecycle
 * may add after the last placement: a report retried after backing off (up to 2 s a pause, a
 * proposal up to the node's 5 s timeout), a start, and health checks with their pauses.
 */
const INSTANCE_LIFECYCLE_SLACK_MS = 10_000;
/** After the lag node rejoins, how long the writers go on while it catches up. */
const LAG_REJOIN_MS_MAX = 2000;

/** Runs one seed of the slices scenario in-process. */
export function runSlicesSimulation(options: SlicesRunOptions, hooks: RunHooks = {}): Promise<SlicesResult> {
  return new SlicesSimulation(options, hooks).run();
}

class SlicesSimulation {
  private readonly queue = new EventQueue();
  private readonly trace: Trace;
  private readonly checker: InvariantChecker;
  private readonly network: SimNetwork;
  private readonly nodes: RuntimeNode[];
  private readonly faults: FaultScheduler;
  private readonly operator: BlueprintOperator;
  private readonly rollout: RolloutActor;
  private readonly random: SeededRandom;
  private readonly loaderRandom: SeededRandom;
  private readonly counters = { snapshotsTaken: 0, snapshotsInstalled: 0 };
  private readonly attached = new Map<number, Attached>();
  private readonly violations: SlicesViolation[] = [];
  private readonly stats: SlicesStats;
  private sampling = true;

  constructor(
    private readonly options: SlicesRunOptions,
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
      counters: this.counters,
      hub,
      reply: () => this.fail('a KV client reply arrived, but the slices scenario has no KV clients'),
      fail: (message) => this.fail(message),
      attach: (nodeId, node, clock) => this.attach(nodeId, node, clock),
    };
    this.nodes = Array.from({ length: sim.nodes }, (_, i) => new RuntimeNode(i + 1, env, root.fork()));
    this.faults = new FaultScheduler(this.queue, root.fork(), sim, this.trace, this.network, this.nodes);
    const fail = (message: string): void => this.fail(message);
    this.operator = new BlueprintOperator(this.queue, root.fork(), options.placement, this.trace, () => [...this.attached.values()].map((a) => a.node), fail);
    this.rollout = new RolloutActor(this.queue, root.fork(), options.slices, this.trace, () => [...this.attached.values()].map((a) => a.port), fail);
    this.random = root.fork();
    this.loaderRandom = root.fork();
    this.stats = {
      simTimeMs: 0,
      events: 0,
      faults: this.faults.stats,
      operator: this.operator.stats,
      rollout: this.rollout.stats,
      loader: { loads: 0, starts: 0, stops: 0, healthChecks: 0, unhealthy: 0 },
      plans: 0,
      conflicts: 0,
      downMoves: 0,
      tableChecks: 0,
      snapshotsInstalled: 0,
      lagNode: 0,
      lagNeededSnapshot: false,
      lagSnapshots: 0,
      keptDown: 0,
      convergedMs: undefined,
      routeChecks: 0,
      routeCalls: 0,
      assignments: 0,
      activeInstances: 0,
    };
  }

  private get failed(): boolean {
    return this.checker.failed || this.violations.length > 0;
  }

  private fail(message: string): void {
    if (!this.checker.failed) this.checker.report('exception', message);
  }

  private report(kind: SlicesViolationKind, message: string): void {
    if (!this.failed) this.violations.push({ kind, atMs: this.queue.nowMs, message });
  }

  /** A Logger whose lines become trace events of `node` (`component` names the service). */
  private serviceLogger(node: number, component: string): Logger {
    const line =
      (level: string) =>
      (obj: object, msg?: string): void =>
        this.trace.record(this.queue.nowMs, node, `${component}-${level}`, `${msg ?? ''} ${JSON.stringify(obj)}`);
    const logger: Logger = { debug: () => {}, info: line('info'), warn: line('warn'), error: line('error'), child: () => logger };
    return logger;
  }

  /**
   * Builds the slice services of a new incarnation; they start once its node has started (the
   * next event), in SliceHost's order: the table feed, the instances, placement.
   */
  private attach(nodeId: number, node: CutoverNode, clock: Clock): Detach {
    const p = this.options.placement;
    const s = this.options.slices;
    const port = nodeClusterPort(node);
    const placementLogger = traceLogger(this.trace, this.queue, nodeId, (fields) => {
      this.stats.plans++;
      const moves = Array.isArray(fields.moves) ? (fields.moves as unknown[]) : [];
      this.stats.downMoves += moves.filter((m) => typeof m === 'string' && m.includes('is down')).length;
    });
    const controller = new PlacementController({ port, clock, logger: placementLogger, nodeDownAfterMs: p.nodeDownAfterMs, nodeInstancesMax: p.nodeInstancesMax, recheckIntervalMs: p.recheckIntervalMs });
    const instances = new InstanceManager({
      port,
      loader: new MemorySliceLoader(clock, this.loaderRandom.fork(), s, this.stats.loader),
      clock,
      logger: this.serviceLogger(nodeId, 'instances'),
      address: simAddress(nodeId),
      healthAttempts: s.healthAttempts,
      healthIntervalMs: s.healthIntervalMs,
      stoppedRetentionMs: s.stoppedRetentionMs,
    });
    const a: Attached = { id: nodeId, node, port, controller, instances, table: new RoutingTable(), fed: false, guardTerm: 0 };
    this.attached.set(nodeId, a);
    let detached = false;
    let stopFeed: (() => void) | undefined;
    let started: Promise<void> = Promise.resolve();
    const start = async (): Promise<void> => {
      stopFeed = await followRoutingTable(port, a.table);
      if (detached) return stopFeed();
      a.fed = true;
      await instances.start();
      if (!detached) controller.start();
    };
    const cancel = clock.schedule(0, () => {
      if (detached) return;
      started = start().catch((error: unknown) => {
        if (typeof (error as { code?: unknown }).code === 'string') this.trace.record(this.queue.nowMs, nodeId, 'slices-start-failed', String(error));
        else this.fail(`node ${nodeId}: starting the slice services failed: ${describeException(error)}`);
      });
    });
    return (reason) => {
      if (detached) return;
      detached = true;
      cancel();
      if (this.attached.get(nodeId) === a) this.attached.delete(nodeId);
      this.stats.conflicts += controller.status().conflicts;
      controller.stop();
      stopFeed?.();
      // A crash runs nothing more: the instances die with the process.
      if (reason === 'crash') return;
      return started.then(() => instances.stop());
    };
  }

  async run(): Promise<SlicesResult> {
    const sim = this.options.sim;
    try {
      for (const node of this.nodes) this.queue.after(this.random.nextFloat() * sim.tickMs, () => node.start());
      this.operator.start();
      this.rollout.start();
      this.faults.start();
      this.sample();
      await this.runUntil(sim.safetyPhaseMs, () => this.failed);
      if (!this.failed && this.options.slices.lag) await this.lagPhase();
      if (!this.failed) await this.livenessPhase();
      if (!this.failed && this.stats.convergedMs !== undefined) await this.stabilityPhase();
    } catch (error) {
      this.fail(describeException(error));
    }
    this.rollout.stop();
    for (const a of this.attached.values()) this.stats.conflicts += a.controller.status().conflicts;
    this.stats.simTimeMs = this.queue.nowMs;
    this.stats.events = this.queue.eventsRun;
    this.stats.snapshotsInstalled = this.counters.snapshotsInstalled;
    const violations = [...this.checker.violations, ...this.violations];
    return { options: this.options, violations, stats: this.stats, traceDigest: this.trace.digest, trace: violations.length > 0 ? this.trace.last(this.hooks.traceLines ?? 30) : [] };
  }

  private runUntil(untilMs: number, shouldStop: () => boolean): Promise<number> {
    return this.queue.runUntilSettled(untilMs, shouldStop, yieldToEventLoop);
  }

  /** The always-checks on every running node with a fed table, every SAMPLE_INTERVAL_MS. */
  private sample(): void {
    if (!this.sampling || this.failed) return;
    for (const [id, a] of this.attached) {
      const problems = alwaysProblems(a.node.kv, this.options.placement.nodeInstancesMax);
      if (problems.length > 0) return this.report('placement-safety', `node ${id}: ${problems.join('; ')}`);
      const guard = a.node.kv.get(PLACEMENT_GUARD_KEY);
      const term = guard === undefined ? 0 : (JSON.parse(guard.value) as { term: number }).term;
      if (term < a.guardTerm) return this.report('placement-safety', `node ${id}: the placement guard went back from term ${a.guardTerm} to ${term}`);
      a.guardTerm = term;
      if (!a.fed) continue;
      this.stats.tableChecks++;
      const differences = tableProblems(a.table, a.node.kv, `node ${id}'s table at revision ${a.node.kv.revision()}`);
      if (differences.length > 0) return this.report('routing-table', `the routing table differs from the node's own state:\n    ${differences.join('\n    ')}`);
    }
    this.queue.after(SAMPLE_INTERVAL_MS, () => this.sample());
  }

  /** Heals and restarts everything, then cuts one node off until it needs a snapshot. */
  private async lagPhase(): Promise<void> {
    this.faults.stop();
    this.network.healAll();
    for (const node of this.nodes) {
      if (node.stopping) node.crash(false);
      if (!node.up) node.restart();
    }
    await yieldToEventLoop();
    const lagging = this.pickSpareable();
    if (lagging === 0) return;
    this.stats.lagNode = lagging;
    const others = this.nodes.map((n) => n.id).filter((id) => id !== lagging);
    this.network.partition(
      others.flatMap((id) => [
        [lagging, id],
        [id, lagging],
      ]),
      `lag: isolate ${lagging}`,
    );
    const behind = (): boolean => {
      const leader = this.leader();
      if (leader === undefined || leader.id === lagging) return false;
      return this.nodes[leader.id - 1]!.disk.storage.firstIndex() > this.nodes[lagging - 1]!.disk.storage.lastIndex() + 1;
    };
    await this.runUntil(this.queue.nowMs + this.options.slices.lagMsMax, () => this.failed || behind());
    if (this.failed) return;
    this.stats.lagNeededSnapshot = behind();
    this.network.heal();
    const installedBefore = this.counters.snapshotsInstalled;
    await this.runUntil(this.queue.nowMs + LAG_REJOIN_MS_MAX, () => this.failed || (this.stats.lagNeededSnapshot && this.counters.snapshotsInstalled > installedBefore));
    this.stats.lagSnapshots = this.counters.snapshotsInstalled - installedBefore;
  }

  /** Heals, restarts all but (maybe) one node, settles the writers and waits (bounded) for convergence. */
  private async livenessPhase(): Promise<void> {
    const sim = this.options.sim;
    const p = this.options.placement;
    const healAtMs = this.queue.nowMs;
    this.faults.stop();
    this.operator.stop();
    this.network.healAll();
    const keptDown = p.keepOneDown ? this.pickSpareable() : 0;
    this.stats.keptDown = keptDown;
    this.trace.record(healAtMs, 0, 'liveness-phase', `heal, restart ${sim.livenessFullRestart ? 'all nodes' : 'crashed nodes'}${keptDown === 0 ? '' : `, keep node ${keptDown} down`}`);
    for (const node of this.nodes) {
      if (node.up && (node.id === keptDown || sim.livenessFullRestart || node.stopping)) node.crash(false);
      if (!node.up && node.id !== keptDown) node.restart();
    }
    this.rollout.finish(() => this.finalStateInPlace());
    await yieldToEventLoop();
    // The kept-down node counts as gone once the timeout has surely passed on the leader's drifting clock.
    const goneAfterMs = healAtMs + p.nodeDownAfterMs * (1 + sim.tickDriftFraction) * 1.01 + p.recheckIntervalMs;
    const deadlineMs = goneAfterMs + sim.livenessTicksMax * sim.tickMs + INSTANCE_LIFECYCLE_SLACK_MS;
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
    if (last.length > 0) {
      this.report('slices-liveness', `no convergence within ${(deadlineMs - healAtMs).toFixed(0)} ms of the heal:\n    ${last.slice(0, 12).join('\n    ')}${last.length > 12 ? `\n    … and ${last.length - 12} more` : ''}\n    nodes: ${describeNodes(this.nodes)}`);
      return;
    }
    this.stats.convergedMs = this.queue.nowMs - healAtMs;
    this.checkRoutes();
  }

  /**
   * A running node whose loss leaves a quorum of voters in every membership a running node holds,
   * drawn from the seed; 0 when none.
   */
  private pickSpareable(): number {
    const configs = this.nodes.filter((n) => n.up).map((n) => n.status()!.confState.voters);
    if (configs.length === 0) return 0;
    const down = new Set(this.nodes.filter((n) => !n.up).map((n) => n.id));
    const spareable = (id: number): boolean =>
      configs.every((voters) => {
        const left = voters.filter((v) => v !== id && !down.has(v)).length;
        return left >= Math.floor(voters.length / 2) + 1;
      });
    const candidates = this.nodes.filter((n) => n.up && spareable(n.id)).map((n) => n.id);
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

  /** Whether the leader's state holds the rollout stand-in's final writes. */
  private finalStateInPlace(): boolean {
    const leader = this.leader();
    if (leader === undefined) return false;
    return this.rollout.finalOperations().every((op) => op.type === 'put' && leader.node.kv.get(op.key)?.value === op.value);
  }

  /** Live members: voters and learners (per the leader) that run and are not stopping. */
  private liveMembers(leader: Attached): Set<number> {
    const { voters, learners } = leader.node.status().confState;
    const running = new Set(this.nodes.filter((n) => n.up && !n.stopping).map((n) => n.id));
    return new Set([...voters, ...learners].filter((id) => running.has(id)));
  }

  private convergenceProblems(keptDown: number, keptDownIsGone: boolean): string[] {
    const leader = this.leader();
    if (leader === undefined) return ['no leader'];
    // Judge only a state the leader's controller has planned on (see placement/simulation.ts).
    const status = leader.node.status();
    const guard = leader.node.kv.get(PLACEMENT_GUARD_KEY);
    const claimedTerm = guard === undefined ? 0 : (JSON.parse(guard.value) as { term: number }).term;
    if (claimedTerm !== status.term) return [`the leader (node ${leader.id}, term ${status.term}) has not claimed placement yet (guard term ${claimedTerm})`];
    if (!this.finalStateInPlace()) return ['the rollout stand-in has not settled yet'];
    const live = this.liveMembers(leader);
    const liveness: Liveness = { liveMembers: live, goneNodes: new Set(keptDown !== 0 && keptDownIsGone ? [keptDown] : []), nodeInstancesMax: this.options.placement.nodeInstancesMax };
    const problems = convergedProblems(leader.node.kv, liveness);
    if (keptDown !== 0 && !keptDownIsGone) problems.push(`node ${keptDown} is not down for long enough yet`);
    const members: MemberSlices[] = [];
    for (const id of live) {
      const a = this.attached.get(id);
      if (a === undefined || !a.fed) problems.push(`node ${id}'s slice services have not started`);
      else members.push({ id, table: a.table, hosted: a.instances.status() });
    }
    problems.push(...instancesConvergedProblems(leader.node.kv, members));
    return problems;
  }

  /** Whole weight periods of calls on every live member, for every artifact the stand-in drives. */
  private checkRoutes(): void {
    const leader = this.leader();
    if (leader === undefined) return;
    for (const id of this.liveMembers(leader)) {
      const a = this.attached.get(id)!;
      for (const base of this.rollout.bases) {
        const check = checkRouting(a.table, base, id, this.options.slices.routePeriods);
        if (!check.ran) continue;
        this.stats.routeChecks++;
        this.stats.routeCalls += check.calls;
        if (check.problems.length > 0) return this.report('routing-split', check.problems.join('\n    '));
      }
    }
  }

  /** With nothing happening, the assignments and ACTIVE reports must stay as they are. */
  private async stabilityPhase(): Promise<void> {
    const leader = this.leader();
    if (leader === undefined) return;
    // A write or a membership change proposed before the heal may still land: then a change is legitimate.
    const inputs = (a: Attached): string => JSON.stringify([a.node.kv.range(BLUEPRINT_PREFIX, 0).kvs.map((e) => [e.key, e.modRevision]), a.node.kv.range(VERSION_ROUTING_PREFIX, 0).kvs.map((e) => [e.key, e.modRevision]), a.node.status().confState]);
    const placement = (a: Attached): string[] => [...a.node.kv.range(ASSIGNMENT_PREFIX, 0).kvs.map((e) => e.key), ...activeReports(a.node.kv.range(INSTANCE_PREFIX, 0).kvs).map((key) => `${key} ACTIVE`)];
    const [inputsBefore, before] = [inputs(leader), placement(leader)];
    this.stats.assignments = leader.node.kv.range(ASSIGNMENT_PREFIX, 0).kvs.length;
    this.stats.activeInstances = before.length - this.stats.assignments;
    await this.runUntil(this.queue.nowMs + this.options.placement.stableMs, () => this.failed);
    if (this.failed) return;
    this.sampling = false;
    this.rollout.stop();
    const now = this.leader();
    if (now === undefined) return this.report('slices-churn', 'no leader after the stability period');
    if (inputs(now) !== inputsBefore) {
      this.trace.record(this.queue.nowMs, 0, 'stability-skipped', 'blueprints, routing or membership changed after convergence');
      return;
    }
    const after = placement(now);
    if (JSON.stringify(after) !== JSON.stringify(before)) this.report('slices-churn', `the converged assignments or ACTIVE reports changed with nothing happening:\n    before ${before.join(' ')}\n    after  ${after.join(' ')}`);
  }
}
