/**
 * The instance lifecycle on one node: it watches `assignment/{thisNode}/` (written by the leader's
 * placement controller), starts and stops the assigned instances, and reports each one's state
 * under the `instance/` key with the same suffix, which every invoker routes from:
 *
 *   STARTING → HEALTH_CHECKING → ACTIVE ⇄ UNHEALTHY → DRAINING → STOPPED,  or FAILED with a reason.
 *
 * - Starting: load the version (one module copy per version), build the instance with the
 *   module's factory, `start()`, then the health gate; each step is bounded in time. A version
 *   that declares `healthChecks` (src/health) must pass them by its policy before it becomes
 *   ACTIVE, and keeps being checked while it runs: failing its policy makes it UNHEALTHY (out of
 *   routing, with the failing checks as the reason and an `instance.unhealthy` audit event in the
 *   same transaction), and passing again makes it ACTIVE. A version with only the `health: true`
 *   hook is checked by it at start (`healthAttempts` tries, `healthIntervalMs` apart).
 * - An unassigned instance drains: it is reported DRAINING (so invokers stop picking it), its
 *   in-flight calls finish (bounded by `drainTimeoutMs`), `stop()` runs, it is reported STOPPED,
 *   and its key is deleted after `stoppedRetentionMs`.
 * - Reports are compare-and-swap transactions: a live state is written only while the assignment
 *   exists, a draining or stopped state only while the instance key exists. So a node the leader
 *   declared dead (and whose keys it deleted) cannot resurrect its instances in routing.
 * - Local calls go straight to the instance object; deadlines are enforced by one sweep timer.
 */
import { eventId, eventKey, eventWrite, type AuditEvent } from '../events/event.ts';
import { isHealthy } from '../health/checks.ts';
import type { CheckTarget, HealthSpec, InstanceRef, RoundResult } from '../health/types.ts';
import type { ClusterPort } from '../node/cluster-port.ts';
import type { Compare, KeyValue, Operation, WatchEvent } from '../kv/types.ts';
import type { InstanceState } from '../invoker/records.ts';
import type { LocalInstances } from '../invoker/invoker.ts';
import type { Clock } from '../util/clock.ts';
import { CutoverError } from '../util/errors.ts';
import type { Logger } from '../util/logger.ts';
import { nodeId as toNodeId } from '../util/ids.ts';
import { assignmentNodePrefix, instanceKeyOfAssignment, instanceNodePrefix, parseAssignmentKey, type ArtifactBase, splitArtifactBase } from './keys.ts';

/** What a slice module's factory receives. */
export interface SliceContext {
  readonly nodeId: number;
  readonly instanceId: string;
  readonly groupId: string;
  readonly artifactId: string;
  readonly version: string;
  readonly logger: Logger;
}

/** A running slice instance: its methods, and the optional lifecycle hooks. */
export interface SliceInstance {
  start?(): unknown;
  stop?(): unknown;
  health?(): unknown;
  [method: string]: unknown;
}

/** A loaded version: what the manifest declares and the module's factory. */
export interface LoadedSlice {
  readonly methods: readonly string[];
  /** The instance has a health() hook to run before it becomes ACTIVE. */
  readonly health: boolean;
  /** The version's declared health checks (slice.json `healthChecks`), if any. */
  readonly healthChecks?: HealthSpec;
  /** The version's unpacked files (the working directory of script checks). */
  readonly dir?: string;
  readonly factory: (context: SliceContext) => SliceInstance | Promise<SliceInstance>;
}

/** Loads a version's code (production: the verified local artifact copy, by dynamic import). */
export interface SliceLoader {
  load(base: ArtifactBase, version: string): Promise<LoadedSlice>;
}

/** One instance's checks as the health monitor runs them (src/health/monitor.ts). */
export interface InstanceHealthWatch {
  /** The startup gate: the first verdict of the policy (bounded by the monitor's deadline). */
  firstVerdict(): Promise<{ readonly state: 'healthy' | 'unhealthy'; readonly reason: string }>;
  stop(): void;
}

/** Runs declared health checks per policy (`HealthMonitor`). */
export interface InstanceHealthChecks {
  watch(options: {
    readonly ref: InstanceRef;
    readonly spec: HealthSpec;
    readonly target: CheckTarget;
    readonly onChange: (change: { readonly state: 'healthy' | 'unhealthy'; readonly round: RoundResult }) => void;
  }): InstanceHealthWatch;
}

/** Where the declared checks of a version come from besides its manifest (an update's override). */
export type HealthSpecSource = (base: ArtifactBase, version: string) => Promise<HealthSpec | undefined>;

export interface InstanceManagerOptions {
  readonly port: ClusterPort;
  readonly loader: SliceLoader;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Where this node serves remote invokes (`host:port`), written in each instance record. */
  readonly address: string;
  /** Bound on loading a version and on `start()`. Default 30 s. */
  readonly startTimeoutMs?: number;
  /** Bound on one `health()` call. Default 5 s. */
  readonly healthTimeoutMs?: number;
  /** Failed health checks tolerated before the instance is FAILED. Default 3. */
  readonly healthAttempts?: number;
  /** Pause between health attempts. Default 1 s. */
  readonly healthIntervalMs?: number;
  /** Bound on waiting for in-flight calls when draining. Default 30 s. */
  readonly drainTimeoutMs?: number;
  /** Bound on `stop()`. Default 10 s. */
  readonly stopTimeoutMs?: number;
  /** How long a STOPPED record stays visible before its key is deleted. Default 10 s. */
  readonly stoppedRetentionMs?: number;
  /** Granularity of local call deadlines. Default 10 ms. */
  readonly deadlineSweepMs?: number;
  /**
   * Runs declared health checks. Without it, declared checks are not run and only the `health()`
   * hook gates startup (the simulator and unit tests that do not test checks).
   */
  readonly healthChecks?: InstanceHealthChecks;
  /** An update's override of a version's checks (from its update record); wins over the manifest. */
  readonly healthSpecOf?: HealthSpecSource;
  /** Wall-clock epoch ms, for the time of audit events. Default: the monotonic clock (tests). */
  readonly wallClockMs?: () => number;
}

/** The state of an instance on this node, for status and tests. */
export interface HostedInstanceStatus {
  readonly key: string;
  readonly base: string;
  readonly version: string;
  readonly instanceId: string;
  readonly state: InstanceState;
  readonly inFlight: number;
  readonly reason?: string;
}

interface Hosted {
  readonly key: string;
  readonly assignmentKey: string;
  readonly base: ArtifactBase;
  readonly version: string;
  readonly instanceId: string;
  state: InstanceState;
  reason: string | undefined;
  /** The assignment still exists. */
  wanted: boolean;
  instance: SliceInstance | undefined;
  methods: ReadonlySet<string>;
  inFlight: number;
  onIdle: (() => void) | undefined;
  /** The lifecycle run; transitions of one instance never overlap. */
  running: Promise<void>;
  /** Its declared checks, while they run. */
  healthWatch: InstanceHealthWatch | undefined;
  /** Health transitions seen (ACTIVE ⇄ UNHEALTHY), for event ids. */
  healthChanges: number;
}

interface PendingCall {
  readonly deadlineAt: number;
  readonly reject: (error: unknown) => void;
  settled: boolean;
  /** Its position in `InstanceManager.pending` while it is there. */
  index: number;
}

const REPORT_ATTEMPTS = 8;
/** A stale record that changed this many times while it was being deleted is left (someone owns it). */
const STALE_RECORD_CHANGES_MAX = 8;

export class InstanceManager implements LocalInstances {
  private readonly port: ClusterPort;
  private readonly loader: SliceLoader;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly nodeId: number;
  private readonly settings: Required<Omit<InstanceManagerOptions, 'port' | 'loader' | 'clock' | 'logger' | 'healthChecks' | 'healthSpecOf' | 'wallClockMs'>>;
  private readonly healthChecks: InstanceHealthChecks | undefined;
  private readonly healthSpecOf: HealthSpecSource | undefined;
  private readonly wallClockMs: () => number;
  private readonly hosted = new Map<string, Hosted>();
  /** Calls not yet settled, in no order (removal swaps in the last one: no hashing per call). */
  private readonly pending: PendingCall[] = [];
  private cancelSweep: (() => void) | undefined;
  private cancelWatch: (() => void) | undefined;
  private readonly timers = new Set<() => void>();
  private stopped = false;

  constructor(options: InstanceManagerOptions) {
    this.port = options.port;
    this.loader = options.loader;
    this.clock = options.clock;
    this.nodeId = options.port.nodeId;
    this.log = options.logger.child({ component: 'instances' });
    this.healthChecks = options.healthChecks;
    this.healthSpecOf = options.healthSpecOf;
    this.wallClockMs = options.wallClockMs ?? (() => Math.floor(options.clock.nowMs()));
    this.settings = {
      address: options.address,
      startTimeoutMs: options.startTimeoutMs ?? 30_000,
      healthTimeoutMs: options.healthTimeoutMs ?? 5000,
      healthAttempts: options.healthAttempts ?? 3,
      healthIntervalMs: options.healthIntervalMs ?? 1000,
      drainTimeoutMs: options.drainTimeoutMs ?? 30_000,
      stopTimeoutMs: options.stopTimeoutMs ?? 10_000,
      stoppedRetentionMs: options.stoppedRetentionMs ?? 10_000,
      deadlineSweepMs: options.deadlineSweepMs ?? 10,
    };
  }

  /**
   * Reads this node's assignments and instance records from its applied state, starts what is
   * assigned, deletes records of instances that are no longer assigned (left by an earlier run of
   * this node), then follows the assignments by watch.
   */
  async start(): Promise<void> {
    const assignments = await this.port.range(assignmentNodePrefix(toNodeId(this.nodeId)), { serializable: true });
    const records = await this.port.range(instanceNodePrefix(toNodeId(this.nodeId)), { serializable: true });
    const assigned = new Set(assignments.kvs.map((kv) => instanceKeyOfAssignment(kv.key)));
    for (const record of records.kvs) if (!assigned.has(record.key)) void this.deleteRecord(record.key, record.modRevision);
    for (const kv of assignments.kvs) this.assign(kv);
    this.cancelWatch = this.port.watch(assignmentNodePrefix(toNodeId(this.nodeId)), assignments.revision + 1, (events) => this.onEvents(events));
  }

  /**
   * Stops following assignments, waits (bounded) for in-flight calls and stops every instance.
   * Writes nothing: the node is leaving, and its assignments still say what it should run when it
   * comes back.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    this.cancelWatch?.();
    for (const cancel of this.timers) cancel();
    this.timers.clear();
    await Promise.all(
      [...this.hosted.values()].map(async (h) => {
        h.wanted = false;
        this.stopChecks(h);
        await h.running.catch(() => {});
        await this.drain(h);
        await this.stopInstance(h);
      }),
    );
    this.cancelSweep?.();
    this.cancelSweep = undefined;
  }

  /** Every instance this node hosts. */
  status(): HostedInstanceStatus[] {
    return [...this.hosted.values()].map((h) => ({
      key: h.key,
      base: h.base,
      version: h.version,
      instanceId: h.instanceId,
      state: h.state,
      inFlight: h.inFlight,
      ...(h.reason === undefined ? {} : { reason: h.reason }),
    }));
  }

  /** Resolves once every hosted instance has left the STARTING/HEALTH_CHECKING steps (for tests). */
  async settled(): Promise<void> {
    await Promise.all([...this.hosted.values()].map((h) => h.running.catch(() => {})));
  }

  invoke(instanceKey: string, method: string, payload: unknown, deadlineAt: number): Promise<unknown> {
    const h = this.hosted.get(instanceKey);
    if (h === undefined || h.instance === undefined) return Promise.reject(new CutoverError('INSTANCE_NOT_FOUND', `instance ${instanceKey} does not run on node ${this.nodeId}`));
    // An UNHEALTHY instance is out of routing but still serves what a stale route sends it: a call
    // that reaches it is better answered than failed (its checks, not its calls, are failing).
    if (h.state !== 'ACTIVE' && h.state !== 'UNHEALTHY') return Promise.reject(new CutoverError('INSTANCE_NOT_ACTIVE', `instance ${instanceKey} is ${h.state}`));
    const instance = h.instance;
    const fn = h.methods.has(method) ? instance[method] : undefined;
    if (typeof fn !== 'function') return Promise.reject(new CutoverError('UNKNOWN_METHOD', `${h.base}:${h.version} has no method ${JSON.stringify(method)}`));
    h.inFlight++;
    return new Promise<unknown>((resolve, reject) => {
      const call: PendingCall = { deadlineAt, reject, settled: false, index: this.pending.length };
      this.pending.push(call);
      this.armSweep();
      let result: unknown;
      try {
        result = (fn as (this: SliceInstance, payload: unknown) => unknown).call(instance, payload);
      } catch (error) {
        result = Promise.reject(error);
      }
      Promise.resolve(result).then(
        (value) => {
          this.callDone(h);
          if (this.settle(call)) resolve(value);
        },
        (error: unknown) => {
          this.callDone(h);
          if (this.settle(call)) reject(new CutoverError('SLICE_ERROR', `${h.base}:${h.version}.${method} failed: ${errorMessage(error)}`, { cause: error }));
        },
      );
    });
  }

  /**
   * Marks `call` settled and forgets it; false when the deadline sweep settled it first. A method,
   * not a closure per call: tsx (esbuild keepNames) wraps every named closure in a `__name`
   * defineProperty, which cost ~0.5 µs per local call (bench/invoker).
   */
  private settle(call: PendingCall): boolean {
    if (call.settled) return false;
    call.settled = true;
    this.removePending(call);
    return true;
  }

  private removePending(call: PendingCall): void {
    const last = this.pending.pop()!;
    if (last === call) return;
    this.pending[call.index] = last;
    last.index = call.index;
  }

  private callDone(h: Hosted): void {
    h.inFlight--;
    if (h.inFlight === 0) h.onIdle?.();
  }

  /** Fails calls past their deadline; runs only while calls are pending. */
  private armSweep(): void {
    if (this.cancelSweep !== undefined) return;
    this.cancelSweep = this.clock.schedule(this.settings.deadlineSweepMs, () => {
      this.cancelSweep = undefined;
      const now = this.clock.nowMs();
      // Backwards: a removal moves the last call, already looked at, into the freed slot.
      for (let i = this.pending.length - 1; i >= 0; i--) {
        const call = this.pending[i]!;
        if (call.deadlineAt > now) continue;
        call.settled = true;
        this.removePending(call);
        call.reject(new CutoverError('INVOKE_DEADLINE_EXCEEDED', 'the call did not finish before its deadline'));
      }
      if (this.pending.length > 0) this.armSweep();
    });
  }

  private onEvents(events: readonly WatchEvent[]): void {
    for (const event of events) {
      if (event.type === 'put') this.assign(event.kv);
      else this.unassign(event.kv.key);
    }
  }

  private assign(kv: KeyValue): void {
    if (this.stopped) return;
    const parts = parseAssignmentKey(kv.key);
    if (parts === undefined || parts.nodeId !== this.nodeId) {
      this.log.warn({ key: kv.key }, 'ignoring a malformed assignment key');
      return;
    }
    const key = instanceKeyOfAssignment(kv.key);
    if (this.hosted.has(key)) return;
    const h: Hosted = {
      key,
      assignmentKey: kv.key,
      base: parts.base,
      version: parts.version.text,
      instanceId: parts.instanceId,
      state: 'STARTING',
      reason: undefined,
      wanted: true,
      instance: undefined,
      methods: new Set(),
      inFlight: 0,
      onIdle: undefined,
      running: Promise.resolve(),
      healthWatch: undefined,
      healthChanges: 0,
    };
    this.hosted.set(key, h);
    h.running = this.bringUp(h);
  }

  private unassign(assignmentKey: string): void {
    const h = this.hosted.get(instanceKeyOfAssignment(assignmentKey));
    if (h === undefined || !h.wanted) return;
    h.wanted = false;
    h.running = h.running.catch(() => {}).then(() => this.takeDown(h));
  }

  private async bringUp(h: Hosted): Promise<void> {
    try {
      await this.report(h, 'STARTING');
      const loaded = await this.bounded(this.loader.load(h.base, h.version), this.settings.startTimeoutMs, 'loading the version');
      const { groupId, artifactId } = splitArtifactBase(h.base);
      const context: SliceContext = { nodeId: this.nodeId, instanceId: h.instanceId, groupId, artifactId, version: h.version, logger: this.log.child({ instance: h.key }) };
      h.instance = await this.bounded(Promise.resolve(loaded.factory(context)), this.settings.startTimeoutMs, 'the factory');
      if (typeof h.instance !== 'object' || h.instance === null) throw new Error('the factory did not return an instance object');
      h.methods = new Set(loaded.methods);
      if (typeof h.instance.start === 'function') await this.bounded(Promise.resolve(h.instance.start()), this.settings.startTimeoutMs, 'start()');
      if (!h.wanted) return;
      await this.report(h, 'HEALTH_CHECKING');
      const spec = this.healthChecks === undefined ? undefined : ((await this.healthSpecOf?.(h.base, h.version)) ?? loaded.healthChecks);
      if (spec !== undefined) await this.passChecks(h, spec, loaded);
      else if (loaded.health) await this.checkHealth(h);
      if (!h.wanted) return;
      await this.report(h, 'ACTIVE');
      this.log.info({ instance: h.key }, 'instance active');
    } catch (error) {
      if (this.stopped) return;
      this.log.warn({ instance: h.key, error: errorMessage(error) }, 'instance failed');
      this.stopChecks(h);
      await this.stopInstance(h);
      await this.report(h, 'FAILED', errorMessage(error));
    }
  }

  private async checkHealth(h: Hosted): Promise<void> {
    const health = h.instance?.health;
    if (typeof health !== 'function') throw new Error('the manifest declares a health hook but the instance has no health()');
    let last = '';
    for (let attempt = 1; attempt <= this.settings.healthAttempts; attempt++) {
      try {
        const answer = await this.bounded(Promise.resolve(health.call(h.instance)), this.settings.healthTimeoutMs, 'health()');
        if (isHealthy(answer)) return;
        last = `health() answered ${JSON.stringify(answer)}`;
      } catch (error) {
        last = errorMessage(error);
      }
      if (!h.wanted || this.stopped) return;
      if (attempt < this.settings.healthAttempts) await this.sleep(this.settings.healthIntervalMs);
    }
    throw new Error(`health check failed ${this.settings.healthAttempts} times: ${last}`);
  }

  /**
   * Starts the declared checks of `h` and waits for their first verdict; throws when it is
   * unhealthy. The checks keep running while the instance lives (`onHealthChange`).
   */
  private async passChecks(h: Hosted, spec: HealthSpec, loaded: LoadedSlice): Promise<void> {
    const instance = h.instance!;
    const httpPort = (instance as { httpPort?: unknown }).httpPort;
    const target: CheckTarget = {
      instance,
      ...(typeof httpPort === 'number' && Number.isSafeInteger(httpPort) && httpPort > 0 && httpPort < 65536 ? { httpPort } : {}),
      ...(loaded.dir === undefined ? {} : { cwd: loaded.dir }),
    };
    h.healthWatch = this.healthChecks!.watch({
      ref: { base: h.base, version: h.version, instanceId: h.instanceId, nodeId: this.nodeId },
      spec,
      target,
      onChange: (change) => this.onHealthChange(h, change.state, change.round),
    });
    const verdict = await h.healthWatch.firstVerdict();
    if (verdict.state === 'unhealthy') throw new Error(`health checks failed: ${verdict.reason}`);
  }

  /** An ACTIVE instance failing its policy leaves routing (UNHEALTHY); passing again brings it back. */
  private onHealthChange(h: Hosted, state: 'healthy' | 'unhealthy', round: RoundResult): void {
    h.running = h.running
      .catch(() => {})
      .then(async () => {
        if (!h.wanted || this.stopped || h.healthWatch === undefined) return;
        if (state === 'unhealthy' && h.state === 'ACTIVE') {
          const reason = failingChecks(round);
          this.log.warn({ instance: h.key, reason }, 'instance unhealthy: out of routing');
          await this.report(h, 'UNHEALTHY', reason, this.healthEvent(h, 'instance.unhealthy', reason, round));
        } else if (state === 'healthy' && h.state === 'UNHEALTHY') {
          this.log.info({ instance: h.key }, 'instance healthy again: back in routing');
          await this.report(h, 'ACTIVE', undefined, this.healthEvent(h, 'instance.healthy', 'its health checks pass again', round));
        }
      });
  }

  private healthEvent(h: Hosted, action: 'instance.unhealthy' | 'instance.healthy', reason: string, round: RoundResult): AuditEvent {
    const at = this.wallClockMs();
    return {
      id: eventId(at, `i.${h.instanceId}.${this.nodeId}.${++h.healthChanges}`),
      at,
      actor: { kind: 'system', name: `node-${this.nodeId}` },
      action,
      target: { artifact: h.base, version: h.version, instanceId: h.instanceId, nodeId: this.nodeId },
      reason,
      details: { checks: round.results.map((r) => ({ check: r.check, type: r.type, status: r.status, detail: r.detail, durationMs: r.durationMs, attempts: r.attempts })) },
    };
  }

  private stopChecks(h: Hosted): void {
    h.healthWatch?.stop();
    h.healthWatch = undefined;
  }

  private async takeDown(h: Hosted): Promise<void> {
    this.stopChecks(h);
    if (this.stopped) return;
    if (h.instance !== undefined && h.state !== 'FAILED') {
      await this.report(h, 'DRAINING');
      await this.drain(h);
      await this.stopInstance(h);
    }
    await this.report(h, 'STOPPED');
    this.hosted.delete(h.key);
    const cancel = this.clock.schedule(this.settings.stoppedRetentionMs, () => {
      this.timers.delete(cancel);
      void this.deleteStopped(h.key);
    });
    this.timers.add(cancel);
  }

  /** Waits until no call is in flight on `h`, at most `drainTimeoutMs`. */
  private drain(h: Hosted): Promise<void> {
    if (h.inFlight === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const cancel = this.clock.schedule(this.settings.drainTimeoutMs, () => {
        this.log.warn({ instance: h.key, inFlight: h.inFlight }, 'drain timed out; stopping with calls in flight');
        done();
      });
      const done = (): void => {
        cancel();
        h.onIdle = undefined;
        resolve();
      };
      h.onIdle = done;
    });
  }

  private async stopInstance(h: Hosted): Promise<void> {
    const instance = h.instance;
    h.instance = undefined;
    if (instance === undefined || typeof instance.stop !== 'function') return;
    try {
      await this.bounded(Promise.resolve(instance.stop()), this.settings.stopTimeoutMs, 'stop()');
    } catch (error) {
      this.log.warn({ instance: h.key, error: errorMessage(error) }, 'stop() failed');
    }
  }

  /**
   * Writes `state` for `h`, retrying transient failures until it is written or moot. Live states require the assignment,
   * DRAINING and STOPPED require the record: otherwise nothing is written (see the file comment).
   */
  private async report(h: Hosted, state: InstanceState, reason?: string, event?: AuditEvent): Promise<void> {
    h.state = state;
    h.reason = reason;
    const value = JSON.stringify({ state, nodeId: this.nodeId, address: this.settings.address, instanceId: h.instanceId, artifact: h.base, version: h.version, ...(reason === undefined ? {} : { reason }) });
    const writes: Operation[] = [{ type: 'put', key: h.key, value }, ...(event === undefined ? [] : [eventWrite(event)])];
    const live = state !== 'DRAINING' && state !== 'STOPPED';
    const guard = live ? h.assignmentKey : h.key;
    // With an audit event, the write also requires the event to be absent: an attempt whose answer
    // was lost (a timeout, a leader change) may have committed, and its retry must not put the
    // same event again (at a later revision: out of commit order, and notified twice).
    const compares: Compare[] = [{ key: guard, target: 'exists', op: '=', value: true }, ...(event === undefined ? [] : [{ key: eventKey(event.id), target: 'exists' as const, op: '=' as const, value: false }])];
    for (let attempt = 1; ; attempt++) {
      if (this.stopped) return;
      try {
        const result = await this.port.txn(compares, writes);
        if (!result.succeeded) this.log.info({ instance: h.key, state }, `state not written: the ${live ? 'assignment' : 'record'} is gone${event === undefined ? '' : ', or an earlier attempt wrote it'}`);
        return;
      } catch (error) {
        // Never give up while the node runs: an unreported state would leave the instance out of
        // routing (or in it) for ever. The compare ends the loop once the report is moot.
        if (attempt === REPORT_ATTEMPTS) this.log.warn({ instance: h.key, state, error: errorMessage(error) }, 'could not report the instance state yet; still trying');
        await this.sleep(Math.min(2000, 100 * 2 ** Math.min(attempt, 5)));
      }
    }
  }

  private async deleteStopped(key: string): Promise<void> {
    if (this.hosted.has(key) || this.stopped) return;
    const record = await this.port.get(key, { serializable: true }).catch(() => undefined);
    if (record !== undefined) await this.deleteRecord(key, record.modRevision);
  }

  /**
   * Deletes a stale instance record (one this manager does not host), retrying transient failures
   * until the delete is decided or this manager stops: nothing else removes a live node's stale
   * record, and a stale ACTIVE one is routed to for ever. (At start-up, where most stale records
   * are found, the node usually knows no leader yet and the first try fails.) The delete is a
   * compare on `modRevision`; when the record changed meanwhile and is still not hosted here, the
   * delete is tried again on the new revision: at start-up the applied state read may be older
   * than a write the previous run of this node made just before it died (a DRAINING report that
   * committed after the crash), and that record would otherwise stay for ever (found by
   * cluster-sim/health seed 15: a DRAINING record of a rolled-back version kept).
   */
  private async deleteRecord(key: string, modRevision: number): Promise<void> {
    let expected = modRevision;
    let changes = 0;
    for (let attempt = 1; ; attempt++) {
      try {
        const result = await this.port.txn([{ key, target: 'modRevision', op: '=', value: expected }], [{ type: 'delete', key }], [{ type: 'get', key }]);
        if (result.succeeded) return;
        const read = result.results[0];
        const current = read?.type === 'get' ? read.kv : undefined;
        if (current === undefined || this.hosted.has(key) || this.stopped) return;
        if (++changes > STALE_RECORD_CHANGES_MAX) {
          this.log.warn({ key, modRevision: current.modRevision }, 'a stale instance record keeps changing; not deleted');
          return;
        }
        expected = current.modRevision;
      } catch (error) {
        if (this.stopped) return;
        if (attempt === REPORT_ATTEMPTS) this.log.warn({ key, error: errorMessage(error) }, 'could not delete a stale instance record yet; still trying');
        await this.sleep(Math.min(2000, 100 * 2 ** attempt));
      }
    }
  }

  private bounded<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const cancel = this.clock.schedule(ms, () => reject(new Error(`${what} did not finish within ${ms} ms`)));
      promise.then(
        (value) => {
          cancel();
          resolve(value);
        },
        (error: unknown) => {
          cancel();
          reject(error instanceof Error ? error : new Error(errorMessage(error)));
        },
      );
    });
  }

  /** Not cancelled by `stop()`: a lifecycle step that sleeps must still finish. */
  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.clock.schedule(ms, resolve));
  }
}

/** The failing checks of a round, for a reason: `http-0: HTTP 500 in 3 ms; tcp-1: …`. */
function failingChecks(round: RoundResult): string {
  const failing = round.results.filter((r) => r.status !== 'success');
  return `health checks failing: ${failing.map((r) => `${r.check} ${r.status} (${r.detail})`).join('; ') || 'no check passed'}`;
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
