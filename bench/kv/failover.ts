/**
 * Failover under load: with put load flowing from a failover-mode load generator, kill -9 the
 * leader and measure the time from the kill to the first write that was issued after the kill and
 * acknowledged. The killed member is restarted and the cluster healed before the next trial.
 */
import type { LocalCluster } from './local-cluster.ts';
import type { LoadgenOptions } from './loadgen-options.ts';
import { LoadgenProcess } from './loadgen-process.ts';

const HEAL_TIMEOUT_MS = 60_000;

/** One kill -9 trial. */
export interface FailoverTrial {
  readonly killedMember: number;
  /** null: no write was acknowledged within the load generator's wait. */
  readonly failoverMs: number | null;
  readonly errorsAfterKill: number;
}

/** All trials of one system. */
export interface FailoverSummary {
  readonly system: string;
  readonly trials: readonly FailoverTrial[];
  /** Median over all trials, a trial without any write counting as infinitely slow. */
  readonly medianMs: number | null;
}

/** Runs `trials` kill -9 trials against `cluster`; `progress` gets one line per trial. */
export async function measureFailover(cluster: LocalCluster, load: LoadgenOptions, trials: number, progress: (line: string) => void): Promise<FailoverSummary> {
  const results: FailoverTrial[] = [];
  for (let trial = 0; trial < trials; trial++) {
    await cluster.waitHealthy(HEAL_TIMEOUT_MS);
    const result = await killLeaderOnce(cluster, { ...load, mode: 'failover', mix: 'put', seed: load.seed + trial });
    results.push(result);
    const shown = result.failoverMs === null ? 'no write' : `${result.failoverMs.toFixed(0)} ms`;
    progress(`${cluster.system} failover trial ${trial + 1}/${trials}: killed member ${result.killedMember + 1}, first write after ${shown} (${result.errorsAfterKill} failed requests meanwhile)`);
  }
  await cluster.waitHealthy(HEAL_TIMEOUT_MS);
  return { system: cluster.system, trials: results, medianMs: medianOrNull(results.map((r) => r.failoverMs)) };
}

async function killLeaderOnce(cluster: LocalCluster, load: LoadgenOptions): Promise<FailoverTrial> {
  const loadgen = new LoadgenProcess(load);
  let killed: number | undefined;
  try {
    await loadgen.next('ready');
    killed = await cluster.leader();
    loadgen.sendKill(await cluster.kill(killed));
    const { failoverMs, errorsAfterKill } = await loadgen.next('failover');
    await loadgen.close();
    return { killedMember: killed, failoverMs, errorsAfterKill };
  } catch (error) {
    loadgen.kill();
    throw error;
  } finally {
    if (killed !== undefined) await cluster.restart(killed);
  }
}

/** The median of `values` with null sorted last (as +∞); null if the median itself is null. */
export function medianOrNull(values: readonly (number | null)[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => (a ?? Infinity) - (b ?? Infinity));
  const middle = sorted.length / 2;
  if (sorted.length % 2 === 1) return sorted[Math.floor(middle)] ?? null;
  const low = sorted[middle - 1];
  const high = sorted[middle];
  return low === null || high === null || low === undefined || high === undefined ? null : (low + high) / 2;
}
