/**
 * `npx tsx cluster-sim/health/cli.ts [--seeds N] [--first-seed S] [--seed S] [--nodes 3|5] [--verbose] [--quiet]`
 *
 * Runs the health scenario (health/simulation.ts) on the node target. Every seed prints its
 * `SEED=…` line (`--quiet` keeps only progress lines and failures); a failing seed prints its
 * violations, its last events and the command that replays it. Exits 1 when any seed failed.
 * Argument parsing and the seed loop are scenario/cli.ts's.
 */
import { runScenarioCli } from '../scenario/cli.ts';
import { drawHealthOptions, formatHealthOptions } from './options.ts';
import { runHealthSimulation, type HealthResult } from './simulation.ts';

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

await runScenarioCli({
  scenario: 'health',
  draw: drawHealthOptions,
  format: formatHealthOptions,
  run: runHealthSimulation,
  summarise,
  record(result) {
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
  },
  report({ seeds, nodes }, failed, wallS) {
    console.log(`outcomes by behaviour: ${JSON.stringify(outcomes)}`);
    console.log(`clean updates: ${JSON.stringify(finals)}`);
    console.log(
      `health seeds run: ${seeds.length} (nodes=${nodes}), violations: ${failed}, UNHEALTHY reports: ${unhealthy}, events pruned: ${pruned}, notifications delivered: ${delivered} (duplicates ${duplicates}, given up ${givenUp}, pruned before delivery ${prunedFirst}), ` +
        `latest step ${stepLatenessMax.toFixed(0)} ms, slowest alpha delivery while beta hung ${alphaLatencyMax.toFixed(0)} ms, wall time: ${wallS.toFixed(1)}s`,
    );
  },
});
