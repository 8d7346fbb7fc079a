import test from 'ava';
import type { ViolationKind } from '../../cluster-sim/checkers/invariants.ts';
import { drawOptions, formatOptions, type DrawRequest, type SimOptions, type UnsafeVariant } from '../../cluster-sim/options.ts';
import { runSimulation, type SimResult } from '../../cluster-sim/simulation.ts';

// The raft target: the simulator's own driver of the bare Raft core. The node target (the node
// runtime) is tested in runtime.test.ts.
function raftOptions(seed: number, request: Omit<DrawRequest, 'target'> = {}): SimOptions {
  return drawOptions(seed, { ...request, target: 'raft' });
}

/** A readable failure: the seed's options, its violations and the last events. */
function explain(result: SimResult): string {
  const violations = result.violations.map((v) => `${v.kind} at ${v.atMs.toFixed(1)}ms: ${v.message}`);
  return [formatOptions(result.options), ...violations, ...result.trace].join('\n');
}

const runs = new Map<string, SimResult[]>();

/** Seeds first..first+count-1; each batch runs once per file, whichever test asks first. */
function runSeeds(nodes: number, first: number, count: number): SimResult[] {
  const key = `${nodes}:${first}:${count}`;
  let results = runs.get(key);
  if (results === undefined) {
    results = Array.from({ length: count }, (_, i) => runSimulation(raftOptions(first + i, { nodes })));
    runs.set(key, results);
  }
  return results;
}

for (const [nodes, count] of [
  [3, 40],
  [5, 16],
] as const) {
  test(`${nodes} nodes, seeds 1..${count}: no invariant breaks, liveness returns after the heal, every history is linearizable`, (t) => {
    for (const result of runSeeds(nodes, 1, count)) {
      t.deepEqual(result.violations, [], explain(result));
      t.not(result.stats.livenessMs, undefined, `seed ${result.options.seed}`);
      t.true(result.stats.linearizability === 'ok' || result.stats.linearizability === 'unknown', `seed ${result.options.seed}`);
      t.true(result.stats.workload.completed > 0, `seed ${result.options.seed}`);
    }
  });
}

test('the seeds exercise the faults and paths they are meant to', (t) => {
  const results = [...runSeeds(3, 1, 40), ...runSeeds(5, 1, 16)];
  const total = (pick: (r: SimResult) => number): number => results.reduce((sum, r) => sum + pick(r), 0);
  t.true(total((r) => r.stats.faults.crashes) > 0, 'crashes');
  t.true(total((r) => r.stats.faults.partitions) > 0, 'partitions');
  t.true(total((r) => r.stats.faults.clogs) > 0, 'clogs');
  t.true(total((r) => r.stats.faults.transfers) > 0, 'leader transfers');
  t.true(total((r) => r.stats.faults.membershipChanges) > 0, 'membership changes');
  t.true(total((r) => r.stats.disk.tornWrites) > 0, 'torn writes');
  t.is(total((r) => r.stats.disk.tornDetected), total((r) => r.stats.disk.tornWrites), 'every torn write detected');
  t.true(total((r) => r.stats.network.lost) > 0, 'message loss');
  t.true(total((r) => r.stats.network.duplicated) > 0, 'duplication');
  t.true(total((r) => r.stats.snapshotsTaken) > 0, 'snapshots');
  t.true(total((r) => r.stats.snapshotsInstalled) > 0, 'snapshots sent to followers that fell behind');
  t.true(total((r) => r.stats.workload.gaveUp) > 0, 'operations without an answer');
});

test('a seed replays exactly: same options, same event trace, same outcome', (t) => {
  for (const [seed, nodes] of [
    [3, 3],
    [6, 5],
  ] as const) {
    const first = runSimulation(raftOptions(seed, { nodes }));
    const second = runSimulation(raftOptions(seed, { nodes }));
    t.is(formatOptions(first.options), formatOptions(second.options));
    t.is(first.traceDigest, second.traceDigest);
    t.deepEqual(first.stats, second.stats);
  }
  t.not(runSimulation(raftOptions(3)).traceDigest, runSimulation(raftOptions(4)).traceDigest);
});

test('a run logs every event when asked, and the log is the same on replay', (t) => {
  const options = raftOptions(9, { overrides: { safetyPhaseMs: 2000 } });
  const logs: string[][] = [[], []];
  for (const log of logs) runSimulation(options, { verbose: (line) => log.push(line) });
  t.true(logs[0]!.length > 100);
  t.deepEqual(logs[0], logs[1]);
});

test('the liveness phase recovers from a full restart of every node after heavy faults', (t) => {
  for (let seed = 1; seed <= 6; seed++) {
    const options = raftOptions(seed, { overrides: { livenessFullRestart: true, crashWeight: 3, partitionWeight: 3, faultIntervalMeanMs: 100, safetyPhaseMs: 10_000 } });
    const result = runSimulation(options);
    t.deepEqual(result.violations, [], explain(result));
    t.true(result.stats.livenessMs! < options.livenessTicksMax * options.tickMs);
  }
});

test('the liveness checker fires when progress cannot come in time', (t) => {
  const result = runSimulation(raftOptions(1, { overrides: { livenessTicksMax: 1, livenessFullRestart: true, safetyPhaseMs: 1000 } }));
  t.deepEqual(
    result.violations.map((v) => v.kind),
    ['liveness'],
  );
  t.true(result.trace.length > 0);
});

/** Runs seeds of a broken variant until one trips a checker; returns that result. */
function findViolation(unsafe: UnsafeVariant, seedsMax: number, nodes = 3, overrides: Partial<SimOptions> = {}): SimResult | undefined {
  for (let seed = 1; seed <= seedsMax; seed++) {
    const result = runSimulation(raftOptions(seed, { nodes, unsafe, overrides }));
    if (result.violations.length > 0) return result;
  }
  return undefined;
}

const variants: [UnsafeVariant, ViolationKind[]][] = [
  ['commit-previous-term', ['leader-completeness', 'state-machine-safety', 'log-matching', 'linearizability']],
  ['forget-vote', ['election-safety', 'leader-completeness', 'state-machine-safety', 'log-matching', 'linearizability']],
  ['stale-read', ['linearizability']],
];

for (const [unsafe, expected] of variants) {
  test(`the checkers catch the broken variant "${unsafe}" (${expected[0]})`, (t) => {
    const result = findViolation(unsafe, 200);
    if (result === undefined) {
      t.fail(`no violation in 200 seeds of --unsafe ${unsafe}`);
      return;
    }
    t.log(`seed ${result.options.seed}: ${result.violations[0]!.kind}: ${result.violations[0]!.message.split('\n')[0]}`);
    t.true(expected.includes(result.violations[0]!.kind), explain(result));
  });
}
