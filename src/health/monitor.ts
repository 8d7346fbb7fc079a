/**
 * The health monitor (issue 7, items 2 and 3): runs each watched instance's check rounds on a
 * schedule, turns the verdicts into a state with the policy's thresholds, reports every state
 * change, gates start-up on the first verdict, and files every round's results in the local store.
 *
 * Scheduling, per instance:
 * - the first round starts `initialDelayMs` after `watch()` (the policy's, or the caller's
 *   override), then one every `intervalMs`, measured start to start;
 * - rounds never overlap: a round still running when the next is due delays that one until it
 *   ends (then it starts at once);
 * - a `runRound` that throws, or returns something that is not a round, is a failing round whose
 *   results are `error` results, one per check: it never stops the schedule;
 * - after `stop()` no round starts, and the outcome of a running round is dropped.
 *
 * Results go to the store fire-and-forget: the schedule never waits for the disk, failures are
 * counted, logged (rate-limited) and reported to `onStoreError`, and at most
 * `storeAppendsInFlightMax` appends are pending (past that a round's results are dropped and
 * counted), so a slow or broken disk can neither delay checks nor grow memory.
 */
import { HealthTracker, validateThresholds, type HealthState } from './policy.ts';
import { instanceKey, validateInstanceRef } from './results.ts';
import type { CheckResult, CheckTarget, HealthResultsStore, HealthSpec, InstanceRef, RoundResult } from './types.ts';
import type { Clock } from '../util/clock.ts';
import { CutoverError, InvalidArgumentError } from '../util/errors.ts';
import { silentLogger, type Logger } from '../util/logger.ts';

/** Default bound on the watches of one monitor. */
export const WATCHES_MAX_DEFAULT = 10_000;
/** Default bound on store appends not yet settled. */
export const STORE_APPENDS_IN_FLIGHT_MAX_DEFAULT = 1_000;
/** Bound on the pending `firstVerdict` calls of one watch. */
export const VERDICT_WAITERS_MAX = 64;
/** A reason string is cut to this many characters. */
const REASON_CHARS_MAX = 1_000;

/** What the monitor needs from the node. */
export interface HealthMonitorDeps {
  /** Monotonic time and timers (the schedule). */
  readonly clock: Clock;
  /** Epoch milliseconds, for the results' `at`. */
  readonly wallClockMs: () => number;
  /** Runs every check of `spec` once against `target` (checks.ts `runRound`, its deps bound). */
  readonly runRound: (spec: HealthSpec, target: CheckTarget) => Promise<RoundResult>;
  /** Where every round's results are filed; none in tests that do not look. */
  readonly store?: HealthResultsStore;
  /** Parent logger; the monitor logs through a child `{ component: 'health-monitor' }`. */
  readonly logger?: Logger;
  /** Told about each failed append (count it in a metric); must not throw (if it does, it is logged). */
  readonly onStoreError?: (error: unknown, ref: InstanceRef) => void;
  /** Default `WATCHES_MAX_DEFAULT`. */
  readonly watchesMax?: number;
  /** Default `STORE_APPENDS_IN_FLIGHT_MAX_DEFAULT`. */
  readonly storeAppendsInFlightMax?: number;
}

/** A state change of one instance. */
export interface HealthChange {
  readonly state: 'healthy' | 'unhealthy';
  readonly previous: HealthState;
  /** The round that made the change. */
  readonly round: RoundResult;
  /** The length of the streak that reached the threshold (passes for healthy, failures for unhealthy). */
  readonly consecutive: number;
}

/** The start-up gate's answer. */
export interface FirstVerdict {
  readonly state: 'healthy' | 'unhealthy';
  /** The round that decided it (at the deadline: the last round, if any). */
  readonly round: RoundResult | undefined;
  /** For people and for the instance record: why. */
  readonly reason: string;
}

/** What to watch. */
export interface WatchOptions {
  readonly ref: InstanceRef;
  readonly spec: HealthSpec;
  readonly target: CheckTarget;
  /** Called on every state change, from the monitor's round (never re-entrantly); must not throw (if it does, it is logged). */
  readonly onChange: (change: HealthChange) => void;
  /** Overrides `spec.policy.initialDelayMs` (e.g. 0 when the only check is the instance hook). */
  readonly initialDelayMs?: number;
}

/** One instance's health, as the monitor keeps it. */
export interface HealthWatch {
  readonly ref: InstanceRef;
  /**
   * The start-up gate. Resolves with the first state the tracker reaches, or, if it is still
   * `unknown` when `deadlineMs` (measured from `watch()`) has passed, with `unhealthy` and a
   * reason saying so; also `unhealthy` if the watch stops first. Default deadline:
   * initialDelay + interval × (successThreshold + failureThreshold + 1), so a flapping instance
   * cannot hold start-up forever. A deadline verdict does not change `state()`, which stays
   * `unknown` until a threshold is reached. Never rejects, except HEALTH_WATCH_LIMIT when
   * `VERDICT_WAITERS_MAX` calls are already waiting and INVALID_ARGUMENT for a bad deadline.
   */
  firstVerdict(options?: { readonly deadlineMs?: number }): Promise<FirstVerdict>;
  state(): HealthState;
  /** The last round's result (undefined before the first round ends). */
  last(): RoundResult | undefined;
  /** Idempotent: no round starts after it and a running round's outcome is dropped. */
  stop(): void;
}

/** Counters, for metrics and tests. */
export interface HealthMonitorStats {
  readonly watches: number;
  readonly rounds: number;
  readonly roundErrors: number;
  readonly storeErrors: number;
  readonly storeDropped: number;
  readonly storeAppendsInFlight: number;
}

/**
 * Runs the health checks of the instances of this node: one `watch` per instance, at most
 * `watchesMax`. `close()` stops every watch.
 */
export class HealthMonitor {
  private readonly watches = new Map<string, InstanceWatch>();
  private readonly logger: Logger;
  private readonly watchesMax: number;
  private readonly appendsInFlightMax: number;
  private closed = false;
  private counters = { rounds: 0, roundErrors: 0, storeErrors: 0, storeDropped: 0, appendsInFlight: 0 };

  /** Throws INVALID_ARGUMENT naming a bad dependency or limit. */
  constructor(private readonly deps: HealthMonitorDeps) {
    for (const name of ['wallClockMs', 'runRound'] as const) {
      if (typeof deps[name] !== 'function') throw new InvalidArgumentError(`deps.${name}`, 'must be a function');
    }
    if (typeof deps.clock?.schedule !== 'function' || typeof deps.clock.nowMs !== 'function') throw new InvalidArgumentError('deps.clock', 'must be a Clock');
    this.watchesMax = positiveInteger(deps.watchesMax ?? WATCHES_MAX_DEFAULT, 'deps.watchesMax');
    this.appendsInFlightMax = positiveInteger(deps.storeAppendsInFlightMax ?? STORE_APPENDS_IN_FLIGHT_MAX_DEFAULT, 'deps.storeAppendsInFlightMax');
    this.logger = (deps.logger ?? silentLogger).child({ component: 'health-monitor' });
  }

  /**
   * Starts watching one instance. Throws INVALID_ARGUMENT naming a bad option,
   * HEALTH_WATCH_EXISTS when that instance is already watched (stop that watch first),
   * HEALTH_WATCH_LIMIT past `watchesMax`, HEALTH_MONITOR_CLOSED after `close()`.
   */
  watch(options: WatchOptions): HealthWatch {
    if (this.closed) throw new CutoverError('HEALTH_MONITOR_CLOSED', 'the health monitor is closed');
    const initialDelayMs = validateWatchOptions(options);
    const key = instanceKey(options.ref);
    const existing = this.watches.get(key);
    if (existing !== undefined) {
      throw new CutoverError('HEALTH_WATCH_EXISTS', `instance ${describeRef(options.ref)} is already watched; stop that watch first`);
    }
    if (this.watches.size >= this.watchesMax) {
      throw new CutoverError('HEALTH_WATCH_LIMIT', `cannot watch ${describeRef(options.ref)}: ${this.watchesMax} instances are already watched (watchesMax)`);
    }
    const watch = new InstanceWatch(options, initialDelayMs, {
      clock: this.deps.clock,
      wallClockMs: this.deps.wallClockMs,
      runRound: this.deps.runRound,
      logger: this.logger.child({ instance: options.ref.instanceId, version: options.ref.version }),
      onRound: (round, failed) => this.recordRound(options.ref, round, failed),
      onStopped: () => {
        if (this.watches.get(key) === watch) this.watches.delete(key);
      },
    });
    this.watches.set(key, watch);
    watch.start();
    return watch;
  }

  /** Stops every watch; later `watch()` calls throw HEALTH_MONITOR_CLOSED. Idempotent. */
  close(): void {
    this.closed = true;
    for (const watch of [...this.watches.values()]) watch.stop();
  }

  stats(): HealthMonitorStats {
    const c = this.counters;
    return { watches: this.watches.size, rounds: c.rounds, roundErrors: c.roundErrors, storeErrors: c.storeErrors, storeDropped: c.storeDropped, storeAppendsInFlight: c.appendsInFlight };
  }

  /** Counts a finished round and files its results without waiting for the store. */
  private recordRound(ref: InstanceRef, round: RoundResult, failed: boolean): void {
    this.counters.rounds++;
    if (failed) this.counters.roundErrors++;
    const store = this.deps.store;
    if (store === undefined || round.results.length === 0) return;
    if (this.counters.appendsInFlight >= this.appendsInFlightMax) {
      this.counters.storeDropped++;
      if (isLogWorthy(this.counters.storeDropped)) {
        this.logger.warn({ dropped: this.counters.storeDropped, inFlightMax: this.appendsInFlightMax }, 'health results store is behind; round results dropped');
      }
      return;
    }
    this.counters.appendsInFlight++;
    let appended: Promise<void>;
    try {
      appended = store.append(ref, round.results);
    } catch (error) {
      appended = Promise.reject(error);
    }
    appended.then(
      () => {
        this.counters.appendsInFlight--;
      },
      (error: unknown) => {
        this.counters.appendsInFlight--;
        this.storeFailed(error, ref);
      },
    );
  }

  private storeFailed(error: unknown, ref: InstanceRef): void {
    this.counters.storeErrors++;
    if (isLogWorthy(this.counters.storeErrors)) {
      this.logger.warn({ err: error, errors: this.counters.storeErrors, instance: ref.instanceId }, 'health results store append failed');
    }
    try {
      this.deps.onStoreError?.(error, ref);
    } catch (callbackError) {
      this.logger.error({ err: callbackError }, 'onStoreError threw');
    }
  }
}

/** Logs the first ten occurrences, then every thousandth: a broken disk must not flood the log. */
function isLogWorthy(count: number): boolean {
  return count <= 10 || count % 1000 === 0;
}

interface InstanceWatchDeps {
  readonly clock: Clock;
  readonly wallClockMs: () => number;
  readonly runRound: (spec: HealthSpec, target: CheckTarget) => Promise<RoundResult>;
  readonly logger: Logger;
  /** `failed`: runRound threw or returned no round. */
  readonly onRound: (round: RoundResult, failed: boolean) => void;
  readonly onStopped: () => void;
}

interface VerdictWaiter {
  readonly resolve: (verdict: FirstVerdict) => void;
  cancel: () => void;
}

/** The schedule, tracker and start-up gate of one instance. */
class InstanceWatch implements HealthWatch {
  readonly ref: InstanceRef;
  private readonly tracker: HealthTracker;
  private readonly startedMs: number;
  private readonly defaultDeadlineMs: number;
  private stopped = false;
  private running = false;
  /** The next round fell due while this one ran: start it when this one ends. */
  private duePending = false;
  private cancelTimer: () => void = () => {};
  private lastRound: RoundResult | undefined;
  private rounds = 0;
  private verdict: FirstVerdict | undefined;
  private readonly waiters = new Set<VerdictWaiter>();

  constructor(
    private readonly options: WatchOptions,
    private readonly initialDelayMs: number,
    private readonly deps: InstanceWatchDeps,
  ) {
    this.ref = options.ref;
    this.tracker = new HealthTracker(options.spec.policy);
    this.startedMs = deps.clock.nowMs();
    const { intervalMs, successThreshold, failureThreshold } = options.spec.policy;
    this.defaultDeadlineMs = initialDelayMs + intervalMs * (successThreshold + failureThreshold + 1);
  }

  start(): void {
    this.cancelTimer = this.deps.clock.schedule(this.initialDelayMs, () => this.due());
  }

  state(): HealthState {
    return this.tracker.state();
  }

  last(): RoundResult | undefined {
    return this.lastRound;
  }

  firstVerdict(options?: { readonly deadlineMs?: number }): Promise<FirstVerdict> {
    if (this.verdict !== undefined) return Promise.resolve(this.verdict);
    if (this.stopped) return Promise.resolve(this.stoppedVerdict());
    const deadlineMs = options?.deadlineMs ?? this.defaultDeadlineMs;
    if (typeof deadlineMs !== 'number' || !Number.isFinite(deadlineMs) || deadlineMs < 0) {
      return Promise.reject(new InvalidArgumentError('deadlineMs', 'must be a finite number of milliseconds >= 0'));
    }
    const remainingMs = this.startedMs + deadlineMs - this.deps.clock.nowMs();
    if (remainingMs <= 0) return Promise.resolve(this.deadlineVerdict(deadlineMs));
    if (this.waiters.size >= VERDICT_WAITERS_MAX) {
      return Promise.reject(new CutoverError('HEALTH_WATCH_LIMIT', `${VERDICT_WAITERS_MAX} firstVerdict calls are already waiting on ${describeRef(this.ref)}`));
    }
    return new Promise((resolve) => {
      const waiter: VerdictWaiter = { resolve, cancel: () => {} };
      this.waiters.add(waiter);
      waiter.cancel = this.deps.clock.schedule(remainingMs, () => {
        this.waiters.delete(waiter);
        resolve(this.deadlineVerdict(deadlineMs));
      });
    });
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.cancelTimer();
    this.settleWaiters(this.stoppedVerdict());
    this.deps.onStopped();
  }

  /** The interval timer fired: run a round, or remember to run one when the current one ends. */
  private due(): void {
    if (this.stopped) return;
    if (this.running) {
      if (!this.duePending) this.deps.logger.warn({ intervalMs: this.options.spec.policy.intervalMs }, 'health round overran its interval; the next round waits for it');
      this.duePending = true;
      return;
    }
    void this.round();
  }

  private async round(): Promise<void> {
    this.running = true;
    this.duePending = false;
    const startMs = this.deps.clock.nowMs();
    const at = this.deps.wallClockMs();
    this.cancelTimer = this.deps.clock.schedule(this.options.spec.policy.intervalMs, () => this.due());
    const { round, failed } = await this.runOnce(at, startMs);
    this.running = false;
    if (this.stopped) return;
    this.rounds++;
    this.lastRound = round;
    this.deps.onRound(round, failed);
    this.observe(round);
    if (this.duePending && !this.stopped) void this.round();
  }

  private async runOnce(at: number, startMs: number): Promise<{ round: RoundResult; failed: boolean }> {
    try {
      const round: unknown = await this.deps.runRound(this.options.spec, this.options.target);
      if (!isRoundResult(round)) throw new TypeError('runRound resolved without a round result ({ pass, results })');
      return { round, failed: false };
    } catch (error) {
      if (!this.stopped) this.deps.logger.warn({ err: error }, 'health round could not run; counted as a failing round');
      return { round: errorRound(this.options.spec, at, this.deps.clock.nowMs() - startMs, error), failed: true };
    }
  }

  private observe(round: RoundResult): void {
    const o = this.tracker.observe(round.pass);
    if (!o.changed || o.state === 'unknown') return;
    const consecutive = o.state === 'healthy' ? o.consecutiveSuccesses : o.consecutiveFailures;
    this.deps.logger.info({ state: o.state, previous: o.previous, consecutive }, 'instance health changed');
    // The verdict first: an onChange that stops the watch must not turn it into "stopped".
    if (this.verdict === undefined) {
      const reason = o.state === 'healthy' ? `passed ${plural(consecutive, 'consecutive round')}` : `failed ${plural(consecutive, 'consecutive round')}; last: ${describeFailures(round)}`;
      this.verdict = { state: o.state, round, reason: clip(reason) };
      this.settleWaiters(this.verdict);
    }
    try {
      this.options.onChange({ state: o.state, previous: o.previous, round, consecutive });
    } catch (error) {
      this.deps.logger.error({ err: error }, 'health onChange threw');
    }
  }

  private settleWaiters(verdict: FirstVerdict): void {
    for (const waiter of this.waiters) {
      waiter.cancel();
      waiter.resolve(verdict);
    }
    this.waiters.clear();
  }

  private deadlineVerdict(deadlineMs: number): FirstVerdict {
    let progress = plural(this.rounds, 'round') + ' run';
    if (this.lastRound !== undefined) progress += this.lastRound.pass ? ', the last passed' : `, the last failed: ${describeFailures(this.lastRound)}`;
    if (this.running) progress += '; a round is still running';
    return { state: 'unhealthy', round: this.lastRound, reason: clip(`no health verdict within ${deadlineMs} ms (${progress})`) };
  }

  private stoppedVerdict(): FirstVerdict {
    return { state: 'unhealthy', round: this.lastRound, reason: 'health watch stopped before a verdict' };
  }
}

/** The round of a `runRound` that threw: one `error` result per check, so the store shows it. */
function errorRound(spec: HealthSpec, at: number, durationMs: number, error: unknown): RoundResult {
  const message = error instanceof Error ? error.message : String(error);
  const detail = clip(`round failed: ${message}`);
  const results: CheckResult[] = spec.checks.map((check) => ({ check: check.name, type: check.type, status: 'error', at, durationMs: Math.max(0, durationMs), attempts: 0, detail }));
  return { pass: false, results };
}

function isRoundResult(value: unknown): value is RoundResult {
  if (typeof value !== 'object' || value === null) return false;
  const round = value as Partial<Record<keyof RoundResult, unknown>>;
  return typeof round.pass === 'boolean' && Array.isArray(round.results);
}

/** `check status: detail` for each result that did not pass. */
function describeFailures(round: RoundResult): string {
  const failing = round.results.filter((r) => r.status !== 'success');
  if (failing.length === 0) return 'no check passed';
  return failing.map((r) => `${r.check} ${r.status}: ${r.detail}`).join('; ');
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

function clip(text: string): string {
  return text.length <= REASON_CHARS_MAX ? text : `${text.slice(0, REASON_CHARS_MAX - 1)}…`;
}

function describeRef(ref: InstanceRef): string {
  return `${ref.base}@${ref.version}/${ref.instanceId}`;
}

function positiveInteger(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) throw new InvalidArgumentError(field, 'must be a positive integer');
  return value;
}

/** Validates what `watch()` may get from untyped wiring; returns the effective initial delay. */
function validateWatchOptions(options: WatchOptions): number {
  if (typeof options !== 'object' || options === null) throw new InvalidArgumentError('options', 'must be an object');
  validateInstanceRef(options.ref, 'ref');
  const spec: unknown = options.spec;
  if (typeof spec !== 'object' || spec === null) throw new InvalidArgumentError('spec', 'must be a health spec');
  const { checks, policy } = spec as Partial<Record<keyof HealthSpec, unknown>>;
  if (!Array.isArray(checks) || checks.length === 0) throw new InvalidArgumentError('spec.checks', 'must hold at least one check');
  if (typeof policy !== 'object' || policy === null) throw new InvalidArgumentError('spec.policy', 'must be an object');
  validateThresholds(policy as HealthSpec['policy'], 'spec.policy');
  const { intervalMs, initialDelayMs } = policy as Partial<Record<string, unknown>>;
  if (typeof intervalMs !== 'number' || !Number.isFinite(intervalMs) || intervalMs <= 0) throw new InvalidArgumentError('spec.policy.intervalMs', 'must be a finite number of milliseconds > 0');
  if (typeof initialDelayMs !== 'number' || !Number.isFinite(initialDelayMs) || initialDelayMs < 0) throw new InvalidArgumentError('spec.policy.initialDelayMs', 'must be a finite number of milliseconds >= 0');
  if (typeof options.onChange !== 'function') throw new InvalidArgumentError('onChange', 'must be a function');
  if (typeof options.target !== 'object' || options.target === null) throw new InvalidArgumentError('target', 'must be an object');
  const override: unknown = options.initialDelayMs;
  if (override === undefined) return initialDelayMs;
  if (typeof override !== 'number' || !Number.isFinite(override) || override < 0) throw new InvalidArgumentError('initialDelayMs', 'must be a finite number of milliseconds >= 0');
  return override;
}
