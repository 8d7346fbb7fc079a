/**
 * `npm run bench:kv`: throughput, latency and failover of the replicated KV store on a local
 * 3-node Cutover cluster and, in the same run when `etcd` is on PATH, on a local 3-member etcd
 * cluster driven by the same load generator (a separate process, see loadgen.ts) through the
 * `etcd3` client. Mixes: put-only and 50/50 put / linearizable get, in interleaved rounds (see
 * rounds.ts). Failover: kill -9 of the leader under put load, time to the first acknowledged
 * write issued after the kill (see failover.ts).
 *
 * A benchmark prints numbers; it never fails on a timing (STYLE.md rule 9). It exits non-zero
 * only when it could not measure (a cluster did not start, a load generator crashed).
 */
import os from 'node:os';
import { CutoverCluster } from './cutover-cluster.ts';
import { EtcdCluster, ETCD_INSTALL_HINT, findEtcd } from './etcd-cluster.ts';
import { measureFailover, type FailoverSummary } from './failover.ts';
import type { LocalCluster } from './local-cluster.ts';
import type { LoadgenOptions } from './loadgen-options.ts';
import { HelpRequested, parseBenchOptions, type BenchOptions } from './options.ts';
import { failoverTable, machineLines, ratioTable, resultsTable, targetLines, type MixRow } from './report.ts';
import { measureRounds } from './rounds.ts';

const CLUSTER_SIZE = 3;

function progress(line: string): void {
  console.log(`# ${line}`);
}

function loadOptions(options: BenchOptions, cluster: LocalCluster): LoadgenOptions {
  return {
    system: cluster.system, endpoints: cluster.endpoints, mode: 'load', mix: 'put', clients: options.clients,
    warmupSeconds: options.warmupSeconds, measureSeconds: options.measureSeconds, keyspace: options.keyspace,
    keyBytes: options.keyBytes, valueBytes: options.valueBytes, seed: options.seed,
    requestTimeoutMs: options.requestTimeoutMs, failoverWaitMs: 30_000,
  };
}

/** The clusters this run compares: Cutover, and etcd when asked for and installed. */
async function createClusters(options: BenchOptions): Promise<LocalCluster[]> {
  const clusters: LocalCluster[] = [];
  if (options.systems.includes('cutover')) {
    clusters.push(await CutoverCluster.create({ size: CLUSTER_SIZE, dataParent: options.dataParent, cpuProfileDir: options.cpuProfileDir }));
  }
  const etcd = findEtcd();
  if (!options.systems.includes('etcd')) progress('etcd: skipped (--systems)');
  else if (etcd === undefined) progress(`etcd: SKIPPED — no 'etcd' on PATH; install it to compare: ${ETCD_INSTALL_HINT}`);
  else clusters.push(await EtcdCluster.create(etcd, CLUSTER_SIZE, options.dataParent));
  return clusters;
}

interface Outcome {
  readonly rows: MixRow[];
  readonly failovers: FailoverSummary[];
  readonly versions: string[];
}

/** Starts every cluster, measures the mixes in rounds, then failover on each cluster in turn. */
async function benchClusters(options: BenchOptions, clusters: readonly LocalCluster[]): Promise<Outcome> {
  for (const cluster of clusters) {
    progress(`starting ${CLUSTER_SIZE} ${cluster.system} members on ${cluster.endpoints.join(', ')}`);
    await cluster.start();
  }
  const plan = { rounds: options.rounds, mixes: options.mixes, route: options.route, loadFor: (c: LocalCluster) => loadOptions(options, c) };
  const rows = await measureRounds(plan, clusters, progress);
  const failovers: FailoverSummary[] = [];
  for (const cluster of options.failoverTrials === 0 ? [] : clusters) {
    // Always through every member: a client of the killed leader alone could never succeed.
    const load = { ...loadOptions(options, cluster), warmupSeconds: options.failoverWarmupSeconds, requestTimeoutMs: options.failoverTimeoutMs };
    failovers.push(await measureFailover(cluster, load, options.failoverTrials, progress));
  }
  return { rows, failovers, versions: clusters.map((c) => c.version()) };
}

async function main(): Promise<void> {
  const options = parseBenchOptions(process.argv.slice(2));
  const loadAverageAtStart = os.loadavg()[0] ?? 0;
  const clusters = await createClusters(options);
  let failed = true;
  try {
    const outcome = await benchClusters(options, clusters);
    failed = false;
    printReport(options, outcome, loadAverageAtStart);
  } finally {
    for (const cluster of clusters) {
      if (failed) progress(`${cluster.system}: the run failed; data and logs are kept in ${cluster.root}`);
      await cluster.destroy(failed);
    }
  }
}

function printReport(options: BenchOptions, { rows, failovers, versions }: Outcome, loadAverageAtStart: number): void {
  console.log('');
  for (const line of machineLines(versions, loadAverageAtStart)) console.log(line);
  console.log(`Load: ${options.clients} closed-loop clients, ${options.keyBytes}-byte keys (${options.keyspace} distinct), ${options.valueBytes}-byte values; ` +
    `${options.rounds} interleaved round(s) of ${options.warmupSeconds} s warm-up + ${options.measureSeconds} s measured, median round shown; ` +
    `requests to ${options.route === 'all' ? 'a random member each' : 'the leader only'}; data under ${options.dataParent}`);
  if (options.failoverTrials > 0) console.log(`Failover: ${options.clients} put clients through every member, ${options.failoverTimeoutMs} ms request deadline, ${options.failoverWarmupSeconds} s of load before each kill`);
  console.log(`\n${resultsTable(rows)}`);
  const ratios = ratioTable(rows);
  if (ratios !== undefined) console.log(`\n${ratios}`);
  if (failovers.length > 0) console.log(`\nFailover (kill -9 of the leader under put load → first acknowledged write issued after the kill):\n\n${failoverTable(failovers)}`);
  console.log('');
  for (const line of targetLines(rows, failovers)) console.log(line);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    if (error instanceof HelpRequested) {
      console.log(error.message);
      process.exit(0);
    }
    console.error(`bench:kv: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  },
);
