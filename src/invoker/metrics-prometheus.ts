/**
 * Invoker metrics on /metrics. Every series is computed in `collect()`, at scrape time, from
 * `InvocationMetrics.totals()` and the leader's `MetricsAggregator`: nothing here is on the call
 * path, and the call path never touches prom-client.
 *
 * Use: `registerInvocationMetrics(nodeMetrics.registry, { metrics, aggregator, isLeader })`, once
 * per registry (prom-client refuses a second metric of the same name).
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { InvocationMetrics } from './metrics.ts';
import type { MetricsAggregator } from './metrics-aggregator.ts';

/** Where the series come from; each part is optional (an embedded client has no aggregator). */
export interface InvocationMetricsSources {
  /** This node's counts (cumulative). */
  readonly metrics?: Pick<InvocationMetrics, 'totals' | 'stats'>;
  /** The cluster-wide windows; exported only while `isLeader()` holds. */
  readonly aggregator?: Pick<MetricsAggregator, 'snapshotAll'>;
  /** Whether this node leads now (default: always true). */
  readonly isLeader?: () => boolean;
  /** Window of the leader series in ms (default: the aggregator's whole span). */
  readonly windowMs?: number;
}

/** The quantiles exported from each cumulative latency histogram. */
const QUANTILES = [
  ['0.5', 'p50LatencyMs'],
  ['0.9', 'p90LatencyMs'],
  ['0.99', 'p99LatencyMs'],
] as const;

/**
 * Registers on `registry`:
 * - `cutover_invocations_total{artifact,version,outcome="ok"|"error"}` (counter),
 * - `cutover_invocation_latency_ms{artifact,version,quantile="0.5"|"0.9"|"0.99"}` (gauge, from the
 *   cumulative histogram),
 * - `cutover_invocations_dropped_total` (calls not counted: version table full),
 * and on the leader, over the aggregator's window:
 * - `cutover_version_requests`, `cutover_version_error_rate`, `cutover_version_avg_latency_ms`,
 *   `cutover_version_p99_latency_ms`, each `{artifact,version}`.
 */
export function registerInvocationMetrics(registry: Registry, sources: InvocationMetricsSources): void {
  if (sources.metrics !== undefined) registerNodeSeries(registry, sources.metrics);
  if (sources.aggregator !== undefined) registerLeaderSeries(registry, sources.aggregator, sources);
}

function registerNodeSeries(registry: Registry, metrics: Pick<InvocationMetrics, 'totals' | 'stats'>): void {
  const registers = [registry];
  new Counter({
    name: 'cutover_invocations_total',
    help: 'Invocations completed on this node, by artifact, version and outcome',
    labelNames: ['artifact', 'version', 'outcome'] as const,
    registers,
    collect() {
      this.reset();
      for (const totals of metrics.totals()) {
        this.inc({ artifact: totals.base, version: totals.version, outcome: 'ok' }, totals.count - totals.errors);
        this.inc({ artifact: totals.base, version: totals.version, outcome: 'error' }, totals.errors);
      }
    },
  });
  new Gauge({
    name: 'cutover_invocation_latency_ms',
    help: 'Invocation latency quantiles on this node since start (HdrHistogram, 2 significant digits), in milliseconds',
    labelNames: ['artifact', 'version', 'quantile'] as const,
    registers,
    collect() {
      this.reset();
      for (const totals of metrics.totals()) {
        if (totals.count === 0) continue;
        for (const [quantile, field] of QUANTILES) this.set({ artifact: totals.base, version: totals.version, quantile }, totals[field]);
      }
    },
  });
  new Counter({
    name: 'cutover_invocations_dropped_total',
    help: 'Invocations not counted because their version could not be tracked',
    registers,
    collect() {
      this.reset();
      this.inc(metrics.stats().callsDropped);
    },
  });
}

type HealthField = 'requestCount' | 'errorRate' | 'avgLatencyMs' | 'p99LatencyMs';

function registerLeaderSeries(registry: Registry, aggregator: Pick<MetricsAggregator, 'snapshotAll'>, sources: InvocationMetricsSources): void {
  const isLeader = sources.isLeader ?? (() => true);
  const snapshotOptions = sources.windowMs === undefined ? {} : { windowMs: sources.windowMs };
  const series: readonly [string, string, HealthField][] = [
    ['cutover_version_requests', 'Cluster-wide invocations of a version over the health window (leader only)', 'requestCount'],
    ['cutover_version_error_rate', 'Cluster-wide error rate of a version over the health window, 0..1 (leader only)', 'errorRate'],
    ['cutover_version_avg_latency_ms', 'Cluster-wide mean latency of a version over the health window (leader only)', 'avgLatencyMs'],
    ['cutover_version_p99_latency_ms', 'Cluster-wide p99 latency of a version over the health window (leader only)', 'p99LatencyMs'],
  ];
  for (const [name, help, field] of series) {
    new Gauge({
      name,
      help,
      labelNames: ['artifact', 'version'] as const,
      registers: [registry],
      collect() {
        this.reset();
        if (!isLeader()) return;
        for (const health of aggregator.snapshotAll(snapshotOptions)) this.set({ artifact: health.base, version: health.version }, health[field]);
      },
    });
  }
}
