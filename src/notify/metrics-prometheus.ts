/**
 * Notification metrics on /metrics, computed at scrape time from `NotifyDispatcher.stats()`
 * (nothing here is on the delivery path).
 *
 * Use: `registerNotifyMetrics(nodeMetrics.registry, notifyHost)`, once per registry.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { NotifyStats } from './dispatcher.ts';

/**
 * Registers on `registry`:
 * - `cutover_notifications_total{outcome="delivered"|"failed"|"dropped"|"lost"|"malformed"}`
 *   (counter, since the node started: delivered, given up, pushed out of a full queue, pushed out of
 *   the intake, unreadable event skipped),
 * - `cutover_notification_retries_total` (counter),
 * - `cutover_notifications_queued{channel}` (gauge: waiting or in flight, on the leader).
 */
export function registerNotifyMetrics(registry: Registry, source: { stats(): NotifyStats }): void {
  const registers = [registry];
  new Counter({
    name: 'cutover_notifications_total',
    help: 'Notifications by outcome since this node started (delivered, failed after retries, dropped from a full queue, lost from a full intake, malformed events skipped)',
    labelNames: ['outcome'] as const,
    registers,
    collect() {
      const stats = source.stats();
      this.reset();
      for (const outcome of ['delivered', 'failed', 'dropped', 'lost', 'malformed'] as const) this.inc({ outcome }, stats[outcome]);
    },
  });
  new Counter({
    name: 'cutover_notification_retries_total',
    help: 'Notification delivery attempts after the first, since this node started',
    registers,
    collect() {
      this.reset();
      this.inc(source.stats().retries);
    },
  });
  new Gauge({
    name: 'cutover_notifications_queued',
    help: 'Notifications waiting or in flight per channel (on the leader; none elsewhere)',
    labelNames: ['channel'] as const,
    registers,
    collect() {
      this.reset();
      for (const [channel, stats] of Object.entries(source.stats().channels)) this.set({ channel }, stats.queued);
    },
  });
}
