/**
 * Invoker metrics on one node (issue 4, item 4): per (artifact, version) call and error counts and
 * a latency histogram, taken as 1-second windows that the pusher sends to the leader, plus
 * cumulative totals for /metrics. Metrics are soft state (DESIGN.md §8): nothing here is durable.
 *
 * `record` runs on every call. Its steady path (a version seen before) allocates nothing: two Map
 * lookups by string, three number updates and one increment in a front buffer of counts laid out
 * as the latency histogram (see `latencyIndex`). The counts reach an hdr-histogram-js histogram
 * once per window, where encoding and percentiles need one.
 */
import type { JsHistogram } from 'hdr-histogram-js';
import { InvalidArgumentError } from '../util/errors.ts';
import { addLatencyCounts, encodeLatencyHistogram, latencyIndex, latencyMsToUs, newLatencyCounts, newLatencyHistogram, percentileMs } from './latency-histogram.ts';
import { BASE_LENGTH_MAX, VERSION_LENGTH_MAX, WINDOW_VERSIONS_MAX, isName, type MetricsWindow, type VersionWindow } from './metrics-window.ts';

export { parseMetricsWindow, WINDOW_VERSIONS_MAX, BASE_LENGTH_MAX, VERSION_LENGTH_MAX } from './metrics-window.ts';
export type { MetricsWindow, VersionWindow } from './metrics-window.ts';
export { MetricsPusher } from './metrics-pusher.ts';
export type { MetricsPusherOptions, MetricsPusherStats, WindowSource } from './metrics-pusher.ts';

/** Settings of `InvocationMetrics`. */
export interface InvocationMetricsOptions {
  /** Most (artifact, version) pairs tracked at once, 1..WINDOW_VERSIONS_MAX (default WINDOW_VERSIONS_MAX). */
  readonly versionsMax?: number;
  /**
   * A pair with no calls for this many windows in a row may be forgotten to make room for a new
   * one (default 600, ten minutes of 1-second windows). Its totals disappear with it.
   */
  readonly idleWindowsEvict?: number;
  /** Start of the first window on the caller's clock (default 0). */
  readonly startMs?: number;
}

/** Cumulative figures of one (artifact, version) since it was first recorded. */
export interface VersionTotals {
  readonly base: string;
  readonly version: string;
  readonly count: number;
  readonly errors: number;
  readonly latencySumMs: number;
  readonly p50LatencyMs: number;
  readonly p90LatencyMs: number;
  readonly p99LatencyMs: number;
  readonly maxLatencyMs: number;
}

/** Counters about the metrics themselves. */
export interface InvocationMetricsStats {
  /** (artifact, version) pairs tracked now. */
  readonly versions: number;
  /** Calls not counted: their pair was new while the table was full, or its names were too long. */
  readonly callsDropped: number;
  /** Pairs forgotten after being idle, to make room. */
  readonly versionsEvicted: number;
}

/** One tracked pair. The window fields are folded into the totals when a window ends. */
interface Entry {
  readonly base: string;
  readonly version: string;
  count: number;
  errors: number;
  latencySumMs: number;
  /** The window's latency counts, indexed by `latencyIndex`. */
  readonly counts: Float64Array;
  totalCount: number;
  totalErrors: number;
  totalLatencySumMs: number;
  readonly total: JsHistogram;
  /** Windows ended in a row without a call. */
  idleWindows: number;
}

/**
 * Counts calls, errors and latency per (artifact, version) on one node (or one embedded client).
 * Not thread-safe in any sense that matters in Node: one event loop records and takes windows.
 */
export class InvocationMetrics {
  private readonly entries = new Map<string, Map<string, Entry>>();
  private readonly versionsMax: number;
  private readonly idleWindowsEvict: number;
  /** Reused to turn a window's counts into a histogram (to encode) and to merge for `totals()`. */
  private readonly scratch: JsHistogram = newLatencyHistogram();
  private size = 0;
  private windowStartMs: number;
  private callsDropped = 0;
  private versionsEvicted = 0;

  constructor(options: InvocationMetricsOptions = {}) {
    this.versionsMax = options.versionsMax ?? WINDOW_VERSIONS_MAX;
    this.idleWindowsEvict = options.idleWindowsEvict ?? 600;
    this.windowStartMs = options.startMs ?? 0;
    if (!Number.isSafeInteger(this.versionsMax) || this.versionsMax < 1 || this.versionsMax > WINDOW_VERSIONS_MAX) {
      throw new InvalidArgumentError('versionsMax', `must be an integer in [1, ${WINDOW_VERSIONS_MAX}], got ${this.versionsMax}`);
    }
    if (!Number.isSafeInteger(this.idleWindowsEvict) || this.idleWindowsEvict < 1) {
      throw new InvalidArgumentError('idleWindowsEvict', `must be a positive integer, got ${this.idleWindowsEvict}`);
    }
    if (!Number.isFinite(this.windowStartMs)) throw new InvalidArgumentError('startMs', `must be finite, got ${this.windowStartMs}`);
  }

  /**
   * Counts one completed call of `version` of artifact `base` that took `latencyMs` (clamped to
   * [0, 10 min], recorded to the microsecond) and succeeded when `ok`. Never throws; a call whose
   * pair cannot be tracked is counted in `stats().callsDropped`.
   */
  record(base: string, version: string, latencyMs: number, ok: boolean): void {
    const entry = this.entries.get(base)?.get(version) ?? this.addEntry(base, version);
    if (entry === undefined) {
      this.callsDropped++;
      return;
    }
    const us = latencyMsToUs(latencyMs);
    entry.count++;
    if (!ok) entry.errors++;
    entry.latencySumMs += us / 1000;
    entry.counts[latencyIndex(us)]! += 1;
  }

  /**
   * Ends the current window at `nowMs` and returns it: the pairs with at least one call since the
   * previous window, with their histograms encoded. The window's counts move into the totals and
   * the window histograms are reset for reuse. `nowMs` must not be before the window's start.
   */
  takeWindow(nodeId: number, nowMs: number): MetricsWindow {
    const startMs = this.endWindowAt(nowMs);
    const versions: VersionWindow[] = [];
    for (const byVersion of this.entries.values()) {
      for (const entry of byVersion.values()) {
        if (entry.count === 0) {
          entry.idleWindows++;
          continue;
        }
        const { base, version, count, errors, latencySumMs } = entry;
        this.fold(entry);
        versions.push({ base, version, count, errors, latencySumMs, histogram: encodeLatencyHistogram(this.scratch) });
      }
    }
    return { nodeId, startMs, endMs: nowMs, versions };
  }

  /**
   * Ends the current window at `nowMs` without returning it (a pusher starting after calls were
   * already recorded). Its calls stay in the totals; they are just never pushed.
   */
  discardWindow(nowMs: number): void {
    this.endWindowAt(nowMs);
    for (const byVersion of this.entries.values()) {
      for (const entry of byVersion.values()) {
        if (entry.count === 0) entry.idleWindows++;
        else this.fold(entry);
      }
    }
  }

  /** Cumulative figures per pair, including the current window's calls. Not for the call path. */
  totals(): VersionTotals[] {
    const out: VersionTotals[] = [];
    for (const byVersion of this.entries.values()) {
      for (const entry of byVersion.values()) {
        const histogram = this.scratch;
        histogram.reset();
        histogram.add(entry.total);
        if (entry.count > 0) addLatencyCounts(histogram, entry.counts, false);
        out.push({
          base: entry.base,
          version: entry.version,
          count: entry.totalCount + entry.count,
          errors: entry.totalErrors + entry.errors,
          latencySumMs: entry.totalLatencySumMs + entry.latencySumMs,
          p50LatencyMs: percentileMs(histogram, 50),
          p90LatencyMs: percentileMs(histogram, 90),
          p99LatencyMs: percentileMs(histogram, 99),
          maxLatencyMs: histogram.totalCount === 0 ? 0 : histogram.maxValue / 1000,
        });
      }
    }
    return out;
  }

  /** Stops tracking a pair (its version was removed); returns whether it was tracked. */
  forget(base: string, version: string): boolean {
    const byVersion = this.entries.get(base);
    if (byVersion === undefined || !byVersion.delete(version)) return false;
    if (byVersion.size === 0) this.entries.delete(base);
    this.size--;
    return true;
  }

  stats(): InvocationMetricsStats {
    return { versions: this.size, callsDropped: this.callsDropped, versionsEvicted: this.versionsEvicted };
  }

  private endWindowAt(nowMs: number): number {
    if (!(nowMs >= this.windowStartMs)) throw new InvalidArgumentError('nowMs', `must be finite and not before the window start ${this.windowStartMs}, got ${nowMs}`);
    const startMs = this.windowStartMs;
    this.windowStartMs = nowMs;
    return startMs;
  }

  /** The cold path of `record`: a pair seen for the first time. */
  private addEntry(base: string, version: string): Entry | undefined {
    // Names the leader would refuse would make it refuse the node's whole window.
    if (!isName(base, BASE_LENGTH_MAX) || !isName(version, VERSION_LENGTH_MAX)) return undefined;
    if (this.size >= this.versionsMax && this.evictIdle() === 0) return undefined;
    const entry: Entry = {
      base,
      version,
      count: 0,
      errors: 0,
      latencySumMs: 0,
      counts: newLatencyCounts(),
      totalCount: 0,
      totalErrors: 0,
      totalLatencySumMs: 0,
      total: newLatencyHistogram(),
      idleWindows: 0,
    };
    let byVersion = this.entries.get(base);
    if (byVersion === undefined) {
      byVersion = new Map();
      this.entries.set(base, byVersion);
    }
    byVersion.set(version, entry);
    this.size++;
    return entry;
  }

  /**
   * Moves an entry's window into its totals and zeroes it; leaves the window's latencies in
   * `scratch`, for the caller to encode.
   */
  private fold(entry: Entry): void {
    const histogram = this.scratch;
    histogram.reset();
    addLatencyCounts(histogram, entry.counts, true);
    entry.total.add(histogram);
    entry.totalCount += entry.count;
    entry.totalErrors += entry.errors;
    entry.totalLatencySumMs += entry.latencySumMs;
    entry.count = 0;
    entry.errors = 0;
    entry.latencySumMs = 0;
    entry.idleWindows = 0;
  }

  /** Forgets every pair idle for `idleWindowsEvict` windows; returns how many. */
  private evictIdle(): number {
    let evicted = 0;
    for (const [base, byVersion] of this.entries) {
      for (const [version, entry] of byVersion) {
        if (entry.count === 0 && entry.idleWindows >= this.idleWindowsEvict) {
          byVersion.delete(version);
          evicted++;
        }
      }
      if (byVersion.size === 0) this.entries.delete(base);
    }
    this.size -= evicted;
    this.versionsEvicted += evicted;
    return evicted;
  }
}
