/**
 * The leader-only rolling-update controller (issue 5 item 3; DESIGN decisions 4 and 7): a
 * reconciler over `rolling-update/*`. While this node leads, it keeps a mirror of the prefixes
 * its facts come from, and for every non-terminal record it reads the record and the facts, asks
 * the pure `nextStep`, and commits the step as ONE transaction (`commitTxn`: compare the record's
 * modRevision as read, put the new record, then the step's writes). It then computes the next
 * step from the committed state, until the record has to wait; the earliest `wakeAt` of all
 * records (an absolute wall-clock deadline stored in the record) is when it looks again.
 *
 * Why a step happens at most once and a new leader resumes exactly:
 * - every step's transaction compares the record's modRevision, so of two leaders (an old one that
 *   does not know it lost, and the new one) only one can commit a step computed from a record;
 * - deadlines (batch delays, holds, monitoring, deploy/restore timeouts, grace cleanup) are in the
 *   record, so the next leader schedules from them, not from timers that died with the old one;
 * - facts are read at or after the record's revision: the mirror is fed by this node's watches,
 *   which see every applied change synchronously, and a transaction's promise settles after its
 *   entry is applied here, so the mirror already holds a commit when the next step is computed.
 *   A failed compare means someone else's write is already in the mirror: compute again.
 *
 * A step that finishes an update (COMPLETED, ROLLED_BACK, FAILED) also writes the release
 * revision and deletes the `active-update/` key, in the same transaction (see `release.ts`).
 * VALIDATING runs the validation (`validation.ts`) and hands its outcome to `nextStep` as facts.
 *
 * What wakes a round: leadership gained, a change under a watched prefix (instances reporting
 * ACTIVE gate steps, so their reports wake it too), the earliest `wakeAt`, and a periodic recheck
 * (the health windows change without any KV change). Errors other than a failed compare are
 * logged, recorded in `status()` and retried after a bounded, doubling back-off with a full
 * reload of the mirror. The controller never throws into the port's listeners.
 */
import { parseInstanceRecord } from '../invoker/records.ts';
import type { Compare, KeyValue, WatchEvent } from '../kv/index.ts';
import type { ClusterPort } from '../node/cluster-port.ts';
import { ASSIGNMENT_PREFIX, BLUEPRINT_PREFIX, INSTANCE_PREFIX, VERSION_ROUTING_PREFIX, parseInstanceKey, versionRoutingKey } from '../slices/keys.ts';
import type { Clock } from '../util/clock.ts';
import { InvalidArgumentError } from '../util/errors.ts';
import type { Logger } from '../util/logger.ts';
import { LeaderSessions, errorCode, type TermSession } from '../util/leader-sessions.ts';
import type { RoundLoop } from '../util/round-loop.ts';
import { askedInstances, commitTxn, nextStep, type Commit, type ValidationOutcome } from './decide.ts';
import { healthFact, updateFacts, type HealthSource } from './facts.ts';
import { UPDATE_PREFIX, isTerminal, parseUpdateRecord, updateKey, type UpdateRecord } from './record.ts';
import { ACTIVE_UPDATE_PREFIX, RELEASE_PREFIX, activeUpdateKey, finishes, nextRevision, terminalTxnParts } from './release.ts';
import { lookupArtifact, toValidationOutcome, validateUpdate } from './validation.ts';

export type { HealthSource } from './facts.ts';

export interface UpdateControllerOptions {
  readonly port: ClusterPort;
  /** Monotonic time for scheduling. */
  readonly clock: Clock;
  /** Wall-clock epoch ms: the time deadlines in records are written in. */
  readonly wallClockMs: () => number;
  /** The leader's cluster-wide metrics (the `MetricsAggregator`). */
  readonly health: HealthSource;
  readonly logger: Logger;
  /** Longest window the health source can cover (the aggregator's span; default 60 000). */
  readonly healthWindowMsMax?: number;
  /** Capacity validation: a member silent this long is down (default 15 000, as placement). */
  readonly nodeDownAfterMs?: number;
  /** Capacity validation: most instances on one node (default 64, as placement). */
  readonly nodeInstancesMax?: number;
  /** Longest sleep between rounds with nothing due (default 5000). */
  readonly recheckIntervalMs?: number;
  /** First delay after an error; doubles per consecutive error (default 100). */
  readonly retryDelayMsMin?: number;
  /** Longest delay after errors (default 5000). */
  readonly retryDelayMsMax?: number;
  /** Most steps (commits and failed compares) for one update in one round (default 64). */
  readonly stepsPerRoundMax?: number;
  /** Called after each committed step (observability, tests). */
  readonly onCommit?: (event: CommittedStep) => void;
}

/** One step this controller committed. */
export interface CommittedStep {
  readonly updateId: string;
  readonly step: string;
  readonly state: UpdateRecord['state'];
  readonly revision: number;
  readonly term: number;
}

/** The controller's view for debugging. */
export interface UpdateControllerStatus {
  readonly active: boolean;
  readonly term: number | undefined;
  /** Non-terminal records in the mirror at the last round. */
  readonly inFlight: number;
  readonly stepsCommitted: number;
  /** Steps refused by a compare (another writer got there first) and computed again. */
  readonly conflicts: number;
  /** Wall-clock time of the next scheduled look, if any. */
  readonly nextWakeAt: number | undefined;
  readonly lastError: { readonly code: string; readonly message: string; readonly atMs: number } | undefined;
}

const MIRRORED_PREFIXES = [UPDATE_PREFIX, INSTANCE_PREFIX, BLUEPRINT_PREFIX, VERSION_ROUTING_PREFIX, ASSIGNMENT_PREFIX, ACTIVE_UPDATE_PREFIX, RELEASE_PREFIX] as const;
/**
 * Most instance compares one step adds (`activeGuards`): with the record's own compare, its put,
 * its writes and audit events, a step stays well inside a transaction's 128 compares and
 * operations (DEFAULT_KV_LIMITS.txnOperationsMax). Past this many asked instances, the first
 * ACTIVE_GUARDS_MAX ACTIVE ones are guarded.
 */
const ACTIVE_GUARDS_MAX = 64;
// Changes there never make a step possible by themselves.
const QUIET_PREFIXES: ReadonlySet<string> = new Set([ASSIGNMENT_PREFIX, RELEASE_PREFIX]);

/** One term of leadership: the mirror, the watches and the loop's state. */
class Session implements TermSession {
  readonly mirror = new Map<string, Map<string, KeyValue>>();
  /** Parsed records by key, reused while the modRevision is the same. */
  readonly parsed = new Map<string, { readonly modRevision: number; readonly record: UpdateRecord | undefined }>();
  unwatch: (() => void)[] = [];
  loaded = false;
  nextWakeAt: number | undefined;
  cancelWake: () => void = () => {};

  constructor(
    readonly term: number,
    readonly loop: RoundLoop,
  ) {}

  map(prefix: string): Map<string, KeyValue> {
    let map = this.mirror.get(prefix);
    if (map === undefined) {
      map = new Map();
      this.mirror.set(prefix, map);
    }
    return map;
  }

  close(): void {
    for (const unwatch of this.unwatch) unwatch();
    this.unwatch = [];
    this.cancelWake();
  }
}

/** The outcome of trying to commit one step. */
type CommitOutcome = 'committed' | 'conflict' | 'deposed';

function positive(field: string, value: number): number {
  if (!(value > 0) || !Number.isFinite(value)) throw new InvalidArgumentError(field, `must be a positive number, got ${String(value)}`);
  return value;
}

function earliest(a: number | null, b: number | null): number | null {
  if (a === null) return b;
  if (b === null) return a;
  return Math.min(a, b);
}

/** Drives every rolling update while this node leads (see the module comment). */
export class UpdateController {
  private readonly port: ClusterPort;
  private readonly clock: Clock;
  private readonly wallClockMs: () => number;
  private readonly health: HealthSource;
  private readonly log: Logger;
  private readonly healthWindowMsMax: number;
  private readonly nodeDownAfterMs: number;
  private readonly nodeInstancesMax: number;
  private readonly recheckIntervalMs: number;
  private readonly stepsPerRoundMax: number;
  private readonly onCommit: ((event: CommittedStep) => void) | undefined;
  private readonly sessions: LeaderSessions<Session>;
  private stats = { stepsCommitted: 0, conflicts: 0, inFlight: 0 };

  /** Validates the settings; throws INVALID_ARGUMENT naming the bad one. */
  constructor(options: UpdateControllerOptions) {
    this.port = options.port;
    this.clock = options.clock;
    this.wallClockMs = options.wallClockMs;
    this.health = options.health;
    this.log = options.logger.child({ component: 'updates' });
    this.healthWindowMsMax = positive('healthWindowMsMax', options.healthWindowMsMax ?? 60_000);
    this.nodeDownAfterMs = positive('nodeDownAfterMs', options.nodeDownAfterMs ?? 15_000);
    this.nodeInstancesMax = positive('nodeInstancesMax', options.nodeInstancesMax ?? 64);
    this.recheckIntervalMs = positive('recheckIntervalMs', options.recheckIntervalMs ?? 5000);
    const retryDelayMsMin = positive('retryDelayMsMin', options.retryDelayMsMin ?? 100);
    const retryDelayMsMax = positive('retryDelayMsMax', options.retryDelayMsMax ?? 5000);
    if (retryDelayMsMax < retryDelayMsMin) throw new InvalidArgumentError('retryDelayMsMax', `must be at least retryDelayMsMin (${retryDelayMsMin})`);
    this.stepsPerRoundMax = positive('stepsPerRoundMax', options.stepsPerRoundMax ?? 64);
    this.onCommit = options.onCommit;
    this.sessions = new LeaderSessions({
      leadership: this.port,
      clock: this.clock,
      logger: this.log,
      label: 'update controller',
      errorAtMs: () => this.wallClockMs(),
      retryDelayMsMin,
      retryDelayMsMax,
      create: (term, loop) => new Session(term, loop),
      round: (session) => this.round(session),
      onStart: (session) => this.log.info({ term: session.term }, 'leading: driving rolling updates'),
      onEnd: (session) => this.log.info({ term: session.term }, 'rolling updates no longer driven here'),
      onFailure: (session, error, failures, retryInMs) => {
        session.loaded = false;
        this.log.warn({ err: error, code: errorCode(error), failures, retryInMs }, 'update round failed; retrying');
      },
    });
  }

  /** Follows leadership from now on; acts at once if this node already leads. Idempotent. */
  start(): void {
    this.sessions.start();
  }

  /** Stops acting and following leadership. Idempotent; a write in flight may still apply. */
  stop(): void {
    this.sessions.stop();
  }

  status(): UpdateControllerStatus {
    const session = this.sessions.current;
    return { active: session !== undefined, term: session?.term, ...this.stats, nextWakeAt: session?.nextWakeAt, lastError: this.sessions.lastError };
  }

  /** Asks for a round now (an operator command was committed, say). No-op when not leading. */
  poke(): void {
    this.sessions.wake();
  }

  /** One round: every non-terminal update as far as it goes now, then sleep until the earliest wake-up. */
  private async round(session: Session): Promise<void> {
    if (!session.loaded) await this.load(session);
    if (this.sessions.current !== session) return;
    if (!this.sessions.leads(session)) {
      this.sessions.followLeadership();
      return;
    }
    let wakeAt: number | null = null;
    const ids = this.inFlight(session);
    this.stats.inFlight = ids.length;
    for (const id of ids) {
      wakeAt = earliest(wakeAt, await this.reconcile(session, id));
      if (this.sessions.current !== session) return;
    }
    this.schedule(session, wakeAt);
  }

  /** The ids of the mirror's non-terminal, readable records. */
  private inFlight(session: Session): string[] {
    const ids: string[] = [];
    for (const kv of session.map(UPDATE_PREFIX).values()) {
      const record = this.recordOf(session, kv);
      if (record !== undefined && !isTerminal(record.state)) ids.push(record.id);
    }
    return ids;
  }

  private recordOf(session: Session, kv: KeyValue): UpdateRecord | undefined {
    const cached = session.parsed.get(kv.key);
    if (cached !== undefined && cached.modRevision === kv.modRevision) return cached.record;
    const parsed = parseUpdateRecord(kv.value);
    const record = parsed.ok && updateKey(parsed.value.id) === kv.key ? parsed.value : undefined;
    if (record === undefined) this.log.warn({ key: kv.key, reason: parsed.ok ? 'the record names another id' : parsed.reason }, 'unreadable rolling-update record ignored');
    session.parsed.set(kv.key, { modRevision: kv.modRevision, record });
    return record;
  }

  /**
   * Steps one update until it waits; returns its wake-up time (null: only a fact can move it).
   * Bounded by `stepsPerRoundMax`; past it the update is looked at again in the next round.
   */
  private async reconcile(session: Session, id: string): Promise<number | null> {
    const key = updateKey(id);
    for (let attempt = 0; attempt < this.stepsPerRoundMax; attempt++) {
      const kv = session.map(UPDATE_PREFIX).get(key);
      const record = kv === undefined ? undefined : this.recordOf(session, kv);
      if (kv === undefined || record === undefined || isTerminal(record.state)) return null;
      const validation = record.state === 'VALIDATING' ? await this.validate(session, record) : undefined;
      if (this.sessions.current !== session) return null;
      // The record may have moved during the validation's reads: start from the stored one.
      if (session.map(UPDATE_PREFIX).get(key)?.modRevision !== kv.modRevision) continue;
      const action = this.decide(session, record, validation);
      if (action.kind === 'wait') return action.wakeAt;
      const outcome = await this.commit(session, kv.modRevision, record, action);
      if (outcome === 'deposed') return null;
      if (outcome === 'conflict') this.stats.conflicts++;
    }
    session.loop.again();
    return null;
  }

  private decide(session: Session, record: UpdateRecord, validation: ValidationOutcome | undefined): ReturnType<typeof nextStep> {
    const health = healthFact(record, this.health, this.healthWindowMsMax, (error) => this.log.warn({ err: error, updateId: record.id }, 'health snapshot failed; evaluation inconclusive'));
    const facts = updateFacts(record, { instances: session.map(INSTANCE_PREFIX).values(), routingValue: session.map(VERSION_ROUTING_PREFIX).get(versionRoutingKey(record.base))?.value, health }, validation);
    return nextStep(record, facts, this.wallClockMs());
  }

  private async validate(session: Session, record: UpdateRecord): Promise<ValidationOutcome> {
    const [newArtifact, oldArtifact] = await Promise.all([lookupArtifact(this.port, record.base, record.newVersion), lookupArtifact(this.port, record.base, record.oldVersion)]);
    const result = validateUpdate(
      { id: record.id, base: record.base, oldVersion: record.oldVersion, newVersion: record.newVersion, strategy: record.strategy.kind, requestedInstances: record.instances.requested },
      {
        blueprints: [...session.map(BLUEPRINT_PREFIX).values()],
        assignments: [...session.map(ASSIGNMENT_PREFIX).values()],
        instanceKeys: [...session.map(INSTANCE_PREFIX).keys()],
        routingValue: session.map(VERSION_ROUTING_PREFIX).get(versionRoutingKey(record.base))?.value,
        activeUpdateValue: session.map(ACTIVE_UPDATE_PREFIX).get(activeUpdateKey(record.base))?.value,
        members: this.port.members(),
        nodeDownAfterMs: this.nodeDownAfterMs,
        nodeInstancesMax: this.nodeInstancesMax,
        newArtifact,
        oldArtifact,
      },
    );
    if (!result.ok) this.log.info({ updateId: record.id, blockers: result.blockers }, 'update validation blocked');
    return toValidationOutcome(result);
  }

  /** Commits one step as one transaction; a step that finishes the update writes its release too. */
  private async commit(session: Session, modRevision: number, record: UpdateRecord, step: Commit): Promise<CommitOutcome> {
    const txn = commitTxn(step, modRevision);
    const compare = [...txn.compare, ...this.activeGuards(session, record, step)];
    const success = [...txn.success];
    if (finishes(record.state, step.record.state)) {
      const revision = nextRevision(record.base, session.map(RELEASE_PREFIX).values());
      const parts = terminalTxnParts(step.record, revision, session.map(ACTIVE_UPDATE_PREFIX).get(activeUpdateKey(record.base)));
      compare.push(...parts.compare);
      success.push(...parts.success);
    }
    // Nothing awaits between this check and the proposal: the step is proposed by the leader that computed it.
    if (!this.sessions.leads(session)) {
      this.sessions.followLeadership();
      return 'deposed';
    }
    const result = await this.port.txn(compare, success, txn.failure);
    if (!result.succeeded) {
      this.log.info({ updateId: record.id, step: step.step }, 'update step lost a compare (a concurrent change); computing again');
      return 'conflict';
    }
    this.stats.stepsCommitted++;
    this.log.info({ updateId: record.id, step: step.step, state: step.record.state, revision: result.revision }, 'update step committed');
    const event: CommittedStep = { updateId: record.id, step: step.step, state: step.record.state, revision: result.revision, term: session.term };
    try {
      this.onCommit?.(event);
    } catch (error) {
      this.log.warn({ err: error }, 'onCommit listener failed');
    }
    return 'committed';
  }

  /**
   * Entering DEPLOYED or ROUTING needs the asked new instances ACTIVE (decide.ts), a fact read from
   * the mirror, which can change between the read and the commit (a node that restarts reports its
   * instances STARTING again). So the step also compares the modRevision of the ACTIVE new
   * instances it counted (the asked number, at most ACTIVE_GUARDS_MAX): if one has changed, the
   * compare fails and the step is computed again from the mirror, which then holds the change.
   * Found by cluster-sim/updates (seed 15): ROUTING entered right after the only new instance
   * went back to STARTING.
   */
  private activeGuards(session: Session, record: UpdateRecord, step: Commit): Compare[] {
    const entering = step.record.state !== record.state && (step.record.state === 'DEPLOYED' || step.record.state === 'ROUTING');
    if (!entering) return [];
    const wanted = Math.min(askedInstances(record), ACTIVE_GUARDS_MAX);
    const guards: Compare[] = [];
    for (const kv of session.map(INSTANCE_PREFIX).values()) {
      if (guards.length >= wanted) break;
      const parts = parseInstanceKey(kv.key);
      if (parts === undefined || parts.base !== record.base || parts.version.text !== record.newVersion) continue;
      const parsed = parseInstanceRecord(kv.value, parts.nodeId);
      if (parsed.ok && parsed.value.state === 'ACTIVE') guards.push({ key: kv.key, target: 'modRevision', op: '=', value: kv.modRevision });
    }
    return guards;
  }

  /** Sleeps until `wakeAt` (wall clock), at most `recheckIntervalMs`. */
  private schedule(session: Session, wakeAt: number | null): void {
    session.cancelWake();
    const now = this.wallClockMs();
    const delayMs = Math.max(0, Math.min(this.recheckIntervalMs, wakeAt === null ? this.recheckIntervalMs : wakeAt - now));
    session.nextWakeAt = now + delayMs;
    session.cancelWake = this.clock.schedule(delayMs, () => {
      if (this.sessions.current === session) this.sessions.guarded('wake-up', () => session.loop.wake());
    });
  }

  /** Reads every mirrored prefix afresh (linearizably) and watches each from the revision it was read at. */
  private async load(session: Session): Promise<void> {
    for (const unwatch of session.unwatch) unwatch();
    session.unwatch = [];
    session.mirror.clear();
    session.parsed.clear();
    for (const prefix of MIRRORED_PREFIXES) {
      const { kvs, revision } = await this.port.range(prefix);
      if (this.sessions.current !== session) return;
      session.mirror.set(prefix, new Map(kvs.map((kv) => [kv.key, kv])));
      session.unwatch.push(this.port.watch(prefix, revision + 1, (events) => this.sessions.guarded('watch', () => this.onEvents(session, prefix, events))));
    }
    session.loaded = true;
  }

  private onEvents(session: Session, prefix: string, events: readonly WatchEvent[]): void {
    if (this.sessions.current !== session) return;
    const map = session.map(prefix);
    for (const event of events) {
      if (event.type === 'put') map.set(event.kv.key, event.kv);
      else map.delete(event.kv.key);
    }
    if (!QUIET_PREFIXES.has(prefix) && session.loaded) session.loop.wake();
  }
}
