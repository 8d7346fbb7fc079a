/**
 * Failed calls during a full CANARY update under steady load from an embedded client: greeter
 * `from` → `to` on 3 instances, 25 % then 50 % then 100 %, 1 s batch delays, 2 s of monitoring, a
 * 1 s health evaluation interval (minRequestCount 5, DEFAULT thresholds), IMMEDIATE cleanup.
 * (The BLUE_GREEN variant, without steps, takes greeter back between two runs.)
 *
 * With `failover`, once the update is ROUTING the leader is killed with SIGKILL and restarted
 * `restartAfterMs` later; the update must still complete. A failed call is excused only when it
 * was in flight on the killed node (see `inFlightOnKilled`). The transition log must hold every
 * step once.
 */
import { monotonicClock } from '../../src/platform/clock.ts';
import { sleep } from '../../src/platform/wait.ts';
import { GREETER, type UpdatesCluster, type UpdateView } from './cluster.ts';
import { Traffic, summarize, type CallRecord } from './traffic.ts';

export interface CanaryRun {
  readonly label: string;
  readonly from: string;
  readonly to: string;
  readonly state: string;
  readonly calls: number;
  readonly failed: number;
  /** Failed calls in flight on the killed node at the kill. */
  readonly excused: number;
  readonly notSent: number;
  readonly retries: number;
  readonly durationMs: number;
  /** Node id killed, 0 without failover. */
  readonly killedNode: number;
  /** Steps that appear more than once in the transition log. */
  readonly repeatedSteps: readonly string[];
  readonly steps: readonly string[];
  readonly traffic: string;
  readonly failures: readonly string[];
}

export interface CanaryOptions {
  readonly label: string;
  readonly from: string;
  readonly to: string;
  readonly strategy: 'CANARY' | 'BLUE_GREEN';
  readonly failover: boolean;
  readonly restartAfterMs: number;
  readonly rps: number;
}

/** Steps that occur more than once in `update`'s log. */
export function repeatedSteps(update: UpdateView): string[] {
  const seen = new Set<string>();
  const repeated = new Set<string>();
  for (const t of update.transitions) {
    if (seen.has(t.step)) repeated.add(t.step);
    seen.add(t.step);
  }
  return [...repeated];
}

/**
 * A failed call in flight on the killed `node`: routed to an instance there, started before this
 * process saw the node's exit (`exitedAt`, just after the SIGKILL was reaped) and ended after the
 * signal was sent (`killAt`).
 */
export function inFlightOnKilled(call: CallRecord, node: number, killAt: number, exitedAt: number): boolean {
  return call.error !== undefined && call.nodeId === node && call.startedAt <= exitedAt && call.endedAt >= killAt;
}

export async function measureCanary(cluster: UpdatesCluster, options: CanaryOptions, progress: (line: string) => void): Promise<CanaryRun> {
  const traffic = await Traffic.start({ endpoints: cluster.endpoints, rps: options.rps, maxInFlight: 400, timeoutMs: 3000 });
  try {
    await sleep(1000);
    const leader = await cluster.leader();
    const began = monotonicClock.nowMs();
    const started = (await cluster.call(leader, 'RollingUpdates', 'Start', {
      artifact: GREETER,
      version: options.to,
      strategy: options.strategy,
      canary_percentage: 25,
      steps: options.strategy === 'CANARY' ? [50] : [],
      instances: 3,
      batch_delay_seconds: 1,
      monitoring_seconds: 2,
      health_evaluation_interval_seconds: 1,
      min_request_count: 5,
      cleanup_policy: 'IMMEDIATE',
      initiated_by: 'bench',
    })).update as { id: string };
    const id = started.id;
    let killedNode = 0;
    let killAt = Number.NaN;
    let exitedAt = Number.NaN;
    if (options.failover) {
      await cluster.untilState(id, ['ROUTING'], 60_000, 20);
      const victim = await cluster.leader();
      killedNode = victim + 1;
      killAt = monotonicClock.nowMs();
      await cluster.kill(victim);
      exitedAt = monotonicClock.nowMs();
      progress(`${options.label}: ROUTING; killed the leader, node ${killedNode} (kill -9); exit seen ${(exitedAt - killAt).toFixed(1)} ms after the signal; restart in ${options.restartAfterMs} ms`);
      await sleep(options.restartAfterMs);
      await cluster.restart(victim);
    }
    const done = await cluster.untilState(id, ['COMPLETED', 'ROLLED_BACK', 'FAILED'], 120_000, 100);
    const durationMs = monotonicClock.nowMs() - began;
    await sleep(1000);
    const calls = await traffic.stop();
    if (options.failover) await cluster.nodes.waitHealthy(30_000);
    const failedCalls = calls.filter((c) => c.error !== undefined);
    const excused = failedCalls.filter((c) => inFlightOnKilled(c, killedNode, killAt, exitedAt));
    const unexcused = failedCalls.filter((c) => !inFlightOnKilled(c, killedNode, killAt, exitedAt));
    const failures = unexcused.slice(0, 5).map((c) => `${c.error} on ${c.version || '(unrouted)'} node ${c.nodeId}, started ${(c.startedAt - (Number.isNaN(killAt) ? began : killAt)).toFixed(0)} ms after the ${Number.isNaN(killAt) ? 'Start' : 'kill'}, took ${(c.endedAt - c.startedAt).toFixed(0)} ms`);
    const run: CanaryRun = {
      label: options.label,
      from: options.from,
      to: options.to,
      state: done.state,
      calls: calls.length,
      failed: failedCalls.length,
      excused: excused.length,
      notSent: traffic.notSent,
      retries: traffic.retries(),
      durationMs,
      killedNode,
      repeatedSteps: repeatedSteps(done),
      steps: done.transitions.map((t) => t.step),
      traffic: summarize(calls),
      failures,
    };
    progress(`${options.label}: ${done.state} in ${(durationMs / 1000).toFixed(1)} s; ${run.traffic}; failed ${run.failed} (in flight on the killed node: ${run.excused}); retried ${run.retries}`);
    return run;
  } finally {
    await traffic.stop();
  }
}
