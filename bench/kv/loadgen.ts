/**
 * The KV load generator, a process of its own (the driver spawns it; see bench.ts). It talks to
 * Cutover or etcd through the KvClient of that system and prints JSON lines on stdout:
 *
 * - load mode: one `{"type":"result",…}` line (LoadResult) after warm-up and measurement;
 * - failover mode: `{"type":"ready"}` once put load is flowing, then, after the driver wrote
 *   `kill <ns>` on stdin (CLOCK_MONOTONIC nanoseconds, the same clock in every process on
 *   Linux), one `{"type":"failover",…}` line (FailoverProbeResult).
 *
 * Usage: tsx bench/kv/loadgen.ts --system cutover|etcd --endpoints h:p,… (see loadgen-options.ts)
 */
import { createInterface } from 'node:readline';
import { monotonicClock, processCpuMs } from '../../src/platform/clock.ts';
import { realClock } from '../../src/platform/scheduler.ts';
import { SeededRandom } from '../../src/util/random.ts';
import { CutoverKvClient } from './cutover-client.ts';
import { EtcdKvClient } from './etcd-client.ts';
import { FailoverProbe } from './failover-probe.ts';
import type { KvClient, SystemName } from './kv-client.ts';
import { parseLoadgenOptions, type LoadgenOptions, type Mix } from './loadgen-options.ts';
import { sleep } from '../../src/platform/wait.ts';
import { ClosedLoop, summarize, type LatencySummary } from './workload.ts';

/** What load mode prints. */
export interface LoadResult {
  readonly type: 'result';
  readonly system: SystemName;
  readonly mix: Mix;
  readonly clients: number;
  readonly measuredSeconds: number;
  /** Requests acknowledged within the window. */
  readonly ops: number;
  readonly errors: number;
  readonly errorsByLabel: Record<string, number>;
  readonly throughputOpsPerSecond: number;
  readonly latency: LatencySummary;
  readonly putLatency: LatencySummary;
  readonly getLatency: LatencySummary;
  /** Requests acknowledged since start, warm-up included (to relate server CPU time to work). */
  readonly opsTotal: number;
  readonly loadgenCpuMs: number;
}

/** What failover mode prints. */
export interface FailoverProbeResult {
  readonly type: 'failover';
  /** From the kill to the first acknowledged write issued after it; null if none came in time. */
  readonly failoverMs: number | null;
  readonly errorsAfterKill: number;
}

function makeClient(options: LoadgenOptions): KvClient {
  return options.system === 'cutover' ? new CutoverKvClient(options.endpoints, new SeededRandom(options.seed ^ 0x5eed)) : new EtcdKvClient(options.endpoints);
}

async function runLoad(options: LoadgenOptions, client: KvClient): Promise<LoadResult> {
  const loop = new ClosedLoop(client, options, new SeededRandom(options.seed));
  loop.start(options.clients);
  await sleep(options.warmupSeconds * 1000);
  const window = loop.openWindow();
  const startMs = monotonicClock.nowMs();
  const startCpuMs = processCpuMs();
  await sleep(options.measureSeconds * 1000);
  const measuredSeconds = (monotonicClock.nowMs() - startMs) / 1000;
  loop.closeWindow();
  const loadgenCpuMs = processCpuMs() - startCpuMs;
  await loop.stop();
  const ops = window.all.totalCount;
  return {
    type: 'result', system: options.system, mix: options.mix, clients: options.clients, measuredSeconds,
    ops, errors: window.errors, errorsByLabel: Object.fromEntries(window.errorsByLabel),
    throughputOpsPerSecond: ops / measuredSeconds,
    latency: summarize(window.all), putLatency: summarize(window.puts), getLatency: summarize(window.gets),
    opsTotal: loop.completedTotal, loadgenCpuMs,
  };
}

async function runFailover(options: LoadgenOptions, client: KvClient): Promise<FailoverProbeResult> {
  const probe = new FailoverProbe();
  const loop = new ClosedLoop(client, { ...options, mix: 'put' }, new SeededRandom(options.seed), probe.observe);
  loop.start(options.clients);
  await sleep(options.warmupSeconds * 1000);
  if (loop.completedTotal === 0) throw new Error('failover: no write succeeded during warm-up; the cluster is not serving');
  console.log(JSON.stringify({ type: 'ready' }));
  const killNs = await readKillTime();
  probe.setKillTime(killNs);
  const cancel = realClock.schedule(options.failoverWaitMs, () => probe.giveUp());
  const okNs = await probe.firstAcknowledgedNs;
  cancel();
  await loop.stop();
  return { type: 'failover', failoverMs: okNs === undefined ? null : Number(okNs - killNs) / 1e6, errorsAfterKill: probe.errorsAfterKill };
}

/** Waits for the driver's `kill <ns>` line on stdin. */
async function readKillTime(): Promise<bigint> {
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    const match = /^kill (\d+)$/.exec(line.trim());
    if (match !== null) {
      lines.close();
      return BigInt(match[1]!);
    }
  }
  throw new Error('failover: stdin closed before the driver sent the kill time');
}

async function main(): Promise<void> {
  const options = parseLoadgenOptions(process.argv.slice(2));
  const client = makeClient(options);
  try {
    const result = options.mode === 'load' ? await runLoad(options, client) : await runFailover(options, client);
    console.log(JSON.stringify(result));
  } finally {
    client.close();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(`loadgen: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  },
);
