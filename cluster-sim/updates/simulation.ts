/**
 * The rolling-updates scenario on the node target (issue 5's simulator acceptance). Every
 * simulated node runs, on each incarnation and over `nodeClusterPort(node)`, what a production
 * node runs for updates: the routing-table feed, the real `InstanceManager` (in-memory slices,
 * `loader.ts`), the `PlacementController`, the real `Invoker` with `InvocationMetrics`, a
 * `MetricsPusher` sending windows to the leader's `MetricsAggregator` over the simulated network,
 * and the `UpdatesHost` (the leader-only `UpdateController`, reading health from that aggregator).
 * Remote calls go through `SimRemoteCaller`: the request and the reply cross the simulated links
 * with their delays (a lost packet costs a retransmission), CONNECT_FAILED when the link is down
 * or the target is down before sending, a deadline when the link or the target goes away after.
 *
 * Actors: traffic (every node calls every artifact every `callIntervalMs`), the operator
 * (`operator.ts`: publishes, starts updates with every strategy, SetRouting/Complete, Approve,
 * pause/resume, rollback, cancel), the fault scheduler (partitions, clogs, crashes, stops,
 * transfers, membership changes), and the leader crasher: in `every-step` mode, the leader is
 * crashed right after each update-record change it applies (seen through its KV watch), then
 * restarted after a short downtime.
 *
 * Phases: (1) faults on for the node target's safety phase plus `extraSafetyMs`; every applied
 * entry on every node is checked (`checker.ts`). (2) Heal, restart everything; the operator
 * settles; every update must reach a terminal state within SETTLE_BOUND_MS (FAILED with a
 * reason). (3) One clean update per artifact, outcome known in advance: a healthy version ends
 * COMPLETED at 1:0 with the old version cleaned per policy (gone at or after the grace deadline,
 * or kept under MANUAL), a bad one ROLLED_BACK at 0:1 with the new version gone; and on every
 * live node, every call started after the final routing write reached the expected version.
 */
import type { CutoverNode } from '../../src/node/node.ts';
import { nodeClusterPort, type ClusterPort } from '../../src/node/cluster-port.ts';
import { UpdatesHost } from '../../src/node/updates-host.ts';
import { Invoker } from '../../src/invoker/invoker.ts';
import { MetricsAggregator } from '../../src/invoker/metrics-aggregator.ts';
import { InvocationMetrics, MetricsPusher, parseMetricsWindow, type MetricsWindow } from '../../src/invoker/metrics.ts';
import type { RemoteCallRequest, RemoteCaller } from '../../src/invoker/remote.ts';
import { RoutingTable } from '../../src/invoker/routing-table.ts';
import { followRoutingTable } from '../../src/invoker/table-feed.ts';
import { yieldToEventLoop } from '../../src/platform/yield.ts';
import { InstanceManager } from '../../src/slices/instance-manager.ts';
import { PlacementController } from '../../src/slices/placement-controller.ts';
import { INSTANCE_PREFIX, blueprintKey, instanceKey, parseInstanceKey, versionRoutingKey, type ArtifactBase } from '../../src/slices/keys.ts';
import { UPDATE_PREFIX, isTerminal, updateKey, type UpdateRecord } from '../../src/updates/record.ts';
import type { Clock } from '../../src/util/clock.ts';
import { CutoverError } from '../../src/util/errors.ts';
import { nodeId } from '../../src/util/ids.ts';
import type { Logger } from '../../src/util/logger.ts';
import { SeededRandom } from '../../src/util/random.ts';
import { InvariantChecker, type ViolationKind } from '../checkers/invariants.ts';
import { EventQueue } from '../events.ts';
import { FaultScheduler, type FaultStats } from '../faults.ts';
import { SimNetwork } from '../network.ts';
import { TRACE_CAPACITY, describeException, describeNodes, type RunHooks } from '../outcome.ts';
import { RuntimeNode, type Detach } from '../runtime/runtime-node.ts';
import { simAddress } from '../runtime/sim-transport.ts';
import { InstantGuard, buildSimCluster, clientPort, leaderOf, quietLogger, throttledCheck, traceLogger, updateRecordsOn } from '../scenario/node-services.ts';
import { Trace } from '../trace.ts';
import { NodeView, UpdateHistory, WATCHED_PREFIXES } from './checker.ts';
import { HEALTHY, UpdatesSliceLoader, type CallReply, type VersionBehaviour } from './loader.ts';
import { UpdatesOperator, type OperatorStats } from './operator.ts';
import type { UpdatesRunOptions } from './options.ts';

export type UpdatesViolationKind = 'update-safety' | 'update-liveness' | 'update-outcome' | 'update-traffic';

export interface UpdatesViolation {
  readonly kind: ViolationKind | UpdatesViolationKind;
  readonly atMs: number;
  readonly message: string;
}

export interface UpdatesStats {
  simTimeMs: number;
  events: number;
  faults: FaultStats;
  operator: OperatorStats;
  calls: number;
  callsOk: number;
  callErrors: Record<string, number>;
  remoteCalls: number;
  windowsPushed: number;
  stepsCommitted: number;
  recordPuts: number;
  checkedEntries: number;
  /** Leader crashes right after an update step, by "strategy step". */
  leaderCrashes: number;
  crashedAfter: Record<string, number>;
  /** Updates by final state. */
  outcomes: Record<string, number>;
  settledMs: number | undefined;
  finalOutcomes: string[];
  finalCalls: number;
}

export interface UpdatesResult {
  readonly options: UpdatesRunOptions;
  readonly violations: readonly UpdatesViolation[];
  readonly stats: UpdatesStats;
  readonly traceDigest: string;
  readonly trace: readonly string[];
}

/** Epoch of the simulated wall clocks (2024-01-01). */
const EPOCH_MS = 1_704_067_200_000;
const SETTLE_BOUND_MS = 150_000;
const FINAL_BOUND_MS = 120_000;
const TRAFFIC_CHECK_MS = 2000;
const CLEANUP_BOUND_MS = 20_000;
/** A lost packet on a connection costs a retransmission. */
const RETRANSMIT_MS = 200;

interface Attached {
  readonly id: number;
  readonly node: CutoverNode;
  readonly port: ClusterPort;
  /** The operator's view of this node: a client's connection, refused once the incarnation is gone. */
  readonly client: ClusterPort;
  readonly clock: Clock;
  readonly table: RoutingTable;
  readonly instances: InstanceManager;
  readonly aggregator: MetricsAggregator;
  readonly host: UpdatesHost;
  started: boolean;
  /** Final check: calls started at or after this revision per artifact, and the versions they reached. */
  readonly picks: Map<string, Map<string, number>>;
}

export function runUpdatesSimulation(options: UpdatesRunOptions, hooks: RunHooks = {}): Promise<UpdatesResult> {
  return new UpdatesSimulation(options, hooks).run();
}

class UpdatesSimulation {
  private readonly queue = new EventQueue();
  private readonly trace: Trace;
  private readonly checker: InvariantChecker;
  private readonly network: SimNetwork;
  private readonly nodes: RuntimeNode[];
  private readonly faults: FaultScheduler;
  private readonly operator: UpdatesOperator;
  private readonly random: SeededRandom;
  private readonly netRandom: SeededRandom;
  private readonly loaderRandom: SeededRandom;
  private readonly counters = { snapshotsTaken: 0, snapshotsInstalled: 0 };
  private readonly attached = new Map<number, Attached>();
  private readonly violations: UpdatesViolation[] = [];
  private readonly history: UpdateHistory;
  private readonly skewMs: number[];
  private readonly stats: UpdatesStats;
  private crashing = false;
  private faultsOn = true;
  /** Final check: base -> minimum start revision of the calls recorded. */
  private readonly pickFrom = new Map<string, number>();
  /** Stops a run whose simulated time no longer moves (a busy loop). */
  private readonly instant = new InstantGuard(() => this.queue.nowMs, (message) => this.report('update-liveness', message));

  constructor(
    private readonly options: UpdatesRunOptions,
    private readonly hooks: RunHooks,
  ) {
    const sim = options.sim;
    this.trace = new Trace(TRACE_CAPACITY, hooks.verbose);
    this.checker = new InvariantChecker(() => this.queue.nowMs, false);
    const { root, network, nodes, faults } = buildSimCluster({
      queue: this.queue,
      trace: this.trace,
      checker: this.checker,
      sim,
      counters: this.counters,
      scenario: 'updates',
      fail: (message) => this.fail(message),
      attach: (id, node, clock) => this.attach(id, node, clock),
    });
    this.network = network;
    this.nodes = nodes;
    this.faults = faults;
    this.random = root.fork();
    this.netRandom = root.fork();
    this.loaderRandom = root.fork();
    const own = new SeededRandom(sim.seed ^ 0x0bda7e5);
    this.skewMs = Array.from({ length: sim.nodes + 1 }, () => (own.nextFloat() * 2 - 1) * 100);
    this.history = new UpdateHistory((message) => this.report('update-safety', message));
    this.operator = new UpdatesOperator(
      this.queue,
      root.fork(),
      options,
      this.trace,
      () => [...this.attached.values()].filter((a) => a.started).map((a) => a.client),
      () => Math.round(EPOCH_MS + this.queue.nowMs),
      (message) => this.fail(message),
      (base, version) => this.behaviour(base, version) !== HEALTHY,
    );
    this.stats = {
      simTimeMs: 0,
      events: 0,
      faults: this.faults.stats,
      operator: this.operator.stats,
      calls: 0,
      callsOk: 0,
      callErrors: {},
      remoteCalls: 0,
      windowsPushed: 0,
      stepsCommitted: 0,
      recordPuts: 0,
      checkedEntries: 0,
      leaderCrashes: 0,
      crashedAfter: {},
      outcomes: {},
      settledMs: undefined,
      finalOutcomes: [],
      finalCalls: 0,
    };
  }

  /** How a version behaves: 1.0.0 is healthy; others are bad with `badRate`, fixed per seed. */
  private behaviour(base: string, version: string): VersionBehaviour {
    if (version === '1.0.0') return HEALTHY;
    const u = this.options.updates;
    let h = this.options.sim.seed * 2654435761;
    for (const c of `${base}:${version}`) h = Math.imul(h ^ c.charCodeAt(0), 16777619) >>> 0;
    if ((h % 1000) / 1000 >= u.badRate) return HEALTHY;
    const kind = u.badKind === 'both' ? (h % 2 === 0 ? 'errors' : 'latency') : u.badKind;
    return kind === 'errors' ? { errorRate: u.badErrorRate, addedLatencyMs: 0 } : { errorRate: 0, addedLatencyMs: u.badLatencyMs };
  }

  private get failed(): boolean {
    return this.checker.failed || this.violations.length > 0;
  }

  private fail(message: string): void {
    if (!this.checker.failed) this.checker.report('exception', message);
  }

  private report(kind: UpdatesViolationKind, message: string): void {
    if (!this.failed) this.violations.push({ kind, atMs: this.queue.nowMs, message });
  }

  private serviceLogger(node: number, component: string): Logger {
    return traceLogger(this.trace, () => this.queue.nowMs, node, component);
  }

  private attach(id: number, node: CutoverNode, clock: Clock): Detach {
    const p = this.options.placement;
    const u = this.options.updates;
    const port = nodeClusterPort(node);
    const wallClockMs = (): number => Math.round(EPOCH_MS + this.queue.nowMs + this.skewMs[id]!);
    const quiet = quietLogger();
    const placement = new PlacementController({ port, clock, logger: quiet, nodeDownAfterMs: p.nodeDownAfterMs, nodeInstancesMax: p.nodeInstancesMax, recheckIntervalMs: p.recheckIntervalMs });
    const instances = new InstanceManager({
      port,
      loader: new UpdatesSliceLoader(clock, this.loaderRandom.fork(), u, (base, version) => this.behaviour(base, version)),
      clock,
      logger: quiet,
      address: simAddress(id),
      healthAttempts: 3,
      healthIntervalMs: 100,
      stoppedRetentionMs: 1000,
    });
    const table = new RoutingTable();
    const metrics = new InvocationMetrics({ startMs: clock.nowMs() });
    const aggregator = new MetricsAggregator({ clock });
    const host = new UpdatesHost({
      port,
      clock,
      wallClockMs,
      logger: this.serviceLogger(id, 'updates'),
      aggregator,
      nodeDownAfterMs: p.nodeDownAfterMs,
      nodeInstancesMax: p.nodeInstancesMax,
      onCommit: (event) => {
        this.stats.stepsCommitted++;
        this.history.commit(id, event.updateId, event.step, event.revision);
      },
    });
    const client = clientPort(port, () => this.attached.get(id) === a);
    const a: Attached = { id, node, port, client, clock, table, instances, aggregator, host, started: false, picks: new Map() };
    const remote: RemoteCaller = { call: (address, request, timeoutMs) => this.remoteCall(a, address, request, timeoutMs) };
    const invoker = new Invoker({ table, localNodeId: id, remote, local: instances, metrics, clock, defaultTimeoutMs: u.callTimeoutMs });
    const pusher = new MetricsPusher({ nodeId: id, metrics, clock, intervalMs: u.metricsIntervalMs, send: (window) => this.pushWindow(a, window) });
    this.attached.set(id, a);
    let detached = false;
    const stops: (() => void)[] = [];
    let started: Promise<void> = Promise.resolve();
    const start = async (): Promise<void> => {
      const stopFeed = await followRoutingTable(port, table);
      stops.push(stopFeed);
      if (detached) return stopFeed();
      const revision = node.kv.revision();
      const initial = WATCHED_PREFIXES.flatMap((prefix) => node.kv.range(prefix, 0).kvs);
      const view = new NodeView(id, initial, this.history, (message) => this.report('update-safety', message));
      stops.push(
        port.watch('', revision + 1, (events) => {
          const watched = events.filter((e) => WATCHED_PREFIXES.some((prefix) => e.kv.key.startsWith(prefix)));
          if (watched.length === 0) return;
          const checkedBefore = view.checkedEntries;
          view.apply(watched);
          this.stats.checkedEntries += view.checkedEntries - checkedBefore;
          if (watched.some((e) => e.kv.key.startsWith(UPDATE_PREFIX) && e.type === 'put')) this.afterStep(a, watched.find((e) => e.kv.key.startsWith(UPDATE_PREFIX))!.kv.value);
        }),
      );
      stops.push(
        port.onLeaderChange((leader) => {
          if (leader !== id) aggregator.clear();
        }),
      );
      await instances.start();
      if (detached) return;
      placement.start();
      pusher.start();
      host.start();
      a.started = true;
      this.traffic(a, invoker);
    };
    const cancel = clock.schedule(0, () => {
      if (detached) return;
      started = start().catch((error: unknown) => {
        if (typeof (error as { code?: unknown }).code === 'string') this.trace.record(this.queue.nowMs, id, 'services-start-failed', String(error));
        else this.fail(`node ${id}: starting the services failed: ${describeException(error)}`);
      });
    });
    return (reason) => {
      if (detached) return;
      detached = true;
      cancel();
      if (this.attached.get(id) === a) this.attached.delete(id);
      a.started = false;
      host.stop();
      pusher.stop();
      placement.stop();
      for (const stop of stops) stop();
      if (reason === 'crash') return;
      return started.then(() => instances.stop());
    };
  }

  /** Every `callIntervalMs`, one call per artifact through the real invoker. */
  private traffic(a: Attached, invoker: Invoker): void {
    const u = this.options.updates;
    const tick = (): void => {
      if (this.attached.get(a.id) !== a) return;
      for (const artifact of this.operator.artifacts) {
        if (!artifact.deployed) continue;
        const base = artifact.base;
        const startRevision = a.node.kv.revision();
        this.stats.calls++;
        invoker.invoke(base, 'call', { from: a.id }, { timeoutMs: u.callTimeoutMs }).then(
          (reply) => {
            this.stats.callsOk++;
            const from = this.pickFrom.get(base);
            if (from !== undefined && startRevision >= from) {
              const version = (reply as CallReply).version;
              let picks = a.picks.get(base);
              if (picks === undefined) a.picks.set(base, (picks = new Map()));
              picks.set(version, (picks.get(version) ?? 0) + 1);
            }
          },
          (error: unknown) => {
            const code = (error as { code?: unknown } | undefined)?.code;
            if (typeof code !== 'string') return this.fail(`node ${a.id}: a call failed without a code: ${describeException(error)}`);
            this.stats.callErrors[code] = (this.stats.callErrors[code] ?? 0) + 1;
          },
        );
      }
      a.clock.schedule(u.callIntervalMs * (0.5 + this.random.nextFloat()), tick);
    };
    a.clock.schedule(this.random.nextFloat() * u.callIntervalMs, tick);
  }

  /** One network leg's delay: the link's, plus a retransmission per lost packet while faults run. */
  private legDelay(): number {
    const sim = this.options.sim;
    let ms = sim.latencyMinMs - sim.latencyMeanMs * Math.log(1 - this.netRandom.nextFloat());
    while (this.network.faulty && this.netRandom.nextFloat() < sim.lossRate) ms += RETRANSMIT_MS;
    return ms;
  }

  /** Delivers `request` to the target's InstanceManager over the simulated links (see the module comment). */
  private remoteCall(from: Attached, address: string, request: RemoteCallRequest, timeoutMs: number): Promise<unknown> {
    this.stats.remoteCalls++;
    const to = Number(address.slice('sim://'.length));
    return new Promise<unknown>((resolve, reject) => {
      let settled = false;
      const settle = (fn: () => void): void => {
        // A caller that died never hears back (its promises are abandoned with the process).
        if (settled || this.attached.get(from.id) !== from) return;
        settled = true;
        fn();
      };
      const target = this.attached.get(to);
      if (!this.network.linkUp(from.id, to) || target === undefined) {
        this.queue.after(0, () => settle(() => reject(new CutoverError('CONNECT_FAILED', `node ${to} unreachable from node ${from.id}`))));
        return;
      }
      this.queue.after(timeoutMs, () => settle(() => reject(new CutoverError('INVOKE_DEADLINE_EXCEEDED', `no answer from node ${to} within ${timeoutMs} ms`))));
      const sentAt = this.queue.nowMs;
      this.queue.after(this.legDelay(), () => {
        if (!this.network.linkUp(from.id, to) || this.attached.get(to) !== target) return;
        if (!target.started) {
          this.reply(from, to, () => settle(() => reject(new CutoverError('INSTANCE_NOT_FOUND', `node ${to} serves no instances yet`))));
          return;
        }
        const key = instanceKey(nodeId(to), request.base as ArtifactBase, request.version, request.instanceId);
        const deadline = target.clock.nowMs() + Math.max(1, timeoutMs - (this.queue.nowMs - sentAt));
        target.instances.invoke(key, request.method, request.payload, deadline).then(
          (value) => {
            if (this.attached.get(to) !== target) return;
            this.reply(from, to, () => settle(() => resolve(JSON.parse(JSON.stringify(value)) as unknown)));
          },
          (error: unknown) => {
            if (this.attached.get(to) !== target) return;
            const code = (error as { code?: unknown } | undefined)?.code;
            const wire = typeof code === 'string' ? new CutoverError(code, (error as Error).message) : new CutoverError('INTERNAL', String(error));
            this.reply(from, to, () => settle(() => reject(wire)));
          },
        );
      });
    });
  }

  private reply(from: Attached, to: number, deliver: () => void): void {
    this.queue.after(this.legDelay(), () => {
      if (this.network.linkUp(to, from.id)) deliver();
    });
  }

  /** A metrics window to the leader: its own aggregator, or over the network to the leader this node knows. */
  private pushWindow(a: Attached, window: MetricsWindow): Promise<void> {
    if (a.port.isLeader()) {
      a.aggregator.ingest(window);
      this.stats.windowsPushed++;
      return Promise.resolve();
    }
    const leaderId = a.node.status().leader;
    if (leaderId === 0 || leaderId === a.id) return Promise.reject(new CutoverError('NOT_LEADER', 'no leader known'));
    const wire = JSON.parse(JSON.stringify(window)) as unknown;
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const settle = (fn: () => void): void => {
        if (settled || this.attached.get(a.id) !== a) return;
        settled = true;
        fn();
      };
      this.queue.after(2000, () => settle(() => reject(new CutoverError('INVOKE_DEADLINE_EXCEEDED', 'push timed out'))));
      const leader = this.attached.get(leaderId);
      if (!this.network.linkUp(a.id, leaderId) || leader === undefined) {
        this.queue.after(0, () => settle(() => reject(new CutoverError('CONNECT_FAILED', `leader ${leaderId} unreachable`))));
        return;
      }
      this.queue.after(this.legDelay(), () => {
        if (!this.network.linkUp(a.id, leaderId) || this.attached.get(leaderId) !== leader) return;
        let outcome: () => void;
        if (!leader.port.isLeader()) outcome = () => reject(new CutoverError('NOT_LEADER', `node ${leaderId} does not lead`));
        else {
          const parsed = parseMetricsWindow(wire);
          if (parsed.ok) {
            leader.aggregator.ingest(parsed.value);
            this.stats.windowsPushed++;
          }
          outcome = parsed.ok ? () => resolve() : () => reject(new CutoverError('INVALID_ARGUMENT', parsed.reason));
        }
        this.reply(a, leaderId, () => settle(outcome));
      });
    });
  }

  /** The leader crasher: right after the leader applies an update-record change, crash it. */
  private afterStep(a: Attached, value: string): void {
    const u = this.options.updates;
    if (!this.faultsOn || u.leaderCrash === 'off' || this.crashing || !a.port.isLeader()) return;
    if (u.leaderCrash === 'some' && this.random.nextFloat() >= 0.3) return;
    const runtime = this.nodes[a.id - 1]!;
    if (this.nodes.some((n) => n !== runtime && (!n.up || n.stopping))) return;
    let label = '?';
    try {
      const record = JSON.parse(value) as UpdateRecord;
      label = `${record.strategy.kind} ${record.log[record.log.length - 1]?.step.replace(/\d+\/\d+/, 'k/n').replace(/route \d+:\d+/, 'route') ?? '?'}`;
    } catch {
      // An unreadable record is the checker's business.
    }
    this.crashing = true;
    this.queue.after(this.random.nextFloat() * u.leaderCrashDelayMaxMs, () => {
      this.crashing = false;
      if (!this.faultsOn || this.attached.get(a.id) !== a || !runtime.up || runtime.stopping) return;
      this.stats.leaderCrashes++;
      this.stats.crashedAfter[label] = (this.stats.crashedAfter[label] ?? 0) + 1;
      this.trace.record(this.queue.nowMs, a.id, 'leader-crash', `after ${label}`);
      runtime.crash(false);
      this.queue.after(50 + this.random.nextFloat() * u.leaderDownMsMax, () => {
        if (!runtime.up) runtime.restart();
      });
    });
  }

  async run(): Promise<UpdatesResult> {
    const sim = this.options.sim;
    try {
      for (const node of this.nodes) this.queue.after(this.random.nextFloat() * sim.tickMs, () => node.start());
      this.operator.start();
      this.faults.start();
      await this.runUntil(sim.safetyPhaseMs + this.options.updates.extraSafetyMs, () => this.failed);
      if (!this.failed) await this.settlePhase();
      if (!this.failed && this.stats.settledMs !== undefined) await this.finalPhase();
    } catch (error) {
      this.fail(describeException(error));
    }
    this.operator.stop();
    this.stats.simTimeMs = this.queue.nowMs;
    this.stats.events = this.queue.eventsRun;
    this.stats.recordPuts = this.history.puts_;
    for (const record of this.history.latest()) this.stats.outcomes[record.state] = (this.stats.outcomes[record.state] ?? 0) + 1;
    const violations = [...this.checker.violations, ...this.violations];
    return { options: this.options, violations, stats: this.stats, traceDigest: this.trace.digest, trace: violations.length > 0 ? this.trace.last(this.hooks.traceLines ?? 30) : [] };
  }

  private runUntil(untilMs: number, shouldStop: () => boolean): Promise<number> {
    return this.queue.runUntilSettled(untilMs, () => this.instant.stuck() || shouldStop(), yieldToEventLoop);
  }

  /** `check` at most every CHECK_INTERVAL_MS of simulated time (it reads and parses state). */
  private throttled(check: () => boolean): () => boolean {
    return throttledCheck(() => this.queue.nowMs, () => this.failed, check);
  }

  private leader(): Attached | undefined {
    return leaderOf(this.attached.values());
  }

  /** Records on the leader; undefined when there is no leader. */
  private leaderRecords(): UpdateRecord[] | undefined {
    const leader = this.leader();
    return leader === undefined ? undefined : updateRecordsOn(leader.node);
  }

  /** Heal and restart; the operator settles; every update must reach a terminal state. */
  private async settlePhase(): Promise<void> {
    const healAtMs = this.queue.nowMs;
    this.faultsOn = false;
    this.faults.stop();
    this.network.healAll();
    for (const node of this.nodes) {
      if (node.stopping) node.crash(false);
      if (!node.up) node.restart();
    }
    this.operator.settle();
    this.trace.record(healAtMs, 0, 'settle-phase', 'heal, restart all; every update must finish');
    let last = 'not checked';
    const settled = (): boolean => {
      const records = this.leaderRecords();
      if (records === undefined) {
        last = 'no leader';
        return false;
      }
      const open = records.filter((r) => !isTerminal(r.state));
      last = open.map((r) => `${r.id} ${r.strategy.kind} ${r.state}${r.paused ? ` paused (${r.pauseReason ?? ''})` : ''} step ${r.stepIndex} routing ${r.routing === null ? '-' : `${r.routing.newWeight}:${r.routing.oldWeight}`} last: ${r.log[r.log.length - 1]?.step ?? ''}`).join('; ');
      return open.length === 0 && this.operator.artifacts.every((x) => x.deployed);
    };
    await this.runUntil(healAtMs + SETTLE_BOUND_MS, this.throttled(settled));
    if (this.failed) return;
    if (!settled()) return this.report('update-liveness', `updates not finished ${SETTLE_BOUND_MS} ms after the heal: ${last}\n    nodes: ${describeNodes(this.nodes)}`);
    this.stats.settledMs = this.queue.nowMs - healAtMs;
    for (const record of this.leaderRecords() ?? []) {
      if (record.state === 'FAILED' && (record.log[record.log.length - 1]?.reason ?? '') === '') this.report('update-outcome', `${record.id} FAILED without a reason`);
    }
  }

  /** One clean update per artifact; its outcome, routing, cleanup and traffic are checked. */
  private async finalPhase(): Promise<void> {
    const startMs = this.queue.nowMs;
    this.operator.finalUpdate();
    const finals = (): UpdateRecord[] | undefined => {
      const records = this.leaderRecords();
      if (records === undefined) return undefined;
      const out: UpdateRecord[] = [];
      for (const artifact of this.operator.artifacts) {
        const record = records.find((r) => r.id === artifact.finalId);
        if (record === undefined || !isTerminal(record.state)) return undefined;
        out.push(record);
      }
      return out;
    };
    await this.runUntil(startMs + FINAL_BOUND_MS, this.throttled(() => finals() !== undefined));
    if (this.failed) return;
    const records = finals();
    if (records === undefined) {
      const open = (this.leaderRecords() ?? []).filter((r) => !isTerminal(r.state)).map((r) => `${r.id} ${r.strategy.kind} ${r.state} ${r.log[r.log.length - 1]?.step ?? ''}`);
      return this.report('update-liveness', `the final updates did not finish within ${FINAL_BOUND_MS} ms: started ${this.operator.artifacts.map((x) => x.finalId ?? '-').join(', ')}; open: ${open.join('; ')}`);
    }
    this.operator.stop();
    const leader = this.leader()!;
    const expected = new Map<string, string>();
    for (const record of records) {
      const bad = this.behaviour(record.base, record.newVersion) !== HEALTHY;
      this.stats.finalOutcomes.push(`${record.strategy.kind}${bad ? '(bad)' : ''}:${record.state}`);
      const want = bad ? 'ROLLED_BACK' : 'COMPLETED';
      if (record.state !== want) return this.report('update-outcome', `${record.id} (${record.strategy.kind}, ${bad ? 'bad' : 'healthy'} ${record.newVersion}) ended ${record.state}, expected ${want}: ${record.log.slice(-4).map((e) => `${e.step} (${e.reason})`).join(' | ')}`);
      const routing = leader.node.kv.get(versionRoutingKey(record.base));
      const ratio = routing === undefined ? undefined : (JSON.parse(routing.value) as { newWeight: number; oldWeight: number; updateId: string });
      const ok = ratio !== undefined && ratio.updateId === record.id && (bad ? ratio.newWeight === 0 && ratio.oldWeight > 0 : ratio.oldWeight === 0 && ratio.newWeight > 0);
      if (!ok) return this.report('update-outcome', `${record.id} ended ${record.state} with routing ${routing?.value ?? 'none'}`);
      if (bad && record.rollback === null) return this.report('update-outcome', `${record.id} ROLLED_BACK without rollback info`);
      // Calls are judged from the final routing write, except after a RECREATE rollback: RECREATE
      // stopped the old instances, and until they are ACTIVE again the invoker sends the calls of
      // a version without ACTIVE instances to the other one (by design: routing-table.ts, its
      // fallback), so they are judged from the ROLLED_BACK step, which waits for the old ones.
      const terminalRevision = leader.node.kv.get(updateKey(record.id))?.modRevision ?? routing!.modRevision;
      this.pickFrom.set(record.base, bad && record.strategy.kind === 'RECREATE' ? terminalRevision : routing!.modRevision);
      expected.set(record.base, bad ? record.oldVersion : record.newVersion);
    }
    // Traffic: every call started after the final routing write reaches the expected version, on
    // every live member. A node removed from the cluster (a membership fault never undone) applies
    // no more entries, so its table is as old as its removal: it is no longer a node of this
    // cluster, and its calls say nothing about the update.
    // A slow version (an earlier bad one can be the version kept) answers after badLatencyMs: the
    // window leaves it time, so the calls started in it are answered before they are counted.
    await this.runUntil(this.queue.nowMs + TRAFFIC_CHECK_MS + this.options.updates.badLatencyMs, () => this.failed);
    if (this.failed) return;
    const members = this.leader()?.node.status().confState;
    if (members === undefined) return this.report('update-liveness', 'no leader when the final traffic was checked');
    for (const a of this.attached.values()) {
      if (!a.started || !(members.voters.includes(a.id) || members.learners.includes(a.id))) continue;
      for (const [base, version] of expected) {
        const picks = a.picks.get(base) ?? new Map<string, number>();
        const total = [...picks.values()].reduce((s, n) => s + n, 0);
        this.stats.finalCalls += total;
        const wrong = [...picks].filter(([v]) => v !== version);
        if (total === 0 || wrong.length > 0) {
          const where = `node ${a.id} applied revision ${a.node.kv.revision()} (the final routing write: ${this.pickFrom.get(base) ?? '?'}), its table revision ${a.table.snapshot().revision}`;
          return this.report('update-traffic', `node ${a.id}: calls to ${base} after the final routing write reached ${JSON.stringify(Object.fromEntries(picks))}, expected only ${version}; ${where}\n    nodes: ${describeNodes(this.nodes)}`);
        }
      }
    }
    // Cleanup per policy: the version that lost is gone (unless the policy is MANUAL) from the blueprints and, soon, from the instances.
    const gone = (record: UpdateRecord): string | undefined => {
      const l = this.leader();
      if (l === undefined) return 'no leader';
      const loser = record.state === 'COMPLETED' ? record.oldVersion : record.newVersion;
      const keep = record.state === 'COMPLETED' && record.cleanup.policy === 'MANUAL';
      const blueprint = l.node.kv.get(blueprintKey(record.base, loser));
      if (keep) return blueprint === undefined ? `${record.id}: MANUAL cleanup, yet the blueprint of ${loser} is gone` : undefined;
      if (blueprint !== undefined) return `${record.id}: the blueprint of ${loser} is still there`;
      const left = l.node.kv.range(INSTANCE_PREFIX, 0).kvs.filter((kv) => {
        const parts = parseInstanceKey(kv.key);
        return parts !== undefined && parts.base === record.base && parts.version.text === loser;
      });
      return left.length > 0 ? `${record.id}: ${left.length} instance(s) of ${loser} still reported` : undefined;
    };
    let problem: string | undefined;
    const cleanupStart = this.queue.nowMs;
    await this.runUntil(
      cleanupStart + CLEANUP_BOUND_MS,
      this.throttled(() => {
        problem = records.map(gone).find((p) => p !== undefined);
        return problem === undefined;
      }),
    );
    if (!this.failed && problem !== undefined) this.report('update-outcome', `cleanup: ${problem}`);
  }
}
