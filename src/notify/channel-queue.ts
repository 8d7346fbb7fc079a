/**
 * One channel's deliveries on the leader: a bounded FIFO of notices, one request in flight, so the
 * channel receives its events in commit order. A failed attempt (network error, timeout, non-2xx)
 * is retried after an exponential back-off with jitter, up to `attemptsMax` attempts; a 4xx other
 * than 408 and 429 is not retried. A notice given up, or pushed out of a full queue (the oldest
 * waiting one goes), is logged and counted. Nothing here blocks the caller: `enqueue` pushes and
 * asks for a pump on a later microtask; all I/O happens from there.
 */
import type { Clock } from '../util/clock.ts';
import type { Logger } from '../util/logger.ts';
import type { Random } from '../util/random.ts';
import type { ChannelRecord } from './channel.ts';
import type { PostHandle, PostOutcome } from './http-post.ts';
import type { Notice } from './payload.ts';
import { sendNotice, type PostFunction } from './send.ts';
import type { NotifySettings } from './settings.ts';

/** Delivery counters (a channel's own, and the dispatcher's totals). */
export interface DeliveryCounters {
  /** Notices a receiver accepted (2xx). */
  delivered: number;
  /** Notices given up: attempts exhausted, or refused with a 4xx that is not retried. */
  failed: number;
  /** Notices pushed out of a full queue before they were sent. */
  dropped: number;
  /** Attempts after the first. */
  retries: number;
}

export function zeroCounters(): DeliveryCounters {
  return { delivered: 0, failed: 0, dropped: 0, retries: 0 };
}

export interface ChannelQueueOptions {
  readonly clock: Clock;
  readonly wallClockMs: () => number;
  readonly random: Random;
  readonly logger: Logger;
  readonly settings: NotifySettings;
  /** Counter sets to add to (the channel's and the dispatcher's totals). */
  readonly counters: readonly DeliveryCounters[];
  /** A fresh id for each attempt (`X-Cutover-Delivery`). */
  readonly deliveryId: () => string;
  /** How requests are sent (default `postJson`). */
  readonly post?: PostFunction;
}

interface Item {
  readonly notice: Notice;
  attempts: number;
}

export class ChannelQueue {
  private readonly items: Item[] = [];
  private inFlight: PostHandle | undefined;
  private cancelRetry: (() => void) | undefined;
  private pumpAsked = false;
  private stopped = false;

  constructor(
    private channel: ChannelRecord,
    private readonly options: ChannelQueueOptions,
  ) {}

  get name(): string {
    return this.channel.name;
  }

  get length(): number {
    return this.items.length;
  }

  /** `sending`: a request in flight; `backoff`: waiting to retry the head; `idle`: nothing to send. */
  state(): 'idle' | 'sending' | 'backoff' {
    if (this.inFlight !== undefined) return 'sending';
    if (this.cancelRetry !== undefined) return 'backoff';
    return 'idle';
  }

  /** The revision of the oldest notice not yet finished, if any. */
  oldestRevision(): number | undefined {
    return this.items[0]?.notice.revision;
  }

  /** Takes a changed record (URL, secret, filter) for the next attempts. */
  update(channel: ChannelRecord): void {
    this.channel = channel;
  }

  /** Adds a notice at the tail; O(1) apart from the rare drop. Never does I/O itself. */
  enqueue(notice: Notice): void {
    if (this.stopped) return;
    this.items.push({ notice, attempts: 0 });
    if (this.items.length > this.options.settings.queueLengthMax) {
      // The head may be in flight or waiting for its retry: drop the oldest one behind it.
      const index = this.items.length > 1 ? 1 : 0;
      const [dropped] = this.items.splice(index, 1);
      this.count('dropped');
      this.options.logger.warn({ channel: this.channel.name, eventId: dropped?.notice.id, queueLengthMax: this.options.settings.queueLengthMax }, 'notification queue full: oldest waiting notification dropped');
    }
    this.askPump();
  }

  /** Ends every request and timer; the queue accepts nothing more. */
  stop(): void {
    this.stopped = true;
    this.cancelRetry?.();
    this.cancelRetry = undefined;
    const inFlight = this.inFlight;
    this.inFlight = undefined;
    inFlight?.abort();
    this.items.length = 0;
  }

  private askPump(): void {
    if (this.pumpAsked) return;
    this.pumpAsked = true;
    // Off the caller's stack: the watch listener that enqueues runs on the apply path.
    void Promise.resolve().then(() => {
      this.pumpAsked = false;
      this.pump();
    });
  }

  private pump(): void {
    if (this.stopped || this.inFlight !== undefined || this.cancelRetry !== undefined) return;
    const item = this.items[0];
    if (item === undefined) return;
    item.attempts++;
    if (item.attempts > 1) this.count('retries');
    const { settings, clock, wallClockMs, post } = this.options;
    const handle = sendNotice(this.channel, item.notice, this.options.deliveryId(), { clock, wallClockMs, timeoutMs: settings.requestTimeoutMs, responseBytesMax: settings.responseBytesMax, ...(post === undefined ? {} : { post }) });
    this.inFlight = handle;
    void handle.outcome.then((outcome) => {
      if (this.inFlight !== handle) return; // stopped meanwhile
      this.inFlight = undefined;
      this.settled(item, outcome);
    });
  }

  private settled(item: Item, outcome: PostOutcome): void {
    const { logger, settings } = this.options;
    const where = { channel: this.channel.name, eventId: item.notice.id, revision: item.notice.revision, attempt: item.attempts };
    if (outcome.ok) {
      this.count('delivered');
      this.finish(item);
      return;
    }
    if (outcome.retryable && item.attempts < settings.attemptsMax) {
      const delayMs = this.backoffMs(item.attempts);
      logger.debug({ ...where, error: outcome.message, retryInMs: delayMs }, 'notification attempt failed; retrying');
      this.cancelRetry = this.options.clock.schedule(delayMs, () => {
        this.cancelRetry = undefined;
        this.pump();
      });
      return;
    }
    this.count('failed');
    logger.warn({ ...where, error: outcome.message, kind: outcome.kind, status: outcome.status }, outcome.retryable ? `notification dropped after ${item.attempts} attempts` : 'notification refused by the receiver; not retried');
    this.finish(item);
  }

  private finish(item: Item): void {
    if (this.items[0] === item) this.items.shift();
    this.pump();
  }

  /** Doubling from `retryDelayMsMin`, capped, then a uniform jitter over its upper half. */
  private backoffMs(attempts: number): number {
    const { retryDelayMsMin, retryDelayMsMax } = this.options.settings;
    const ceiling = Math.min(retryDelayMsMax, retryDelayMsMin * 2 ** Math.min(attempts - 1, 30));
    return Math.round(ceiling / 2 + this.options.random.nextFloat() * (ceiling / 2));
  }

  private count(counter: keyof DeliveryCounters): void {
    for (const counters of this.options.counters) counters[counter]++;
  }
}
