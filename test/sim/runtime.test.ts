import test from 'ava';
import type { ViolationKind } from '../../cluster-sim/checkers/invariants.ts';
import { drawOptions, formatOptions, type DrawRequest, type SimOptions, type UnsafeVariant } from '../../cluster-sim/options.ts';
import { runTarget, type SimResult } from '../../cluster-sim/run.ts';

// The node target: every simulated node runs the node runtime (CutoverNode + KvStore) on the
// simulated clock, network and disk. The raft target is tested in sim.test.ts.

function nodeOptions(seed: number, request: Omit<DrawRequest, 'target'> = {}): SimOptions {
  return drawOptions(seed, { ...request, target: 'node' });
}

/** A readable failure: the seed's options, its violations and the last events. */
function explain(result: SimResult): string {
  const violations = result.violations.map((v) => `${v.kind} at ${v.atMs.toFixed(1)}ms: ${v.message}`);
  return [formatOptions(result.options), ...violations, ...result.trace].join('\n');
}

const runs = new Map<string, Promise<SimResult[]>>();

/** Seeds first..first+count-1, one after the other; each batch runs once per file, whichever test asks first. */
function runSeeds(nodes: number, first: number, count: number): Promise<SimResult[]> {
  const key = `${nodes}:${first}:${count}`;
  let results = runs.get(key);
  if (results === undefined) {
    results = (async () => {
      const done: SimResult[] = [];
      for (let seed = first; seed < first + count; seed++) done.push(await runTarget(nodeOptions(seed, { nodes })));
      return done;
    })();
    runs.set(key, results);
  }
  return results;
}

const BATCHES = [
  [3, 24],
  [5, 10],
] as const;

for (const [nodes, count] of BATCHES) {
  test.serial(`node runtime, ${nodes} nodes, seeds 1..${count}: no invariant breaks, liveness returns after the heal, every KV history is linearizable`, async (t) => {
    for (const result of await runSeeds(nodes, 1, count)) {
      t.deepEqual(result.violations, [], explain(result));
      t.not(result.stats.livenessMs, undefined, `seed ${result.options.seed}`);
      t.true(result.stats.linearizability === 'ok' || result.stats.linearizability === 'unknown', `seed ${result.options.seed}`);
      t.true(result.stats.workload.completed > 0, `seed ${result.options.seed}`);
    }
  });
}

test.serial('the node-target seeds exercise the faults and paths they are meant to', async (t) => {
  const results = (await Promise.all(BATCHES.map(([nodes, count]) => runSeeds(nodes, 1, count)))).flat();
  const total = (pick: (r: SimResult) => number): number => results.reduce((sum, r) => sum + pick(r), 0);
  t.true(total((r) => r.stats.faults.crashes) > 0, 'crashes');
  t.true(total((r) => r.stats.faults.stops) > 0, 'graceful stops');
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

test.serial('a node-target seed replays exactly: same options, same event trace, same outcome', async (t) => {
  for (const [seed, nodes] of [
    [3, 3],
    [6, 5],
  ] as const) {
    const first = await runTarget(nodeOptions(seed, { nodes }));
    const second = await runTarget(nodeOptions(seed, { nodes }));
    t.is(formatOptions(first.options), formatOptions(second.options));
    t.is(first.traceDigest, second.traceDigest);
    t.deepEqual(first.stats, second.stats);
  }
  const [three, four] = [await runTarget(nodeOptions(3)), await runTarget(nodeOptions(4))];
  t.not(three.traceDigest, four.traceDigest);
});

test.serial('two node-target runs interleaved on one event loop still each replay their seed', async (t) => {
  const options = nodeOptions(5, { overrides: { safetyPhaseMs: 5000 } });
  const alone = await runTarget(options);
  const [a, b] = await Promise.all([runTarget(options), runTarget(nodeOptions(7, { overrides: { safetyPhaseMs: 5000 } }))]);
  t.is(a.traceDigest, alone.traceDigest);
  t.not(b.traceDigest, alone.traceDigest);
});

test.serial('a node-target run logs every event when asked, and the log is the same on replay', async (t) => {
  const options = nodeOptions(9, { overrides: { safetyPhaseMs: 2000 } });
  const logs: string[][] = [[], []];
  for (const log of logs) await runTarget(options, { verbose: (line) => log.push(line) });
  t.true(logs[0]!.length > 100);
  t.deepEqual(logs[0], logs[1]);
});

test.serial('the node runtime recovers from crashes, graceful stops and a full restart after heavy faults', async (t) => {
  for (let seed = 1; seed <= 5; seed++) {
    const options = nodeOptions(seed, {
      overrides: { livenessFullRestart: true, crashWeight: 3, partitionWeight: 3, gracefulStopRate: 0.5, faultIntervalMeanMs: 100, safetyPhaseMs: 10_000 },
    });
    const result = await runTarget(options);
    t.deepEqual(result.violations, [], explain(result));
    t.true(result.stats.faults.crashes + result.stats.faults.stops > 0);
    t.true(result.stats.livenessMs! < options.livenessTicksMax * options.tickMs);
  }
});

test.serial('the liveness checker fires on the node target when progress cannot come in time', async (t) => {
  const result = await runTarget(nodeOptions(1, { overrides: { livenessTicksMax: 1, livenessFullRestart: true, safetyPhaseMs: 1000 } }));
  t.deepEqual(
    result.violations.map((v) => v.kind),
    ['liveness'],
  );
});

/** Runs seeds of a broken variant until one trips a checker; returns that result. */
async function findViolation(unsafe: UnsafeVariant, seedsMax: number): Promise<SimResult | undefined> {
  for (let seed = 1; seed <= seedsMax; seed++) {
    const result = await runTarget(nodeOptions(seed, { unsafe }));
    if (result.violations.length > 0) return result;
  }
  return undefined;
}

const variants: [UnsafeVariant, number, ViolationKind[]][] = [
  ['commit-previous-term', 100, ['leader-completeness', 'state-machine-safety', 'log-matching', 'linearizability']],
  ['forget-vote', 40, ['election-safety', 'leader-completeness', 'state-machine-safety', 'log-matching', 'linearizability']],
  ['stale-read', 10, ['linearizability']],
];

for (const [unsafe, seedsMax, expected] of variants) {
  test.serial(`the checkers catch the broken variant "${unsafe}" on the node runtime (${expected[0]})`, async (t) => {
    const result = await findViolation(unsafe, seedsMax);
    if (result === undefined) {
      t.fail(`no violation in ${seedsMax} seeds of --target node --unsafe ${unsafe}`);
      return;
    }
    t.log(`seed ${result.options.seed}: ${result.violations[0]!.kind}: ${result.violations[0]!.message.split('\n')[0]}`);
    t.true(expected.includes(result.violations[0]!.kind), explain(result));
  });
}
