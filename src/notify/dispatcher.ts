/**
 * The leader-only notification dispatcher (issue 7 item 4). While this node leads, it watches the
 * `event/` prefix and hands each event that notifies (`notifies(event)`) to the queue of every
 * channel that wants it (`notify/channel/…`: cluster-wide or one artifact, and an action filter).
 *
 * Never on the controller's path: the watch listener only appends the raw watch events to a bounded
 * intake (no parsing, no await) and asks for a drain on a later microtask; the drain parses and
 * enqueues; each channel's queue does its I/O on its own (see ChannelQueue). A receiver that hangs
 * or is down holds only its own channel's queue.
 *
 * Leader changes. The dispatcher keeps a cursor in the store (`notify/cursor`: the last event
 * revision whose notifications every channel has finished, delivered or given up, with the
 * writer's term). It is written when a leader takes over (a claim with its term), then at most every
 * `cursorWriteIntervalMs` while it moves, and on the way out when the node can still write; each
 * write is a compare-and-swap on the cursor's modRevision, and a leader that finds a cursor of a
 * later term stops. A new leader resumes from cursor + 1: nothing committed before it took over is
 * lost, and what it sends twice is bounded by what the old leader had not finished. When the watch
 * history no longer reaches the cursor, the events still in the store above it are read back (up to
 * `recoverEventsMax`), and the gap, if any, is logged.
 *
 * Delivery is therefore AT LEAST ONCE: a receiver can see an event twice (a retry whose first answer
 * was lost, or a resend after a leader change) and de-duplicates by the event id (`id` in the body,
 * `X-Cutover-Event-Id` in the headers).
 */
import { EVENT_PREFIX, notifies, parseEvent } from '../events/event.ts';
import type { KeyValue, WatchEvent } from '../kv/index.ts';
import type { ClusterPort } from '../node/cluster-port.ts';
import type { Clock } from '../util/clock.ts';
import type { Logger } from '../util/logger.ts';
import type { Random } from '../util/random.ts';
import { CHANNEL_PREFIX, CURSOR_KEY, channelWants, parseChannel, type ChannelRecord } from './channel.ts';
import { ChannelQueue, zeroCounters, type DeliveryCounters } from './channel-queue.ts';
import { noticeOf } from './payload.ts';
import type { PostFunction } from './send.ts';
import { validateNotifySettings, type NotifySettings } from './settings.ts';

export interface NotifyDispatcherOptions {
  readonly port: ClusterPort;
  readonly clock: Clock;
  /** Wall-clock epoch ms, for the signed timestamp. */
  readonly wallClockMs: () => number;
  /** Back-off jitter. */
  readonly random: Random;
  readonly logger: Logger;
  readonly settings?: Partial<NotifySettings>;
  /** How requests are sent (default `postJson`, real node:http; the simulator's crosses its network). */
  readonly post?: PostFunction;
}

/** Counters for metrics: totals since the node started, and per current channel. */
export interface NotifyStats extends DeliveryCounters {
  /** Event values that did not parse (skipped). */
  readonly malformed: number;
  /** Watch events pushed out of a full intake before they were read. */
  readonly lost: number;
  /** Notices waiting or in flight, all channels. */
  readonly queued: number;
  readonly leading: boolean;
  /** The cursor this leader last wrote (0 when none). */
  readonly cursor: number;
  readonly channels: Readonly<Record<string, ChannelStats>>;
}

/** One channel's counters, queue length and what its queue is doing. */
export interface ChannelStats extends DeliveryCounters {
  readonly queued: number;
  readonly state: 'idle' | 'sending' | 'backoff';
}

interface StoredCursor {
  readonly revision: number;
  readonly term: number;
}

function parseCursor(kv: KeyValue | undefined): StoredCursor | undefined {
  if (kv === undefined) return undefined;
  try {
    const json = JSON.parse(kv.value) as { revision?: unknown; term?: unknown };
    if (typeof json.revision === 'number' && Number.isSafeInteger(json.revision) && json.revision >= 0 && typeof json.term === 'number') return { revision: json.revision, term: json.term };
  } catch {
    // An unreadable cursor is treated as none: deliver from now.
  }
  return undefined;
}

/** One term of leadership: its watches, queues and cursor. */
class Session {
  live = true;
  /** The events watch is up: every event up to `handed` has reached the queues or the intake. */
  watching = false;
  readonly channels = new Map<string, { record: ChannelRecord; queue: ChannelQueue }>();
  readonly cancels: (() => void)[] = [];
  intake: WatchEvent[] = [];
  drainAsked = false;
  /** Events at or below this revision were finished by an earlier leader. */
  startRevision = 0;
  /** The highest event revision drained into the queues. */
  handed = 0;
  cursorModRevision = 0;
  /** The highest cursor known stored (read at takeover, or written since). */
  cursorStored = 0;
  writing = false;
  cancelCursorTimer: () => void = () => {};

  constructor(readonly term: number) {}
}

export class NotifyDispatcher {
  readonly settings: NotifySettings;
  private readonly log: Logger;
  private session: Session | undefined;
  private started = false;
  private unsubscribe: () => void = () => {};
  private openFailures = 0;
  private cancelReopen: (() => void) | undefined;
  private deliverySeq = 0;
  private lastCursor = 0;
  private readonly totals = zeroCounters();
  private readonly perChannel = new Map<string, DeliveryCounters>();
  private malformed = 0;
  private lost = 0;

  constructor(private readonly options: NotifyDispatcherOptions) {
    this.settings = validateNotifySettings(options.settings);
    this.log = options.logger.child({ component: 'notify' });
  }

  /** Follows leadership from now on: delivers while this node leads. */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.unsubscribe = this.options.port.onLeaderChange(() => this.reconcile());
    this.reconcile();
  }

  /** Stops delivering; writes the cursor once more if the node still can. */
  async stop(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    this.unsubscribe();
    this.cancelReopen?.();
    this.cancelReopen = undefined;
    const session = this.session;
    if (session !== undefined) await this.end(session, 'stopped');
  }

  stats(): NotifyStats {
    const channels: Record<string, ChannelStats> = {};
    let queued = 0;
    for (const [name, counters] of this.perChannel) {
      const queue = this.session?.channels.get(name)?.queue;
      const length = queue?.length ?? 0;
      queued += length;
      channels[name] = { ...counters, queued: length, state: queue?.state() ?? 'idle' };
    }
    return { ...this.totals, malformed: this.malformed, lost: this.lost, queued, leading: this.session !== undefined, cursor: this.lastCursor, channels };
  }

  private reconcile(): void {
    if (!this.started) return;
    const { port } = this.options;
    const current = this.session;
    if (current !== undefined && (!port.isLeader() || current.term !== port.term())) void this.end(current, port.isLeader() ? 'new term' : 'leadership lost');
    if (this.session === undefined && port.isLeader() && this.cancelReopen === undefined) this.begin();
  }

  private begin(): void {
    const session = new Session(this.options.port.term());
    this.session = session;
    this.log.info({ term: session.term }, 'leading: notification delivery starts');
    this.open(session).then(
      () => {
        this.openFailures = 0;
      },
      (error: unknown) => {
        if (!session.live) return;
        this.openFailures++;
        const delayMs = Math.min(this.settings.retryDelayMsMax, this.settings.retryDelayMsMin * 2 ** Math.min(this.openFailures - 1, 30));
        this.log.warn({ err: error, retryInMs: delayMs }, 'notification delivery could not start; retrying');
        void this.end(session, 'start failed');
        this.cancelReopen = this.options.clock.schedule(delayMs, () => {
          this.cancelReopen = undefined;
          this.reconcile();
        });
      },
    );
  }

  private async open(session: Session): Promise<void> {
    const { port } = this.options;
    const channels = await port.range(CHANNEL_PREFIX, { limit: this.settings.channelsMax + 1 });
    if (!session.live) return;
    for (const kv of channels.kvs) this.putChannel(session, kv);
    // Counters of channels deleted while another node led would otherwise stay forever.
    for (const name of this.perChannel.keys()) if (!session.channels.has(name)) this.perChannel.delete(name);
    session.cancels.push(port.watch(CHANNEL_PREFIX, channels.revision + 1, (events) => this.channelEvents(session, events)));

    const cursorKv = await port.get(CURSOR_KEY);
    if (!session.live) return;
    const cursor = parseCursor(cursorKv);
    if (cursor !== undefined && cursor.term > session.term) throw new Error(`the delivery cursor was written in term ${cursor.term}, after this leader's term ${session.term}`);
    session.cursorModRevision = cursorKv?.modRevision ?? 0;
    session.cursorStored = cursor?.revision ?? 0;
    const listener = (events: readonly WatchEvent[]): void => this.intake(session, events);
    if (cursor === undefined) {
      // No leader delivered before (or the cursor is unreadable): from now.
      session.startRevision = port.revision();
      session.cancels.push(port.watch(EVENT_PREFIX, 0, listener));
    } else {
      session.startRevision = cursor.revision;
      try {
        session.cancels.push(port.watch(EVENT_PREFIX, cursor.revision + 1, listener));
      } catch (error) {
        if ((error as { code?: unknown }).code !== 'WATCH_COMPACTED') throw error;
        await this.recover(session, cursor.revision, listener);
        if (!session.live) return;
      }
    }
    session.handed = Math.max(session.handed, session.startRevision);
    session.watching = true;
    this.log.info({ term: session.term, fromRevision: session.startRevision + 1, channels: session.channels.size }, 'watching events for notifications');
    // The claim: our term in the cursor, so a deposed leader's late write fails its CAS.
    void this.writeCursor(session, true);
    this.scheduleCursorWrite(session);
  }

  /** The watch history no longer reaches the cursor: read back what the store still holds. */
  private async recover(session: Session, cursorRevision: number, listener: (events: readonly WatchEvent[]) => void): Promise<void> {
    const { port } = this.options;
    const { kvs, more, revision } = await port.range(EVENT_PREFIX, { limit: this.settings.recoverEventsMax });
    if (!session.live) return;
    const missed = kvs.filter((kv) => kv.modRevision > cursorRevision).sort((a, b) => a.modRevision - b.modRevision);
    this.log.warn(
      { cursor: cursorRevision, readAt: revision, recovered: missed.length, more },
      more ? `watch history compacted past the cursor: ${missed.length} events recovered from the store; events beyond the first ${this.settings.recoverEventsMax} keys are not sent` : `watch history compacted past the cursor: ${missed.length} events recovered from the store`,
    );
    this.intake(
      session,
      missed.map((kv) => ({ type: 'put', revision: kv.modRevision, kv, prev: undefined })),
    );
    try {
      session.cancels.push(port.watch(EVENT_PREFIX, revision + 1, listener));
    } catch (error) {
      if ((error as { code?: unknown }).code !== 'WATCH_COMPACTED') throw error;
      this.log.warn({ fromRevision: revision + 1, now: port.revision() }, 'watch history compacted again: events committed between these revisions are not sent');
      session.cancels.push(port.watch(EVENT_PREFIX, 0, listener));
    }
  }

  /** The watch listener: append only, on the apply path. */
  private intake(session: Session, events: readonly WatchEvent[]): void {
    if (!session.live) return;
    for (const event of events) session.intake.push(event);
    const over = session.intake.length - this.settings.intakeEventsMax;
    if (over > 0) {
      session.intake.splice(0, over);
      this.lost += over;
      this.log.warn({ lost: over, intakeEventsMax: this.settings.intakeEventsMax }, 'notification intake full: oldest events not sent');
    }
    if (session.drainAsked) return;
    session.drainAsked = true;
    void Promise.resolve().then(() => this.drain(session));
  }

  private drain(session: Session): void {
    session.drainAsked = false;
    if (!session.live) return;
    const events = session.intake;
    session.intake = [];
    for (const watched of events) {
      session.handed = Math.max(session.handed, watched.revision);
      // Deletes are pruning; a put at or below the start was finished by the previous leader.
      if (watched.type !== 'put' || watched.kv.modRevision <= session.startRevision) continue;
      const parsed = parseEvent(watched.kv.key, watched.kv.value, watched.kv.modRevision);
      if (!parsed.ok) {
        this.malformed++;
        this.log.debug({ key: watched.kv.key, reason: parsed.reason }, 'unreadable event skipped');
        continue;
      }
      const event = parsed.value;
      if (!notifies(event)) continue;
      const notice = noticeOf(event);
      for (const { record, queue } of session.channels.values()) {
        if (channelWants(record, event.action, event.target.artifact)) queue.enqueue(notice);
      }
    }
  }

  private channelEvents(session: Session, events: readonly WatchEvent[]): void {
    if (!session.live) return;
    for (const event of events) {
      if (event.type === 'put') this.putChannel(session, event.kv);
      else this.dropChannel(session, event.kv.key.slice(CHANNEL_PREFIX.length));
    }
  }

  private putChannel(session: Session, kv: KeyValue): void {
    const parsed = parseChannel(kv.key, kv.value);
    if (!parsed.ok) {
      this.log.warn({ key: kv.key, reason: parsed.reason }, 'unreadable notification channel ignored');
      this.dropChannel(session, kv.key.slice(CHANNEL_PREFIX.length));
      return;
    }
    const record = parsed.value;
    const existing = session.channels.get(record.name);
    if (existing !== undefined) {
      existing.record = record;
      existing.queue.update(record);
      return;
    }
    if (session.channels.size >= this.settings.channelsMax) {
      this.log.warn({ channel: record.name, channelsMax: this.settings.channelsMax }, 'too many notification channels: this one is not served');
      return;
    }
    let counters = this.perChannel.get(record.name);
    if (counters === undefined) {
      counters = zeroCounters();
      this.perChannel.set(record.name, counters);
    }
    const queue = new ChannelQueue(record, {
      clock: this.options.clock,
      wallClockMs: this.options.wallClockMs,
      random: this.options.random,
      logger: this.log,
      settings: this.settings,
      counters: [counters, this.totals],
      deliveryId: () => `${this.options.port.nodeId}-${session.term}-${++this.deliverySeq}`,
      ...(this.options.post === undefined ? {} : { post: this.options.post }),
    });
    session.channels.set(record.name, { record, queue });
  }

  private dropChannel(session: Session, name: string): void {
    const entry = session.channels.get(name);
    if (entry === undefined) return;
    entry.queue.stop();
    session.channels.delete(name);
    this.perChannel.delete(name);
  }

  /** The last revision every channel has finished: below the oldest notice still queued anywhere. */
  private cursorOf(session: Session): number {
    let revision = session.handed;
    for (const { queue } of session.channels.values()) {
      const oldest = queue.oldestRevision();
      if (oldest !== undefined) revision = Math.min(revision, oldest - 1);
    }
    return Math.max(revision, session.startRevision, session.cursorStored);
  }

  private scheduleCursorWrite(session: Session): void {
    session.cancelCursorTimer = this.options.clock.schedule(this.settings.cursorWriteIntervalMs, () => {
      if (!session.live) return;
      void this.writeCursor(session, false).finally(() => {
        if (session.live) this.scheduleCursorWrite(session);
      });
    });
  }

  /** One CAS write of the cursor; `claim` writes even when it has not moved. Never throws. */
  private async writeCursor(session: Session, claim: boolean, revision = this.cursorOf(session)): Promise<void> {
    if (session.writing || (!claim && revision <= session.cursorStored)) return;
    const { port } = this.options;
    session.writing = true;
    try {
      const value = JSON.stringify({ revision, term: session.term, nodeId: port.nodeId });
      const result = await port.txn([{ key: CURSOR_KEY, target: 'modRevision', op: '=', value: session.cursorModRevision }], [{ type: 'put', key: CURSOR_KEY, value }], [{ type: 'get', key: CURSOR_KEY }]);
      if (result.succeeded) {
        session.cursorModRevision = result.revision;
        session.cursorStored = revision;
        this.lastCursor = revision;
        return;
      }
      const read = result.results[0];
      const kv = read?.type === 'get' ? read.kv : undefined;
      const stored = parseCursor(kv);
      session.cursorModRevision = kv?.modRevision ?? 0;
      if (stored !== undefined && stored.term > session.term) {
        this.log.warn({ term: session.term, cursorTerm: stored.term }, 'a later leader owns the delivery cursor: this node stops delivering');
        if (session.live) void this.end(session, 'cursor taken');
        return;
      }
      if (stored !== undefined) session.cursorStored = Math.max(session.cursorStored, stored.revision);
    } catch (error) {
      this.log.debug({ err: error }, 'delivery cursor not written');
    } finally {
      session.writing = false;
    }
  }

  private async end(session: Session, why: string): Promise<void> {
    if (!session.live) return;
    session.live = false;
    if (this.session === session) this.session = undefined;
    session.cancelCursorTimer();
    for (const cancel of session.cancels) cancel();
    const finalCursor = session.watching ? this.cursorOf(session) : undefined;
    for (const { queue } of session.channels.values()) queue.stop();
    this.log.info({ term: session.term, why, cursor: finalCursor }, 'notification delivery stops');
    // Best effort: after a lost election the write is refused, and the next leader resends a little.
    if (finalCursor !== undefined && finalCursor > session.cursorStored) await this.writeCursor(session, false, finalCursor);
  }
}
