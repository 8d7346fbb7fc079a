/**
 * `npx tsx cluster-sim/health/cli.ts [--seeds N] [--first-seed S] [--seed S] [--nodes 3|5] [--verbose] [--quiet]`
 *
 * Runs the health scenario (health/simulation.ts) on the node target. Every seed prints its
 * `SEED=…` line (`--quiet` keeps only progress lines and failures); a failing seed prints its
 * violations, its last events and the command that replays it. Exits 1 when any seed failed.
 */
import { parseArgs } from 'node:util';
import { monotonicClock } from '../../src/platform/clock.ts';
import { drawHealthOptions, formatHealthOptions } from './options.ts';
import { runHealthSimulation, type HealthResult } from './simulation.ts';

const USAGE = 'usage: npx tsx cluster-sim/health/cli.ts [--seeds N] [--first-seed S] [--seed S] [--nodes 3|5] [--verbose] [--quiet]';
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

function summarise(result: HealthResult, wallMs: number): string {
  const s = result.stats;
  const verdict = result.violations.length === 0 ? 'ok' : `VIOLATION ${result.violations[0]!.kind}`;
  return (
    `seed ${result.options.sim.seed}: ${verdict} sim=${(s.simTimeMs / 1000).toFixed(1)}s events=${s.events} started=${s.operator.started} refused=${s.operator.refused} ` +
    `calls=${s.calls} ok=${s.callsOk} errors=${JSON.stringify(s.callErrors)} picks=${s.picksChecked} picksNotActive=${s.picksNotActive} unhealthy=${s.unhealthyReports} ` +
    `entries=${s.checkedEntries} auditEvents=${s.auditEvents} pruned=${s.eventsPruned} eventsMax=${s.eventsMax} eventsMaxAfterHeal=${s.eventsMaxAfterHeal}/${result.options.health.eventsCountMax} leaderCrashes=${s.leaderCrashes} crashes=${s.faults.crashes} partitions=${s.faults.partitions} ` +
    `outcomes=${JSON.stringify(s.outcomes)} settled=${s.settledMs === undefined ? '-' : `${s.settledMs.toFixed(0)}ms`} final=${s.finalOutcome} finalCalls=${s.finalCalls} ` +
    `deliveries=${JSON.stringify(s.deliveries)} givenUp=${s.givenUp} stepLatenessMax=${s.stepLatenessMaxMs.toFixed(0)}ms alphaLatencyMax=${s.alphaLatencyMaxMs.toFixed(0)}ms digest=${result.traceDigest} wall=${(wallMs / 1000).toFixed(1)}s`
  );
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
  let failed = 0;
  const outcomes: Record<string, number> = {};
  const finals: Record<string, number> = {};
  let unhealthy = 0;
  let pruned = 0;
  let givenUp = 0;
  let delivered = 0;
  let duplicates = 0;
  let prunedFirst = 0;
  let stepLatenessMax = 0;
  let alphaLatencyMax = 0;
  for (const [done, seed] of seeds.entries()) {
    const options = drawHealthOptions(seed, nodes);
    if (!quiet) console.log(formatHealthOptions(options));
    const seedStartedMs = monotonicClock.nowMs();
    const result = await runHealthSimulation(options, values.verbose ? { verbose: (line) => console.log(line) } : {});
    const seedWallMs = monotonicClock.nowMs() - seedStartedMs;
    const s = result.stats;
    for (const [k, n] of Object.entries(s.outcomes)) outcomes[k] = (outcomes[k] ?? 0) + n;
    finals[s.finalOutcome] = (finals[s.finalOutcome] ?? 0) + 1;
    unhealthy += s.unhealthyReports;
    pruned += s.eventsPruned;
    givenUp += s.givenUp;
    for (const d of Object.values(s.deliveries)) {
      delivered += d.delivered;
      duplicates += d.duplicates;
      prunedFirst += d.prunedFirst;
    }
    stepLatenessMax = Math.max(stepLatenessMax, s.stepLatenessMaxMs);
    alphaLatencyMax = Math.max(alphaLatencyMax, s.alphaLatencyMaxMs);
    if (result.violations.length > 0) {
      failed++;
      if (quiet) console.log(formatHealthOptions(options));
      for (const v of result.violations) console.log(`VIOLATION ${v.kind} at ${v.atMs.toFixed(3)}ms (SEED=${seed}): ${v.message}`);
      console.log(`last ${result.trace.length} events:`);
      for (const line of result.trace) console.log(`  ${line}`);
      console.log(`replay: npx tsx cluster-sim/health/cli.ts --seed ${seed} --nodes ${nodes} --verbose`);
    }
    if (!quiet) console.log(summarise(result, seedWallMs));
    else if ((done + 1) % PROGRESS_EVERY_SEEDS === 0 || done + 1 === seeds.length) console.log(`[${String(done + 1).padStart(5)}/${seeds.length}] seeds ${seeds[0]}..${seed}: violations=${failed}`);
  }
  // Real time, read through src/platform: it measures the runner and never feeds a simulation.
  const wallS = (monotonicClock.nowMs() - startedMs) / 1000;
  console.log(`outcomes by behaviour: ${JSON.stringify(outcomes)}`);
  console.log(`clean updates: ${JSON.stringify(finals)}`);
  console.log(
    `health seeds run: ${seeds.length} (nodes=${nodes}), violations: ${failed}, UNHEALTHY reports: ${unhealthy}, events pruned: ${pruned}, notifications delivered: ${delivered} (duplicates ${duplicates}, given up ${givenUp}, pruned before delivery ${prunedFirst}), ` +
      `latest step ${stepLatenessMax.toFixed(0)} ms, slowest alpha delivery while beta hung ${alphaLatencyMax.toFixed(0)} ms, wall time: ${wallS.toFixed(1)}s`,
  );
  process.exitCode = failed > 0 ? 1 : 0;
}

await main();
