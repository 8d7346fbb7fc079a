/**
 * Threshold breach → rollback decision. Under steady traffic from an embedded client, a CANARY
 * update of greeter 1.0.0 → 2.1.0-bad (every 5th call of an instance fails, +300 ms) at 25 %,
 * with long batch delays so that only the health gate can move it, and the health settings left
 * at their defaults (evaluation interval 10 s, failureThreshold 3, minRequestCount 20, DEFAULT
 * thresholds) unless `intervalSeconds` overrides the interval.
 *
 * - Breach start: the first failed call on 2.1.0-bad, when its error reached the client. From
 *   then on every window holds an error rate of ~20 %, far above the DEFAULT 1 %.
 * - Decision: the RollingUpdates Watch (opened on the leader before the Start) delivering the
 *   update's transition into ROLLING_BACK.
 * Both on this process's monotonic clock. The bound is interval × failureThreshold + 1 s.
 */
import { monotonicClock } from '../../src/platform/clock.ts';
import { sleep } from '../../src/platform/wait.ts';
import { GREETER, type UpdatesCluster, type UpdateView } from './cluster.ts';
import { Traffic, summarize } from './traffic.ts';

export interface BreachRun {
  readonly intervalSeconds: number;
  readonly failureThreshold: number;
  /** First call on 2.1.0-bad → decision, ms. */
  readonly firstCallToDecisionMs: number;
  /** First failed call on 2.1.0-bad → decision, ms. */
  readonly breachToDecisionMs: number;
  readonly boundMs: number;
  readonly reason: string;
  readonly traffic: string;
  /** The health gate's log entries, seconds after the update's first ROUTING step. */
  readonly gateLog: string;
}

const DEFAULT_INTERVAL_SECONDS = 10;
const DEFAULT_FAILURE_THRESHOLD = 3;

function gateLog(update: UpdateView): string {
  const routed = update.transitions.find((t) => t.step.startsWith('route'));
  const from = Number(routed?.at_ms ?? 0);
  return update.transitions
    .filter((t) => t.step.startsWith('health') || t.step === 'pause' || t.step.includes('ROLLING_BACK') || t.step.startsWith('route'))
    .map((t) => `${t.step} +${((Number(t.at_ms) - from) / 1000).toFixed(2)} s`)
    .join(', ');
}

export async function measureBreach(cluster: UpdatesCluster, options: { readonly intervalSeconds: number | undefined; readonly rps: number }, progress: (line: string) => void): Promise<BreachRun> {
  const interval = options.intervalSeconds ?? DEFAULT_INTERVAL_SECONDS;
  const leader = await cluster.leader();
  const decided = new Map<string, number>();
  const unwatch = cluster.watchUpdates(leader, (event) => {
    if (event.kind === 'TRANSITION' && event.state === 'ROLLING_BACK' && !decided.has(event.update_id)) decided.set(event.update_id, monotonicClock.nowMs());
  });
  const traffic = await Traffic.start({ endpoints: cluster.endpoints, rps: options.rps, maxInFlight: 400, timeoutMs: 3000 });
  try {
    await sleep(1500);
    const started = (await cluster.call(leader, 'RollingUpdates', 'Start', {
      artifact: GREETER,
      version: '2.1.0-bad',
      strategy: 'CANARY',
      canary_percentage: 25,
      instances: 3,
      batch_delay_seconds: 3600,
      monitoring_seconds: 3600,
      cleanup_policy: 'IMMEDIATE',
      initiated_by: 'bench',
      ...(options.intervalSeconds === undefined ? {} : { health_evaluation_interval_seconds: options.intervalSeconds }),
    })).update as { id: string };
    const id = started.id;
    const limitMs = (interval * DEFAULT_FAILURE_THRESHOLD + 60) * 1000;
    const rolling = await cluster.untilState(id, ['ROLLING_BACK', 'ROLLED_BACK', 'FAILED', 'COMPLETED'], limitMs, 200);
    if (rolling.state !== 'ROLLING_BACK' && rolling.state !== 'ROLLED_BACK') throw new Error(`update ${id} ended ${rolling.state}, not rolled back`);
    const done = await cluster.untilState(id, ['ROLLED_BACK', 'FAILED'], 60_000, 200);
    const calls = await traffic.stop();
    const decidedAt = decided.get(id);
    if (decidedAt === undefined) throw new Error(`the Watch did not deliver ROLLING_BACK of ${id}`);
    const bad = calls.filter((c) => c.version === '2.1.0-bad');
    const firstCall = Math.min(...bad.map((c) => c.startedAt));
    const firstError = Math.min(...bad.filter((c) => c.error !== undefined).map((c) => c.endedAt));
    const run: BreachRun = {
      intervalSeconds: interval,
      failureThreshold: DEFAULT_FAILURE_THRESHOLD,
      firstCallToDecisionMs: decidedAt - firstCall,
      breachToDecisionMs: decidedAt - firstError,
      boundMs: interval * DEFAULT_FAILURE_THRESHOLD * 1000 + 1000,
      reason: done.rollback?.reason ?? '',
      traffic: summarize(calls),
      gateLog: gateLog(done),
    };
    progress(`breach: interval ${interval} s: first error on 2.1.0-bad → ROLLING_BACK ${(run.breachToDecisionMs / 1000).toFixed(2)} s (bound ${run.boundMs / 1000} s); ${run.reason}`);
    // The leader's metrics of 2.1.0-bad stay in its windows for one interval + 1 s: let them age out
    // so that the next run's gate starts from nothing.
    await sleep((interval + 2) * 1000);
    return run;
  } finally {
    unwatch();
    await traffic.stop();
  }
}
