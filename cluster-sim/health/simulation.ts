/**
 * The health scenario on the node target (issue 7 on whole simulated nodes). Every incarnation of
 * every node runs, over `nodeClusterPort(node)`, what a production node runs for it: the
 * routing-table feed, the real `InstanceManager` with a real `HealthMonitor` (its `runRound`
 * scripted per version on the simulated clock: `loader.ts`), the `PlacementController`, the real
 * `Invoker` with its metrics pushed to the leader's `MetricsAggregator`, the `UpdatesHost`, the
 * `EventsHost` (the leader-only pruner, with small bounds so that it prunes) and the `NotifyHost`
 * (the leader-only dispatcher), whose requests cross the simulated network to two receivers
 * (`receiver.ts`): `alpha` is down for a while, `beta` hangs for a while (and again through the
 * whole clean update at the end), both lose requests and answers while faults run.
 *
 * Actors: traffic (every node calls `org.sim:hc0` every `callIntervalMs`), the operator
 * (`operator.ts`: channels, 1.0.0, then updates to versions that are healthy, sick, flapping or
 * never healthy), the fault scheduler (the node target's partitions, clogs, crashes, stops,
 * transfers, membership changes) and the leader crasher (right after an update step, as in the
 * updates scenario).
 *
 * Phases: (1) faults on; every applied entry is checked (`checker.ts`, and the updates scenario's
 * `NodeView`), every pick of an instance by an invoker is checked against the caller's applied
 * state. (2) Heal, restart everything; every update must be terminal within SETTLE_BOUND_MS. (3)
 * One clean update, `beta` hanging through it: its outcome by behaviour, no failed call, every
 * step on time, `alpha` served promptly. (4) Quiet: the pruner's bounds, and every notification
 * delivered, in order, with bounded duplicates. Outcomes of every update are judged by behaviour.
 */
import type { CutoverNode } from '../../src/node/node.ts';
import { nodeClusterPort, type ClusterPort } from '../../src/node/cluster-port.ts';
import { EventsHost } from '../../src/node/events-host.ts';
import { NotifyHost } from '../../src/node/notify-host.ts';
import { UpdatesHost } from '../../src/node/updates-host.ts';
import { EVENT_PREFIX } from '../../src/events/event.ts';
import { HealthMonitor } from '../../src/health/monitor.ts';
import { Invoker, type LocalInstances } from '../../src/invoker/invoker.ts';
import { MetricsAggregator } from '../../src/invoker/metrics-aggregator.ts';
import { InvocationMetrics, MetricsPusher, parseMetricsWindow, type MetricsWindow } from '../../src/invoker/metrics.ts';
import type { RemoteCallRequest, RemoteCaller } from '../../src/invoker/remote.ts';
import { RoutingTable } from '../../src/invoker/routing-table.ts';
import { followRoutingTable } from '../../src/invoker/table-feed.ts';
import { yieldToEventLoop } from '../../src/platform/yield.ts';
import { InstanceManager } from '../../src/slices/instance-manager.ts';
import { PlacementController } from '../../src/slices/placement-controller.ts';
import { INSTANCE_PREFIX, instanceKey, type ArtifactBase } from '../../src/slices/keys.ts';
import { UPDATE_PREFIX, isTerminal, type UpdateRecord } from '../../src/updates/record.ts';
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
import { NodeView, UpdateHistory, WATCHED_PREFIXES } from '../updates/checker.ts';
import { AuditLog, describeUpdate, judgeDeliveries, outcomeProblem, pickProblem, stepLatenessMs, type HealthViolationKind } from './checker.ts';
import { HealthSliceLoader } from './loader.ts';
import { BASE, HealthOperator, type HealthOperatorStats } from './operator.ts';
import type { HealthBehaviour, HealthRunOptions } from './options.ts';
import { SimReceiver, simPost } from './receiver.ts';

export interface HealthViolation {
  readonly kind: ViolationKind | HealthViolationKind;
  readonly atMs: number;
  readonly message: string;
}

export interface HealthStats {
  simTimeMs: number;
  events: number;
  faults: FaultStats;
  operator: HealthOperatorStats;
  calls: number;
  callsOk: number;
  callErrors: Record<string, number>;
  picksChecked: number;
  /** Picks of an instance the caller's state had in another state than ACTIVE/UNHEALTHY (allowed: counted). */
  picksNotActive: number;
  leaderCrashes: number;
  checkedEntries: number;
  auditEvents: number;
  eventsPruned: number;
  eventsMax: number;
  /** Most events in the leader's store from the clean update on (bounded: `judgeEventCount`). */
  eventsMaxAfterHeal: number;
  unhealthyReports: number;
  outcomes: Record<string, number>;
  settledMs: number | undefined;
  finalOutcome: string;
  finalCalls: number;
  /** The clean update replaced a version that is not healthy (flapping): its calls were not judged. */
  finalCallCheckSkipped: boolean;
  deliveries: Record<string, { required: number; delivered: number; duplicates: number; prunedFirst: number; received: number }>;
  givenUp: number;
  stepLatenessMaxMs: number;
  alphaLatencyMaxMs: number;
}

export interface HealthResult {
  readonly options: HealthRunOptions;
  readonly violations: readonly HealthViolation[];
  readonly stats: HealthStats;
  readonly traceDigest: string;
  readonly trace: readonly string[];
}

/** Epoch of the simulated wall clocks (2024-01-01). */
const EPOCH_MS = 1_704_067_200_000;
const SETTLE_BOUND_MS = 150_000;
const FINAL_BOUND_MS = 150_000;
/** Quiet time at the end: deliveries finish, the pruner's interval rounds run. */
const QUIET_MS = 45_000;
/** Through the clean update, `beta` hangs this long from its start. */
const FINAL_HANG_MS = 30_000;
/** A step may run this late after its deadline (the controller's wake-up, a commit round, ±100 ms of clock skew). */
const STEP_LATENESS_MAX_MS = 1700;
/** `alpha` receives an event this soon after its commit while it is up and the leader stays. */
const ALPHA_LATENCY_MAX_MS = 1500;
const RETRANSMIT_MS = 200;
/** Events a leader may write while its pruner's delete is being committed. */
const EVENTS_IN_FLIGHT_SLACK = 3;
/** The cluster must look steady this long before the clean update starts. */
const STEADY_MS = 2000;

interface Attached {
  readonly id: number;
  readonly node: CutoverNode;
  readonly port: ClusterPort;
  readonly client: ClusterPort;
  readonly clock: Clock;
  readonly instances: InstanceManager;
  readonly aggregator: MetricsAggregator;
  /** Filled in once built (the pruner's status goes into reports). */
  events: EventsHost | undefined;
  started: boolean;
}

export function runHealthSimulation(options: HealthRunOptions, hooks: RunHooks = {}): Promise<HealthResult> {
  return new HealthSimulation(options, hooks).run();
}

class HealthSimulation {
  private readonly queue = new EventQueue();
  private readonly trace: Trace;
  private readonly checker: InvariantChecker;
  private readonly network: SimNetwork;
  private readonly nodes: RuntimeNode[];
  private readonly faults: FaultScheduler;
  private readonly operator: HealthOperator;
  private readonly random: SeededRandom;
  private readonly netRandom: SeededRandom;
  private readonly loaderRandom: SeededRandom;
  private readonly postRandom: SeededRandom;
  private readonly counters = { snapshotsTaken: 0, snapshotsInstalled: 0 };
  private readonly attached = new Map<number, Attached>();
  private readonly violations: HealthViolation[] = [];
  private readonly history: UpdateHistory;
  private readonly audit: AuditLog;
  private readonly skewMs: number[];
  private readonly stats: HealthStats;
  private readonly alpha = new SimReceiver('alpha', 'https://alpha.sim/hook');
  private readonly beta = new SimReceiver('beta', 'https://beta.sim/hook');
  /** Event ids some dispatcher gave up (attempts exhausted), by channel. */
  private readonly givenUp = new Map<string, Set<string>>();
  /** Leader terms seen, with the simulated time each began (for the latency check). */
  private readonly termStarts: { term: number; atMs: number }[] = [];
  private crashing = false;
  private faultsOn = true;
  /** Phase 3: calls are judged (every one must succeed), steps are timed. */
  private finalWindow: { fromMs: number; toMs: number } | undefined;
  private readonly finalErrors: Record<string, number> = {};
  /** Stops a run whose simulated time no longer moves (a busy loop). */
  private readonly instant = new InstantGuard(() => this.queue.nowMs, (message) => this.report('health-liveness', message));

  constructor(
    private readonly options: HealthRunOptions,
    private readonly hooks: RunHooks,
  ) {
    const sim = options.sim;
    const h = options.health;
    this.trace = new Trace(TRACE_CAPACITY, hooks.verbose);
    this.checker = new InvariantChecker(() => this.queue.nowMs, false);
    const { root, network, nodes, faults } = buildSimCluster({
      queue: this.queue,
      trace: this.trace,
      checker: this.checker,
      sim,
      counters: this.counters,
      scenario: 'health',
      fail: (message) => this.fail(message),
      attach: (id, node, clock) => this.attach(id, node, clock),
    });
    this.network = network;
    this.nodes = nodes;
    this.faults = faults;
    this.random = root.fork();
    this.netRandom = root.fork();
    this.loaderRandom = root.fork();
    this.postRandom = root.fork();
    const own = new SeededRandom(sim.seed ^ 0x4ea17);
    this.skewMs = Array.from({ length: sim.nodes + 1 }, () => (own.nextFloat() * 2 - 1) * 100);
    this.history = new UpdateHistory((message) => this.report('update-safety', message));
    this.audit = new AuditLog(
      (kind, message) => this.report(kind, message),
      (version) => this.behaviour(version) === 'never',
    );
    this.alpha.addWindow(h.alphaDownAtMs, h.alphaDownAtMs + h.alphaDownMs, 'down');
    this.beta.addWindow(h.betaHangAtMs, h.betaHangAtMs + h.betaHangMs, 'hang');
    this.operator = new HealthOperator(
      this.queue,
      root.fork(),
      options,
      this.trace,
      [this.alpha, this.beta],
      () => [...this.attached.values()].filter((a) => a.started).map((a) => a.client),
      () => Math.round(EPOCH_MS + this.queue.nowMs),
      (message) => this.fail(message),
    );
    this.stats = {
      simTimeMs: 0,
      events: 0,
      faults: this.faults.stats,
      operator: this.operator.stats,
      calls: 0,
      callsOk: 0,
      callErrors: {},
      picksChecked: 0,
      picksNotActive: 0,
      leaderCrashes: 0,
      checkedEntries: 0,
      auditEvents: 0,
      eventsPruned: 0,
      eventsMax: 0,
      eventsMaxAfterHeal: 0,
      unhealthyReports: 0,
      outcomes: {},
      settledMs: undefined,
      finalOutcome: '-',
      finalCalls: 0,
      finalCallCheckSkipped: false,
      deliveries: {},
      givenUp: 0,
      stepLatenessMaxMs: 0,
      alphaLatencyMaxMs: 0,
    };
  }

  /** 1.0.0 is healthy; update k (version k+1.0.0) has the k-th drawn behaviour; the final one its own. */
  behaviour(version: string): HealthBehaviour {
    const major = Number(version.split('.')[0]);
    if (major <= 1) return 'healthy';
    const h = this.options.health;
    return h.behaviours[major - 2] ?? h.finalBehaviour;
  }

  private get failed(): boolean {
    return this.checker.failed || this.violations.length > 0;
  }

  private fail(message: string): void {
    if (!this.checker.failed) this.checker.report('exception', message);
  }

  private report(kind: HealthViolationKind, message: string): void {
    if (!this.failed) this.violations.push({ kind, atMs: this.queue.nowMs, message });
  }

  private serviceLogger(node: number, component: string): Logger {
    return traceLogger(this.trace, () => this.queue.nowMs, node, component);
  }

  /** The dispatcher's log: its warnings are traced, and each notification given up is remembered. */
  private notifyLogger(node: number): Logger {
    const base = this.serviceLogger(node, 'notify');
    const logger: Logger = {
      ...base,
      warn: (obj: object, msg?: string) => {
        const o = obj as { channel?: unknown; eventId?: unknown };
        if (typeof o.channel === 'string' && typeof o.eventId === 'string' && (msg ?? '').startsWith('notification ')) {
          let set = this.givenUp.get(o.channel);
          if (set === undefined) this.givenUp.set(o.channel, (set = new Set()));
          set.add(o.eventId);
          this.stats.givenUp++;
        }
        base.warn(obj, msg);
      },
      child: () => logger,
    };
    return logger;
  }

  private attach(id: number, node: CutoverNode, clock: Clock): Detach {
    const p = this.options.placement;
    const h = this.options.health;
    const port = nodeClusterPort(node);
    const wallClockMs = (): number => Math.round(EPOCH_MS + this.queue.nowMs + this.skewMs[id]!);
    const quiet = quietLogger();
    const loader = new HealthSliceLoader(clock, this.loaderRandom.fork(), h, (version) => this.behaviour(version));
    const monitor = new HealthMonitor({ clock, wallClockMs, runRound: loader.scriptedRound(wallClockMs), logger: quiet });
    const placement = new PlacementController({ port, clock, logger: quiet, nodeDownAfterMs: p.nodeDownAfterMs, nodeInstancesMax: p.nodeInstancesMax, recheckIntervalMs: p.recheckIntervalMs });
    const instances = new InstanceManager({ port, loader, clock, logger: quiet, address: simAddress(id), healthChecks: monitor, wallClockMs, stoppedRetentionMs: 1000 });
    const table = new RoutingTable();
    const metrics = new InvocationMetrics({ startMs: clock.nowMs() });
    const aggregator = new MetricsAggregator({ clock });
    const host = new UpdatesHost({ port, clock, wallClockMs, logger: this.serviceLogger(id, 'updates'), aggregator, nodeDownAfterMs: p.nodeDownAfterMs, nodeInstancesMax: p.nodeInstancesMax, onCommit: (event) => this.history.commit(id, event.updateId, event.step, event.revision) });
    const eventsHost = new EventsHost({ port, clock, wallClockMs, logger: this.serviceLogger(id, 'events'), eventsCountMax: h.eventsCountMax, eventsAgeMsMax: h.eventsAgeMsMax, pruneIntervalMs: h.pruneIntervalMs, pruneBatchMax: h.pruneBatchMax });
    const client = clientPort(port, () => this.attached.get(id) === a);
    const a: Attached = { id, node, port, client, clock, instances, aggregator, events: eventsHost, started: false };
    const notify = new NotifyHost({
      port,
      // The dispatcher learns of the crash only through its port (a start it was retrying fails
      // then and asks for a retry timer): a dead process schedules nothing, so neither does it.
      clock: { nowMs: () => clock.nowMs(), schedule: (ms, fn) => (this.attached.get(id) === a ? clock.schedule(ms, fn) : () => {}) },
      wallClockMs,
      random: this.postRandom.fork(),
      logger: this.notifyLogger(id),
      settings: { requestTimeoutMs: h.notifyTimeoutMs, attemptsMax: h.notifyAttemptsMax, retryDelayMsMin: h.notifyRetryDelayMsMin, retryDelayMsMax: h.notifyRetryDelayMsMax, cursorWriteIntervalMs: h.cursorWriteIntervalMs },
      post: simPost(
        { queue: this.queue, random: this.postRandom, receivers: [this.alpha, this.beta], legDelayMs: () => this.legDelay(), lossRate: () => (this.faultsOn ? h.receiverLossRate : 0) },
        () => this.attached.get(id) === a,
      ),
    });
    const local: LocalInstances = {
      invoke: (key, method, payload, deadlineAt) => {
        this.judgePick(a, key);
        return instances.invoke(key, method, payload, deadlineAt);
      },
    };
    const remote: RemoteCaller = { call: (address, request, timeoutMs) => this.remoteCall(a, address, request, timeoutMs) };
    const invoker = new Invoker({ table, localNodeId: id, remote, local, metrics, clock, defaultTimeoutMs: h.callTimeoutMs });
    const pusher = new MetricsPusher({ nodeId: id, metrics, clock, intervalMs: h.metricsIntervalMs, send: (window) => this.pushWindow(a, window) });
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
          this.audit.entry(id, events, this.queue.nowMs, (key) => node.kv.get(key) !== undefined);
          if (this.finalWindow !== undefined && port.isLeader() && events.some((e) => e.type === 'put' && e.kv.key.startsWith(EVENT_PREFIX))) this.judgeEventCount(node);
          this.observeRecords(events);
          const watched = events.filter((e) => WATCHED_PREFIXES.some((prefix) => e.kv.key.startsWith(prefix)));
          if (watched.length === 0) return;
          view.apply(watched);
          const step = watched.find((e) => e.kv.key.startsWith(UPDATE_PREFIX) && e.type === 'put');
          if (step !== undefined) {
            this.judgeCompleting(a, step.kv.value, step.revision);
            this.afterStep(a, step.kv.value);
          }
        }),
      );
      stops.push(
        port.onLeaderChange((leader) => {
          if (leader !== id) aggregator.clear();
          else this.termStarts.push({ term: port.term(), atMs: this.queue.nowMs });
        }),
      );
      await instances.start();
      if (detached) return;
      placement.start();
      pusher.start();
      host.start();
      eventsHost.start();
      notify.start();
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
      eventsHost.stop();
      pusher.stop();
      placement.stop();
      for (const stop of stops) stop();
      // A crash: the process is gone; nothing is stopped (the monitor's and the instances' timers
      // never fire again; closing them would start stop() calls on the dead clock).
      if (reason === 'crash') return;
      return started.then(async () => {
        await notify.stop();
        await instances.stop();
        monitor.close();
      });
    };
  }

  /**
   * The routing invariant, at the moment an invoker hands a call to an instance: the caller's own
   * applied state must not have that instance UNHEALTHY (its table, fed by the same applies,
   * excludes it). Other non-ACTIVE states are counted only (a record deleted or drained while
   * the table still had it is a race the invoker's retry covers).
   */
  private judgePick(a: Attached, key: string): void {
    this.stats.picksChecked++;
    const kv = a.node.kv.get(key);
    const verdict = pickProblem(a.id, a.node.kv.revision(), key, kv);
    if (verdict === 'not-active') this.stats.picksNotActive++;
    else if (verdict !== undefined) this.report('health-routing', verdict);
  }

  /** Every update-record put, first seen: the step timing check (phase 3) and the unhealthy count. */
  private readonly recordSeen = new Map<string, { revision: number; record: UpdateRecord; atMs: number }>();
  private observeRecords(events: readonly { type: string; revision: number; kv: { key: string; value: string; modRevision: number } }[]): void {
    for (const e of events) {
      if (e.type !== 'put') continue;
      if (e.kv.key.startsWith(INSTANCE_PREFIX) && (JSON.parse(e.kv.value) as { state?: unknown }).state === 'UNHEALTHY' && e.kv.modRevision === e.revision) this.stats.unhealthyReports++;
      if (!e.kv.key.startsWith(UPDATE_PREFIX)) continue;
      const before = this.recordSeen.get(e.kv.key);
      if (before !== undefined && before.revision >= e.kv.modRevision) continue;
      const record = JSON.parse(e.kv.value) as UpdateRecord;
      this.recordSeen.set(e.kv.key, { revision: e.kv.modRevision, record, atMs: this.queue.nowMs });
      const w = this.finalWindow;
      if (w === undefined || this.queue.nowMs < w.fromMs || before === undefined || record.id !== this.operator.finalId) continue;
      const latenessMs = stepLatenessMs(before.record, record, EPOCH_MS + this.queue.nowMs, EPOCH_MS + before.atMs);
      if (latenessMs === undefined) continue;
      this.stats.stepLatenessMaxMs = Math.max(this.stats.stepLatenessMaxMs, latenessMs);
      if (latenessMs > STEP_LATENESS_MAX_MS) {
        this.report('health-timing', `${record.id}: step "${record.log[record.log.length - 1]?.step ?? ''}" committed ${latenessMs.toFixed(0)} ms after its deadline (bound ${STEP_LATENESS_MAX_MS} ms) while receiver beta hangs`);
      }
    }
  }

  private traffic(a: Attached, invoker: Invoker): void {
    const h = this.options.health;
    const tick = (): void => {
      if (this.attached.get(a.id) !== a) return;
      if (this.operator.deployed) {
        this.stats.calls++;
        const w = this.finalWindow;
        const judged = w !== undefined && this.queue.nowMs >= w.fromMs && this.queue.nowMs + h.callTimeoutMs <= w.toMs;
        invoker.invoke(BASE, 'call', { from: a.id }, { timeoutMs: h.callTimeoutMs }).then(
          () => {
            this.stats.callsOk++;
            if (judged) this.stats.finalCalls++;
          },
          (error: unknown) => {
            const code = (error as { code?: unknown } | undefined)?.code;
            if (typeof code !== 'string') return this.fail(`node ${a.id}: a call failed without a code: ${describeException(error)}`);
            this.stats.callErrors[code] = (this.stats.callErrors[code] ?? 0) + 1;
            if (judged && this.attached.get(a.id) === a && this.isMember(a.id)) {
              if (Object.keys(this.finalErrors).length === 0) this.trace.record(this.queue.nowMs, a.id, 'final-call-failed', `${code}; instances here: ${this.instanceStates(a)}; routing: ${a.node.kv.get(`version-routing/${BASE}`)?.value ?? 'none'}`);
              this.finalErrors[code] = (this.finalErrors[code] ?? 0) + 1;
            }
          },
        );
      }
      a.clock.schedule(h.callIntervalMs * (0.5 + this.random.nextFloat()), tick);
    };
    a.clock.schedule(this.random.nextFloat() * h.callIntervalMs, tick);
  }

  /**
   * The health gate's promise at completion: the entry that moves an update to COMPLETING (every
   * step applied, the monitoring window passed healthy) finds no instance of its new version
   * UNHEALTHY in the applying node's state at that revision.
   */
  private judgeCompleting(a: Attached, value: string, revision: number): void {
    const record = JSON.parse(value) as UpdateRecord;
    const last = record.log[record.log.length - 1];
    if (record.state !== 'COMPLETING' || last?.step !== 'ROUTING -> COMPLETING' || a.node.kv.revision() !== revision) return;
    for (const kv of a.node.kv.range(INSTANCE_PREFIX, 0).kvs) {
      const r = JSON.parse(kv.value) as { state?: unknown; version?: unknown; artifact?: unknown };
      if (r.version === record.newVersion && r.artifact === record.base && r.state === 'UNHEALTHY') {
        return this.report('health-outcome', `${record.id} entered COMPLETING at revision ${revision} ("${last.reason}") with ${kv.key} UNHEALTHY (since revision ${kv.modRevision})`);
      }
    }
  }

  /**
   * The pruner's count bound while nothing fails (from the clean update on): the pruner wakes once
   * writes take the count a batch past `countMax`, so the store holds at most countMax + batchMax
   * events, plus the few written while that round's delete is being committed.
   */
  private judgeEventCount(node: CutoverNode): void {
    const h = this.options.health;
    const count = node.kv.range(EVENT_PREFIX, 0).kvs.length;
    this.stats.eventsMaxAfterHeal = Math.max(this.stats.eventsMaxAfterHeal, count);
    const bound = h.eventsCountMax + h.pruneBatchMax + EVENTS_IN_FLIGHT_SLACK;
    if (count > bound) this.report('health-prune', `${count} events in the store, above countMax ${h.eventsCountMax} + batchMax ${h.pruneBatchMax} + ${EVENTS_IN_FLIGHT_SLACK}`);
  }

  /** Whether `id` is a voter or learner in the leader's configuration (a removed node applies nothing more). */
  private isMember(id: number): boolean {
    const conf = this.leader()?.node.status().confState;
    return conf === undefined || conf.voters.includes(id) || conf.learners.includes(id);
  }

  /** `version/instance@node=STATE` for every instance record a node has applied (for traces). */
  private instanceStates(a: Attached): string {
    return a.node.kv
      .range(INSTANCE_PREFIX, 0)
      .kvs.map((kv) => {
        const r = JSON.parse(kv.value) as { state?: unknown; version?: unknown; instanceId?: unknown; nodeId?: unknown };
        return `${String(r.version)}/${String(r.instanceId)}@${String(r.nodeId)}=${String(r.state)}`;
      })
      .join(' ');
  }

  private legDelay(): number {
    const sim = this.options.sim;
    let ms = sim.latencyMinMs - sim.latencyMeanMs * Math.log(1 - this.netRandom.nextFloat());
    while (this.network.faulty && this.netRandom.nextFloat() < sim.lossRate) ms += RETRANSMIT_MS;
    return ms;
  }

  /** A call to another node's instance over the simulated links (as in the updates scenario). */
  private remoteCall(from: Attached, address: string, request: RemoteCallRequest, timeoutMs: number): Promise<unknown> {
    const to = Number(address.slice('sim://'.length));
    const key = instanceKey(nodeId(to), request.base as ArtifactBase, request.version, request.instanceId);
    this.judgePick(from, key);
    return new Promise<unknown>((resolve, reject) => {
      let settled = false;
      const settle = (fn: () => void): void => {
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

  private pushWindow(a: Attached, window: MetricsWindow): Promise<void> {
    if (a.port.isLeader()) {
      a.aggregator.ingest(window);
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
          if (parsed.ok) leader.aggregator.ingest(parsed.value);
          outcome = parsed.ok ? () => resolve() : () => reject(new CutoverError('INVALID_ARGUMENT', parsed.reason));
        }
        this.reply(a, leaderId, () => settle(outcome));
      });
    });
  }

  /** The leader crasher: right after the leader applies an update-record change, crash it. */
  private afterStep(a: Attached, value: string): void {
    const h = this.options.health;
    if (!this.faultsOn || h.leaderCrash === 'off' || this.crashing || !a.port.isLeader()) return;
    if (h.leaderCrash === 'some' && this.random.nextFloat() >= 0.3) return;
    const runtime = this.nodes[a.id - 1]!;
    if (this.nodes.some((n) => n !== runtime && (!n.up || n.stopping))) return;
    let label = '?';
    try {
      const record = JSON.parse(value) as UpdateRecord;
      label = `${record.strategy.kind} ${record.log[record.log.length - 1]?.step ?? '?'}`;
    } catch {
      // An unreadable record is the checker's business.
    }
    this.crashing = true;
    this.queue.after(this.random.nextFloat() * 20, () => {
      this.crashing = false;
      if (!this.faultsOn || this.attached.get(a.id) !== a || !runtime.up || runtime.stopping) return;
      this.stats.leaderCrashes++;
      this.trace.record(this.queue.nowMs, a.id, 'leader-crash', `after ${label}`);
      runtime.crash(false);
      this.queue.after(50 + this.random.nextFloat() * h.leaderDownMsMax, () => {
        if (!runtime.up) runtime.restart();
      });
    });
  }

  async run(): Promise<HealthResult> {
    const sim = this.options.sim;
    try {
      for (const node of this.nodes) this.queue.after(this.random.nextFloat() * sim.tickMs, () => node.start());
      this.operator.start();
      this.faults.start();
      await this.runUntil(sim.safetyPhaseMs + this.options.health.extraSafetyMs, () => this.failed);
      if (!this.failed) await this.settlePhase();
      if (!this.failed && this.stats.settledMs !== undefined) await this.finalPhase();
      if (!this.failed && this.stats.finalOutcome !== '-') await this.quietPhase();
    } catch (error) {
      this.fail(describeException(error));
    }
    this.operator.stop();
    this.stats.simTimeMs = this.queue.nowMs;
    this.stats.events = this.queue.eventsRun;
    this.stats.checkedEntries = this.audit.checkedEntries;
    this.stats.auditEvents = this.audit.events.size;
    this.stats.eventsPruned = this.audit.prunedEvents;
    this.stats.eventsMax = this.audit.eventsMax;
    for (const { record } of this.recordSeen.values()) this.stats.outcomes[`${this.behaviour(record.newVersion)}:${record.state}`] = (this.stats.outcomes[`${this.behaviour(record.newVersion)}:${record.state}`] ?? 0) + 1;
    const violations = [...this.checker.violations, ...this.violations];
    return { options: this.options, violations, stats: this.stats, traceDigest: this.trace.digest, trace: violations.length > 0 ? this.trace.last(this.hooks.traceLines ?? 30) : [] };
  }

  private runUntil(untilMs: number, shouldStop: () => boolean): Promise<number> {
    return this.queue.runUntilSettled(untilMs, () => this.instant.stuck() || shouldStop(), yieldToEventLoop);
  }

  private throttled(check: () => boolean): () => boolean {
    return throttledCheck(() => this.queue.nowMs, () => this.failed, check);
  }

  private leader(): Attached | undefined {
    return leaderOf(this.attached.values());
  }

  private leaderRecords(): UpdateRecord[] | undefined {
    const leader = this.leader();
    return leader === undefined ? undefined : updateRecordsOn(leader.node);
  }

  private describe(r: UpdateRecord): string {
    return describeUpdate(r, this.behaviour(r.newVersion));
  }

  /**
   * The outcome by behaviour, for an update that ended: a sick version never COMPLETED (its checks
   * fail well inside the monitoring window), and when ROLLED_BACK the reason names the failing
   * checks; a never-healthy version never COMPLETED, and FAILED or ROLLED_BACK with a reason.
   * `strict` (the clean update): a healthy version COMPLETED and a sick one ROLLED_BACK.
   */
  private judgeOutcome(r: UpdateRecord, strict: boolean): void {
    const problem = outcomeProblem(r, this.behaviour(r.newVersion), strict);
    if (problem !== undefined) this.report('health-outcome', problem);
  }

  private async settlePhase(): Promise<void> {
    const healAtMs = this.queue.nowMs;
    this.faultsOn = false;
    this.faults.stop();
    this.network.healAll();
    for (const node of this.nodes) {
      if (node.stopping) node.crash(false);
      if (!node.up) node.restart();
    }
    this.operator.idle();
    this.trace.record(healAtMs, 0, 'settle-phase', 'heal, restart all; every update must finish');
    let last = 'not checked';
    const settled = (): boolean => {
      const records = this.leaderRecords();
      if (records === undefined) {
        last = 'no leader';
        return false;
      }
      const open = records.filter((r) => !isTerminal(r.state));
      last = open.map((r) => this.describe(r)).join('; ');
      return open.length === 0 && this.operator.deployed;
    };
    await this.runUntil(healAtMs + SETTLE_BOUND_MS, this.throttled(settled));
    if (this.failed) return;
    if (!settled()) {
      const leader = this.leader();
      return this.report('health-liveness', `updates not finished ${SETTLE_BOUND_MS} ms after the heal: ${last}\n    instances (leader): ${leader === undefined ? '-' : this.instanceStates(leader)}; assignments: ${leader?.node.kv.range('assignment/', 0).kvs.map((kv) => kv.key.slice('assignment/'.length)).join(' ') ?? '-'}\n    nodes: ${describeNodes(this.nodes)}`);
    }
    this.stats.settledMs = this.queue.nowMs - healAtMs;
    for (const record of this.leaderRecords() ?? []) this.judgeOutcome(record, false);
    if (this.failed) return;
    // The clean update starts on a steady cluster: the restarted nodes' instances ACTIVE again,
    // every node caught up (its table current), so that its calls can be judged one by one.
    let unsteady = 'not checked';
    const steady = (): boolean => {
      const leader = this.leader();
      if (leader === undefined) return false;
      const records = leader.node.kv.range(INSTANCE_PREFIX, 0).kvs;
      // ACTIVE in the store and ACTIVE where it runs: a record a crashed run of its node left ACTIVE
      // stays routable until the new run reports the instance again (a call to it fails over once).
      // Only instances of healthy versions can be steady: a flapping version that completed keeps
      // flapping, and a failed rollback keeps its new version running behind 0:1 (decide.ts).
      const hostedActive = new Set([...this.attached.values()].flatMap((a) => (a.started ? a.instances.status().filter((i) => i.state === 'ACTIVE').map((i) => i.key) : [])));
      const notActive = records.filter((kv) => {
        const r = JSON.parse(kv.value) as { state?: unknown; version?: unknown };
        return this.behaviour(String(r.version)) === 'healthy' && (r.state !== 'ACTIVE' || !hostedActive.has(kv.key));
      });
      // A node removed by a membership fault applies nothing more: it is no member to wait for.
      const { voters, learners } = leader.node.status().confState;
      const members = [...voters, ...learners];
      const behind = members.filter((id) => {
        const a = this.attached.get(id);
        return a === undefined || !a.started || a.node.kv.revision() < leader.node.kv.revision();
      });
      unsteady = `${records.length} instances, not ACTIVE: ${notActive.map((kv) => `${kv.key} (mod ${kv.modRevision}) ${kv.value}`).join(' ')}; assignments: ${leader.node.kv.range('assignment/', 0).kvs.map((kv) => kv.key).join(' ')}; members behind: ${behind.join(' ')}`;
      return records.length > 0 && notActive.length === 0 && behind.length === 0;
    };
    // Steady for STEADY_MS in a row: one look right after the heal can see a stale leader's view.
    let steadySinceMs: number | undefined;
    const steadyLong = (): boolean => {
      if (!steady()) {
        steadySinceMs = undefined;
        return false;
      }
      steadySinceMs ??= this.queue.nowMs;
      return this.queue.nowMs - steadySinceMs >= STEADY_MS;
    };
    await this.runUntil(this.queue.nowMs + SETTLE_BOUND_MS, this.throttled(steadyLong));
    if (!this.failed && !steadyLong()) this.report('health-liveness', `the cluster did not become steady (every instance ACTIVE, every node caught up) within ${SETTLE_BOUND_MS} ms: ${unsteady}`);
  }

  /** The clean update, `beta` hanging through it: outcome, calls, step times, `alpha`'s latency. */
  private async finalPhase(): Promise<void> {
    const startMs = this.queue.nowMs;
    this.beta.addWindow(startMs, startMs + FINAL_HANG_MS, 'hang');
    this.finalWindow = { fromMs: startMs, toMs: Infinity };
    this.operator.finalUpdate();
    const final = (): UpdateRecord | undefined => {
      const id = this.operator.finalId;
      const record = id === undefined ? undefined : this.leaderRecords()?.find((r) => r.id === id);
      return record !== undefined && isTerminal(record.state) ? record : undefined;
    };
    await this.runUntil(startMs + FINAL_BOUND_MS, this.throttled(() => final() !== undefined));
    if (this.failed) return;
    const record = final();
    if (record === undefined) {
      const open = (this.leaderRecords() ?? []).filter((r) => !isTerminal(r.state)).map((r) => this.describe(r));
      return this.report('health-liveness', `the clean update (${this.operator.finalId ?? 'not started'}) did not finish within ${FINAL_BOUND_MS} ms: ${open.join('; ')}`);
    }
    this.finalWindow = { fromMs: startMs, toMs: this.queue.nowMs };
    this.stats.finalOutcome = `${record.strategy.kind}(${this.behaviour(record.newVersion)}):${record.state}`;
    this.judgeOutcome(record, true);
    if (this.failed) return;
    const errors = Object.entries(this.finalErrors);
    // The version that served before the clean update must pass its checks for every call to
    // succeed: a flapping one that completed under faults has moments with no ACTIVE instance.
    if (this.behaviour(record.oldVersion) !== 'healthy') {
      this.stats.finalCallCheckSkipped = true;
      return;
    }
    if (errors.length > 0) this.report('health-routing', `calls failed during the clean update (no faults; the other version serves while one is unhealthy): ${JSON.stringify(this.finalErrors)}`);
  }

  /** Deliveries finish and the pruner's rounds run; then the bounds and the notifications are judged. */
  private async quietPhase(): Promise<void> {
    const h = this.options.health;
    this.operator.stop();
    await this.runUntil(this.queue.nowMs + QUIET_MS, () => this.failed);
    if (this.failed) return;
    const leader = this.leader();
    if (leader === undefined) return this.report('health-liveness', 'no leader at the end of the quiet phase');
    // The pruner's bounds: count (a write wakes a round a batch past the bound; the interval round
    // takes a smaller excess, so a flapping instance that keeps writing events keeps up to a batch
    // over it between rounds) and age.
    const events = leader.node.kv.range(EVENT_PREFIX, 0).kvs;
    if (events.length > h.eventsCountMax + h.pruneBatchMax) this.report('health-prune', `${events.length} events kept after ${QUIET_MS} ms of quiet, bound ${h.eventsCountMax} + batch ${h.pruneBatchMax}; leader ${leader.id}'s pruner: ${JSON.stringify(leader.events?.status())}; oldest: ${events.slice(0, 3).map((kv) => kv.key).join(' ')}`);
    const wallMs = EPOCH_MS + this.queue.nowMs;
    const oldestAllowed = wallMs - h.eventsAgeMsMax - h.pruneIntervalMs - 1000;
    const tooOld = events.find((kv) => Number(kv.key.slice(EVENT_PREFIX.length, EVENT_PREFIX.length + 13)) < oldestAllowed);
    if (tooOld !== undefined) this.report('health-prune', `${tooOld.key} kept, older than the age bound ${h.eventsAgeMsMax} ms (+ interval ${h.pruneIntervalMs} ms)`);
    this.judgeNotifications();
  }

  private judgeNotifications(): void {
    const h = this.options.health;
    const events = this.audit.notifying();
    for (const receiver of [this.alpha, this.beta]) {
      const fromRevision = Math.max(this.audit.firstCursor ?? Infinity, this.audit.channelRevision.get(receiver.name) ?? Infinity);
      if (!Number.isFinite(fromRevision)) return this.report('health-notify', `no delivery cursor or no channel ${receiver.name} was ever written`);
      const verdict = judgeDeliveries(receiver.name, events, receiver.deliveries, { fromRevision, attemptsMax: h.notifyAttemptsMax, givenUp: this.givenUp.get(receiver.name) ?? new Set() });
      this.stats.deliveries[receiver.name] = { required: verdict.required, delivered: verdict.delivered, duplicates: verdict.duplicates, prunedFirst: verdict.prunedFirst, received: receiver.deliveries.length };
      if (verdict.problems.length > 0) return this.report('health-notify', `${verdict.problems.slice(0, 5).join('; ')}${verdict.problems.length > 5 ? ` (${verdict.problems.length} problems)` : ''}`);
    }
    // A hanging beta delays no one else: alpha got every event of the clean update promptly.
    const w = this.finalWindow!;
    const firstAt = new Map<string, number>();
    for (const d of this.alpha.deliveries) if (!firstAt.has(d.eventId)) firstAt.set(d.eventId, d.atMs);
    for (const s of events) {
      if (s.seenAtMs < w.fromMs || s.seenAtMs > w.toMs || !this.alpha.upDuring(s.seenAtMs, s.seenAtMs + ALPHA_LATENCY_MAX_MS)) continue;
      if (this.termStarts.some((t) => t.atMs >= s.seenAtMs - 1000 && t.atMs <= s.seenAtMs + ALPHA_LATENCY_MAX_MS)) continue;
      const at = firstAt.get(s.event.id);
      const latencyMs = at === undefined ? Infinity : at - s.seenAtMs;
      this.stats.alphaLatencyMaxMs = Math.max(this.stats.alphaLatencyMaxMs, Number.isFinite(latencyMs) ? latencyMs : 0);
      if (latencyMs > ALPHA_LATENCY_MAX_MS) return this.report('health-timing', `alpha got ${s.event.id} (${s.event.action}, committed at ${s.seenAtMs.toFixed(0)} ms) ${Number.isFinite(latencyMs) ? `${latencyMs.toFixed(0)} ms later` : 'never'} while beta hung (bound ${ALPHA_LATENCY_MAX_MS} ms)`);
    }
  }
}

