/**
 * Throughput/latency measurement in interleaved rounds: every round measures each mix on each
 * system, alternating which system goes first, so slow drifts in the machine's other load (this
 * machine is shared) hit both systems alike. Each (system, mix) is reported as its median round.
 */
import type { LocalCluster } from './local-cluster.ts';
import type { LoadgenOptions, Mix } from './loadgen-options.ts';
import { measureLoad } from './loadgen-process.ts';
import type { MixRow } from './report.ts';

const HEAL_TIMEOUT_MS = 60_000;

/** How to load one cluster: the load generator settings and where requests go. */
export interface RoundPlan {
  readonly rounds: number;
  readonly mixes: readonly Mix[];
  readonly route: 'all' | 'leader';
  /** Load generator settings for `cluster` (endpoints and mix are filled in per measurement). */
  readonly loadFor: (cluster: LocalCluster) => LoadgenOptions;
}

/** Measures every (cluster, mix) `plan.rounds` times, interleaved; returns the median rows. */
export async function measureRounds(plan: RoundPlan, clusters: readonly LocalCluster[], progress: (line: string) => void): Promise<MixRow[]> {
  const samples = new Map<string, MixRow[]>();
  for (let round = 0; round < plan.rounds; round++) {
    for (const mix of plan.mixes) {
      for (let k = 0; k < clusters.length; k++) {
        const cluster = clusters[(round + k) % clusters.length]!;
        const row = await measureOnce(plan, cluster, mix);
        const key = `${cluster.system}/${mix}`;
        samples.set(key, [...(samples.get(key) ?? []), row]);
        const r = row.result;
        progress(`round ${round + 1}/${plan.rounds} ${cluster.system} ${mix}: ${Math.round(r.throughputOpsPerSecond)} ops/s, p50 ${r.latency.p50Ms.toFixed(2)} ms, p99 ${r.latency.p99Ms.toFixed(2)} ms, ${r.errors} errors ${JSON.stringify(r.errorsByLabel)}`);
      }
    }
  }
  return [...samples.values()].map(medianRow);
}

async function measureOnce(plan: RoundPlan, cluster: LocalCluster, mix: Mix): Promise<MixRow> {
  await cluster.waitHealthy(HEAL_TIMEOUT_MS);
  const endpoints = plan.route === 'all' ? cluster.endpoints : [cluster.endpoints[await cluster.leader()]!];
  const cpuBeforeMs = cluster.serverCpuMs();
  const result = await measureLoad({ ...plan.loadFor(cluster), endpoints, mix });
  const serverCpuUsPerOp = ((cluster.serverCpuMs() - cpuBeforeMs) * 1000) / Math.max(1, result.opsTotal);
  const throughput = result.throughputOpsPerSecond;
  return { result, serverCpuUsPerOp, rounds: 1, throughputMin: throughput, throughputMax: throughput };
}

/** The round with the median throughput (the lower middle one for an even count), with the range. */
export function medianRow(rows: readonly MixRow[]): MixRow {
  if (rows.length === 0) throw new Error('medianRow: no rows');
  const sorted = [...rows].sort((a, b) => a.result.throughputOpsPerSecond - b.result.throughputOpsPerSecond);
  const median = sorted[Math.floor((sorted.length - 1) / 2)]!;
  return {
    ...median,
    rounds: rows.length,
    throughputMin: sorted[0]!.result.throughputOpsPerSecond,
    throughputMax: sorted[sorted.length - 1]!.result.throughputOpsPerSecond,
  };
}
