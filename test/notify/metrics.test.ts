/** The notification series on a prom-client registry, from a dispatcher's stats at scrape time. */
import test from 'ava';
import { Registry } from 'prom-client';
import type { NotifyStats } from '../../src/notify/dispatcher.ts';
import { registerNotifyMetrics } from '../../src/notify/metrics-prometheus.ts';

test('counters by outcome, retries and queue depth per channel', async (t) => {
  let stats: NotifyStats = { delivered: 3, failed: 1, dropped: 2, retries: 4, malformed: 0, lost: 0, queued: 5, leading: true, cursor: 9, channels: { ops: { delivered: 3, failed: 1, dropped: 2, retries: 4, queued: 5, state: 'sending' } } };
  const registry = new Registry();
  registerNotifyMetrics(registry, { stats: () => stats });
  const text = await registry.metrics();
  t.regex(text, /^cutover_notifications_total\{outcome="delivered"\} 3$/m);
  t.regex(text, /^cutover_notifications_total\{outcome="failed"\} 1$/m);
  t.regex(text, /^cutover_notifications_total\{outcome="dropped"\} 2$/m);
  t.regex(text, /^cutover_notification_retries_total 4$/m);
  t.regex(text, /^cutover_notifications_queued\{channel="ops"\} 5$/m);
  stats = { ...stats, delivered: 4, channels: {} };
  const after = await registry.metrics();
  t.regex(after, /^cutover_notifications_total\{outcome="delivered"\} 4$/m);
  t.notRegex(after, /channel="ops"/, 'a channel gone is no longer exported');
});
