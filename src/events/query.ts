/**
 * Reading the audit trail: filters (artifact, update, actor, action, a time window), List over the
 * `event/` prefix, and the filter a Watch applies to each change. Works on any node over the
 * `ClusterPort`; reads are linearizable.
 *
 * List reads the whole `event/` prefix and filters in memory: the prefix is bounded by the
 * pruner (`pruner.ts`, 10 000 events by default), and filters on fields inside the value (actor,
 * action) cannot be narrowed by key anyway. The answer is ordered by commit order (the key's
 * modRevision, ties by id), oldest or newest first, and holds at most `limit` events
 * (LIST_LIMIT_MAX at most). Unreadable values are skipped and counted.
 */
import type { KeyValue } from '../kv/types.ts';
import type { ClusterPort } from '../node/cluster-port.ts';
import { InvalidArgumentError } from '../util/errors.ts';
import { EVENT_ACTIONS, EVENT_PREFIX, parseEvent, type EventAction, type StoredEvent } from './event.ts';

/** Most events one List answers. */
export const LIST_LIMIT_MAX = 1000;
/** Events a List answers when no limit is given. */
export const LIST_LIMIT_DEFAULT = 100;
/** Longest actor name a filter takes. */
export const ACTOR_FILTER_LENGTH_MAX = 128;

/** Which events; every field optional (absent = any). */
export interface EventFilter {
  /** `groupId:artifactId`, exact. */
  readonly artifact?: string;
  readonly updateId?: string;
  /** The actor's name, exact (`alice`, `controller`, `health-gate`). */
  readonly actor?: string;
  readonly action?: EventAction;
  /** At or after this wall-clock epoch ms. */
  readonly sinceMs?: number;
  /** Before this wall-clock epoch ms. */
  readonly untilMs?: number;
}

export type EventOrder = 'oldest-first' | 'newest-first';

/** Checks an action filter; INVALID_ARGUMENT naming `field` lists the actions. */
export function requireEventAction(text: unknown, field = 'action'): EventAction {
  if (typeof text !== 'string' || !(EVENT_ACTIONS as readonly string[]).includes(text)) throw new InvalidArgumentError(field, `must be one of ${EVENT_ACTIONS.join(', ')}, got ${JSON.stringify(text)}`);
  return text as EventAction;
}

/** Checks a time bound: an epoch ms integer ≥ 0. */
export function requireTimeMs(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw new InvalidArgumentError(field, `must be a time in epoch ms (a non-negative integer), got ${String(value)}`);
  return value;
}

/** Checks a limit: 1..LIST_LIMIT_MAX, or undefined for the default. */
export function requireListLimit(value: number | undefined, field = 'limit'): number {
  if (value === undefined || value === 0) return LIST_LIMIT_DEFAULT;
  if (!Number.isSafeInteger(value) || value < 0 || value > LIST_LIMIT_MAX) throw new InvalidArgumentError(field, `must be an integer in [1, ${LIST_LIMIT_MAX}] (0 = ${LIST_LIMIT_DEFAULT}), got ${value}`);
  return value;
}

/** Checks a filter's fields (the artifact's form is the caller's: it knows the artifact syntax). */
export function checkEventFilter(filter: EventFilter): EventFilter {
  if (filter.actor !== undefined && (filter.actor.length === 0 || filter.actor.length > ACTOR_FILTER_LENGTH_MAX)) throw new InvalidArgumentError('actor', `must be 1-${ACTOR_FILTER_LENGTH_MAX} characters`);
  if (filter.action !== undefined) requireEventAction(filter.action);
  if (filter.sinceMs !== undefined) requireTimeMs(filter.sinceMs, 'since');
  if (filter.untilMs !== undefined) requireTimeMs(filter.untilMs, 'until');
  if (filter.sinceMs !== undefined && filter.untilMs !== undefined && filter.untilMs < filter.sinceMs) throw new InvalidArgumentError('until', `must not be before since (${filter.sinceMs}), got ${filter.untilMs}`);
  return filter;
}

/** True when `event` passes `filter`. */
export function matchesEvent(event: StoredEvent, filter: EventFilter): boolean {
  if (filter.artifact !== undefined && event.target.artifact !== filter.artifact) return false;
  if (filter.updateId !== undefined && event.target.updateId !== filter.updateId) return false;
  if (filter.actor !== undefined && event.actor.name !== filter.actor) return false;
  if (filter.action !== undefined && event.action !== filter.action) return false;
  if (filter.sinceMs !== undefined && event.at < filter.sinceMs) return false;
  if (filter.untilMs !== undefined && event.at >= filter.untilMs) return false;
  return true;
}

/** Commit order: modRevision, then id (several events of one transaction share a revision). */
export function compareEvents(a: StoredEvent, b: StoredEvent): number {
  return a.revision - b.revision || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/** The readable events among `kvs`, and how many were not. */
export function readEvents(kvs: Iterable<KeyValue>): { readonly events: StoredEvent[]; readonly invalid: number } {
  const events: StoredEvent[] = [];
  let invalid = 0;
  for (const kv of kvs) {
    const parsed = parseEvent(kv.key, kv.value, kv.modRevision);
    if (parsed.ok) events.push(parsed.value);
    else invalid++;
  }
  return { events, invalid };
}

export interface EventList {
  readonly events: StoredEvent[];
  /** More events matched than `limit`. */
  readonly more: boolean;
  /** Unreadable values skipped. */
  readonly invalid: number;
  /** The store's revision the list was read at (watch from `revision + 1` to follow on). */
  readonly revision: number;
}

/** The events passing `filter`, in `order`, at most `limit` (see the module comment). */
export async function listEvents(port: ClusterPort, filter: EventFilter, options: { readonly limit?: number; readonly order?: EventOrder } = {}): Promise<EventList> {
  checkEventFilter(filter);
  const limit = requireListLimit(options.limit);
  const { kvs, revision } = await port.range(EVENT_PREFIX);
  const { events, invalid } = readEvents(kvs);
  const matching = events.filter((e) => matchesEvent(e, filter)).sort(compareEvents);
  if (options.order === 'newest-first') matching.reverse();
  return { events: matching.slice(0, limit), more: matching.length > limit, invalid, revision };
}
