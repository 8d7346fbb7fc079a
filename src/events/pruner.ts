/**
 * The audit trail's bound (issue 7 item 5): a leader-only reconciler that deletes the oldest
 * events beyond `countMax` (default 10 000) and those older than `ageMsMax` (default 7 days), in
 * bounded batches, by key order (ids begin with the time, so key order is age order).
 *
 * While this node leads it keeps a mirror of the `event/` KEYS (read once per term, then followed
 * by a watch), so a round costs no read of the values. A round computes the keys to delete from
 * the mirror and the wall clock, and deletes at most `batchMax` keys per transaction and
 * `batchesPerRoundMax` transactions per round; what is left waits for the next round, which it
 * asks for at once. Rounds run on leadership gained, when writes take the count a batch past the
 * bound (so the store holds at most `countMax + batchMax` events between rounds, and a steady
 * stream of events costs one delete transaction per `batchMax` events), and every `intervalMs`
 * (age grows without any write).
 *
 * Why deletes need no compare: events are written once and never changed, and both bounds only
 * ever move forward (newer events push the count, time pushes the age), so a key that is past a
 * bound stays past it; deleting an already deleted key is a no-op. A deposed leader's view holds
 * at most the events this one holds, so it never deletes one this one would keep. The check that
 * this node still leads is made right before each proposal anyway, as the other controllers do.
 */
import type { WatchEvent } from '../kv/index.ts';
import { SortedKeys } from '../kv/sorted-keys.ts';
import type { ClusterPort } from '../node/cluster-port.ts';
import type { Clock } from '../util/clock.ts';
import { InvalidArgumentError } from '../util/errors.ts';
import type { Logger } from '../util/logger.ts';
import { LeaderSessions, errorCode, type TermSession } from '../util/leader-sessions.ts';
import type { RoundLoop } from '../util/round-loop.ts';
import { EVENT_PREFIX, eventKeyAt } from './event.ts';

export const EVENT_COUNT_MAX_DEFAULT = 10_000;
export const EVENT_AGE_MS_MAX_DEFAULT = 7 * 24 * 3_600_000;

export interface EventPrunerOptions {
  readonly port: ClusterPort;
  /** Monotonic time for scheduling. */
  readonly clock: Clock;
  /** Wall-clock epoch ms: the time event ids are written in. */
  readonly wallClockMs: () => number;
  readonly logger: Logger;
  /** Most events kept (default 10 000). */
  readonly countMax?: number;
  /** Oldest event kept, in ms (default 7 days). */
  readonly ageMsMax?: number;
  /** Keys deleted per transaction (default 100; the KV store takes 128 operations per transaction). */
  readonly batchMax?: number;
  /** Transactions per round (default 10). */
  readonly batchesPerRoundMax?: number;
  /** Time between rounds with nothing else waking one (default 60 000). */
  readonly intervalMs?: number;
  /** First delay after an error; doubles per consecutive error (default 100). */
  readonly retryDelayMsMin?: number;
  /** Longest delay after errors (default 5000). */
  readonly retryDelayMsMax?: number;
}

export interface EventPrunerStatus {
  readonly active: boolean;
  readonly term: number | undefined;
  /** Events in the mirror (this node leads) at the last round. */
  readonly events: number;
  readonly deleted: number;
  readonly lastError: { readonly code: string; readonly message: string; readonly atMs: number } | undefined;
}

/** The keys to delete now from `keys` (sorted ascending): past the count first, then past the age; at most `max`. */
export function keysToPrune(keys: readonly string[], options: { readonly countMax: number; readonly ageMsMax: number; readonly nowMs: number; readonly max: number }): string[] {
  const overCount = Math.max(0, keys.length - options.countMax);
  const cutoff = eventKeyAt(options.nowMs - options.ageMsMax);
  let end = overCount;
  while (end < keys.length && keys[end]! < cutoff) end++;
  return keys.slice(0, Math.min(end, options.max));
}

/** One term of leadership: the mirror of the keys, its watch and the interval's timer. */
class Session implements TermSession {
  readonly mirror = new SortedKeys();
  unwatch: () => void = () => {};
  loaded = false;
  cancelWake: () => void = () => {};

  constructor(
    readonly term: number,
    readonly loop: RoundLoop,
  ) {}

  close(): void {
    this.unwatch();
    this.cancelWake();
  }
}

function positiveInteger(field: string, value: number): number {
  if (!Number.isSafeInteger(value) || value <= 0) throw new InvalidArgumentError(field, `must be a positive integer, got ${String(value)}`);
  return value;
}

/** Keeps the audit trail within its bounds while this node leads (see the module comment). */
export class EventPruner {
  private readonly port: ClusterPort;
  private readonly clock: Clock;
  private readonly wallClockMs: () => number;
  private readonly log: Logger;
  readonly countMax: number;
  readonly ageMsMax: number;
  private readonly batchMax: number;
  private readonly batchesPerRoundMax: number;
  private readonly intervalMs: number;
  private readonly sessions: LeaderSessions<Session>;
  private deleted = 0;

  /** Validates the settings; throws INVALID_ARGUMENT naming the bad one. */
  constructor(options: EventPrunerOptions) {
    this.port = options.port;
    this.clock = options.clock;
    this.wallClockMs = options.wallClockMs;
    this.log = options.logger.child({ component: 'event-pruner' });
    this.countMax = positiveInteger('countMax', options.countMax ?? EVENT_COUNT_MAX_DEFAULT);
    this.ageMsMax = positiveInteger('ageMsMax', options.ageMsMax ?? EVENT_AGE_MS_MAX_DEFAULT);
    this.batchMax = positiveInteger('batchMax', options.batchMax ?? 100);
    if (this.batchMax > 120) throw new InvalidArgumentError('batchMax', `must be at most 120 (a transaction takes 128 operations), got ${this.batchMax}`);
    this.batchesPerRoundMax = positiveInteger('batchesPerRoundMax', options.batchesPerRoundMax ?? 10);
    this.intervalMs = positiveInteger('intervalMs', options.intervalMs ?? 60_000);
    const retryDelayMsMin = positiveInteger('retryDelayMsMin', options.retryDelayMsMin ?? 100);
    const retryDelayMsMax = positiveInteger('retryDelayMsMax', options.retryDelayMsMax ?? 5000);
    if (retryDelayMsMax < retryDelayMsMin) throw new InvalidArgumentError('retryDelayMsMax', `must be at least retryDelayMsMin (${retryDelayMsMin})`);
    this.sessions = new LeaderSessions({
      leadership: this.port,
      clock: this.clock,
      logger: this.log,
      label: 'event pruner',
      errorAtMs: () => this.wallClockMs(),
      retryDelayMsMin,
      retryDelayMsMax,
      create: (term, loop) => new Session(term, loop),
      round: (session) => this.round(session),
      onFailure: (session, error, failures, retryInMs) => {
        session.loaded = false;
        this.log.warn({ err: error, code: errorCode(error), failures, retryInMs }, 'event pruning failed; retrying');
      },
    });
  }

  /** Follows leadership from now on; acts at once if this node already leads. Idempotent. */
  start(): void {
    this.sessions.start();
  }

  /** Stops acting and following leadership. Idempotent; a delete in flight may still apply. */
  stop(): void {
    this.sessions.stop();
  }

  status(): EventPrunerStatus {
    const session = this.sessions.current;
    return { active: session !== undefined, term: session?.term, events: session?.mirror.size ?? 0, deleted: this.deleted, lastError: this.sessions.lastError };
  }

  /** Asks for a round now. No-op when not leading. */
  poke(): void {
    this.sessions.wake();
  }

  private async load(session: Session): Promise<void> {
    session.unwatch();
    session.mirror.reset([]);
    const { kvs, revision } = await this.port.range(EVENT_PREFIX);
    if (this.sessions.current !== session) return;
    session.mirror.reset(kvs.map((kv) => kv.key));
    session.unwatch = this.port.watch(EVENT_PREFIX, revision + 1, (events) => this.sessions.guarded('watch', () => this.onEvents(session, events)));
    session.loaded = true;
  }

  private onEvents(session: Session, events: readonly WatchEvent[]): void {
    if (this.sessions.current !== session) return;
    for (const event of events) {
      if (event.type === 'put') session.mirror.add(event.kv.key);
      else session.mirror.delete(event.kv.key);
    }
    // A batch's worth over the bound before a write wakes a round: at the bound, one delete per
    // event written would double the write load; the interval's round takes any smaller excess.
    if (session.loaded && session.mirror.size >= this.countMax + this.batchMax) session.loop.wake();
  }

  private async round(session: Session): Promise<void> {
    if (!session.loaded) await this.load(session);
    for (let batch = 0; batch < this.batchesPerRoundMax; batch++) {
      if (!this.sessions.leads(session)) {
        if (this.sessions.current === session) this.sessions.followLeadership();
        return;
      }
      const keys = keysToPrune(session.mirror.all(), { countMax: this.countMax, ageMsMax: this.ageMsMax, nowMs: this.wallClockMs(), max: this.batchMax });
      if (keys.length === 0) break;
      await this.port.txn(
        [],
        keys.map((key) => ({ type: 'delete', key })),
      );
      // The watch has already applied the deletes to the mirror (a txn settles after it applies here).
      for (const key of keys) session.mirror.delete(key);
      this.deleted += keys.length;
      this.log.debug({ deleted: keys.length, left: session.mirror.size }, 'events pruned');
      // Past the round's batches: ask for another round rather than hold the loop.
      if (batch === this.batchesPerRoundMax - 1) session.loop.again();
    }
    this.schedule(session);
  }

  private schedule(session: Session): void {
    session.cancelWake();
    session.cancelWake = this.clock.schedule(this.intervalMs, () => {
      if (this.sessions.current === session) this.sessions.guarded('wake-up', () => session.loop.wake());
    });
  }
}
