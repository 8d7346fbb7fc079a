import test from 'ava';
import { formatAssignment, formatBlueprint, type BlueprintRecord } from '../../src/slices/blueprints.ts';
import { artifactBase, assignmentKey, blueprintKey, instanceKey, parseAssignmentKey } from '../../src/slices/keys.ts';
import { isEmptyPlan, placementCapacity, planPlacement, type PlacementInput, type PlacementMember, type PlacementPlan, type StoredEntry } from '../../src/slices/placement.ts';
import { nodeId } from '../../src/util/ids.ts';

const base = artifactBase('org.example', 'greeter');
const other = artifactBase('org.example', 'billing');

function blueprint(version: string, record: BlueprintRecord, of = base): StoredEntry {
  return { key: blueprintKey(of, version), value: formatBlueprint(record) };
}

function assignment(node: number, version: string, instanceId: string, of = base): StoredEntry {
  const key = assignmentKey(nodeId(node), of, version, instanceId);
  return { key, value: formatAssignment({ nodeId: nodeId(node), base: of, version, instanceId, term: 1, placedAt: 0 }) };
}

function live(...ids: number[]): PlacementMember[] {
  return ids.map((id) => ({ id, silentForMs: 0 }));
}

function input(overrides: Partial<PlacementInput>): PlacementInput {
  return { blueprints: [], assignments: [], instanceKeys: [], members: live(1, 2, 3), nodeDownAfterMs: 15_000, nodeInstancesMax: 64, term: 7, nowMs: 1000, instanceIdPrefix: 'i10', ...overrides };
}

/** The assignments once `plan` is applied. */
function applied(before: readonly StoredEntry[], plan: PlacementPlan): StoredEntry[] {
  const removed = new Set(plan.remove);
  return [...before.filter((a) => !removed.has(a.key)), ...plan.put.map((p) => ({ key: p.key, value: p.value }))];
}

/** Instances per node (of one version when given), for every node that has some. */
function perNode(assignments: readonly StoredEntry[], version?: string): Record<number, number> {
  const counts: Record<number, number> = {};
  for (const { key } of assignments) {
    const parts = parseAssignmentKey(key)!;
    if (version === undefined || parts.version.text === version) counts[parts.nodeId] = (counts[parts.nodeId] ?? 0) + 1;
  }
  return counts;
}

test('new instances spread over the nodes: fewest of the version, then fewest overall, then lowest id', (t) => {
  const plan = planPlacement(input({ blueprints: [blueprint('1.0.0', { instances: 4 })] }));
  t.deepEqual(perNode(applied([], plan)), { 1: 2, 2: 1, 3: 1 });
  t.deepEqual(plan.put.map((p) => p.record.nodeId), [1, 2, 3, 1]);
  t.deepEqual(plan.put[0]!.record, { nodeId: nodeId(1), base, version: '1.0.0', instanceId: 'i10-0', term: 7, placedAt: 1000 });
  t.deepEqual(plan.blueprintsTouched, [blueprintKey(base, '1.0.0')]);
  // Node 1 already runs another version: the fewest overall decides between equal counts.
  const busy = [assignment(1, '2.0.0', 'x1', other)];
  const second = planPlacement(input({ blueprints: [blueprint('1.0.0', { instances: 2 }), blueprint('2.0.0', { instances: 1 }, other)], assignments: busy }));
  t.deepEqual(perNode(applied(busy, second), '1.0.0'), { 2: 1, 3: 1 });
});

test('nodeInstancesMax caps every node; what fits nowhere is reported unplaced', (t) => {
  const plan = planPlacement(input({ blueprints: [blueprint('1.0.0', { instances: 5 }), blueprint('1.0.0', { instances: 3 }, other)], members: live(1, 2), nodeInstancesMax: 3 }));
  const after = applied([], plan);
  t.deepEqual(perNode(after), { 1: 3, 2: 3 });
  // Round-robin over the blueprints: both get a share of the scarce room.
  t.is(after.filter((a) => a.key.includes(`/${base}:`)).length, 3);
  t.is(after.filter((a) => a.key.includes(`/${other}:`)).length, 3);
  t.deepEqual(plan.unplaced, [{ blueprint: blueprintKey(base, '1.0.0'), count: 2 }]);
});

test('perNodeMax limits one version on one node, and excess above it is removed', (t) => {
  const plan = planPlacement(input({ blueprints: [blueprint('1.0.0', { instances: 5, perNodeMax: 1 })] }));
  t.deepEqual(perNode(applied([], plan)), { 1: 1, 2: 1, 3: 1 });
  t.deepEqual(plan.unplaced, [{ blueprint: blueprintKey(base, '1.0.0'), count: 2 }]);
  const crowded = [assignment(1, '1.0.0', 'a'), assignment(1, '1.0.0', 'b'), assignment(1, '1.0.0', 'c')];
  const trim = planPlacement(input({ blueprints: [blueprint('1.0.0', { instances: 3, perNodeMax: 2 })], assignments: crowded }));
  t.deepEqual(trim.remove, [crowded[2]!.key]);
  t.deepEqual(perNode(applied(crowded, trim)), { 1: 2, 2: 1 });
});

test('a lowered count removes the surplus from the node with the most of that version', (t) => {
  const current = [assignment(1, '1.0.0', 'a'), assignment(2, '1.0.0', 'b'), assignment(2, '1.0.0', 'c'), assignment(3, '1.0.0', 'd')];
  const plan = planPlacement(input({ blueprints: [blueprint('1.0.0', { instances: 3 })], assignments: current }));
  t.deepEqual(plan.remove, [current[2]!.key]);
  t.deepEqual(plan.put, []);
  const toOne = planPlacement(input({ blueprints: [blueprint('1.0.0', { instances: 1 })], assignments: current }));
  t.deepEqual(perNode(applied(current, toOne)), { 1: 1 }, 'ties go to the highest node id');
  t.true(toOne.moves.every((m) => m.includes('surplus')));
});

test('a silent node is down only after nodeDownAfterMs: then its instances move and its reports are deleted', (t) => {
  const current = [assignment(1, '1.0.0', 'a'), assignment(2, '1.0.0', 'b'), assignment(3, '1.0.0', 'c')];
  const reports = [instanceKey(nodeId(3), base, '1.0.0', 'c'), instanceKey(nodeId(3), other, '9.0.0', 'stray'), instanceKey(nodeId(2), base, '1.0.0', 'b')];
  const state = { blueprints: [blueprint('1.0.0', { instances: 3 })], assignments: current, instanceKeys: reports };
  const justAtTimeout = planPlacement(input({ ...state, members: [...live(1, 2), { id: 3, silentForMs: 15_000 }] }));
  t.true(isEmptyPlan(justAtTimeout), 'silent for exactly the timeout is not down yet');
  const past = planPlacement(input({ ...state, members: [...live(1, 2), { id: 3, silentForMs: 15_001 }] }));
  t.deepEqual(past.remove, [current[2]!.key]);
  t.deepEqual(past.removeInstances, [reports[0]!, reports[1]!].sort());
  t.deepEqual(perNode(applied(current, past)), { 1: 2, 2: 1 });
  t.deepEqual(past.put[0]!.record.instanceId, 'i10-0');
  t.true(past.moves.some((m) => m.includes('node 3 is down')));
});

test('a node that is no longer a member is down at once; a never-heard member (Infinity) too', (t) => {
  const current = [assignment(1, '1.0.0', 'a'), assignment(4, '1.0.0', 'b')];
  const state = { blueprints: [blueprint('1.0.0', { instances: 2 })], assignments: current, instanceKeys: [instanceKey(nodeId(4), base, '1.0.0', 'b')] };
  const plan = planPlacement(input({ ...state, members: live(1, 2) }));
  t.deepEqual(plan.remove, [current[1]!.key]);
  t.deepEqual(plan.removeInstances, state.instanceKeys);
  t.deepEqual(perNode(applied(current, plan)), { 1: 1, 2: 1 });
  const never = planPlacement(input({ ...state, members: [...live(1, 2), { id: 4, silentForMs: Infinity }] }));
  t.deepEqual(never.remove, plan.remove);
});

test('with every node down nothing is placed and the count is unplaced', (t) => {
  const plan = planPlacement(input({ blueprints: [blueprint('1.0.0', { instances: 2 })], members: [{ id: 1, silentForMs: 20_000 }] }));
  t.deepEqual(plan.put, []);
  t.deepEqual(plan.unplaced, [{ blueprint: blueprintKey(base, '1.0.0'), count: 2 }]);
});

test('a deleted blueprint removes all its assignments; a malformed one keeps them', (t) => {
  const current = [assignment(1, '1.0.0', 'a'), assignment(2, '1.0.0', 'b'), assignment(3, '2.0.0', 'c')];
  const plan = planPlacement(input({ blueprints: [blueprint('2.0.0', { instances: 1 })], assignments: current }));
  t.deepEqual(plan.remove, [current[0]!.key, current[1]!.key]);
  t.deepEqual(plan.blueprintsTouched, [blueprintKey(base, '1.0.0')]);
  const malformed = planPlacement(input({ blueprints: [{ key: blueprintKey(base, '1.0.0'), value: '{"instances":-1}' }, blueprint('2.0.0', { instances: 1 })], assignments: current }));
  t.true(isEmptyPlan(malformed));
  t.deepEqual(malformed.invalid.map((i) => i.key), [blueprintKey(base, '1.0.0')]);
});

test('malformed, mismatched and duplicate assignments are removed and replaced', (t) => {
  const good = assignment(1, '1.0.0', 'a');
  const mismatched = { key: assignmentKey(nodeId(2), base, '1.0.0', 'b'), value: assignment(3, '1.0.0', 'b').value };
  const duplicate = assignment(3, '1.0.0', 'a');
  const junk = { key: 'assignment/nonsense', value: '{}' };
  const current = [good, mismatched, duplicate, junk];
  const plan = planPlacement(input({ blueprints: [blueprint('1.0.0', { instances: 3 })], assignments: current }));
  t.deepEqual([...plan.remove].sort(), [mismatched.key, duplicate.key, junk.key].sort());
  t.is(plan.put.length, 2);
  t.is(plan.invalid.length, 2, 'the mismatched value and the junk key are reported');
  t.true(plan.put.every((p) => p.record.instanceId !== 'a' && p.record.instanceId !== 'b'));
});

test('a valid placement is left alone, even when uneven', (t) => {
  const blueprints = [blueprint('1.0.0', { instances: 3 }), blueprint('1.0.0', { instances: 2, perNodeMax: 2 }, other)];
  const uneven = [assignment(1, '1.0.0', 'a'), assignment(1, '1.0.0', 'b'), assignment(1, '1.0.0', 'c'), assignment(2, '1.0.0', 'd', other), assignment(2, '1.0.0', 'e', other)];
  const plan = planPlacement(input({ blueprints, assignments: uneven, instanceKeys: [instanceKey(nodeId(1), base, '1.0.0', 'a')] }));
  t.true(isEmptyPlan(plan));
  t.deepEqual(plan.moves, []);
  // And a plan once applied plans nothing more.
  const first = planPlacement(input({ blueprints, members: live(1, 2, 3, 4) }));
  const second = planPlacement(input({ blueprints, members: live(1, 2, 3, 4), assignments: applied([], first), instanceIdPrefix: 'i11' }));
  t.true(isEmptyPlan(second));
});

test('new instance ids are unique: the prefix numbers them and skips ids in use', (t) => {
  const current = [assignment(1, '1.0.0', 'i10-0'), assignment(2, '1.0.0', 'i10-2')];
  const reports = [instanceKey(nodeId(3), base, '1.0.0', 'i10-1')];
  const plan = planPlacement(input({ blueprints: [blueprint('1.0.0', { instances: 4 }), blueprint('1.0.0', { instances: 2 }, other)], assignments: current, instanceKeys: reports }));
  const ids = plan.put.map((p) => p.record.instanceId);
  t.deepEqual(ids, ['i10-3', 'i10-4', 'i10-5', 'i10-6']);
  t.is(new Set(ids).size, ids.length);
});

test('changesMax cuts the plan after its deletes, counting each touched blueprint once', (t) => {
  const current = [assignment(3, '1.0.0', 'a'), assignment(3, '1.0.0', 'b')];
  const state = { blueprints: [blueprint('1.0.0', { instances: 4 })], assignments: current, members: live(1, 2) };
  const plan = planPlacement(input({ ...state, changesMax: 4 }));
  t.true(plan.truncated);
  t.deepEqual(plan.remove, current.map((a) => a.key));
  t.is(plan.put.length, 1, '2 deletes + 1 blueprint + 1 put');
  t.deepEqual(plan.unplaced, []);
  const full = planPlacement(input(state));
  t.false(full.truncated);
  t.is(full.put.length, 4);
});

test('placementCapacity counts the room left on live nodes after the pending plan', (t) => {
  const state = input({ blueprints: [blueprint('1.0.0', { instances: 2 })], assignments: [assignment(3, '1.0.0', 'a')], members: [...live(1, 2), { id: 3, silentForMs: 60_000 }], nodeInstancesMax: 4 });
  // Nodes 1 and 2 hold one each once node 3's instance is placed again: 3 + 3 left.
  t.is(placementCapacity(state, { base: other, version: '1.0.0' }), 6);
  t.is(placementCapacity(state, { base: other, version: '1.0.0', perNodeMax: 2 }), 4);
  t.is(placementCapacity(state, { base, version: '1.0.0', perNodeMax: 1 }), 0);
  t.is(placementCapacity({ ...state, members: [] }, { base, version: '1.0.0' }), 0);
});
