import test from 'ava';
import { KvStore, type Operation } from '../../src/kv/index.ts';
import { formatAssignment, formatBlueprint } from '../../src/slices/blueprints.ts';
import { artifactBase, assignmentKey, blueprintKey, instanceKey } from '../../src/slices/keys.ts';
import { nodeId } from '../../src/util/ids.ts';
import { alwaysProblems, convergedProblems } from '../../cluster-sim/placement/checker.ts';
import { drawPlacementOptions, formatPlacementOptions } from '../../cluster-sim/placement/options.ts';
import { runPlacementSimulation, type PlacementResult } from '../../cluster-sim/placement/simulation.ts';

// The placement scenario: a PlacementController on every simulated node (only the leader's acts),
// an operator writing blueprints, crashes, stops, partitions and membership changes, then a heal
// with one node possibly kept down. `npx tsx cluster-sim/placement/cli.ts --seeds N` runs more.

function explain(result: PlacementResult): string {
  const violations = result.violations.map((v) => `${v.kind} at ${v.atMs.toFixed(1)}ms: ${v.message}`);
  return [`SEED=${result.options.sim.seed}`, formatPlacementOptions(result.options), ...violations, ...result.trace].join('\n');
}

const runs = new Map<string, Promise<PlacementResult[]>>();

function runSeeds(nodes: number, count: number): Promise<PlacementResult[]> {
  const key = `${nodes}:${count}`;
  let results = runs.get(key);
  if (results === undefined) {
    results = (async () => {
      const done: PlacementResult[] = [];
      for (let seed = 1; seed <= count; seed++) done.push(await runPlacementSimulation(drawPlacementOptions(seed, nodes)));
      return done;
    })();
    runs.set(key, results);
  }
  return results;
}

const BATCHES = [
  [3, 40],
  [5, 10],
] as const;

for (const [nodes, count] of BATCHES) {
  test.serial(`placement, ${nodes} nodes, seeds 1..${count}: no violation, and every run converges after the heal and stays put`, async (t) => {
    for (const result of await runSeeds(nodes, count)) {
      t.deepEqual(result.violations, [], explain(result));
      t.not(result.stats.convergedMs, undefined, `SEED=${result.options.sim.seed}`);
    }
  });
}

test.serial('the placement seeds exercise re-placement, conflicts, kept-down nodes and faults', async (t) => {
  const results = (await Promise.all(BATCHES.map(([nodes, count]) => runSeeds(nodes, count)))).flat();
  const total = (pick: (r: PlacementResult) => number): number => results.reduce((sum, r) => sum + pick(r), 0);
  t.true(total((r) => r.stats.plans) > 100, 'plans');
  t.true(total((r) => r.stats.downMoves) > 0, 'instances moved off down nodes');
  t.true(total((r) => r.stats.conflicts) > 0, 'plans refused by a compare and planned again');
  t.true(total((r) => (r.stats.keptDown === 0 ? 0 : 1)) > 5, 'seeds with a node kept down');
  t.true(total((r) => r.stats.assignments) > 50, 'assignments in the converged states');
  t.true(total((r) => r.stats.faults.crashes + r.stats.faults.stops) > 0 && total((r) => r.stats.faults.partitions) > 0 && total((r) => r.stats.faults.membershipChanges) > 0);
});

test.serial('a seed replays exactly', async (t) => {
  const [first] = await runSeeds(3, 40);
  const again = await runPlacementSimulation(drawPlacementOptions(1, 3));
  t.is(again.traceDigest, first!.traceDigest);
  t.deepEqual(again.stats, first!.stats);
});

// The checks themselves, on hand-made states: each must fire on what it is meant to catch.

const base = artifactBase('org.sim', 'app');

function store(operations: Operation[]): KvStore {
  const kv = new KvStore();
  kv.apply({ clientId: 0, sequence: 0, command: { type: 'txn', compare: [], success: operations, failure: [] } });
  return kv;
}

function put(node: number, id: string, version = '1.0.0'): Operation {
  return { type: 'put', key: assignmentKey(nodeId(node), base, version, id), value: formatAssignment({ nodeId: nodeId(node), base, version, instanceId: id, term: 1, placedAt: 0 }) };
}

function blueprint(instances: number, perNodeMax?: number, version = '1.0.0'): Operation {
  return { type: 'put', key: blueprintKey(base, version), value: formatBlueprint(perNodeMax === undefined ? { instances } : { instances, perNodeMax }) };
}

const liveness = { liveMembers: new Set([1, 2, 3]), goneNodes: new Set<number>(), nodeInstancesMax: 2 };

test('the always-checks catch a reused instance id and a node above its limit', (t) => {
  t.deepEqual(alwaysProblems(store([put(1, 'a'), put(2, 'b')]), 2), []);
  t.regex(alwaysProblems(store([put(1, 'a'), put(2, 'a', '1.0.1')]), 2).join(), /instance id a is assigned 2 times/);
  t.regex(alwaysProblems(store([put(1, 'a'), put(1, 'b'), put(1, 'c')]), 2).join(), /node 1 holds 3 assignments/);
});

test('the convergence check wants the count, or no room left, on live members only', (t) => {
  t.deepEqual(convergedProblems(store([blueprint(2), put(1, 'a'), put(2, 'b')]), liveness), []);
  t.regex(convergedProblems(store([blueprint(3), put(1, 'a'), put(2, 'b')]), liveness).join(), /has 2 assignments for 3 instances, and nodes 1,2,3 have room/);
  t.deepEqual(convergedProblems(store([blueprint(3, 1), put(1, 'a'), put(2, 'b'), put(3, 'c')]), liveness), []);
  t.deepEqual(convergedProblems(store([blueprint(5, 1), put(1, 'a'), put(2, 'b'), put(3, 'c')]), liveness), [], 'perNodeMax leaves no room');
  t.regex(convergedProblems(store([blueprint(1), put(1, 'a'), put(2, 'b')]), liveness).join(), /has 2 assignments for 1 instances/);
  t.regex(convergedProblems(store([blueprint(1), put(4, 'a')]), liveness).join(), /on node 4, not a live member/);
  t.regex(convergedProblems(store([put(1, 'a')]), liveness).join(), /belongs to no blueprint/);
  t.regex(convergedProblems(store([blueprint(2, 1), put(1, 'a'), put(1, 'b')]), liveness).join(), /above perNodeMax 1/);
});

test('the convergence check wants nothing left of a node down past the timeout', (t) => {
  const gone = { ...liveness, liveMembers: new Set([1, 2]), goneNodes: new Set([3]) };
  t.deepEqual(convergedProblems(store([blueprint(1), put(1, 'a')]), gone), []);
  const report: Operation = { type: 'put', key: instanceKey(nodeId(3), base, '1.0.0', 'z'), value: '{}' };
  t.regex(convergedProblems(store([blueprint(1), put(1, 'a'), report]), gone).join(), /node 3 has been down past the timeout and still has instance\/3\//);
});
