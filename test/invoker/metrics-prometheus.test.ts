import test from 'ava';
import { Registry } from 'prom-client';
import { InvocationMetrics } from '../../src/invoker/metrics.ts';
import { MetricsAggregator } from '../../src/invoker/metrics-aggregator.ts';
import { registerInvocationMetrics } from '../../src/invoker/metrics-prometheus.ts';
import { ManualClock } from '../helpers/manual-clock.ts';

/** The value of the one sample line that starts with `series` (name and labels, exactly). */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

test('node series: invocation counts by outcome and latency quantiles', async (t) => {
  const metrics = new InvocationMetrics();
  for (let i = 1; i <= 100; i++) metrics.record('acme:shop', '1.0.0', i, i % 10 !== 0);
  metrics.takeWindow(1, 1000);
  metrics.record('acme:shop', '1.0.0', 50, true); // in the current window: counted too
  metrics.record('acme:shop', 'bad\u0000', 1, true); // dropped
  const registry = new Registry();
  registerInvocationMetrics(registry, { metrics });
  const text = await registry.metrics();

  t.regex(text, /# TYPE cutover_invocations_total counter/);
  t.is(sample(text, 'cutover_invocations_total{artifact="acme:shop",version="1.0.0",outcome="ok"}'), 91);
  t.is(sample(text, 'cutover_invocations_total{artifact="acme:shop",version="1.0.0",outcome="error"}'), 10);
  const p50 = sample(text, 'cutover_invocation_latency_ms{artifact="acme:shop",version="1.0.0",quantile="0.5"}');
  const p99 = sample(text, 'cutover_invocation_latency_ms{artifact="acme:shop",version="1.0.0",quantile="0.99"}');
  t.true(p50 !== undefined && Math.abs(p50 - 50) <= 1, `p50 ${p50}`);
  t.true(p99 !== undefined && Math.abs(p99 - 99) <= 1, `p99 ${p99}`);
  t.is(sample(text, 'cutover_invocations_dropped_total'), 1);
  t.notRegex(text, /cutover_version_error_rate\{/, 'no leader series without an aggregator');
});

test('leader series come from the aggregator, only while leading', async (t) => {
  const clock = new ManualClock();
  const aggregator = new MetricsAggregator({ clock });
  await clock.advance(1000);
  const node = new InvocationMetrics();
  for (let i = 0; i < 200; i++) node.record('acme:shop', '2.0.0', i < 196 ? 10 : 300, i < 198);
  t.like(aggregator.ingest(node.takeWindow(2, 1000)), { ok: true });

  let leading = true;
  const registry = new Registry();
  registerInvocationMetrics(registry, { aggregator, isLeader: () => leading, windowMs: 30_000 });
  const text = await registry.metrics();
  const labels = '{artifact="acme:shop",version="2.0.0"}';
  t.is(sample(text, `cutover_version_requests${labels}`), 200);
  t.is(sample(text, `cutover_version_error_rate${labels}`), 0.01);
  t.is(sample(text, `cutover_version_avg_latency_ms${labels}`), (196 * 10 + 4 * 300) / 200);
  const p99 = sample(text, `cutover_version_p99_latency_ms${labels}`);
  t.true(p99 !== undefined && Math.abs(p99 - 300) <= 300 / 128, `p99 ${p99}`);

  leading = false;
  const followerText = await registry.metrics();
  t.regex(followerText, /# TYPE cutover_version_error_rate gauge/);
  t.is(sample(followerText, `cutover_version_error_rate${labels}`), undefined);
});
