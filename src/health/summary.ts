/**
 * The per-version health trend behind `Health.Summary` (issue 7, item 3): raw results, gathered
 * from the nodes that ran them, folded into time buckets per `base@version`, plus the latest
 * result of each check of each instance. Pure: the caller passes the results and the time. The
 * field names follow cutover.v1 `VersionTrend`, `TrendBucket` and `InstanceLatest` in camelCase.
 */
import type { CheckStatus, StoredResult } from './types.ts';
import { InvalidArgumentError } from '../util/errors.ts';

/** Bound on `buckets`. */
export const SUMMARY_BUCKETS_MAX = 1_000;

/** One time bucket of one version: `[startMs, startMs + bucketMs)`. */
export interface TrendBucket {
  readonly startMs: number;
  readonly success: number;
  readonly failure: number;
  readonly timeout: number;
  readonly error: number;
  /** success / all results in the bucket; 0 when the bucket is empty. */
  readonly successRate: number;
  /** Distinct instances with a result in the bucket. */
  readonly instances: number;
  /** Median (nearest rank) and maximum check duration; 0 when the bucket is empty. */
  readonly p50DurationMs: number;
  readonly maxDurationMs: number;
}

/** The newest result of one check of one instance. */
export interface InstanceLatest {
  readonly instanceId: string;
  readonly nodeId: number;
  readonly check: string;
  readonly status: CheckStatus;
  readonly atMs: number;
  readonly detail: string;
}

/** The trend of one version. */
export interface VersionTrend {
  /** `groupId:artifactId` (the results' `base`). */
  readonly artifact: string;
  readonly version: string;
  /** Oldest first; exactly `buckets` of them, empty ones included. */
  readonly buckets: TrendBucket[];
  /** One per instance and check, by instance id then check name. */
  readonly instances: InstanceLatest[];
}

export interface SummaryOptions {
  readonly bucketMs: number;
  /** The end of the window (epoch ms). */
  readonly nowMs: number;
  readonly buckets: number;
}

/**
 * Folds `results` into one trend per `base@version` (sorted by base, then version). The window is
 * the `buckets` buckets of `bucketMs` that end at `nowMs`; a result before it counts only toward
 * `instances` (the latest results), and one after `nowMs` (a node whose clock runs ahead) counts
 * in the last bucket. Throws INVALID_ARGUMENT naming a bad option.
 */
export function summarize(results: readonly StoredResult[], options: SummaryOptions): VersionTrend[] {
  const { bucketMs, nowMs, buckets } = validateOptions(options);
  const windowStartMs = nowMs - bucketMs * buckets;
  const versions = new Map<string, VersionAccumulator>();
  for (const result of results) {
    const key = JSON.stringify([result.base, result.version]);
    let acc = versions.get(key);
    if (acc === undefined) {
      acc = { artifact: result.base, version: result.version, buckets: Array.from({ length: buckets }, () => emptyBucket()), latest: new Map() };
      versions.set(key, acc);
    }
    noteLatest(acc, result);
    if (result.at < windowStartMs) continue;
    const index = Math.min(buckets - 1, Math.floor((result.at - windowStartMs) / bucketMs));
    addToBucket(acc.buckets[index]!, result);
  }
  return [...versions.values()]
    .sort((a, b) => compareText(a.artifact, b.artifact) || compareText(a.version, b.version))
    .map((acc) => ({
      artifact: acc.artifact,
      version: acc.version,
      buckets: acc.buckets.map((bucket, i) => finishBucket(bucket, windowStartMs + i * bucketMs)),
      instances: [...acc.latest.values()].sort((a, b) => compareText(a.instanceId, b.instanceId) || compareText(a.check, b.check)),
    }));
}

interface BucketAccumulator {
  readonly counts: Record<CheckStatus, number>;
  readonly instances: Set<string>;
  readonly durationsMs: number[];
}

interface VersionAccumulator {
  readonly artifact: string;
  readonly version: string;
  readonly buckets: BucketAccumulator[];
  /** Keyed by instance and check. */
  readonly latest: Map<string, InstanceLatest>;
}

function emptyBucket(): BucketAccumulator {
  return { counts: { success: 0, failure: 0, timeout: 0, error: 0 }, instances: new Set(), durationsMs: [] };
}

function addToBucket(bucket: BucketAccumulator, result: StoredResult): void {
  bucket.counts[result.status]++;
  bucket.instances.add(result.instanceId);
  bucket.durationsMs.push(result.durationMs);
}

function finishBucket(bucket: BucketAccumulator, startMs: number): TrendBucket {
  const { counts, durationsMs } = bucket;
  const total = durationsMs.length;
  const sorted = durationsMs.sort((a, b) => a - b);
  return {
    startMs,
    ...counts,
    successRate: total === 0 ? 0 : counts.success / total,
    instances: bucket.instances.size,
    // Nearest rank: the ceil(n/2)-th smallest.
    p50DurationMs: total === 0 ? 0 : sorted[Math.ceil(total / 2) - 1]!,
    maxDurationMs: total === 0 ? 0 : sorted[total - 1]!,
  };
}

/** Keeps the newest result per instance and check (at a tie in `at`, the later one in the input). */
function noteLatest(acc: VersionAccumulator, result: StoredResult): void {
  const key = JSON.stringify([result.instanceId, result.check]);
  const current = acc.latest.get(key);
  if (current !== undefined && current.atMs > result.at) return;
  acc.latest.set(key, { instanceId: result.instanceId, nodeId: result.nodeId, check: result.check, status: result.status, atMs: result.at, detail: result.detail });
}

function validateOptions(options: SummaryOptions): SummaryOptions {
  if (typeof options !== 'object' || options === null) throw new InvalidArgumentError('options', 'must be an object');
  const { bucketMs, nowMs, buckets } = options;
  if (typeof bucketMs !== 'number' || !Number.isSafeInteger(bucketMs) || bucketMs < 1) throw new InvalidArgumentError('bucketMs', 'must be an integer >= 1');
  if (typeof nowMs !== 'number' || !Number.isFinite(nowMs)) throw new InvalidArgumentError('nowMs', 'must be a finite number of epoch milliseconds');
  if (typeof buckets !== 'number' || !Number.isInteger(buckets) || buckets < 1 || buckets > SUMMARY_BUCKETS_MAX) {
    throw new InvalidArgumentError('buckets', `must be an integer from 1 to ${SUMMARY_BUCKETS_MAX}`);
  }
  return options;
}

/** Code-unit order: the same on every node, whatever its locale. */
function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
