/**
 * `npm run bench:raft`: committed entries per second through the pure Raft core (src/raft) with
 * MemoryStorage and an in-process FIFO network, for each cluster size × proposer count.
 *
 * Each configuration builds a fresh cluster, elects node 1, warms up, then measures for a fixed
 * wall time. "Committed" means applied on the leader (so the entry was persisted by a quorum and
 * handed out in `committedEntries`). After measuring, the cluster is drained and every node must
 * have applied the same log, so a fast but wrong driver cannot report a number.
 *
 * A benchmark prints numbers; it never fails on a timing (STYLE.md rule 9).
 */
import { monotonicClock, processCpuMs } from '../../src/platform/clock.ts';
import { SeededRandom } from '../../src/util/random.ts';
import { BenchCluster, type ClusterCounters } from './cluster.ts';
import { benchUsage, parseBenchOptions, wantsHelp, type BenchOptions } from './options.ts';
import { machineLine, resultsTable, type RunResult } from './report.ts';
import { ClosedLoopProposers } from './workload.ts';

/** The target: committed entries/s for 3 nodes with 64 proposers. */
const TARGET_COMMITTED_PER_SECOND = 200_000;
/** Below this CPU share the process was clearly competing for a core with other work. */
const STARVED_CPU_PERCENT = 90;

/** Runs one configuration `options.runs` times; returns the median run with the range seen. */
function measureConfiguration(options: BenchOptions, nodeCount: number, proposerCount: number): RunResult {
  const results: RunResult[] = [];
  for (let run = 0; run < options.runs; run++) results.push(runConfiguration(options, nodeCount, proposerCount));
  results.sort((a, b) => a.committedPerSecond - b.committedPerSecond);
  const median = results[Math.floor(results.length / 2)]!;
  return {
    ...median,
    runs: results.length,
    committedPerSecondMin: results[0]!.committedPerSecond,
    committedPerSecondMax: results[results.length - 1]!.committedPerSecond,
  };
}

/** Builds, elects, warms up and measures one configuration once. */
function runConfiguration(options: BenchOptions, nodeCount: number, proposerCount: number): RunResult {
  const workload = new ClosedLoopProposers(proposerCount, options.entryBytes, new SeededRandom(options.seed).fork());
  const cluster: BenchCluster = new BenchCluster(
    { nodeCount, seed: options.seed, compactEveryEntries: options.compactEveryEntries, compactRetainEntries: options.compactRetainEntries },
    (peerId, entries) => {
      if (peerId === cluster.leaderId) workload.onLeaderApplied(entries, monotonicClock.nowMs(), cluster.counters.cycles);
    },
  );
  cluster.elect();
  runFor(cluster, workload, options.warmupSeconds * 1000, options.tickIntervalMs);
  workload.resetStats();
  const before = { ...cluster.counters };
  const startCpuMs = processCpuMs();
  const startMs = monotonicClock.nowMs();
  runFor(cluster, workload, options.measureSeconds * 1000, options.tickIntervalMs);
  const elapsedMs = monotonicClock.nowMs() - startMs;
  const cpuMs = processCpuMs() - startCpuMs;
  const result = summarize({ nodes: nodeCount, proposers: proposerCount, entryBytes: options.entryBytes, elapsedMs, cpuMs }, workload, before, cluster.counters);
  cluster.drain();
  cluster.checkConverged();
  return result;
}

/** Proposes from every idle proposer and runs Ready cycles for `durationMs` of wall time. */
function runFor(cluster: BenchCluster, workload: ClosedLoopProposers, durationMs: number, tickIntervalMs: number): void {
  const startMs = monotonicClock.nowMs();
  let nextTickMs = startMs + tickIntervalMs;
  for (;;) {
    const nowMs = monotonicClock.nowMs();
    if (nowMs - startMs >= durationMs) return;
    if (nowMs >= nextTickMs) {
      cluster.tick();
      nextTickMs += tickIntervalMs;
    }
    workload.proposeIdle(cluster.leader(), nowMs, cluster.counters.cycles);
    cluster.cycle();
  }
}

/** The configuration and time of one measured window. */
interface Window {
  readonly nodes: number;
  readonly proposers: number;
  readonly entryBytes: number;
  readonly elapsedMs: number;
  readonly cpuMs: number;
}

/** Turns one window's counters into a table row. */
function summarize(window: Window, workload: ClosedLoopProposers, before: ClusterCounters, after: ClusterCounters): RunResult {
  const { nodes, proposers, entryBytes, elapsedMs, cpuMs } = window;
  const { committed, latencyMsSum, latencyCyclesSum } = workload.stats;
  const seconds = elapsedMs / 1000;
  const savingReadies = after.leaderSavingReadies - before.leaderSavingReadies;
  return {
    nodes,
    proposers,
    entryBytes,
    measuredSeconds: seconds,
    committed,
    committedPerSecond: committed / seconds,
    committedPerCpuSecond: cpuMs === 0 ? 0 : committed / (cpuMs / 1000),
    cpuPercent: (100 * cpuMs) / elapsedMs,
    runs: 1,
    committedPerSecondMin: committed / seconds,
    committedPerSecondMax: committed / seconds,
    latencyUsMean: committed === 0 ? 0 : (latencyMsSum * 1000) / committed,
    latencyCyclesMean: committed === 0 ? 0 : latencyCyclesSum / committed,
    entriesPerLeaderReady: savingReadies === 0 ? 0 : (after.leaderEntriesSaved - before.leaderEntriesSaved) / savingReadies,
    messagesPerEntry: committed === 0 ? 0 : (after.messages - before.messages) / committed,
    cyclesPerSecond: (after.cycles - before.cycles) / seconds,
  };
}

/** The verdict line on the target, stated whether it is met or not. */
function targetLine(results: readonly RunResult[]): string {
  const row = results.find((r) => r.nodes === 3 && r.proposers === 64);
  if (row === undefined) return `target (>= ${TARGET_COMMITTED_PER_SECOND.toLocaleString('en-US')} committed/s, 3 nodes, 64 proposers): not measured in this run`;
  const verdict = row.committedPerSecond >= TARGET_COMMITTED_PER_SECOND ? 'MET' : 'NOT MET';
  return `target >= ${TARGET_COMMITTED_PER_SECOND.toLocaleString('en-US')} committed/s (3 nodes, 64 proposers): ${verdict} (${Math.round(row.committedPerSecond).toLocaleString('en-US')}/s)`;
}

function main(): void {
  const argv = process.argv.slice(2);
  if (wantsHelp(argv)) {
    console.log(benchUsage());
    return;
  }
  let options: BenchOptions;
  try {
    options = parseBenchOptions(argv);
  } catch (error) {
    console.error(error instanceof Error ? error.message : String(error));
    console.error(benchUsage());
    process.exit(2);
  }
  console.log('Raft core benchmark (bench/raft): src/raft RawNode + MemoryStorage, in-process FIFO network, no serialisation');
  console.log(`machine: ${machineLine()}`);
  console.log(
    `entry payload ${options.entryBytes} bytes (+24 header in flow control); warm-up ${options.warmupSeconds} s, measured ${options.measureSeconds} s, ${options.runs} run(s) per row (median shown); ` +
      `seed ${options.seed}; tick ${options.tickIntervalMs} ms; compaction every ${options.compactEveryEntries} entries keeping ${options.compactRetainEntries}`,
  );
  const results: RunResult[] = [];
  for (const nodes of options.nodeCounts) {
    for (const proposers of options.proposerCounts) results.push(measureConfiguration(options, nodes, proposers));
  }
  console.log('');
  console.log(resultsTable(results));
  console.log('');
  console.log(targetLine(results));
  const starved = results.filter((r) => r.cpuPercent < STARVED_CPU_PERCENT);
  if (starved.length > 0) {
    console.log(
      `warning: in ${starved.length} row(s) this process got under ${STARVED_CPU_PERCENT}% of a core (other load on the machine); ` +
        'their committed/s understates the core, committed/CPU-s less so. Re-run on a quiet machine.',
    );
  }
}

main();
