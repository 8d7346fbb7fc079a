/**
 * `npx tsx cluster-sim/updates/cli.ts [--seeds N] [--first-seed S] [--seed S] [--nodes 3|5] [--verbose] [--quiet]`
 *
 * Runs the rolling-updates scenario (updates/simulation.ts) on the node target. Every seed prints
 * its `SEED=…` line (`--quiet` keeps only progress lines and failures); a failing seed prints its
 * violations, its last events and the command that replays it. Exits 1 when any seed failed.
 * Argument parsing and the seed loop are scenario/cli.ts's.
 */
import { runScenarioCli } from '../scenario/cli.ts';
import { drawUpdatesOptions, formatUpdatesOptions } from './options.ts';
import { runUpdatesSimulation, type UpdatesResult } from './simulation.ts';

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

let leaderCrashes = 0;
let started = 0;
let steps = 0;
let slowestSettle = { ms: 0, seed: 0 };
const outcomes: Record<string, number> = {};
const finals: Record<string, number> = {};
const crashedAfter: Record<string, number> = {};

await runScenarioCli({
  scenario: 'updates',
  draw: drawUpdatesOptions,
  format: formatUpdatesOptions,
  run: runUpdatesSimulation,
  summarise,
  record(result, seed) {
    const s = result.stats;
    leaderCrashes += s.leaderCrashes;
    started += s.operator.started;
    steps += s.stepsCommitted;
    if ((s.settledMs ?? 0) > slowestSettle.ms) slowestSettle = { ms: s.settledMs!, seed };
    for (const [k, n] of Object.entries(s.outcomes)) outcomes[k] = (outcomes[k] ?? 0) + n;
    for (const k of s.finalOutcomes) finals[k] = (finals[k] ?? 0) + 1;
    for (const [k, n] of Object.entries(s.crashedAfter)) crashedAfter[k] = (crashedAfter[k] ?? 0) + n;
  },
  report({ seeds, nodes }, failed, wallS) {
    console.log(`leader crashes after a step, by strategy and step: ${JSON.stringify(crashedAfter)}`);
    console.log(`final clean updates: ${JSON.stringify(finals)}`);
    console.log(
      `updates seeds run: ${seeds.length} (nodes=${nodes}), violations: ${failed}, updates started: ${started}, steps committed: ${steps}, outcomes: ${JSON.stringify(outcomes)}, ` +
        `leader crashes after a step: ${leaderCrashes}, slowest settle after the heal: ${slowestSettle.ms.toFixed(0)}ms (seed ${slowestSettle.seed}), wall time: ${wallS.toFixed(1)}s`,
    );
  },
});
