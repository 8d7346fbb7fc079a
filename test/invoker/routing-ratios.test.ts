// Issue 4, "Done when": exact ratios over windows for 1:3, 1:1, 3:1, 1:0, 0:1 and 1:9 with new:old
// ACTIVE instance counts 1:5, 5:1 and 3:5, checked at every offset.
import test from 'ava';
import { RoutingTable } from '../../src/invoker/routing-table.ts';
import { reduceWeights } from '../../src/invoker/weighted.ts';
import { nodeId } from '../../src/util/ids.ts';
import { GREETER, LOCAL, NEW, OLD, instance, ok, routing, spread } from './fixtures.ts';
import { windowViolation } from './windows.ts';

const WEIGHTS: readonly (readonly [number, number])[] = [[1, 3], [1, 1], [3, 1], [1, 0], [0, 1], [1, 9]];
const INSTANCE_COUNTS: readonly (readonly [number, number])[] = [[1, 5], [5, 1], [3, 5]];

for (const [newWeight, oldWeight] of WEIGHTS) {
  for (const [newCount, oldCount] of INSTANCE_COUNTS) {
    test(`weights new:old ${newWeight}:${oldWeight} with ${newCount}:${oldCount} ACTIVE instances: every window is exact`, (t) => {
      const table = new RoutingTable();
      // Spread over three nodes, so that some calls are local and some remote.
      table.load([routing(newWeight, oldWeight), ...spread(NEW, newCount, 1), ...spread(OLD, oldCount, 2)]);
      const reduced = reduceWeights([newWeight, oldWeight]);
      const window = reduced[0]! + reduced[1]!;
      const calls = 5 * window + 40;
      const picks: number[] = [];
      for (let i = 0; i < calls; i++) {
        const decision = ok(table.route(GREETER, LOCAL));
        t.false(decision.fallback);
        t.is(decision.selection, 'weighted');
        picks.push(decision.version === NEW ? 0 : 1);
      }
      t.is(windowViolation(picks, window, reduced), undefined);
      t.is(table.snapshot().artifacts[0]?.fallbacks, 0);
    });
  }
}

test('the Aether case: 1:3 with two old instances and one new sends exactly 25% to new', (t) => {
  const table = new RoutingTable();
  table.load([routing(1, 3), instance(2, NEW, 'n1'), instance(2, OLD, 'o1'), instance(3, OLD, 'o2')]);
  let newCalls = 0;
  for (let i = 0; i < 1000; i++) if (ok(table.route(GREETER, nodeId(3))).version === NEW) newCalls++;
  t.is(newCalls, 250);
});

test('the split is exact from each node on its own: nodes do not share a selector', (t) => {
  const entries = [routing(1, 3), ...spread(NEW, 2), ...spread(OLD, 3)];
  const tables = [1, 2, 3].map(() => new RoutingTable());
  for (const table of tables) table.load(entries);
  for (const [index, table] of tables.entries()) {
    const picks = Array.from({ length: 44 }, () => (ok(table.route(GREETER, nodeId(index + 1))).version === NEW ? 0 : 1));
    t.is(windowViolation(picks, 4, [1, 3]), undefined, `node ${index + 1}`);
  }
});
