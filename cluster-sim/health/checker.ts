/**
 * The health scenario's checks on the replicated state (`AuditLog`, fed every applied entry by
 * every node; each revision is judged once, by the first node that applies it on its own) and on
 * the notification receivers (`judgeDeliveries`). Pure bookkeeping: no clock, no I/O; hand-made
 * states in test/sim/health.test.ts prove each check fires.
 *
 * Per entry (one revision):
 * - audit: an event key is written once (ids unique); `update.started` once per update; an
 *   `update.*` event only with its update record written in the same entry; an update record whose
 *   transition log grew only with at least one event of that update in the same entry;
 *   `instance.unhealthy` only with that instance's record written UNHEALTHY in the same entry;
 * - pruning: a delete of events removes the oldest first: no event with a smaller key (older id)
 *   that had been in the store for `PRUNE_SETTLED_MS` is left behind (a younger-keyed event written
 *   while the delete was in flight, with a skewed clock, is not the pruner's to know);
 * - health: an instance of a version that never passes its checks is never reported ACTIVE.
 * Outcome, routing and timing checks live in simulation.ts, where the clocks are.
 */
import { EVENT_PREFIX, notifies, parseEvent, type StoredEvent } from '../../src/events/event.ts';
import type { WatchEvent } from '../../src/kv/types.ts';
import { CHANNEL_PREFIX, CURSOR_KEY } from '../../src/notify/channel.ts';
import { INSTANCE_PREFIX, parseInstanceKey } from '../../src/slices/keys.ts';
import { UPDATE_PREFIX, parseUpdateRecord, type UpdateRecord } from '../../src/updates/record.ts';
import type { KeyValue } from '../../src/kv/types.ts';
import type { HealthBehaviour } from './options.ts';
import type { Delivery } from './receiver.ts';

/** An older-keyed event present this long before a delete that left it: a pruning-order violation. */
export const PRUNE_SETTLED_MS = 2000;

export type HealthViolationKind = 'health-audit' | 'health-prune' | 'health-notify' | 'health-routing' | 'health-outcome' | 'health-liveness' | 'health-timing' | 'update-safety';

export interface SeenEvent {
  readonly event: StoredEvent;
  /** Simulated ms when it was first applied somewhere. */
  readonly seenAtMs: number;
  /** Simulated ms when it was deleted (pruned), if it was. */
  deletedAtMs: number | undefined;
}

export class AuditLog {
  readonly events = new Map<string, SeenEvent>();
  readonly records = new Map<string, UpdateRecord>();
  readonly startedCount = new Map<string, number>();
  /** The first cursor written (its `revision`), and each channel's first put revision. */
  firstCursor: number | undefined;
  readonly channelRevision = new Map<string, number>();
  /** Event keys live now (mirror), with their first-seen time. */
  private readonly live = new Map<string, number>();
  private lastRevision = 0;
  checkedEntries = 0;
  prunedEvents = 0;
  eventsMax = 0;

  constructor(
    private readonly report: (kind: HealthViolationKind, message: string) => void,
    /** Versions whose instances must never be ACTIVE (their checks never pass). */
    private readonly neverHealthy: (version: string) => boolean,
  ) {}

  /**
   * One watch batch of a node. A batch of one revision whose puts carry that revision is an
   * applied entry and is judged (once per revision); anything else (a snapshot's net change) is
   * skipped: the entries it stands for are judged when some node applies them one by one.
   */
  entry(node: number, events: readonly WatchEvent[], nowMs: number, present: (key: string) => boolean = () => true): void {
    if (events.length === 0) return;
    const revision = events[0]!.revision;
    const single = events.every((e) => e.revision === revision && (e.type === 'delete' || e.kv.modRevision === revision));
    if (!single || revision <= this.lastRevision) return;
    // Revisions reach the log in order per node; one node may skip some (a snapshot), never reorder.
    this.lastRevision = revision;
    this.checkedEntries++;
    this.judge(node, revision, events, nowMs, present);
  }

  private judge(node: number, revision: number, events: readonly WatchEvent[], nowMs: number, present: (key: string) => boolean): void {
    const where = `revision ${revision} (node ${node})`;
    const puts = events.filter((e) => e.type === 'put');
    const eventPuts: StoredEvent[] = [];
    for (const e of puts) {
      const key = e.kv.key;
      if (key.startsWith(EVENT_PREFIX)) {
        const parsed = parseEvent(key, e.kv.value, revision);
        if (!parsed.ok) {
          this.report('health-audit', `${where}: event ${key} unreadable: ${parsed.reason}`);
          continue;
        }
        if (this.events.has(key) || e.kv.version !== 1) this.report('health-audit', `${where}: event id ${parsed.value.id} written again (version ${e.kv.version})`);
        this.events.set(key, { event: parsed.value, seenAtMs: nowMs, deletedAtMs: undefined });
        this.live.set(key, nowMs);
        eventPuts.push(parsed.value);
      } else if (key === CURSOR_KEY && this.firstCursor === undefined) {
        this.firstCursor = (JSON.parse(e.kv.value) as { revision: number }).revision;
      } else if (key.startsWith(CHANNEL_PREFIX) && !this.channelRevision.has(key.slice(CHANNEL_PREFIX.length))) {
        this.channelRevision.set(key.slice(CHANNEL_PREFIX.length), revision);
      }
    }
    this.eventsMax = Math.max(this.eventsMax, this.live.size);
    for (const event of eventPuts) this.judgeEvent(where, event, puts);
    for (const e of puts) {
      if (e.kv.key.startsWith(UPDATE_PREFIX)) this.judgeRecord(where, e.kv.key, e.kv.value, eventPuts);
      else if (e.kv.key.startsWith(INSTANCE_PREFIX)) this.judgeInstance(where, e.kv.key, e.kv.value);
    }
    const deleted = events.filter((e) => e.type === 'delete' && e.kv.key.startsWith(EVENT_PREFIX)).map((e) => e.kv.key);
    if (deleted.length > 0) this.judgePrune(where, deleted, nowMs, present);
  }

  private judgeEvent(where: string, event: StoredEvent, puts: readonly WatchEvent[]): void {
    const updateId = event.target.updateId;
    if (event.action === 'update.started' && updateId !== undefined) {
      const n = (this.startedCount.get(updateId) ?? 0) + 1;
      this.startedCount.set(updateId, n);
      if (n > 1) this.report('health-audit', `${where}: update.started written ${n} times for ${updateId}`);
    }
    if (event.action.startsWith('update.') && updateId !== undefined && !puts.some((p) => p.kv.key === `${UPDATE_PREFIX}${updateId}`)) {
      this.report('health-audit', `${where}: event ${event.id} (${event.action}) of ${updateId} without its update record written in the same revision`);
    }
    if (event.action === 'instance.unhealthy') {
      const match = puts.some((p) => {
        if (!p.kv.key.startsWith(INSTANCE_PREFIX)) return false;
        const parts = parseInstanceKey(p.kv.key);
        const state = (JSON.parse(p.kv.value) as { state?: unknown }).state;
        return parts !== undefined && parts.instanceId === event.target.instanceId && state === 'UNHEALTHY';
      });
      if (!match) this.report('health-audit', `${where}: instance.unhealthy ${event.id} for ${event.target.instanceId ?? '?'} without that instance written UNHEALTHY in the same revision`);
    }
  }

  private judgeRecord(where: string, key: string, value: string, eventPuts: readonly StoredEvent[]): void {
    const parsed = parseUpdateRecord(value);
    if (!parsed.ok) return this.report('update-safety', `${where}: ${key} unreadable: ${parsed.reason}`);
    const record = parsed.value;
    const before = this.records.get(key);
    this.records.set(key, record);
    const grew = record.log.length > (before?.log.length ?? 0) || (before !== undefined && record.state !== before.state);
    if (grew && !eventPuts.some((e) => e.target.updateId === record.id)) {
      this.report('health-audit', `${where}: ${record.id} changed (${before?.state ?? 'new'} -> ${record.state}, log ${before?.log.length ?? 0} -> ${record.log.length}: ${record.log[record.log.length - 1]?.step ?? ''}) without an event in the same revision`);
    }
  }

  private judgeInstance(where: string, key: string, value: string): void {
    const parts = parseInstanceKey(key);
    if (parts === undefined) return;
    const state = (JSON.parse(value) as { state?: unknown }).state;
    if (state === 'ACTIVE' && this.neverHealthy(parts.version.text)) this.report('health-outcome', `${where}: instance ${parts.instanceId} of ${parts.version.text}, whose checks never pass, reported ACTIVE`);
  }

  /** `present`: the key is in the applying node's store (the mirror misses entries only a snapshot carried). */
  private judgePrune(where: string, deleted: readonly string[], nowMs: number, present: (key: string) => boolean): void {
    const newestDeleted = deleted.reduce((a, b) => (a > b ? a : b));
    for (const key of deleted) {
      const seen = this.events.get(key);
      if (seen !== undefined && seen.deletedAtMs === undefined) {
        seen.deletedAtMs = nowMs;
        this.prunedEvents++;
      }
      this.live.delete(key);
    }
    for (const [key, seenAtMs] of this.live) {
      if (key >= newestDeleted) continue;
      if (!present(key)) {
        this.live.delete(key);
        continue;
      }
      if (seenAtMs + PRUNE_SETTLED_MS <= nowMs) {
        this.report('health-prune', `${where}: pruning deleted ${newestDeleted} (with ${deleted.length - 1} more) but left the older ${key}, in the store since ${seenAtMs.toFixed(0)} ms`);
        return;
      }
    }
  }

  /** Events that notify, in commit order. */
  notifying(): SeenEvent[] {
    return [...this.events.values()].filter((s) => notifies(s.event)).sort((a, b) => a.event.revision - b.event.revision);
  }
}

export interface DeliveryVerdict {
  readonly problems: string[];
  readonly required: number;
  readonly delivered: number;
  readonly duplicates: number;
  /** Required events pruned before their first delivery (exempt, counted). */
  readonly prunedFirst: number;
}

/**
 * One channel's deliveries against the events that notify. Required: every notifying event
 * committed above `fromRevision` (the first cursor, and the channel's creation) that was not
 * given up by a dispatcher (`givenUp`: attempts exhausted) and not pruned before its first
 * delivery. Checked: each required one delivered at least once; first deliveries in revision
 * order (except events given up somewhere, whose later resend by a new leader may come late);
 * within one leader term (the delivery id's `{node}-{term}`), an event at most `attemptsMax` times.
 */
export function judgeDeliveries(
  channel: string,
  events: readonly SeenEvent[],
  deliveries: readonly Delivery[],
  options: { readonly fromRevision: number; readonly attemptsMax: number; readonly givenUp: ReadonlySet<string> },
): DeliveryVerdict {
  const problems: string[] = [];
  const first = new Map<string, Delivery>();
  const perTerm = new Map<string, number>();
  let duplicates = 0;
  let lastFirst: Delivery | undefined;
  for (const d of deliveries) {
    const term = d.deliveryId.split('-').slice(0, 2).join('-');
    const k = `${d.eventId} ${term}`;
    const n = (perTerm.get(k) ?? 0) + 1;
    perTerm.set(k, n);
    if (n > options.attemptsMax) problems.push(`${channel}: event ${d.eventId} delivered ${n} times in term ${term} (attemptsMax ${options.attemptsMax})`);
    if (first.has(d.eventId)) {
      duplicates++;
      continue;
    }
    first.set(d.eventId, d);
    if (lastFirst !== undefined && d.revision < lastFirst.revision && !options.givenUp.has(d.eventId) && !options.givenUp.has(lastFirst.eventId)) {
      problems.push(`${channel}: event ${d.eventId} (revision ${d.revision}) first delivered at ${d.atMs.toFixed(0)} ms, after ${lastFirst.eventId} (revision ${lastFirst.revision}) at ${lastFirst.atMs.toFixed(0)} ms`);
    }
    if (lastFirst === undefined || d.revision > lastFirst.revision) lastFirst = d;
  }
  let required = 0;
  let prunedFirst = 0;
  for (const s of events) {
    if (s.event.revision <= options.fromRevision || options.givenUp.has(s.event.id)) continue;
    const d = first.get(s.event.id);
    if (d === undefined && s.deletedAtMs !== undefined) {
      prunedFirst++;
      continue;
    }
    required++;
    if (d === undefined) problems.push(`${channel}: event ${s.event.id} (${s.event.action}, revision ${s.event.revision}, committed at ${s.seenAtMs.toFixed(0)} ms) never delivered`);
  }
  return { problems, required, delivered: first.size, duplicates, prunedFirst };
}

/**
 * The routing invariant, at the moment an invoker hands a call to instance `key`: the caller's
 * applied state (`kv`, at `revision`) must not have it UNHEALTHY (the caller's table, fed by the
 * same applies, excludes it). 'not-active' for another state than ACTIVE (a record deleted or
 * draining while the call was routed: a race the invoker's retry covers; counted, not a violation).
 */
export function pickProblem(caller: number, revision: number, key: string, kv: KeyValue | undefined): string | 'not-active' | undefined {
  const state = kv === undefined ? 'absent' : (JSON.parse(kv.value) as { state?: unknown }).state;
  if (state === 'ACTIVE') return undefined;
  if (state === 'UNHEALTHY') return `node ${caller} (applied ${revision}) sent a call to ${key}, which its node reported UNHEALTHY at revision ${kv!.modRevision}: ${kv!.value}`;
  return 'not-active';
}

export function describeUpdate(r: UpdateRecord, behaviour: HealthBehaviour): string {
  return `${r.id} ${r.strategy.kind} ${behaviour} ${r.newVersion} ${r.state}${r.paused ? ` paused (${r.pauseReason ?? ''})` : ''} last: ${r.log.slice(-3).map((e) => `${e.step} (${e.reason.slice(0, 160)})`).join(' | ')}`;
}

/**
 * The outcome of an update that ended, by its new version's behaviour: a never-healthy version
 * never COMPLETED (nor a sick one, on the clean update); FAILED always with a reason. `strict` (the clean update, no faults):
 * healthy COMPLETED, sick ROLLED_BACK with the failing check (`healthz`) in its rollback's
 * reasons, never-healthy ROLLED_BACK or FAILED. (Under faults a sick version may be rolled back
 * for the calls the faults lost before its checks fail: then its reason is the metrics.)
 */
export function outcomeProblem(r: UpdateRecord, behaviour: HealthBehaviour, strict: boolean): string | undefined {
  const last = r.log[r.log.length - 1];
  // A sick version whose instances keep being restarted (crashes every few seconds) never stays up
  // long enough to fail, so under faults only never-healthy is judged here; the gate's own promise
  // (no COMPLETING with an UNHEALTHY new instance) is judged on every entry (simulation.ts).
  if ((behaviour === 'never' || (strict && behaviour === 'sick')) && r.state === 'COMPLETED') return `${behaviour} version ended COMPLETED: ${describeUpdate(r, behaviour)}`;
  if (r.state === 'FAILED' && (last?.reason ?? '') === '') return `FAILED without a reason: ${describeUpdate(r, behaviour)}`;
  if (!strict) return undefined;
  const want = behaviour === 'healthy' ? ['COMPLETED'] : behaviour === 'sick' ? ['ROLLED_BACK'] : behaviour === 'never' ? ['ROLLED_BACK', 'FAILED'] : ['COMPLETED', 'ROLLED_BACK', 'FAILED'];
  if (!want.includes(r.state)) return `the clean update of a ${behaviour} version ended ${r.state}, expected ${want.join(' or ')}: ${describeUpdate(r, behaviour)}`;
  if (behaviour === 'sick') {
    const reasons = `${r.rollback === null ? '' : JSON.stringify(r.rollback)} ${r.log.map((e) => e.reason).join(' ')}`;
    if (!reasons.includes('healthz')) return `sick version ROLLED_BACK without the failing checks in its reason: ${describeUpdate(r, behaviour)}`;
  }
  return undefined;
}

/**
 * How late `next` (a record change with a new log entry, at wall time `nowWallMs`) came after the
 * step deadline `prev` set (`deadlines.nextStepAt`, wall ms), counted from when `prev` itself was
 * committed (`prevWallMs`) if the deadline had already passed then (a resumed record keeps an old
 * deadline); undefined when `prev` set none, was paused, or `next` logged no step.
 */
export function stepLatenessMs(prev: UpdateRecord, next: UpdateRecord, nowWallMs: number, prevWallMs = Number.NEGATIVE_INFINITY): number | undefined {
  const deadline = prev.paused ? null : prev.deadlines.nextStepAt;
  if (deadline === null || next.log.length === prev.log.length) return undefined;
  return nowWallMs - Math.max(deadline, prevWallMs);
}
