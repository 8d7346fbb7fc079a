/**
 * `npm run sim -- [--target node|raft] [--seeds N] [--first-seed S] [--seed S] [--nodes 3|5] [--unsafe VARIANT] [--verbose] [--quiet]`
 *
 * Runs the deterministic simulator on the node runtime (`--target node`, the default) or on the
 * bare Raft core with the simulator's own driver (`--target raft`). Every seed prints one `SEED=<seed> nodes=<n> ...` line with
 * every option it drew (`--quiet` keeps only progress lines and failures). `--seeds N` runs seeds
 * S..S+N-1 (S = --first-seed, default 1) with a progress line per 100 seeds; `--seed S` runs one
 * seed and prints a summary (`--verbose` adds every event as it happens). A failing seed prints
 * its violations, its last events and the command that replays it exactly. Exits 1 when any
 * seed broke an invariant.
 */
import { parseArgs } from 'node:util';
import { monotonicClock } from '../src/platform/clock.ts';
import { SIM_TARGETS, UNSAFE_VARIANTS, drawOptions, formatOptions, type SimTarget, type UnsafeVariant } from './options.ts';
import { runTarget, type SimResult } from './run.ts';

interface CliOptions {
  readonly seeds: number[];
  readonly nodes: number;
  readonly target: SimTarget;
  readonly unsafe: UnsafeVariant | 'none';
  readonly verbose: boolean;
  /** Print only progress lines and failures, not each seed's options. */
  readonly quiet: boolean;
  readonly single: boolean;
}

const USAGE = `usage: npm run sim -- [--target ${SIM_TARGETS.join('|')}] [--seeds N] [--first-seed S] [--seed S] [--nodes 3|5] [--unsafe ${UNSAFE_VARIANTS.join('|')}] [--verbose] [--quiet]`;
const PROGRESS_EVERY_SEEDS = 100;

function parseCli(argv: string[]): CliOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      seeds: { type: 'string' },
      'first-seed': { type: 'string' },
      seed: { type: 'string' },
      nodes: { type: 'string' },
      target: { type: 'string' },
      unsafe: { type: 'string' },
      verbose: { type: 'boolean', default: false },
      quiet: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const nodes = integer('--nodes', values.nodes ?? '3');
  if (nodes !== 3 && nodes !== 5) fail('--nodes must be 3 or 5');
  const target = values.target ?? 'node';
  if (!(SIM_TARGETS as readonly string[]).includes(target)) fail(`--target must be one of ${SIM_TARGETS.join(', ')}`);
  const unsafe = values.unsafe ?? 'none';
  if (unsafe !== 'none' && !(UNSAFE_VARIANTS as readonly string[]).includes(unsafe)) fail(`--unsafe must be one of ${UNSAFE_VARIANTS.join(', ')}`);
  const single = values.seed !== undefined;
  if (single && values.seeds !== undefined) fail('--seed and --seeds are exclusive');
  const first = integer('--first-seed', values['first-seed'] ?? '1');
  const seeds = single ? [integer('--seed', values.seed!)] : Array.from({ length: integer('--seeds', values.seeds ?? '100') }, (_, i) => first + i);
  return { seeds, nodes, target: target as SimTarget, unsafe: unsafe as UnsafeVariant | 'none', verbose: values.verbose, quiet: values.quiet && !single, single };
}

function integer(name: string, text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 0) fail(`${name} must be a non-negative integer, got ${JSON.stringify(text)}`);
  return value;
}

function fail(message: string): never {
  console.error(`${message}\n${USAGE}`);
  process.exit(2);
}

/** One line that says what the run did. */
function summarise(result: SimResult): string {
  const s = result.stats;
  const verdict = result.violations.length === 0 ? 'ok' : `VIOLATION ${result.violations[0]!.kind}`;
  return (
    `seed ${result.options.seed}: ${verdict} sim=${(s.simTimeMs / 1000).toFixed(1)}s events=${s.events} ` +
    `ops=${s.workload.started} (done ${s.workload.completed}, gave up ${s.workload.gaveUp}) maxTerm=${s.maxTerm} maxCommit=${s.maxCommit} ` +
    `msgs=${s.network.sent} (lost ${s.network.lost}, cut ${s.network.partitioned}, dup ${s.network.duplicated}) ` +
    `crashes=${s.faults.crashes} stops=${s.faults.stops} partitions=${s.faults.partitions} clogs=${s.faults.clogs} transfers=${s.faults.transfers} confChanges=${s.faults.membershipChanges} ` +
    `writes=${s.disk.writes} torn=${s.disk.tornWrites} (detected ${s.disk.tornDetected}) unsyncedLost=${s.disk.unsyncedLost} snapshots=${s.snapshotsTaken} (installed ${s.snapshotsInstalled}) ` +
    `liveness=${s.livenessMs === undefined ? '-' : `${s.livenessMs.toFixed(0)}ms`} linearizability=${s.linearizability} (${s.historyOps} ops) digest=${result.traceDigest}`
  );
}

function printFailure(result: SimResult, cli: CliOptions): void {
  if (cli.quiet) console.log(formatOptions(result.options));
  for (const violation of result.violations) console.log(`VIOLATION ${violation.kind} at ${violation.atMs.toFixed(3)}ms: ${violation.message}`);
  console.log(`last ${result.trace.length} events:`);
  for (const line of result.trace) console.log(`  ${line}`);
  console.log(`replay: ${replayCommand(result.options.seed, cli)} --verbose`);
}

function replayCommand(seed: number, cli: CliOptions): string {
  return `npm run sim -- --target ${cli.target} --seed ${seed} --nodes ${cli.nodes}${cli.unsafe === 'none' ? '' : ` --unsafe ${cli.unsafe}`}`;
}

/** Counts across seeds, for the progress lines and the final totals. */
class Totals {
  seeds = 0;
  failed = 0;
  unknown = 0;
  simTimeMs = 0;
  slowestLiveness = { ms: 0, seed: 0 };
  private readonly startedMs = monotonicClock.nowMs();

  add(result: SimResult): void {
    this.seeds++;
    this.simTimeMs += result.stats.simTimeMs;
    if (result.violations.length > 0) this.failed++;
    if (result.stats.linearizability === 'unknown') this.unknown++;
    const livenessMs = result.stats.livenessMs;
    if (livenessMs !== undefined && livenessMs > this.slowestLiveness.ms) this.slowestLiveness = { ms: livenessMs, seed: result.options.seed };
  }

  wallS(): number {
    // Real time, read through src/platform: it measures the runner and never feeds a simulation.
    return (monotonicClock.nowMs() - this.startedMs) / 1000;
  }
}

async function main(): Promise<void> {
  const cli = parseCli(process.argv.slice(2));
  const totals = new Totals();
  for (const seed of cli.seeds) {
    const options = drawOptions(seed, { nodes: cli.nodes, target: cli.target, unsafe: cli.unsafe });
    if (!cli.quiet) console.log(formatOptions(options));
    const result = await runTarget(options, cli.verbose ? { verbose: (line) => console.log(line) } : {});
    totals.add(result);
    if (result.violations.length > 0) printFailure(result, cli);
    if (result.stats.linearizability === 'unknown') console.log(`seed ${seed}: linearizability unknown on ${result.stats.historyOps} ops (${result.stats.linearizabilityNote}); replay: ${replayCommand(seed, cli)}`);
    if (cli.single || cli.verbose) console.log(summarise(result));
    else if (totals.seeds % PROGRESS_EVERY_SEEDS === 0 || totals.seeds === cli.seeds.length) {
      console.log(`[${String(totals.seeds).padStart(6)}/${cli.seeds.length}] seeds ${cli.seeds[0]}..${seed}: violations=${totals.failed} linearizability-unknown=${totals.unknown} wall=${totals.wallS().toFixed(1)}s`);
    }
  }
  const { slowestLiveness } = totals;
  console.log(
    `seeds run: ${totals.seeds} (target=${cli.target}, nodes=${cli.nodes}${cli.unsafe === 'none' ? '' : `, unsafe=${cli.unsafe}`}), violations: ${totals.failed}, ` +
      `linearizability unknown: ${totals.unknown}, slowest recovery after the heal: ${slowestLiveness.ms.toFixed(0)}ms (seed ${slowestLiveness.seed}), ` +
      `simulated time: ${(totals.simTimeMs / 1000).toFixed(1)}s, wall time: ${totals.wallS().toFixed(1)}s`,
  );
  process.exitCode = totals.failed > 0 ? 1 : 0;
}

await main();
