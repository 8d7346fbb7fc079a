/**
 * The leader's cluster-wide view of invoker metrics (issue 4, item 4): the windows every node
 * pushes, kept per (artifact, version) in per-second buckets over a sliding span, and read by the
 * rolling-update health gate as request count, error rate, average and p99 latency.
 *
 * Time. A window's startMs/endMs are on the sending node's monotonic clock, whose origin is its
 * own, so they are never compared with the leader's clock directly. A window is placed in the
 * bucket of the leader's time when it arrives. For each node the aggregator keeps the offset
 * between the two clocks seen on that node's last accepted window; a window whose end, moved onto
 * the leader's clock by that offset, is more than `skewMaxMs` away from now is refused as too far
 * in the past (delayed in transit) or the future. A node silent for `nodeIdleMs` is learned afresh,
 * which is also how a restarted node (new clock origin) is taken back.
 *
 * Bounds. At most `versionsMax` pairs, each with at most spanMs/bucketMs buckets (a ring reused
 * in place), at most `nodesMax` nodes; a pair without data in the span is dropped. Everything here
 * is soft state: `clear()` on losing leadership, rebuilt from the next windows by the next leader.
 */
import type { JsHistogram } from 'hdr-histogram-js';
import type { Clock } from '../util/clock.ts';
import { InvalidArgumentError } from '../util/errors.ts';
import { SparseLatencyCounts, addCountsLists, checkEncodedHistogram, newLatencyHistogram, percentileMs, type CheckedHistogram, type LatencyCountsList } from './latency-histogram.ts';
import { parseMetricsWindow, type MetricsWindow, type VersionWindow } from './metrics-window.ts';

/** Settings of a `MetricsAggregator`; every one is checked by the constructor. */
export interface MetricsAggregatorOptions {
  /** The leader's clock; `ingest` and `snapshot` read it when not given a time. */
  readonly clock: Pick<Clock, 'nowMs'>;
  /** Longest window a snapshot can cover (default 60000); older buckets are dropped. */
  readonly spanMs?: number;
  /** Bucket width (default 1000); `spanMs` must be a multiple, at most BUCKETS_MAX buckets. */
  readonly bucketMs?: number;
  /** Most (artifact, version) pairs tracked (default 512). */
  readonly versionsMax?: number;
  /** Most nodes whose clock offset is tracked (default 1024). */
  readonly nodesMax?: number;
  /** Refuse a window whose end is further than this from now, on the node's learned offset (default 10000). */
  readonly skewMaxMs?: number;
  /** A node silent this long is learned afresh (default 30000). */
  readonly nodeIdleMs?: number;
  /** Refuse a window longer than this (default 60000). */
  readonly windowDurationMaxMs?: number;
}

/** Most buckets per pair. */
export const BUCKETS_MAX = 3600;

/** Why a window was not taken in; a `duplicate` is harmless (the node's retry or the network's). */
export type IngestRefusal = 'malformed' | 'duplicate' | 'out-of-order' | 'skew' | 'too-many-nodes';

/** `ingest`'s answer; refusals never throw. */
export type IngestResult =
  | { readonly ok: true; /** Pairs not taken because `versionsMax` pairs are tracked. */ readonly versionsDropped: number }
  | { readonly ok: false; readonly reason: IngestRefusal; readonly detail: string };

/** Cluster-wide health of one version over a window, as the health gate reads it. */
export interface VersionHealth {
  readonly base: string;
  readonly version: string;
  readonly requestCount: number;
  readonly errorCount: number;
  /** errorCount / requestCount, in [0, 1]. */
  readonly errorRate: number;
  /** Exact mean of the reported latencies (sums, not the histogram). */
  readonly avgLatencyMs: number;
  /** From the merged histograms: within 1/128 above the true value. */
  readonly p99LatencyMs: number;
  /** Distinct nodes that reported this version within the window. */
  readonly nodes: number;
  /** The leader's time when the newest window counted here arrived. */
  readonly collectedAt: number;
  readonly windowMs: number;
}

/** Which window a snapshot covers: the current bucket and those before it, ceil(windowMs/bucketMs) in all. */
export interface SnapshotOptions {
  readonly windowMs?: number;
  readonly nowMs?: number;
}

/** Sizes, for tests and /metrics. */
export interface MetricsAggregatorStats {
  readonly versions: number;
  readonly buckets: number;
  readonly nodes: number;
  readonly windowsAccepted: number;
  readonly windowsRefused: number;
  readonly versionsDropped: number;
}

interface Bucket {
  /** floor(leader time / bucketMs) of the data held. */
  index: number;
  count: number;
  errors: number;
  latencySumMs: number;
  readonly latencies: SparseLatencyCounts;
  readonly nodes: Set<number>;
  collectedAt: number;
}

interface Tracked {
  readonly base: string;
  readonly version: string;
  /** Ring by bucket index modulo its length. */
  readonly ring: (Bucket | undefined)[];
  newestIndex: number;
}

interface NodeClock {
  lastStartMs: number;
  /** Leader time minus node time at the node's last accepted window. */
  offsetMs: number;
  lastAcceptedAt: number;
}

/** See the module comment. */
export class MetricsAggregator {
  private readonly clock: Pick<Clock, 'nowMs'>;
  private readonly spanMs: number;
  private readonly bucketMs: number;
  private readonly slots: number;
  private readonly versionsMax: number;
  private readonly nodesMax: number;
  private readonly skewMaxMs: number;
  private readonly nodeIdleMs: number;
  private readonly windowDurationMaxMs: number;
  private readonly tracked = new Map<string, Map<string, Tracked>>();
  private readonly nodeClocks = new Map<number, NodeClock>();
  /** Reused to merge buckets for a snapshot. */
  private readonly scratch: JsHistogram = newLatencyHistogram();
  private trackedCount = 0;
  private latestNowMs = -Infinity;
  private prunedAtIndex = -Infinity;
  private windowsAccepted = 0;
  private windowsRefused = 0;
  private versionsDropped = 0;

  constructor(options: MetricsAggregatorOptions) {
    this.clock = options.clock;
    this.spanMs = positiveInteger('spanMs', options.spanMs ?? 60_000);
    this.bucketMs = positiveInteger('bucketMs', options.bucketMs ?? 1000);
    this.versionsMax = positiveInteger('versionsMax', options.versionsMax ?? 512);
    this.nodesMax = positiveInteger('nodesMax', options.nodesMax ?? 1024);
    this.skewMaxMs = positiveInteger('skewMaxMs', options.skewMaxMs ?? 10_000);
    this.nodeIdleMs = positiveInteger('nodeIdleMs', options.nodeIdleMs ?? 30_000);
    this.windowDurationMaxMs = positiveInteger('windowDurationMaxMs', options.windowDurationMaxMs ?? 60_000);
    if (this.spanMs % this.bucketMs !== 0) throw new InvalidArgumentError('spanMs', `must be a multiple of bucketMs ${this.bucketMs}, got ${this.spanMs}`);
    this.slots = this.spanMs / this.bucketMs;
    if (this.slots > BUCKETS_MAX) throw new InvalidArgumentError('spanMs', `spanMs/bucketMs must be at most ${BUCKETS_MAX}, got ${this.slots}`);
  }

  /**
   * Takes in one node's window, received at `nowMs` on the leader's clock. The whole window is
   * refused (nothing counted) when it is malformed, including a histogram that does not read or
   * whose count differs from the window's; a duplicate (same node and startMs as the node's last
   * one) is ignored. Never throws on bad data.
   */
  ingest(window: MetricsWindow, nowMs: number = this.clock.nowMs()): IngestResult {
    const now = this.advance(nowMs);
    // The caller may hand over a window it did not parse; checking twice is cheap next to inflating.
    const parsed = parseMetricsWindow(window);
    if (!parsed.ok) return this.refuse('malformed', parsed.reason);
    const { nodeId, startMs, endMs } = parsed.value;
    if (endMs - startMs > this.windowDurationMaxMs) return this.refuse('malformed', `window of ${endMs - startMs} ms is longer than ${this.windowDurationMaxMs} ms`);
    const timing = this.checkTiming(nodeId, startMs, endMs, now);
    if (timing !== undefined) return this.refuse(timing[0], timing[1]);
    const checked = this.checkHistograms(parsed.value);
    if (typeof checked === 'string') return this.refuse('malformed', checked);
    this.nodeClocks.set(nodeId, { lastStartMs: startMs, offsetMs: now - endMs, lastAcceptedAt: now });
    const index = Math.floor(now / this.bucketMs);
    if (index > this.prunedAtIndex) this.prune(index);
    let dropped = 0;
    for (let i = 0; i < parsed.value.versions.length; i++) {
      const tracked = this.trackedFor(parsed.value.versions[i]!, index);
      if (tracked === undefined) dropped++;
      else this.addToBucket(tracked, index, nodeId, now, parsed.value.versions[i]!, checked[i]!);
    }
    this.windowsAccepted++;
    this.versionsDropped += dropped;
    return { ok: true, versionsDropped: dropped };
  }

  /**
   * Cluster-wide health of `version` of `base` over `windowMs` (default: the whole span) ending at
   * `nowMs`, or undefined when no node reported a call of it in that window.
   */
  snapshot(base: string, version: string, options: SnapshotOptions = {}): VersionHealth | undefined {
    const tracked = this.tracked.get(base)?.get(version);
    const { windowMs, nowMs } = this.snapshotWindow(options);
    return tracked === undefined ? undefined : this.healthOf(tracked, windowMs, nowMs);
  }

  /** `snapshot` of every tracked pair that has calls in the window. */
  snapshotAll(options: SnapshotOptions = {}): VersionHealth[] {
    const { windowMs, nowMs } = this.snapshotWindow(options);
    const out: VersionHealth[] = [];
    for (const byVersion of this.tracked.values()) {
      for (const tracked of byVersion.values()) {
        const health = this.healthOf(tracked, windowMs, nowMs);
        if (health !== undefined) out.push(health);
      }
    }
    return out;
  }

  /** Forgets everything (leadership lost): the next leader rebuilds from the next windows. */
  clear(): void {
    this.tracked.clear();
    this.nodeClocks.clear();
    this.trackedCount = 0;
    this.prunedAtIndex = -Infinity;
  }

  stats(): MetricsAggregatorStats {
    let buckets = 0;
    for (const byVersion of this.tracked.values()) for (const tracked of byVersion.values()) for (const bucket of tracked.ring) if (bucket !== undefined) buckets++;
    return {
      versions: this.trackedCount,
      buckets,
      nodes: this.nodeClocks.size,
      windowsAccepted: this.windowsAccepted,
      windowsRefused: this.windowsRefused,
      versionsDropped: this.versionsDropped,
    };
  }

  /** The leader's clock should not go backwards; if a caller's does, time stands still instead. */
  private advance(nowMs: number): number {
    if (!Number.isFinite(nowMs)) throw new InvalidArgumentError('nowMs', `must be finite, got ${nowMs}`);
    if (nowMs > this.latestNowMs) this.latestNowMs = nowMs;
    return this.latestNowMs;
  }

  private refuse(reason: IngestRefusal, detail: string): IngestResult {
    this.windowsRefused++;
    return { ok: false, reason, detail };
  }

  /** Reads every histogram before anything is counted, so a refusal leaves no trace. */
  private checkHistograms(window: MetricsWindow): CheckedHistogram[] | string {
    const out: CheckedHistogram[] = [];
    for (const [i, entry] of window.versions.entries()) {
      const result = checkEncodedHistogram(entry.histogram);
      if (!result.ok) return `versions[${i}].histogram: ${result.reason}`;
      if (result.histogram.totalCount !== entry.count) return `versions[${i}].histogram holds ${result.histogram.totalCount} values for count ${entry.count}`;
      out.push(result.histogram);
    }
    return out;
  }

  private checkTiming(nodeId: number, startMs: number, endMs: number, now: number): [IngestRefusal, string] | undefined {
    const known = this.nodeClocks.get(nodeId);
    if (known !== undefined) {
      if (startMs === known.lastStartMs) return ['duplicate', `node ${nodeId} already sent the window starting at ${startMs}`];
      if (now - known.lastAcceptedAt <= this.nodeIdleMs) {
        if (startMs < known.lastStartMs) return ['out-of-order', `node ${nodeId}: window starting at ${startMs} is older than the last one (${known.lastStartMs})`];
        const driftMs = endMs + known.offsetMs - now;
        if (Math.abs(driftMs) > this.skewMaxMs) return ['skew', `node ${nodeId}: window ends ${Math.round(driftMs)} ms ${driftMs > 0 ? 'in the future' : 'in the past'} on its clock offset`];
      }
      return undefined;
    }
    if (this.nodeClocks.size >= this.nodesMax) {
      for (const [id, clock] of this.nodeClocks) if (now - clock.lastAcceptedAt > this.nodeIdleMs) this.nodeClocks.delete(id);
      if (this.nodeClocks.size >= this.nodesMax) return ['too-many-nodes', `already tracking ${this.nodesMax} nodes`];
    }
    return undefined;
  }

  /** The tracked pair for `entry`, made if there is room (after dropping pairs with no data left). */
  private trackedFor(entry: VersionWindow, index: number): Tracked | undefined {
    const existing = this.tracked.get(entry.base)?.get(entry.version);
    if (existing !== undefined) return existing;
    if (this.trackedCount >= this.versionsMax) {
      this.prune(index);
      if (this.trackedCount >= this.versionsMax) return undefined;
    }
    const tracked: Tracked = { base: entry.base, version: entry.version, ring: new Array<Bucket | undefined>(this.slots).fill(undefined), newestIndex: index };
    let byVersion = this.tracked.get(entry.base);
    if (byVersion === undefined) {
      byVersion = new Map();
      this.tracked.set(entry.base, byVersion);
    }
    byVersion.set(entry.version, tracked);
    this.trackedCount++;
    return tracked;
  }

  private addToBucket(tracked: Tracked, index: number, nodeId: number, now: number, entry: VersionWindow, histogram: CheckedHistogram): void {
    const slot = ((index % this.slots) + this.slots) % this.slots;
    let bucket = tracked.ring[slot];
    if (bucket === undefined) {
      bucket = { index, count: 0, errors: 0, latencySumMs: 0, latencies: new SparseLatencyCounts(), nodes: new Set(), collectedAt: now };
      tracked.ring[slot] = bucket;
    } else if (bucket.index !== index) {
      // The slot last held a second that has slid out of the span: reuse it in place.
      bucket.index = index;
      bucket.count = 0;
      bucket.errors = 0;
      bucket.latencySumMs = 0;
      bucket.latencies.clear();
      bucket.nodes.clear();
    }
    bucket.count += entry.count;
    bucket.errors += entry.errors;
    bucket.latencySumMs += entry.latencySumMs;
    bucket.latencies.merge(histogram);
    bucket.nodes.add(nodeId);
    bucket.collectedAt = now;
    tracked.newestIndex = index;
  }

  /** Drops pairs whose newest bucket has slid out of the span; runs at most once per bucket. */
  private prune(index: number): void {
    this.prunedAtIndex = index;
    for (const [base, byVersion] of this.tracked) {
      for (const [version, tracked] of byVersion) {
        if (tracked.newestIndex <= index - this.slots) {
          byVersion.delete(version);
          this.trackedCount--;
        }
      }
      if (byVersion.size === 0) this.tracked.delete(base);
    }
  }

  private snapshotWindow(options: SnapshotOptions): { windowMs: number; nowMs: number } {
    const windowMs = options.windowMs ?? this.spanMs;
    if (!Number.isFinite(windowMs) || windowMs <= 0 || windowMs > this.spanMs) throw new InvalidArgumentError('windowMs', `must be in (0, ${this.spanMs}], got ${windowMs}`);
    const nowMs = options.nowMs ?? this.clock.nowMs();
    if (!Number.isFinite(nowMs)) throw new InvalidArgumentError('nowMs', `must be finite, got ${nowMs}`);
    return { windowMs, nowMs };
  }

  private healthOf(tracked: Tracked, windowMs: number, nowMs: number): VersionHealth | undefined {
    const newest = Math.floor(nowMs / this.bucketMs);
    const oldest = newest - Math.ceil(windowMs / this.bucketMs) + 1;
    const latencies: LatencyCountsList[] = [];
    const nodes = new Set<number>();
    let requestCount = 0;
    let errorCount = 0;
    let latencySumMs = 0;
    let collectedAt = -Infinity;
    for (const bucket of tracked.ring) {
      if (bucket === undefined || bucket.index < oldest || bucket.index > newest || bucket.count === 0) continue;
      requestCount += bucket.count;
      errorCount += bucket.errors;
      latencySumMs += bucket.latencySumMs;
      latencies.push(bucket.latencies);
      for (const node of bucket.nodes) nodes.add(node);
      if (bucket.collectedAt > collectedAt) collectedAt = bucket.collectedAt;
    }
    if (requestCount === 0) return undefined;
    const histogram = this.scratch;
    histogram.reset();
    addCountsLists(histogram, latencies);
    return {
      base: tracked.base,
      version: tracked.version,
      requestCount,
      errorCount,
      errorRate: errorCount / requestCount,
      avgLatencyMs: latencySumMs / requestCount,
      p99LatencyMs: percentileMs(histogram, 99),
      nodes: nodes.size,
      collectedAt,
      windowMs,
    };
  }
}

function positiveInteger(field: string, value: number): number {
  if (!Number.isSafeInteger(value) || value <= 0) throw new InvalidArgumentError(field, `must be a positive integer, got ${value}`);
  return value;
}
