/**
 * `npx tsx bench/invoker/metrics-record.ts [operations]`: the cost of `InvocationMetrics.record`,
 * which the invoker calls on every call, in ns/op on its steady path (pairs already tracked), and
 * the number of garbage collections during the measured loops (0 when the path allocates
 * nothing). Also the cost of `takeWindow`, which runs once a second on each node, and of the
 * leader's `MetricsAggregator.ingest` per pushed window.
 *
 * A benchmark prints numbers; it never fails on a timing (STYLE.md rule 9).
 */
import { PerformanceObserver } from 'node:perf_hooks';
import { InvocationMetrics, type MetricsWindow } from '../../src/invoker/metrics.ts';
import { MetricsAggregator } from '../../src/invoker/metrics-aggregator.ts';
import { sleep } from '../../src/platform/wait.ts';
import { SeededRandom } from '../../src/util/random.ts';

const OPERATIONS = Number(process.argv[2] ?? 10_000_000);
const RUNS = 5;
const BASES = ['acme:shop', 'acme:cart', 'acme:search', 'acme:auth'];
const VERSIONS = ['1.4.2', '1.5.0'];

/** Latencies and outcomes drawn up front, so the loop measures `record` and not the draw. */
const SAMPLES = 1 << 16;
const random = new SeededRandom(1);
const latenciesMs = Float64Array.from({ length: SAMPLES }, () => -20 * Math.log(1 - random.nextFloat()));
const oks = Uint8Array.from({ length: SAMPLES }, () => (random.nextFloat() < 0.99 ? 1 : 0));

let gcCount = 0;
const observer = new PerformanceObserver((list) => {
  gcCount += list.getEntries().length;
});
observer.observe({ entryTypes: ['gc'] });

/** Lets the GC observer's callback run. */
const settle = (): Promise<void> => sleep(0);

function loop(metrics: InvocationMetrics, operations: number): bigint {
  const started = process.hrtime.bigint();
  for (let i = 0; i < operations; i++) {
    const sample = i & (SAMPLES - 1);
    metrics.record(BASES[i & 3]!, VERSIONS[(i >> 2) & 1]!, latenciesMs[sample]!, oks[sample] === 1);
  }
  return process.hrtime.bigint() - started;
}

async function main(): Promise<void> {
  const metrics = new InvocationMetrics();
  loop(metrics, 1_000_000); // warm-up: tracks every pair and lets the JIT settle
  metrics.takeWindow(1, 0);
  const results: number[] = [];
  let gcs = 0;
  for (let run = 0; run < RUNS; run++) {
    await settle();
    const before = gcCount;
    const elapsedNs = loop(metrics, OPERATIONS);
    await settle();
    gcs += gcCount - before;
    results.push(Number(elapsedNs) / OPERATIONS);
    metrics.takeWindow(1, run + 1);
  }
  results.sort((a, b) => a - b);

  const windowRuns = 200;
  const windowStarted = process.hrtime.bigint();
  for (let i = 0; i < windowRuns; i++) {
    for (let j = 0; j < 1000; j++) metrics.record(BASES[j & 3]!, VERSIONS[(j >> 2) & 1]!, latenciesMs[j]!, true);
    metrics.takeWindow(1, RUNS + 1 + i);
  }
  const windowUs = Number(process.hrtime.bigint() - windowStarted) / windowRuns / 1000;
  observer.disconnect();
  const ingestUs = measureIngest();

  console.log(`node ${process.version}, ${BASES.length * VERSIONS.length} (artifact, version) pairs, ${OPERATIONS.toLocaleString('en')} calls x ${RUNS} runs`);
  console.log(`record: median ${results[Math.floor(RUNS / 2)]!.toFixed(1)} ns/op (min ${results[0]!.toFixed(1)}, max ${results[RUNS - 1]!.toFixed(1)}); garbage collections during the measured loops: ${gcs}`);
  console.log(`takeWindow (8 pairs, 1000 calls recorded before each): ${windowUs.toFixed(1)} us/window, recording included`);
  console.log(`leader ingest (8 pairs per window, 125 calls each): ${ingestUs.toFixed(1)} us/window`);
}

/** Leader side: windows of 8 pairs from 10 nodes, 60 seconds of them, into one aggregator. */
function measureIngest(): number {
  const nodes = 10;
  const seconds = 60;
  const windows: MetricsWindow[] = [];
  for (let second = 1; second <= seconds; second++) {
    for (let node = 1; node <= nodes; node++) {
      const metrics = new InvocationMetrics({ startMs: (second - 1) * 1000 });
      for (let j = 0; j < 1000; j++) metrics.record(BASES[j & 3]!, VERSIONS[(j >> 2) & 1]!, latenciesMs[(second * 1000 + j) & (SAMPLES - 1)]!, true);
      windows.push(metrics.takeWindow(node, second * 1000));
    }
  }
  let nowMs = 0;
  const aggregator = new MetricsAggregator({ clock: { nowMs: () => nowMs } });
  const started = process.hrtime.bigint();
  for (const window of windows) {
    nowMs = window.endMs;
    const result = aggregator.ingest(window);
    if (!result.ok) throw new Error(`bench window refused: ${result.detail}`);
  }
  return Number(process.hrtime.bigint() - started) / windows.length / 1000;
}

await main();
