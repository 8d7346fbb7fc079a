/**
 * The health gate: judges the new version's cluster-wide health (the leader's `MetricsAggregator`
 * snapshot) against the update's thresholds and says whether progression continues, pauses, or
 * the update rolls back. Pure; `decide.ts` persists what changes.
 *
 * Rules:
 * - A breach is an error rate above `maxErrorRate` or a p99 latency above `maxLatencyMs` (strictly
 *   above: a threshold is the largest value still accepted), or an instance of the new version
 *   failing its declared health checks (reported UNHEALTHY by its node, issue 7): that one needs
 *   no traffic, so it counts even when the window has too few calls to judge the metrics.
 * - Fewer than `minRequestCount` calls in the window (default 20, see `request.ts`), or no data,
 *   is inconclusive: neither a breach nor healthy. The count of consecutive breaches stays as it
 *   was, so a version whose traffic stops is neither rolled back for it nor cleared by it.
 * - A breach pauses progression with its reasons. Breaches are counted at most once per
 *   `intervalMs` (a breach seen sooner after the last counted one keeps the count), so that
 *   `failureThreshold` consecutive breaches span at least (failureThreshold − 1) intervals however
 *   often the controller wakes up. With auto-rollback on, reaching `failureThreshold` decides a
 *   rollback.
 * - A healthy evaluation resets the count. It does not lift a pause: as in Aether's guide, after a
 *   breach an operator resumes (or rolls back).
 *
 * `VersionHealth.collectedAt` is on the aggregator's (leader-local, monotonic) clock, which is not
 * comparable with the wall-clock `nowMs`; freshness is the caller's part: it passes a snapshot over
 * a recent window (one evaluation interval), and undefined when there is none.
 */
import type { VersionHealth } from '../invoker/metrics-aggregator.ts';
import type { UpdateRecord } from './record.ts';

export type HealthVerdict = 'healthy' | 'breach' | 'inconclusive';
export type HealthDecision = 'continue' | 'pause' | 'rollback';

/** One evaluation's outcome. */
export interface HealthEvaluation {
  readonly verdict: HealthVerdict;
  /** `verdict === 'breach'`. */
  readonly breach: boolean;
  /** Why: each threshold broken, or why the evaluation was inconclusive; empty when healthy. */
  readonly reasons: readonly string[];
  /** The count after this evaluation. */
  readonly consecutiveBreaches: number;
  /** The breach was counted now (so `lastBreachAt` becomes `nowMs`). */
  readonly counted: boolean;
  readonly decision: HealthDecision;
}

function percent(fraction: number): string {
  return `${(fraction * 100).toFixed(2)}%`;
}

function inconclusive(record: UpdateRecord, reason: string): HealthEvaluation {
  return { verdict: 'inconclusive', breach: false, reasons: [reason], consecutiveBreaches: record.healthGate.consecutiveBreaches, counted: false, decision: 'continue' };
}

/** The thresholds `health` breaks, as reasons. */
export function thresholdBreaches(record: UpdateRecord, health: VersionHealth): string[] {
  const { maxErrorRate, maxLatencyMs } = record.thresholds;
  const reasons: string[] = [];
  if (health.errorRate > maxErrorRate) reasons.push(`error rate ${percent(health.errorRate)} above ${percent(maxErrorRate)} (${health.errorCount} of ${health.requestCount} calls)`);
  if (health.p99LatencyMs > maxLatencyMs) reasons.push(`p99 latency ${Math.round(health.p99LatencyMs)} ms above ${maxLatencyMs} ms`);
  return reasons;
}

/**
 * Judges `health` (the new version's, over the last window; undefined when no calls were seen) at
 * `nowMs` (wall-clock epoch ms) against `record`'s thresholds and health-gate state.
 */
export function evaluateHealth(record: UpdateRecord, health: VersionHealth | undefined, nowMs: number, checkFailures: readonly string[] = []): HealthEvaluation {
  const { minRequestCount } = record.thresholds;
  const metricsProblem =
    health === undefined
      ? `no traffic on ${record.newVersion} in the window`
      : ![health.requestCount, health.errorRate, health.p99LatencyMs].every(Number.isFinite)
        ? 'unreadable metrics (not finite)'
        : health.requestCount < minRequestCount
          ? `too little traffic: ${health.requestCount} calls in the window, fewer than ${minRequestCount}`
          : undefined;
  if (metricsProblem !== undefined && checkFailures.length === 0) return inconclusive(record, metricsProblem);
  const reasons = [...(metricsProblem === undefined ? thresholdBreaches(record, health!) : []), ...checkFailures];
  const gate = record.healthGate;
  if (reasons.length === 0) return { verdict: 'healthy', breach: false, reasons, consecutiveBreaches: 0, counted: false, decision: 'continue' };
  const counted = gate.lastBreachAt === null || nowMs >= gate.lastBreachAt + gate.intervalMs;
  const consecutiveBreaches = counted ? gate.consecutiveBreaches + 1 : gate.consecutiveBreaches;
  const decision = gate.autoRollbackEnabled && consecutiveBreaches >= gate.failureThreshold ? 'rollback' : 'pause';
  return { verdict: 'breach', breach: true, reasons, consecutiveBreaches, counted, decision };
}
