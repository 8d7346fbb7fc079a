/**
 * The leader-only placement controller (DESIGN.md decision 4): while this node leads, it keeps a
 * mirror of `blueprint/`, `assignment/`, `instance/` and the guard key, plans with the pure
 * `planPlacement` on every change and every `recheckIntervalMs` (silences grow without any KV
 * change), and commits each non-empty plan as one transaction.
 *
 * Why a plan can never be applied by a stale or deposed leader, or against a state it was not
 * computed from:
 * - every plan transaction compares the modRevision of the guard key `placement/epoch` with the
 *   one in the mirror the plan read, and puts the guard again (moving its modRevision on);
 * - a leader's first transaction in its term claims the guard, even with nothing to place, and
 *   writes its term there; a leader that finds a higher term in the guard never acts. So once a
 *   newer leader has claimed, an older leader's in-flight or forwarded plan fails its compare;
 * - each blueprint whose assignments the plan changes is compared at the modRevision the plan
 *   read, so an operator's concurrent edit fails the plan rather than being overwritten by it;
 * - only the placement controller writes `assignment/`, and only under the guard.
 * A failed compare reloads the mirror and plans again. Any other error is logged, recorded in
 * `status()` and retried after a bounded, doubling back-off with a full reload (the outcome of the
 * failed write is unknown).
 *
 * The controller never throws into the port's listeners: watch and leadership callbacks only
 * update the mirror and wake the one planning loop.
 */
import { DEFAULT_KV_LIMITS, type Compare, type KeyValue, type Operation, type WatchEvent } from '../kv/index.ts';
import type { ClusterPort } from '../node/cluster-port.ts';
import type { Clock } from '../util/clock.ts';
import { InvalidArgumentError } from '../util/errors.ts';
import type { Logger } from '../util/logger.ts';
import { LeaderSessions, errorCode, type TermSession } from '../util/leader-sessions.ts';
import type { RoundLoop } from '../util/round-loop.ts';
import { ASSIGNMENT_PREFIX, BLUEPRINT_PREFIX, INSTANCE_PREFIX } from './keys.ts';
import { isEmptyPlan, planPlacement, type PlacementPlan, type UnplacedCount } from './placement.ts';

/** The guard key every plan is compared against and moves on; its value names the claiming leader. */
export const PLACEMENT_GUARD_KEY = 'placement/epoch';
// The node records membership under this prefix (node/node.ts MEMBER_PREFIX); a change there
// (a member added or removed) is a reason to plan again at once. Named here rather than imported
// so that slices/ depends on the ClusterPort interface only.
const MEMBER_PREFIX = 'cluster/member/';

export interface PlacementControllerOptions {
  readonly port: ClusterPort;
  readonly clock: Clock;
  readonly logger: Logger;
  /** A member the leader has not heard from for longer than this is down (default 15 000). */
  readonly nodeDownAfterMs?: number;
  /** Most instances, of all versions, on one node (default 64). */
  readonly nodeInstancesMax?: number;
  /** How often the leader plans without a KV change, to notice silent nodes (default 1000). */
  readonly recheckIntervalMs?: number;
  /** First delay after an error; it doubles per consecutive error (default 100). */
  readonly retryDelayMsMin?: number;
  /** Longest delay after errors (default 5000). */
  readonly retryDelayMsMax?: number;
  /** Compares plus operations one transaction may carry (default: the KV store's limit, 128). */
  readonly txnOperationsMax?: number;
}

/** The controller's view for debugging (`status()`). */
export interface PlacementStatus {
  /** This node leads and the controller is acting for `term`. */
  readonly active: boolean;
  readonly term: number | undefined;
  /** From the last plan: per blueprint, instances that fit on no live node. */
  readonly unplaced: readonly UnplacedCount[];
  /** Stored values the last plan could not read (malformed blueprints or assignments). */
  readonly invalid: number;
  /** The KV revision the last committed plan was computed against, and the revision it produced. */
  readonly lastPlanRevision: number | undefined;
  readonly lastCommitRevision: number | undefined;
  readonly plansCommitted: number;
  /** Plans refused by a compare (another writer got there first) and planned again. */
  readonly conflicts: number;
  readonly lastError: { readonly code: string; readonly message: string; readonly atMs: number } | undefined;
}

/** The guard key's value. */
interface GuardRecord {
  readonly term: number;
  readonly leaderId: number;
  readonly planRevision: number;
}

const MIRRORED_PREFIXES = [BLUEPRINT_PREFIX, ASSIGNMENT_PREFIX, INSTANCE_PREFIX, PLACEMENT_GUARD_KEY, MEMBER_PREFIX] as const;
// Reports change often and never need a plan at once (a down node's reports go on the recheck).
const QUIET_PREFIXES: ReadonlySet<string> = new Set([INSTANCE_PREFIX]);

/** One term of leadership: the mirror, the watches and the planning loop's state. */
class Session implements TermSession {
  readonly mirror = new Map<string, Map<string, KeyValue>>();
  unwatch: (() => void)[] = [];
  loaded = false;
  claimed = false;
  /** A newer leader's claim was seen: never act in this term. */
  superseded = false;
  cancelRecheck: () => void = () => {};

  constructor(
    readonly term: number,
    readonly loop: RoundLoop,
  ) {}

  entries(prefix: string): KeyValue[] {
    return [...(this.mirror.get(prefix)?.values() ?? [])];
  }

  close(): void {
    for (const unwatch of this.unwatch) unwatch();
    this.unwatch = [];
    this.cancelRecheck();
  }
}

function requirePositive(field: string, value: number, integer: boolean): number {
  if (!(value > 0) || !Number.isFinite(value) || (integer && !Number.isSafeInteger(value))) throw new InvalidArgumentError(field, `must be a positive ${integer ? 'integer' : 'number'}, got ${String(value)}`);
  return value;
}

function parseGuard(kv: KeyValue | undefined): GuardRecord | undefined {
  if (kv === undefined) return undefined;
  try {
    const json = JSON.parse(kv.value) as Partial<GuardRecord>;
    return typeof json.term === 'number' ? { term: json.term, leaderId: Number(json.leaderId), planRevision: Number(json.planRevision) } : undefined;
  } catch {
    return undefined;
  }
}

/** Places blueprint instances across the nodes while this node leads (see the module comment). */
export class PlacementController {
  private readonly port: ClusterPort;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly nodeDownAfterMs: number;
  private readonly nodeInstancesMax: number;
  private readonly recheckIntervalMs: number;
  private readonly txnOperationsMax: number;
  private readonly sessions: LeaderSessions<Session>;
  private lastPlan: PlacementPlan | undefined;
  private stats = { plansCommitted: 0, conflicts: 0, lastPlanRevision: undefined as number | undefined, lastCommitRevision: undefined as number | undefined };

  /** Validates the settings; throws INVALID_ARGUMENT naming the bad one. */
  constructor(options: PlacementControllerOptions) {
    this.port = options.port;
    this.clock = options.clock;
    this.log = options.logger.child({ component: 'placement' });
    this.nodeDownAfterMs = requirePositive('nodeDownAfterMs', options.nodeDownAfterMs ?? 15_000, false);
    this.nodeInstancesMax = requirePositive('nodeInstancesMax', options.nodeInstancesMax ?? 64, true);
    this.recheckIntervalMs = requirePositive('recheckIntervalMs', options.recheckIntervalMs ?? 1000, false);
    const retryDelayMsMin = requirePositive('retryDelayMsMin', options.retryDelayMsMin ?? 100, false);
    const retryDelayMsMax = requirePositive('retryDelayMsMax', options.retryDelayMsMax ?? 5000, false);
    if (retryDelayMsMax < retryDelayMsMin) throw new InvalidArgumentError('retryDelayMsMax', `must be at least retryDelayMsMin (${retryDelayMsMin})`);
    // A plan needs room for the guard's compare and put, one blueprint compare and one change.
    this.txnOperationsMax = requirePositive('txnOperationsMax', options.txnOperationsMax ?? DEFAULT_KV_LIMITS.txnOperationsMax, true);
    if (this.txnOperationsMax < 4) throw new InvalidArgumentError('txnOperationsMax', 'must be at least 4');
    this.sessions = new LeaderSessions({
      leadership: this.port,
      clock: this.clock,
      logger: this.log,
      label: 'placement',
      errorAtMs: () => this.clock.nowMs(),
      retryDelayMsMin,
      retryDelayMsMax,
      create: (term, loop) => new Session(term, loop),
      round: (session) => this.round(session),
      onStart: (session) => {
        this.log.info({ term: session.term }, 'leading: placing instances');
        this.scheduleRecheck(session);
      },
      onEnd: (session) => this.log.info({ term: session.term }, 'placement stopped'),
      onFailure: (session, error, failures, retryInMs) => {
        session.loaded = false;
        this.log.warn({ err: error, code: errorCode(error), failures, retryInMs }, 'placement round failed; retrying');
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

  status(): PlacementStatus {
    const session = this.sessions.current;
    return {
      active: session !== undefined && !session.superseded,
      term: session?.term,
      unplaced: this.lastPlan?.unplaced ?? [],
      invalid: this.lastPlan?.invalid.length ?? 0,
      ...this.stats,
      lastError: this.sessions.lastError,
    };
  }

  private scheduleRecheck(session: Session): void {
    session.cancelRecheck = this.clock.schedule(this.recheckIntervalMs, () => {
      if (this.sessions.current !== session) return;
      this.scheduleRecheck(session);
      this.sessions.guarded('recheck', () => session.loop.wake());
    });
  }

  /** One round: check leadership, load if needed, plan, and commit a plan that changes something. */
  private async round(session: Session): Promise<void> {
    if (!session.loaded) await this.load(session);
    // Checked after the load's awaits, and right before planning: from here to the proposal
    // nothing awaits, so the plan is proposed by the leader that made it (the guard covers the rest).
    if (this.sessions.current !== session || session.superseded) return;
    if (!this.sessions.leads(session)) {
      this.sessions.followLeadership();
      return;
    }
    const guard = session.mirror.get(PLACEMENT_GUARD_KEY)?.get(PLACEMENT_GUARD_KEY);
    const claimedTerm = parseGuard(guard)?.term ?? 0;
    if (claimedTerm > session.term) {
      session.superseded = true;
      this.log.warn({ term: session.term, claimedTerm }, 'a newer leader has claimed placement; not acting in this term');
      return;
    }
    const revision = this.port.revision();
    const plan = this.plan(session, revision);
    this.lastPlan = plan;
    if (isEmptyPlan(plan) && session.claimed) return;
    await this.commit(session, plan, guard, revision);
  }

  private plan(session: Session, revision: number): PlacementPlan {
    return planPlacement({
      blueprints: session.entries(BLUEPRINT_PREFIX),
      assignments: session.entries(ASSIGNMENT_PREFIX),
      instanceKeys: [...(session.mirror.get(INSTANCE_PREFIX)?.keys() ?? [])],
      members: this.port.members(),
      nodeDownAfterMs: this.nodeDownAfterMs,
      nodeInstancesMax: this.nodeInstancesMax,
      term: session.term,
      nowMs: this.clock.nowMs(),
      instanceIdPrefix: `i${revision}`,
      // Room for the guard's compare and put.
      changesMax: this.txnOperationsMax - 2,
    });
  }

  private async commit(session: Session, plan: PlacementPlan, guard: KeyValue | undefined, revision: number): Promise<void> {
    const blueprints = session.mirror.get(BLUEPRINT_PREFIX);
    const compare: Compare[] = [
      { key: PLACEMENT_GUARD_KEY, target: 'modRevision', op: '=', value: guard?.modRevision ?? 0 },
      ...plan.blueprintsTouched.map((key): Compare => ({ key, target: 'modRevision', op: '=', value: blueprints?.get(key)?.modRevision ?? 0 })),
    ];
    const guardRecord: GuardRecord = { term: session.term, leaderId: this.port.nodeId, planRevision: revision };
    const success: Operation[] = [
      { type: 'put', key: PLACEMENT_GUARD_KEY, value: JSON.stringify(guardRecord) },
      ...plan.removeInstances.map((key): Operation => ({ type: 'delete', key })),
      ...plan.remove.map((key): Operation => ({ type: 'delete', key })),
      ...plan.put.map((p): Operation => ({ type: 'put', key: p.key, value: p.value })),
    ];
    const result = await this.port.txn(compare, success);
    if (this.sessions.current !== session) return;
    if (!result.succeeded) {
      this.stats.conflicts++;
      this.log.info({ revision }, 'placement plan lost a compare (a concurrent change); reloading and planning again');
      session.loaded = false;
      session.loop.again();
      return;
    }
    session.claimed = true;
    this.stats = { ...this.stats, plansCommitted: this.stats.plansCommitted + 1, lastPlanRevision: revision, lastCommitRevision: result.revision };
    if (plan.truncated) session.loop.again();
    if (!isEmptyPlan(plan)) this.log.info({ revision: result.revision, moves: plan.moves, removedReports: plan.removeInstances.length, unplaced: plan.unplaced }, 'placement plan committed');
  }

  /** Reads every mirrored prefix afresh (linearizably) and watches each from the revision it was read at. */
  private async load(session: Session): Promise<void> {
    for (const unwatch of session.unwatch) unwatch();
    session.unwatch = [];
    session.mirror.clear();
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
    const map = session.mirror.get(prefix);
    if (map === undefined) return;
    for (const event of events) {
      if (event.type === 'put') map.set(event.kv.key, event.kv);
      else map.delete(event.kv.key);
    }
    if (!QUIET_PREFIXES.has(prefix) && session.loaded) session.loop.wake();
  }
}
