/**
 * Keeps a `RoutingTable` in step with the cluster from outside it: reads `version-routing/` and
 * `instance/` with Range, then watches both prefixes from the revision after, through one
 * endpoint at a time of the management KV API.
 *
 * It survives the loss of that endpoint: when a watch stream fails or a read fails, it moves to the
 * next endpoint after an exponential back-off with full jitter (bounded by `reconnect.maxMs`) and
 * resumes each watch from the last revision it applied, so nothing between is lost or applied
 * twice. When the new endpoint no longer holds that revision (WATCH_COMPACTED), it reads both
 * prefixes again and replaces the table's contents (`RoutingTable.load`).
 *
 * Attempts: idle → loading (Range, when the table must be (re)loaded) → watching (both streams
 * open) → on any failure, backoff → the next attempt. Every callback carries its attempt's number
 * and is ignored once that attempt is over, so a late event from an old stream never reaches the
 * table.
 */
import { ROUTING_TABLE_PREFIXES, type RoutingTable } from '../invoker/routing-table.ts';
import type { KeyValue, WatchEvent } from '../kv/types.ts';
import { backoffDelayMs } from '../transport/backoff.ts';
import type { Clock } from '../util/clock.ts';
import { CutoverError } from '../util/errors.ts';
import type { Logger } from '../util/logger.ts';
import type { Random } from '../util/random.ts';
import { KvClient, type KvClientOptions } from './kv-client.ts';

export interface RoutingFeedOptions {
  /** `host:port` of the management API of one or more nodes; tried in order, round robin. */
  readonly endpoints: readonly string[];
  readonly table: RoutingTable;
  readonly clock: Clock;
  readonly random: Random;
  readonly logger: Logger;
  /** Back-off between attempts: the ceiling starts at `initialMs` and doubles up to `maxMs`. */
  readonly reconnect: { readonly initialMs: number; readonly maxMs: number };
  /** Deadline of each Range read. */
  readonly readTimeoutMs: number;
  readonly channel: KvClientOptions;
}

/** Where the feed stands, for status pages and tests. */
export interface RoutingFeedStatus {
  /** The endpoint of the current attempt. */
  readonly endpoint: string;
  /** Both watches are open on it. */
  readonly watching: boolean;
  /** The last revision applied, per prefix; 0 before the first load. */
  readonly revisions: Readonly<Record<string, number>>;
  /** Full reads (the first one included). */
  readonly loads: number;
  /** Of those, forced by a compacted revision. */
  readonly compactedReloads: number;
  /** Attempts that failed (stream lost, read failed, endpoint down). */
  readonly failures: number;
  readonly lastError: string | undefined;
}

type Phase = 'idle' | 'loading' | 'watching' | 'backoff' | 'stopped';

/** See the module comment. `start()`, then `ready()` resolves after the first load. */
export class RoutingFeed {
  private readonly options: RoutingFeedOptions;
  private readonly log: Logger;
  private phase: Phase = 'idle';
  private attempt = 0;
  private endpointIndex = 0;
  /** Consecutive failed attempts; reset once an attempt delivers data. */
  private failuresInRow = 0;
  /** The current attempt started with a full read. */
  private attemptLoaded = false;
  /** Last revision applied per prefix; undefined until loaded, and again when a reload is due. */
  private revisions: Map<string, number> | undefined;
  private kv: KvClient | undefined;
  private cancelWatches: (() => void)[] = [];
  private cancelBackoff: (() => void) | undefined;
  private readonly firstLoad: { promise: Promise<void>; resolve: () => void };
  private counters = { loads: 0, compactedReloads: 0, failures: 0 };
  private lastError: CutoverError | undefined;
  private lastRevisions: Record<string, number> = {};

  constructor(options: RoutingFeedOptions) {
    if (options.endpoints.length === 0) throw new CutoverError('INVALID_ARGUMENT', 'endpoints: at least one is needed');
    this.options = options;
    this.log = options.logger.child({ component: 'routing-feed' });
    let resolve = (): void => {};
    const promise = new Promise<void>((r) => (resolve = r));
    this.firstLoad = { promise, resolve };
  }

  /** Starts the first attempt. */
  start(): void {
    if (this.phase !== 'idle') return;
    this.run();
  }

  /** Resolves once the table holds the cluster's state (the first successful load). */
  ready(): Promise<void> {
    return this.firstLoad.promise;
  }

  /** The error that ended the last failed attempt, if any. */
  lastFailure(): CutoverError | undefined {
    return this.lastError;
  }

  status(): RoutingFeedStatus {
    return {
      endpoint: this.endpoint(),
      watching: this.phase === 'watching',
      revisions: { ...this.lastRevisions },
      ...this.counters,
      lastError: this.lastError?.message,
    };
  }

  /** Cancels the watches and any pending attempt, and closes the channel. Idempotent. */
  stop(): void {
    this.phase = 'stopped';
    this.attempt++;
    this.cancelBackoff?.();
    this.cancelBackoff = undefined;
    this.closeAttempt();
  }

  private endpoint(): string {
    return this.options.endpoints[this.endpointIndex % this.options.endpoints.length]!;
  }

  private run(): void {
    const attempt = ++this.attempt;
    this.kv = new KvClient(this.endpoint(), this.options.channel);
    this.attemptLoaded = this.revisions === undefined;
    if (this.revisions === undefined) {
      this.phase = 'loading';
      this.load(this.kv).then(
        () => this.isCurrent(attempt) && this.watch(attempt),
        (error: unknown) => this.fail(attempt, error),
      );
    } else {
      this.watch(attempt);
    }
  }

  private isCurrent(attempt: number): boolean {
    return attempt === this.attempt && this.phase !== 'stopped';
  }

  /** Reads both prefixes and replaces the table's contents with them. */
  private async load(kv: KvClient): Promise<void> {
    const { readTimeoutMs } = this.options;
    const results = await Promise.all(ROUTING_TABLE_PREFIXES.map((prefix) => kv.range(prefix, readTimeoutMs)));
    if (this.phase === 'stopped' || this.kv !== kv) return;
    const kvs: KeyValue[] = results.flatMap((result) => [...result.kvs]);
    const revision = Math.max(...results.map((result) => result.revision));
    this.options.table.load(kvs, revision);
    // Each prefix is current at the revision of its own read; its watch starts right after it.
    this.revisions = new Map(ROUTING_TABLE_PREFIXES.map((prefix, i) => [prefix, results[i]!.revision]));
    this.publishRevisions();
    this.counters.loads++;
    this.failuresInRow = 0;
    this.log.info({ endpoint: kv.endpoint, revision, keys: kvs.length }, 'routing state loaded');
    this.firstLoad.resolve();
  }

  private watch(attempt: number): void {
    const kv = this.kv;
    const revisions = this.revisions;
    if (kv === undefined || revisions === undefined) return;
    this.phase = 'watching';
    for (const prefix of ROUTING_TABLE_PREFIXES) {
      const from = (revisions.get(prefix) ?? 0) + 1;
      const cancel = kv.watch(prefix, from, {
        onEvents: (events) => this.isCurrent(attempt) && this.apply(prefix, events),
        onEnd: (error) => this.fail(attempt, error),
      });
      this.cancelWatches.push(cancel);
    }
    this.log.debug({ endpoint: kv.endpoint, revisions: Object.fromEntries(revisions) }, 'watching routing state');
  }

  /**
   * Applies a prefix's events past its last revision. Earlier ones are skipped: an endpoint that
   * is behind the one we read from replays, as live events, revisions we already applied.
   */
  private apply(prefix: string, events: readonly WatchEvent[]): void {
    const revisions = this.revisions;
    if (revisions === undefined) return;
    let last = revisions.get(prefix) ?? 0;
    const fresh = events.filter((event) => event.revision > last);
    if (fresh.length === 0) return;
    this.options.table.applyEvents(fresh);
    for (const event of fresh) last = Math.max(last, event.revision);
    revisions.set(prefix, last);
    this.publishRevisions();
    this.failuresInRow = 0;
  }

  /** Ends an attempt: back off, then try the next endpoint (or reload on a compacted revision). */
  private fail(attempt: number, error: unknown): void {
    if (!this.isCurrent(attempt)) return;
    const cause = error instanceof CutoverError ? error : new CutoverError('UNAVAILABLE', error instanceof Error ? error.message : String(error), { cause: error });
    this.attempt++;
    this.closeAttempt();
    this.counters.failures++;
    this.lastError = cause;
    const compacted = cause.code === 'WATCH_COMPACTED';
    if (compacted) {
      // The endpoint is fine; our revision is too old for it. Read everything again from it.
      this.revisions = undefined;
      this.counters.compactedReloads++;
    } else {
      this.endpointIndex = (this.endpointIndex + 1) % this.options.endpoints.length;
    }
    // A reload after a compaction goes at once, unless this attempt had just reloaded (the
    // endpoint compacts faster than we can read and watch): that, like any failure, waits.
    const immediate = compacted && !this.attemptLoaded;
    if (!immediate) this.failuresInRow++;
    const delayMs = immediate ? 0 : backoffDelayMs(this.failuresInRow, this.options.reconnect, this.options.random);
    this.log.info({ code: cause.code, error: cause.message, next: this.endpoint(), delayMs, failuresInRow: this.failuresInRow }, 'routing watch lost; reconnecting');
    this.phase = 'backoff';
    this.cancelBackoff = this.options.clock.schedule(delayMs, () => {
      this.cancelBackoff = undefined;
      if (this.phase === 'backoff') this.run();
    });
  }

  private closeAttempt(): void {
    for (const cancel of this.cancelWatches) cancel();
    this.cancelWatches = [];
    this.kv?.close();
    this.kv = undefined;
  }

  private publishRevisions(): void {
    this.lastRevisions = this.revisions === undefined ? {} : Object.fromEntries(this.revisions);
  }
}
