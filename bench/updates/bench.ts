/**
 * `npm run bench:updates`: rolling updates on a real local 3-node cluster (bench/updates/cluster.ts)
 * against issue 5's targets (docs/benchmarks.md, "Rolling updates"):
 *
 * 1. Rollback acknowledged → 0 % of calls to the new version on every node (rollback.ts);
 * 2. threshold breach → rollback decision, default health settings and a short interval (breach.ts);
 * 3. failed calls during a full CANARY update under load, without and with a leader failover
 *    mid-update (canary.ts).
 *
 * One cluster serves every part, in that order; between the two canary runs a BLUE_GREEN update
 * takes greeter back to 1.0.0 (its failed calls are shown too). A benchmark prints numbers; it
 * never fails on a timing.
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import { monotonicClock } from '../../src/platform/clock.ts';
import { machineLine, markdownTable, type Spread } from '../invoker/stats.ts';
import { measureBreach, type BreachRun } from './breach.ts';
import { measureCanary, type CanaryRun } from './canary.ts';
import { UpdatesCluster } from './cluster.ts';
import { measureRollbacks, type RollbackResult } from './rollback.ts';

const PARTS = ['rollback', 'breach', 'canary'] as const;
type Part = (typeof PARTS)[number];

const TARGET_ROLLBACK_P99_MS = 100;

const USAGE = `usage: npm run bench:updates -- [--only rollback,breach,canary] [--rollbacks N]
         [--breach-runs N] [--short-interval S] [--short-runs N] [--rps N] [--restart-after-ms MS]
         [--data-dir DIR] [--keep-data]`;

interface Options {
  readonly parts: readonly Part[];
  readonly rollbacks: number;
  readonly breachRuns: number;
  readonly shortInterval: number;
  readonly shortRuns: number;
  readonly rps: number;
  readonly restartAfterMs: number;
  readonly dataDir: string;
  readonly keepData: boolean;
}

function integer(name: string, text: string, min: number, max: number): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`--${name} must be an integer in [${min}, ${max}], got ${text}\n${USAGE}`);
  return n;
}

function parseOptions(argv: readonly string[]): Options | undefined {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      only: { type: 'string', default: PARTS.join(',') },
      rollbacks: { type: 'string', default: '30' },
      'breach-runs': { type: 'string', default: '3' },
      'short-interval': { type: 'string', default: '2' },
      'short-runs': { type: 'string', default: '2' },
      rps: { type: 'string', default: '100' },
      'restart-after-ms': { type: 'string', default: '1000' },
      'data-dir': { type: 'string', default: os.tmpdir() },
      'keep-data': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) return undefined;
  const parts = values.only.split(',').map((p) => p.trim());
  for (const p of parts) if (!(PARTS as readonly string[]).includes(p)) throw new Error(`--only: unknown part ${p}\n${USAGE}`);
  return {
    parts: parts as Part[],
    rollbacks: integer('rollbacks', values.rollbacks, 1, 1000),
    breachRuns: integer('breach-runs', values['breach-runs'], 0, 20),
    shortInterval: integer('short-interval', values['short-interval'], 1, 60),
    shortRuns: integer('short-runs', values['short-runs'], 0, 20),
    rps: integer('rps', values.rps, 10, 2000),
    restartAfterMs: integer('restart-after-ms', values['restart-after-ms'], 0, 60_000),
    dataDir: values['data-dir'],
    keepData: values['keep-data'],
  };
}

const ms = (n: number): string => (Number.isFinite(n) ? n.toFixed(1) : '-');
const spreadCells = (s: Spread): string[] => [String(s.count), ms(s.p50), ms(s.p99), ms(s.max)];
const verdict = (met: boolean): string => (met ? 'met' : 'NOT MET');

function rollbackReport(r: RollbackResult): string[] {
  const rows = [
    ['every node, watch or pinned client (slowest)', ...spreadCells(r.everyViewpoint)],
    ['every node\'s KV watch (slowest of 3)', ...spreadCells(r.nodesWatch)],
    ['every pinned embedded client\'s table (slowest of 3)', ...spreadCells(r.clients)],
    ['Rollback sent → acknowledged', ...spreadCells(r.rollbackRpc)],
    ['acknowledged → ROLLED_BACK (Get every 50 ms)', ...spreadCells(r.rolledBack)],
  ];
  return [markdownTable(['ms after the Rollback reply', 'rounds', 'p50', 'p99', 'max'], rows), r.missed > 0 ? `rounds where some viewpoint did not reach 0:1 within 2 s: ${r.missed}` : ''];
}

function breachReport(runs: readonly BreachRun[]): string {
  return markdownTable(
    ['interval s', 'threshold', 'first error → ROLLING_BACK s', 'first call on 2.1.0-bad → ROLLING_BACK s', 'bound s', 'verdict'],
    runs.map((r) => [String(r.intervalSeconds), String(r.failureThreshold), (r.breachToDecisionMs / 1000).toFixed(2), (r.firstCallToDecisionMs / 1000).toFixed(2), (r.boundMs / 1000).toFixed(0), verdict(r.breachToDecisionMs <= r.boundMs)]),
  );
}

function canaryReport(runs: readonly CanaryRun[]): string {
  return markdownTable(
    ['run', 'update', 'state', 'duration s', 'calls', 'failed', 'in flight on killed node', 'other failures', 'client retries', 'steps repeated'],
    runs.map((r) => [r.label, `${r.from} → ${r.to}`, r.state, (r.durationMs / 1000).toFixed(1), String(r.calls), String(r.failed), r.killedNode === 0 ? '-' : `${r.excused} (node ${r.killedNode})`, String(r.failed - r.excused), String(r.retries), r.repeatedSteps.length === 0 ? 'none' : r.repeatedSteps.join('; ')]),
    2,
  );
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  if (options === undefined) {
    console.log(USAGE);
    return;
  }
  const began = monotonicClock.nowMs();
  const progress = (line: string): void => console.error(`[${((monotonicClock.nowMs() - began) / 1000).toFixed(1)} s] ${line}`);
  console.log(`machine: ${machineLine()}`);
  const cluster = await UpdatesCluster.create(options.dataDir);
  let failed = true;
  const onSignal = (): void => {
    void cluster.destroy(false).finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let rollback: RollbackResult | undefined;
  const breaches: BreachRun[] = [];
  const canaries: CanaryRun[] = [];
  try {
    await cluster.start(progress);
    if (options.parts.includes('rollback')) rollback = await measureRollbacks(cluster, options.rollbacks, progress);
    if (options.parts.includes('breach')) {
      for (let i = 0; i < options.breachRuns; i++) breaches.push(await measureBreach(cluster, { intervalSeconds: undefined, rps: options.rps }, progress));
      for (let i = 0; i < options.shortRuns; i++) breaches.push(await measureBreach(cluster, { intervalSeconds: options.shortInterval, rps: options.rps }, progress));
    }
    if (options.parts.includes('canary')) {
      const common = { strategy: 'CANARY' as const, restartAfterMs: options.restartAfterMs, rps: options.rps };
      canaries.push(await measureCanary(cluster, { ...common, label: 'canary', from: '1.0.0', to: '2.0.0', failover: false }, progress));
      canaries.push(await measureCanary(cluster, { ...common, strategy: 'BLUE_GREEN', label: 'back (BLUE_GREEN)', from: '2.0.0', to: '1.0.0', failover: false }, progress));
      canaries.push(await measureCanary(cluster, { ...common, label: 'canary + leader kill -9', from: '1.0.0', to: '2.0.0', failover: true }, progress));
    }
    failed = false;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await cluster.destroy(failed || options.keepData);
    if (failed || options.keepData) progress(`node logs kept in ${cluster.root}`);
  }

  console.log(`\nnpm run bench:updates -- ${process.argv.slice(2).join(' ')}  (${((monotonicClock.nowMs() - began) / 1000).toFixed(0)} s, load average after: ${os.loadavg()[0]?.toFixed(2)})\n`);
  const results: string[][] = [];
  if (rollback !== undefined) {
    console.log(`Rollback acknowledged → 0 % new on every node, ${rollback.rounds} rounds (MANUAL 1.0.0 → 2.0.0 at 1:1):\n`);
    console.log(rollbackReport(rollback).join('\n'));
    const p99 = rollback.everyViewpoint.p99;
    results.push(['rollback → 0 % new on every node, p99', `${ms(p99)} ms (p50 ${ms(rollback.everyViewpoint.p50)}, max ${ms(rollback.everyViewpoint.max)}, ${rollback.everyViewpoint.count} rounds)`, `≤ ${TARGET_ROLLBACK_P99_MS} ms`, verdict(p99 <= TARGET_ROLLBACK_P99_MS && rollback.missed === 0)]);
  }
  if (breaches.length > 0) {
    console.log('\nThreshold breach → rollback decision (CANARY 25 % to 2.1.0-bad under steady load):\n');
    console.log(breachReport(breaches));
    for (const r of breaches) console.log(`- interval ${r.intervalSeconds} s: ${r.reason} (traffic: ${r.traffic}); gate log: ${r.gateLog}`);
    const defaults = breaches.filter((r) => r.intervalSeconds === 10);
    const worst = (rs: readonly BreachRun[]): number => Math.max(...rs.map((r) => r.breachToDecisionMs));
    if (defaults.length > 0) results.push(['breach → rollback decision, defaults (10 s × 3)', `worst ${(worst(defaults) / 1000).toFixed(2)} s of ${defaults.length} runs`, '≤ 31 s', verdict(defaults.every((r) => r.breachToDecisionMs <= r.boundMs))]);
    const short = breaches.filter((r) => r.intervalSeconds !== 10);
    if (short.length > 0) results.push([`breach → rollback decision, interval ${short[0]!.intervalSeconds} s × 3`, `worst ${(worst(short) / 1000).toFixed(2)} s of ${short.length} runs`, `≤ ${short[0]!.boundMs / 1000} s`, verdict(short.every((r) => r.breachToDecisionMs <= r.boundMs))]);
  }
  if (canaries.length > 0) {
    console.log('\nFailed calls during full updates under load:\n');
    console.log(canaryReport(canaries));
    for (const r of canaries) {
      console.log(`- ${r.label}: ${r.traffic}; steps: ${r.steps.join(' | ')}`);
      for (const f of r.failures) console.log(`  failed: ${f}`);
    }
    for (const r of canaries.filter((c) => c.label !== 'back (BLUE_GREEN)')) {
      const ok = r.state === 'COMPLETED' && r.failed === r.excused && r.repeatedSteps.length === 0;
      results.push([`failed calls, ${r.label}`, `${r.failed - r.excused} of ${r.calls}${r.killedNode === 0 ? '' : ` (+${r.excused} in flight on the killed node)`}, ${r.state}${r.repeatedSteps.length === 0 ? '' : ', steps repeated'}`, '0', verdict(ok)]);
    }
  }
  console.log('\nResults:\n');
  console.log(markdownTable(['measurement', 'result', 'target', 'verdict'], results));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
