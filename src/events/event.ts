/**
 * The audit trail's record: every operator action and every system decision is one event under
 * `event/{id}` in the replicated store, written in the SAME transaction as the change it describes
 * (so an event exists exactly when its change committed, and a retried step writes it once).
 *
 * Ids sort by time: `{at, 13 digits}-{source}`, where `source` is unique for the change and
 * deterministic (`u.{updateId}.{logSeq}` for an update's transition log entry, `i.{instanceId}.{n}`
 * for an instance's health change, `c.{clientId}.{seq}` for an API call, …): never random, so a
 * simulated run replays exactly and a retried write puts the same key. Readers order by the key's
 * modRevision (the commit order), which the list and watch answers carry as `revision`.
 *
 * Values come from other nodes, so `parseEvent` returns a reason instead of throwing; unknown extra
 * fields are accepted (a newer writer may add some).
 */
import { parseJsonObject, refuse, type Parsed } from '../util/parsed.ts';

export const EVENT_PREFIX = 'event/';

/** Longest reason kept, in characters (longer ones are cut with an ellipsis). */
export const EVENT_REASON_LENGTH_MAX = 1024;
/** Longest id source, in characters. */
export const EVENT_SOURCE_LENGTH_MAX = 256;

/** Who did it: an operator by name, or a part of the system (`controller`, `health-gate`, `node-3`). */
export interface EventActor {
  readonly kind: 'user' | 'system';
  readonly name: string;
}

/** What happened. `update.*` come from the update controller and the operator commands. */
export const EVENT_ACTIONS = [
  'update.started',
  'update.routing',
  'update.step',
  'update.paused',
  'update.resumed',
  'update.approval-requested',
  'update.approved',
  'update.promoted',
  'update.rollback-started',
  'update.rolled-back',
  'update.completing',
  'update.completed',
  'update.cleanup',
  'update.cancelled',
  'update.failed',
  'slice.published',
  'slice.deployed',
  'slice.scaled',
  'slice.undeployed',
  'instance.unhealthy',
  'instance.healthy',
  'member.added',
  'member.promoted',
  'member.removed',
  'leader.transferred',
] as const;
export type EventAction = (typeof EVENT_ACTIONS)[number];

/**
 * The actions that notify (issue 7 item 4). `update.paused` notifies only when the health gate
 * paused (actor `system`/`health-gate`): see `notifies`.
 */
export const NOTIFY_ACTIONS: readonly EventAction[] = [
  'update.started',
  'update.paused',
  'update.approval-requested',
  'update.rollback-started',
  'update.rolled-back',
  'update.completed',
  'update.failed',
  'instance.unhealthy',
];

/** What the event is about; every field optional, filled as far as it applies. */
export interface EventTarget {
  /** `groupId:artifactId`. */
  readonly artifact?: string;
  readonly updateId?: string;
  readonly version?: string;
  readonly instanceId?: string;
  readonly nodeId?: number;
  /** Membership changes: the member concerned. */
  readonly memberId?: number;
}

export interface AuditEvent {
  /** The key is `event/{id}`. */
  readonly id: string;
  /** Wall-clock epoch ms of the writer. */
  readonly at: number;
  readonly actor: EventActor;
  readonly action: EventAction;
  readonly target: EventTarget;
  readonly reason: string;
  /** Evidence: failing checks or metrics, the ratio set, the state moved from and to, … (JSON). */
  readonly details?: Readonly<Record<string, unknown>>;
}

/** An event as read back, with the revision that committed it. */
export interface StoredEvent extends AuditEvent {
  readonly revision: number;
}

/** `{at, 13 digits}-{source}`. */
export function eventId(at: number, source: string): string {
  if (!Number.isSafeInteger(at) || at < 0 || at > 9_999_999_999_999) throw new RangeError(`event time must be an epoch ms integer, got ${at}`);
  if (source.length === 0 || source.length > EVENT_SOURCE_LENGTH_MAX || /[/\s]/.test(source)) throw new RangeError(`event source must be 1-${EVENT_SOURCE_LENGTH_MAX} characters without '/' or spaces, got ${JSON.stringify(source)}`);
  return `${String(at).padStart(13, '0')}-${source}`;
}

export function eventKey(id: string): string {
  return `${EVENT_PREFIX}${id}`;
}

/** The events key for events at or after `at` sort at or after this key (for pruning by age). */
export function eventKeyAt(at: number): string {
  return `${EVENT_PREFIX}${String(Math.max(0, Math.floor(at))).padStart(13, '0')}`;
}

function cut(reason: string): string {
  return reason.length <= EVENT_REASON_LENGTH_MAX ? reason : `${reason.slice(0, EVENT_REASON_LENGTH_MAX - 1)}…`;
}

export function formatEvent(event: AuditEvent): string {
  return JSON.stringify({ ...event, reason: cut(event.reason) });
}

/** The put that records `event`, to add to the transaction of the change it describes. */
export function eventWrite(event: AuditEvent): { readonly type: 'put'; readonly key: string; readonly value: string } {
  return { type: 'put', key: eventKey(event.id), value: formatEvent(event) };
}

/** Whether `event` is sent to notification channels. */
export function notifies(event: AuditEvent): boolean {
  if (!NOTIFY_ACTIONS.includes(event.action)) return false;
  return event.action !== 'update.paused' || (event.actor.kind === 'system' && event.actor.name === 'health-gate');
}

const ACTIONS: ReadonlySet<string> = new Set(EVENT_ACTIONS);
const TARGET_STRINGS = ['artifact', 'updateId', 'version', 'instanceId'] as const;
const TARGET_NUMBERS = ['nodeId', 'memberId'] as const;

/** Parses an `event/` entry; `revision` is the key's modRevision. */
export function parseEvent(key: string, value: string, revision: number): Parsed<StoredEvent> {
  if (!key.startsWith(EVENT_PREFIX)) return refuse(`key must start with ${EVENT_PREFIX}`);
  const parsed = parseJsonObject(value);
  if (!parsed.ok) return parsed;
  const { id, at, actor, action, target, reason, details } = parsed.value;
  if (typeof id !== 'string' || eventKey(id) !== key) return refuse('id must match the key');
  if (typeof at !== 'number' || !Number.isSafeInteger(at) || at < 0) return refuse('at must be an epoch ms integer');
  if (typeof actor !== 'object' || actor === null) return refuse('actor must be an object');
  const { kind, name } = actor as Record<string, unknown>;
  if ((kind !== 'user' && kind !== 'system') || typeof name !== 'string' || name.length === 0) return refuse('actor must be {kind: user|system, name}');
  if (typeof action !== 'string' || !ACTIONS.has(action)) return refuse(`action must be one of ${EVENT_ACTIONS.join(', ')}`);
  if (typeof target !== 'object' || target === null || Array.isArray(target)) return refuse('target must be an object');
  const t = target as Record<string, unknown>;
  const out: Record<string, string | number> = {};
  for (const field of TARGET_STRINGS) {
    if (t[field] === undefined) continue;
    if (typeof t[field] !== 'string') return refuse(`target.${field} must be a string`);
    out[field] = t[field];
  }
  for (const field of TARGET_NUMBERS) {
    if (t[field] === undefined) continue;
    if (typeof t[field] !== 'number' || !Number.isSafeInteger(t[field])) return refuse(`target.${field} must be an integer`);
    out[field] = t[field];
  }
  if (typeof reason !== 'string') return refuse('reason must be a string');
  if (details !== undefined && (typeof details !== 'object' || details === null || Array.isArray(details))) return refuse('details must be an object');
  const event: StoredEvent = {
    id,
    at,
    actor: { kind, name },
    action: action as EventAction,
    target: out as EventTarget,
    reason,
    ...(details === undefined ? {} : { details: details as Record<string, unknown> }),
    revision,
  };
  return { ok: true, value: event };
}
