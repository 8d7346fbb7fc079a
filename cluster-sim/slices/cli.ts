/**
 * `npx tsx cluster-sim/slices/cli.ts [--seeds N] [--first-seed S] [--seed S] [--nodes 3|5] [--verbose] [--quiet]`
 *
 * Runs the slices scenario (slices/simulation.ts) on the node target. Every seed prints its
 * `SEED=…` line with every option it drew (`--quiet` keeps only progress lines and failures); a
 * failing seed prints its violations, its last events and the command that replays it. Exits 1
 * when any seed broke an invariant.
 */
import { parseArgs } from 'node:util';
import { monotonicClock } from '../../src/platform/clock.ts';
import { drawSlicesOptions, formatSlicesOptions } from './options.ts';
import { runSlicesSimulation, type SlicesResult } from './simulation.ts';

const USAGE = 'usage: npx tsx cluster-sim/slices/cli.ts [--seeds N] [--first-seed S] [--seed S] [--nodes 3|5] [--verbose] [--quiet]';
const PROGRESS_EVERY_SEEDS = 50;

function fail(message: string): never {
  console.error(`${message}\n${USAGE}`);
  process.exit(2);
}

function integer(name: string, text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 0) fail(`${name} must be a non-negative integer, got ${JSON.stringify(text)}`);
  return value;
}

function summarise(result: SlicesResult): string {
  const s = result.stats;
  const verdict = result.violations.length === 0 ? 'ok' : `VIOLATION ${result.violations[0]!.kind}`;
  return (
    `seed ${result.options.sim.seed}: ${verdict} sim=${(s.simTimeMs / 1000).toFixed(1)}s events=${s.events} ` +
    `blueprint writes=${s.operator.sent} (ok ${s.operator.ok}) rollout writes=${s.rollout.sent} (ok ${s.rollout.ok}, malformed ${s.rollout.malformed}, updates ${s.rollout.updates}) ` +
    `plans=${s.plans} conflicts=${s.conflicts} downMoves=${s.downMoves} starts=${s.loader.starts} stops=${s.loader.stops} unhealthy=${s.loader.unhealthy} ` +
    `crashes=${s.faults.crashes} stops=${s.faults.stops} partitions=${s.faults.partitions} confChanges=${s.faults.membershipChanges} ` +
    `tableChecks=${s.tableChecks} snapshotsInstalled=${s.snapshotsInstalled} lag=${s.lagNode}${s.lagNeededSnapshot ? '(behind)' : ''} lagSnapshots=${s.lagSnapshots} keptDown=${s.keptDown} ` +
    `converged=${s.convergedMs === undefined ? '-' : `${s.convergedMs.toFixed(0)}ms`} routeChecks=${s.routeChecks} (${s.routeCalls} calls) final: ${s.assignments} assignments, ${s.activeInstances} ACTIVE digest=${result.traceDigest}`
  );
}

/** Campaign totals. */
interface Totals {
  failed: number;
  slowest: { ms: number; seed: number };
  tableChecks: number;
  snapshotsInstalled: number;
  lagBehind: number;
  lagSnapshots: number;
  routeChecks: number;
  routeCalls: number;
}

function add(totals: Totals, result: SlicesResult): void {
  const s = result.stats;
  if (result.violations.length > 0) totals.failed++;
  if ((s.convergedMs ?? 0) > totals.slowest.ms) totals.slowest = { ms: s.convergedMs!, seed: result.options.sim.seed };
  totals.tableChecks += s.tableChecks;
  totals.snapshotsInstalled += s.snapshotsInstalled;
  totals.lagBehind += s.lagNeededSnapshot ? 1 : 0;
  totals.lagSnapshots += s.lagSnapshots > 0 ? 1 : 0;
  totals.routeChecks += s.routeChecks;
  totals.routeCalls += s.routeCalls;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seeds: { type: 'string' },
      'first-seed': { type: 'string' },
      seed: { type: 'string' },
      nodes: { type: 'string' },
      verbose: { type: 'boolean', default: false },
      quiet: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const nodes = integer('--nodes', values.nodes ?? '3');
  if (nodes !== 3 && nodes !== 5) fail('--nodes must be 3 or 5');
  const single = values.seed !== undefined;
  if (single && values.seeds !== undefined) fail('--seed and --seeds are exclusive');
  const first = integer('--first-seed', values['first-seed'] ?? '1');
  const seeds = single ? [integer('--seed', values.seed!)] : Array.from({ length: integer('--seeds', values.seeds ?? '100') }, (_, i) => first + i);
  const quiet = values.quiet && !single;
  const startedMs = monotonicClock.nowMs();
  const totals: Totals = { failed: 0, slowest: { ms: 0, seed: 0 }, tableChecks: 0, snapshotsInstalled: 0, lagBehind: 0, lagSnapshots: 0, routeChecks: 0, routeCalls: 0 };
  for (const [done, seed] of seeds.entries()) {
    const options = drawSlicesOptions(seed, nodes);
    if (!quiet) console.log(formatSlicesOptions(options));
    const result = await runSlicesSimulation(options, values.verbose ? { verbose: (line) => console.log(line) } : {});
    add(totals, result);
    if (result.violations.length > 0) {
      if (quiet) console.log(formatSlicesOptions(options));
      for (const v of result.violations) console.log(`VIOLATION ${v.kind} at ${v.atMs.toFixed(3)}ms (SEED=${seed}): ${v.message}`);
      console.log(`last ${result.trace.length} events:`);
      for (const line of result.trace) console.log(`  ${line}`);
      console.log(`replay: npx tsx cluster-sim/slices/cli.ts --seed ${seed} --nodes ${nodes} --verbose`);
    }
    if (single || values.verbose) console.log(summarise(result));
    else if ((done + 1) % PROGRESS_EVERY_SEEDS === 0 || done + 1 === seeds.length) console.log(`[${String(done + 1).padStart(5)}/${seeds.length}] seeds ${seeds[0]}..${seed}: violations=${totals.failed}`);
  }
  // Real time, read through src/platform: it measures the runner and never feeds a simulation.
  const wallS = (monotonicClock.nowMs() - startedMs) / 1000;
  console.log(
    `slices seeds run: ${seeds.length} (nodes=${nodes}), violations: ${totals.failed}, table checks: ${totals.tableChecks}, snapshots installed: ${totals.snapshotsInstalled}, ` +
      `lag node behind the log: ${totals.lagBehind} seeds (snapshot after rejoin: ${totals.lagSnapshots}), route checks: ${totals.routeChecks} (${totals.routeCalls} calls), ` +
      `slowest convergence after the heal: ${totals.slowest.ms.toFixed(0)}ms (seed ${totals.slowest.seed}), wall time: ${wallS.toFixed(1)}s`,
  );
  process.exitCode = totals.failed > 0 ? 1 : 0;
}

await main();
