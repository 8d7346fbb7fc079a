import test from 'ava';
import { KvStore, type Operation } from '../../src/kv/index.ts';
import type { RouteDecision } from '../../src/invoker/decisions.ts';
import { RoutingTable } from '../../src/invoker/routing-table.ts';
import { formatAssignment } from '../../src/slices/blueprints.ts';
import { artifactBase, assignmentKey, instanceKey, versionRoutingKey, type ArtifactBase } from '../../src/slices/keys.ts';
import { nodeId, type NodeId } from '../../src/util/ids.ts';
import { checkRouting, instancesConvergedProblems, tableProblems } from '../../cluster-sim/slices/checker.ts';
import { drawSlicesOptions, formatSlicesOptions } from '../../cluster-sim/slices/options.ts';
import { routingValue } from '../../cluster-sim/slices/rollout.ts';
import { runSlicesSimulation, type SlicesResult } from '../../cluster-sim/slices/simulation.ts';

// The slices scenario: on every simulated node the routing-table feed, the real InstanceManager
// (in-memory slices) and the PlacementController; an operator and a rolling-update stand-in
// writing blueprints and routing records; faults, a node cut off until it needs a snapshot, then a
// heal. `npx tsx cluster-sim/slices/cli.ts --seeds N` runs more.

function explain(result: SlicesResult): string {
  const violations = result.violations.map((v) => `${v.kind} at ${v.atMs.toFixed(1)}ms: ${v.message}`);
  return [formatSlicesOptions(result.options), ...violations, ...result.trace, `replay: npx tsx cluster-sim/slices/cli.ts --seed ${result.options.sim.seed} --nodes ${result.options.sim.nodes} --verbose`].join('\n');
}

const runs = new Map<string, Promise<SlicesResult[]>>();

function runSeeds(nodes: number, count: number): Promise<SlicesResult[]> {
  const key = `${nodes}:${count}`;
  let results = runs.get(key);
  if (results === undefined) {
    results = (async () => {
      const done: SlicesResult[] = [];
      for (let seed = 1; seed <= count; seed++) done.push(await runSlicesSimulation(drawSlicesOptions(seed, nodes)));
      return done;
    })();
    runs.set(key, results);
  }
  return results;
}

const BATCHES = [
  [3, 8],
  [5, 2],
] as const;

for (const [nodes, count] of BATCHES) {
  test.serial(`slices, ${nodes} nodes, seeds 1..${count}: tables always match their node's state, and instances, tables and the split converge after the heal`, async (t) => {
    for (const result of await runSeeds(nodes, count)) {
      t.deepEqual(result.violations, [], explain(result));
      t.not(result.stats.convergedMs, undefined, `SEED=${result.options.sim.seed}`);
    }
  });
}

test.serial('the slices seeds exercise snapshots under live tables, instance lifecycles, re-placement and exact splits', async (t) => {
  const results = (await Promise.all(BATCHES.map(([nodes, count]) => runSeeds(nodes, count)))).flat();
  const total = (pick: (r: SlicesResult) => number): number => results.reduce((sum, r) => sum + pick(r), 0);
  t.true(total((r) => r.stats.tableChecks) > 5000, 'table checks');
  t.true(total((r) => (r.stats.lagNeededSnapshot && r.stats.lagSnapshots > 0 ? 1 : 0)) >= 5, 'seeds whose cut-off node rejoined by a snapshot');
  t.true(total((r) => r.stats.loader.starts) > 200 && total((r) => r.stats.loader.stops) > 50 && total((r) => r.stats.loader.unhealthy) > 0, 'instances started, stopped, unhealthy at times');
  t.true(total((r) => r.stats.downMoves) > 0, 'instances moved off down nodes');
  t.true(total((r) => (r.stats.keptDown === 0 ? 0 : 1)) >= 3, 'seeds with a node kept down');
  t.true(total((r) => r.stats.rollout.ok) > 100 && total((r) => r.stats.rollout.updates) > 5 && total((r) => r.stats.rollout.malformed) > 0, 'routing records written (some malformed), updates advanced');
  t.true(total((r) => (r.stats.routeChecks > 0 ? 1 : 0)) >= results.length * 0.6, 'most seeds ran the route check');
  t.true(total((r) => r.stats.faults.crashes) > 0 && total((r) => r.stats.faults.stops) > 0 && total((r) => r.stats.faults.partitions) > 0);
});

test.serial('a slices seed replays exactly', async (t) => {
  const [first] = await runSeeds(3, 8);
  const again = await runSlicesSimulation(drawSlicesOptions(1, 3));
  t.is(again.traceDigest, first!.traceDigest);
  t.deepEqual(again.stats, first!.stats);
});

// The checks themselves, on hand-made states: each must fire on what it is meant to catch.

const base = artifactBase('org.sim', 'svc0');

function instanceRecord(node: number, version: string, id: string, state = 'ACTIVE'): Operation {
  return { type: 'put', key: instanceKey(nodeId(node), base, version, id), value: JSON.stringify({ state, nodeId: node, address: `sim://${node}` }) };
}

function assignment(node: number, version: string, id: string): Operation {
  return { type: 'put', key: assignmentKey(nodeId(node), base, version, id), value: formatAssignment({ nodeId: nodeId(node), base, version, instanceId: id, term: 1, placedAt: 0 }) };
}

const routing13: Operation = { type: 'put', key: versionRoutingKey(base), value: routingValue('u1', '1.0.0', '2.0.0', 1, 3) };

/** A store with `operations` applied one revision each, and a table fed by its watch. */
function fedStore(operations: readonly Operation[], skip?: number): { kv: KvStore; table: RoutingTable } {
  const kv = new KvStore();
  const table = new RoutingTable();
  let events = 0;
  kv.watch('', 0, (batch) => {
    for (const event of batch) if (events++ !== skip) table.applyEvent(event);
  });
  for (const command of operations) kv.apply({ clientId: 0, sequence: 0, command });
  return { kv, table };
}

const history: Operation[] = [routing13, instanceRecord(1, '1.0.0', 'a'), instanceRecord(2, '2.0.0', 'b', 'STARTING'), instanceRecord(2, '2.0.0', 'b'), { type: 'put', key: versionRoutingKey(artifactBase('org.sim', 'svc1')), value: routingValue('u1', '1.0.0', '2.0.0', 0, 0) }];

test('the table check passes a table that saw every event, and catches one missed event', (t) => {
  const whole = fedStore(history);
  t.deepEqual(tableProblems(whole.table, whole.kv, 'node 1'), []);
  // Event 2 (b STARTING) is overwritten by event 3 (b ACTIVE): missing it changes nothing.
  for (const skipped of [0, 1, 3, 4]) {
    const missed = fedStore(history, skipped);
    t.not(tableProblems(missed.table, missed.kv, 'node 1').length, 0, `event ${skipped} missed`);
  }
  t.deepEqual(tableProblems(fedStore(history, 2).table, whole.kv, 'node 1'), []);
});

test('the table check ignores soft counters: routed calls and fallbacks', (t) => {
  const { kv, table } = fedStore([routing13, instanceRecord(1, '1.0.0', 'a')]);
  for (let i = 0; i < 10; i++) table.route(base, nodeId(1));
  t.deepEqual(tableProblems(table, kv, 'node 1'), []);
});

test('the table check follows a snapshot install (the store tells watchers the jump)', (t) => {
  const source = fedStore(history);
  const follower = fedStore(history.slice(0, 2));
  source.kv.apply({ clientId: 0, sequence: 0, command: { type: 'delete', key: instanceKey(nodeId(1), base, '1.0.0', 'a') } });
  follower.kv.restore(source.kv.snapshot());
  t.deepEqual(tableProblems(follower.table, follower.kv, 'node 2'), []);
});

test('the route check wants exactly k new of 4k calls, and no fallback', (t) => {
  const { table } = fedStore([routing13, instanceRecord(1, '1.0.0', 'a'), instanceRecord(2, '2.0.0', 'b')]);
  table.route(base, nodeId(1)); // mid-period: any 4k consecutive calls hold k new ones
  const check = checkRouting(table, base, 1, 250);
  t.deepEqual(check, { ran: true, calls: 1000, problems: [] });
  t.false(checkRouting(fedStore([routing13, instanceRecord(1, '1.0.0', 'a')]).table, base, 1, 10).ran, 'not with one version only');

  class Skewed extends RoutingTable {
    private calls = 0;
    override route(b: ArtifactBase, local: NodeId): RouteDecision {
      const decision = super.route(b, local);
      // Every 101st call a pick of the new version is replaced by the next pick.
      return ++this.calls % 101 === 0 && decision.ok && decision.version === '2.0.0' ? super.route(b, local) : decision;
    }
  }
  const skewed = new Skewed();
  skewed.load([routing13, instanceRecord(1, '1.0.0', 'a'), instanceRecord(2, '2.0.0', 'b')].map((op, i) => ({ key: (op as { key: string }).key, value: (op as { value: string }).value, createRevision: i + 1, modRevision: i + 1, version: 1 })));
  t.regex(checkRouting(skewed, base, 1, 250).problems.join(), /picked 2\.0\.0 \d+ times; 1:3 \(new:old\) wants exactly 250/);
});

test('the convergence check wants every assignment ACTIVE in the state and in its InstanceManager, and nothing else', (t) => {
  const key = instanceKey(nodeId(1), base, '1.0.0', 'a');
  const { kv, table } = fedStore([assignment(1, '1.0.0', 'a'), instanceRecord(1, '1.0.0', 'a')]);
  const hosted = [{ key, base, version: '1.0.0', instanceId: 'a', state: 'ACTIVE' as const, inFlight: 0 }];
  t.deepEqual(instancesConvergedProblems(kv, [{ id: 1, table, hosted }]), []);
  t.regex(instancesConvergedProblems(kv, [{ id: 1, table, hosted: [] }]).join(), /InstanceManager does not host it/);
  t.regex(instancesConvergedProblems(kv, [{ id: 1, table: new RoutingTable(), hosted }]).join(), /node 1's table: org.sim:svc0 is absent/);
  const starting = fedStore([assignment(1, '1.0.0', 'a'), instanceRecord(1, '1.0.0', 'a', 'STARTING')]);
  t.regex(instancesConvergedProblems(starting.kv, [{ id: 1, table: starting.table, hosted }]).join(), /is assigned but reported STARTING/);
  const stale = fedStore([instanceRecord(1, '1.0.0', 'a')]);
  t.regex(instancesConvergedProblems(stale.kv, [{ id: 1, table: stale.table, hosted: [] }]).join(), /reported ACTIVE without an assignment/);
  t.regex(instancesConvergedProblems(stale.kv, [{ id: 1, table: stale.table, hosted }]).join(), /still hosts .* which is not assigned/);
});
