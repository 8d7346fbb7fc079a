/**
 * `npx tsx cluster-sim/updates/cli.ts [--seeds N] [--first-seed S] [--seed S] [--nodes 3|5] [--verbose] [--quiet]`
 *
 * Runs the rolling-updates scenario (updates/simulation.ts) on the node target. Every seed prints
 * its `SEED=…` line (`--quiet` keeps only progress lines and failures); a failing seed prints its
 * violations, its last events and the command that replays it. Exits 1 when any seed failed.
 */
import { parseArgs } from 'node:util';
import { monotonicClock } from '../../src/platform/clock.ts';
import { drawUpdatesOptions, formatUpdatesOptions } from './options.ts';
import { runUpdatesSimulation, type UpdatesResult } from './simulation.ts';

const USAGE = 'usage: npx tsx cluster-sim/updates/cli.ts [--seeds N] [--first-seed S] [--seed S] [--nodes 3|5] [--verbose] [--quiet]';
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

function summarise(result: UpdatesResult, wallMs: number): string {
  const s = result.stats;
  const verdict = result.violations.length === 0 ? 'ok' : `VIOLATION ${result.violations[0]!.kind}`;
  return (
    `seed ${result.options.sim.seed}: ${verdict} sim=${(s.simTimeMs / 1000).toFixed(1)}s events=${s.events} started=${s.operator.started} ${JSON.stringify(s.operator.byStrategy)} ` +
    `commands=${s.operator.commands} refused=${s.operator.refused} steps=${s.stepsCommitted} recordPuts=${s.recordPuts} checkedEntries=${s.checkedEntries} ` +
    `calls=${s.calls} ok=${s.callsOk} remote=${s.remoteCalls} errors=${JSON.stringify(s.callErrors)} windows=${s.windowsPushed} ` +
    `leaderCrashes=${s.leaderCrashes} crashes=${s.faults.crashes} partitions=${s.faults.partitions} outcomes=${JSON.stringify(s.outcomes)} ` +
    `settled=${s.settledMs === undefined ? '-' : `${s.settledMs.toFixed(0)}ms`} final=${s.finalOutcomes.join(',')} finalCalls=${s.finalCalls} digest=${result.traceDigest} wall=${(wallMs / 1000).toFixed(1)}s`
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
  let leaderCrashes = 0;
  let started = 0;
  let steps = 0;
  let slowestSettle = { ms: 0, seed: 0 };
  const outcomes: Record<string, number> = {};
  const finals: Record<string, number> = {};
  const crashedAfter: Record<string, number> = {};
  for (const [done, seed] of seeds.entries()) {
    const options = drawUpdatesOptions(seed, nodes);
    if (!quiet) console.log(formatUpdatesOptions(options));
    const seedStartedMs = monotonicClock.nowMs();
    const result = await runUpdatesSimulation(options, values.verbose ? { verbose: (line) => console.log(line) } : {});
    const seedWallMs = monotonicClock.nowMs() - seedStartedMs;
    const s = result.stats;
    leaderCrashes += s.leaderCrashes;
    started += s.operator.started;
    steps += s.stepsCommitted;
    if ((s.settledMs ?? 0) > slowestSettle.ms) slowestSettle = { ms: s.settledMs!, seed };
    for (const [k, n] of Object.entries(s.outcomes)) outcomes[k] = (outcomes[k] ?? 0) + n;
    for (const k of s.finalOutcomes) finals[k] = (finals[k] ?? 0) + 1;
    for (const [k, n] of Object.entries(s.crashedAfter)) crashedAfter[k] = (crashedAfter[k] ?? 0) + n;
    if (result.violations.length > 0) {
      failed++;
      if (quiet) console.log(formatUpdatesOptions(options));
      for (const v of result.violations) console.log(`VIOLATION ${v.kind} at ${v.atMs.toFixed(3)}ms (SEED=${seed}): ${v.message}`);
      console.log(`last ${result.trace.length} events:`);
      for (const line of result.trace) console.log(`  ${line}`);
      console.log(`replay: npx tsx cluster-sim/updates/cli.ts --seed ${seed} --nodes ${nodes} --verbose`);
    }
    if (!quiet) console.log(summarise(result, seedWallMs));
    else if ((done + 1) % PROGRESS_EVERY_SEEDS === 0 || done + 1 === seeds.length) console.log(`[${String(done + 1).padStart(5)}/${seeds.length}] seeds ${seeds[0]}..${seed}: violations=${failed}`);
  }
  // Real time, read through src/platform: it measures the runner and never feeds a simulation.
  const wallS = (monotonicClock.nowMs() - startedMs) / 1000;
  console.log(`leader crashes after a step, by strategy and step: ${JSON.stringify(crashedAfter)}`);
  console.log(`final clean updates: ${JSON.stringify(finals)}`);
  console.log(
    `updates seeds run: ${seeds.length} (nodes=${nodes}), violations: ${failed}, updates started: ${started}, steps committed: ${steps}, outcomes: ${JSON.stringify(outcomes)}, ` +
      `leader crashes after a step: ${leaderCrashes}, slowest settle after the heal: ${slowestSettle.ms.toFixed(0)}ms (seed ${slowestSettle.seed}), wall time: ${wallS.toFixed(1)}s`,
  );
  process.exitCode = failed > 0 ? 1 : 0;
}

await main();
