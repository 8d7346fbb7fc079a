import test from 'ava';
import { RoutingTable, ROUTING_TABLE_PREFIXES } from '../../src/invoker/routing-table.ts';
import { KvStore, type Command } from '../../src/kv/index.ts';
import { artifactBase, versionRoutingKey } from '../../src/slices/keys.ts';
import { NONE, nodeId } from '../../src/util/ids.ts';
import { GREETER, LOCAL, NEW, OLD, deleteEvent, instance, instanceKeyOf, kv, ok, putEvent, routing, routingValue } from './fixtures.ts';
import { windowViolation } from './windows.ts';

const instanceIds = (table: RoutingTable, calls: number, node = LOCAL): string[] => Array.from({ length: calls }, () => ok(table.route(GREETER, node)).instance.instanceId);

test('round-robin over the local ACTIVE instances; remote ones only when there is no local one', (t) => {
  const table = new RoutingTable();
  table.load([routing(1, 0), instance(1, NEW, 'a'), instance(1, NEW, 'b'), instance(2, NEW, 'c'), instance(3, NEW, 'd')]);
  t.deepEqual(instanceIds(table, 3), ['a', 'b', 'a']);
  // A change elsewhere in the artifact keeps the round-robin position.
  table.applyEvent(putEvent(instanceKeyOf(1, OLD, 'o'), { state: 'STARTING', nodeId: 1, address: '10.0.0.1:7001' }));
  t.deepEqual(instanceIds(table, 3), ['b', 'a', 'b']);
  t.true(ok(table.route(GREETER, LOCAL)).local);
  // Node 2 has one local instance: all of node 2's calls stay there.
  t.deepEqual(instanceIds(table, 3, nodeId(2)), ['c', 'c', 'c']);
  // The local instances leave: round-robin over the remote ones.
  table.applyEvent(putEvent(instanceKeyOf(1, NEW, 'a'), { state: 'DRAINING', nodeId: 1, address: '10.0.0.1:7001' }));
  table.applyEvent(deleteEvent(instanceKeyOf(1, NEW, 'b')));
  const remote = Array.from({ length: 4 }, () => ok(table.route(GREETER, LOCAL)));
  t.deepEqual(remote.map((d) => d.instance.instanceId), ['c', 'd', 'c', 'd']);
  t.true(remote.every((d) => !d.local));
  t.like(remote[1], { instance: { nodeId: 3, address: '10.0.0.3:7001', key: instanceKeyOf(3, NEW, 'd') } });
});

test('an embedded client (no node) round-robins over every ACTIVE instance', (t) => {
  const table = new RoutingTable();
  table.load([instance(1, NEW, 'a'), instance(2, NEW, 'b'), instance(3, NEW, 'c')]);
  const ids = Array.from({ length: 6 }, () => ok(table.route(GREETER, NONE)).instance.instanceId);
  t.deepEqual(ids, ['a', 'b', 'c', 'a', 'b', 'c']);
});

test('only ACTIVE instances are picked: never STARTING, HEALTH_CHECKING, UNHEALTHY, DRAINING, STOPPED or FAILED', (t) => {
  const table = new RoutingTable();
  const states = ['STARTING', 'HEALTH_CHECKING', 'UNHEALTHY', 'DRAINING', 'STOPPED', 'FAILED'] as const;
  table.load([routing(1, 1), ...states.map((s) => instance(1, NEW, s.toLowerCase(), s)), ...states.map((s) => instance(1, OLD, s.toLowerCase(), s)), instance(2, NEW, 'up'), instance(3, OLD, 'up')]);
  const picked = new Set(Array.from({ length: 40 }, () => ok(table.route(GREETER, LOCAL)).instance.key));
  t.deepEqual([...picked].sort(), [instanceKeyOf(2, NEW, 'up'), instanceKeyOf(3, OLD, 'up')].sort());
});

test('a version with no ACTIVE instance sends its share to the other version, counted per call', (t) => {
  const table = new RoutingTable();
  table.load([routing(1, 3), instance(1, NEW, 'n', 'HEALTH_CHECKING'), instance(1, OLD, 'o1'), instance(2, OLD, 'o2')]);
  const decisions = Array.from({ length: 100 }, () => ok(table.route(GREETER, LOCAL)));
  t.true(decisions.every((d) => d.version === OLD));
  const fallbacks = decisions.filter((d) => d.fallback);
  t.is(fallbacks.length, 25, 'exactly the new share fell back');
  t.true(fallbacks.every((d) => d.selection === 'fallback' && d.intendedVersion === NEW));
  t.true(decisions.filter((d) => !d.fallback).every((d) => d.selection === 'weighted' && d.intendedVersion === OLD));
  t.is(table.snapshot().artifacts[0]?.fallbacks, 25);
  // The other way round: 1:3 with no old instance sends everything to new, 75 fallbacks.
  const reverse = new RoutingTable();
  reverse.load([routing(1, 3), instance(2, NEW, 'n')]);
  const versions = Array.from({ length: 100 }, () => ok(reverse.route(GREETER, LOCAL)).version);
  t.true(versions.every((v) => v === NEW));
  t.is(reverse.snapshot().artifacts[0]?.fallbacks, 75);
});

test('NO_ACTIVE_INSTANCE when neither version has an ACTIVE instance; UNKNOWN_SLICE for an unknown artifact', (t) => {
  const table = new RoutingTable();
  table.load([routing(1, 1), instance(1, NEW, 'n', 'DRAINING'), instance(2, OLD, 'o', 'FAILED')]);
  for (let i = 0; i < 3; i++) t.like(table.route(GREETER, LOCAL), { ok: false, code: 'NO_ACTIVE_INSTANCE', base: GREETER });
  t.is(table.snapshot().artifacts[0]?.fallbacks, 0);
  t.like(table.route(artifactBase('org.example', 'unknown'), LOCAL), { ok: false, code: 'UNKNOWN_SLICE' });
  // A routing record alone makes the artifact known.
  table.load([routing(1, 0, artifactBase('org.example', 'billing'))]);
  t.like(table.route(artifactBase('org.example', 'billing'), LOCAL), { ok: false, code: 'NO_ACTIVE_INSTANCE' });
});

test('a routing change reaches every node at its next call after one watch event', (t) => {
  const store = new KvStore();
  let sequence = 0;
  const apply = (command: Command): void => {
    const outcome = store.apply({ clientId: 0, sequence: ++sequence, command });
    if (!outcome.ok) throw new Error(outcome.code);
  };
  const put = (key: string, value: object): void => apply({ type: 'put', key, value: JSON.stringify(value) });
  put(versionRoutingKey(GREETER), routingValue(0, 1));
  for (const entry of [instance(1, NEW, 'n1'), instance(2, NEW, 'n2'), instance(1, OLD, 'o1'), instance(3, OLD, 'o3')]) put(entry.key, JSON.parse(entry.value) as object);
  // Each node loads the prefixes, then watches from the next revision.
  const nodes = [1, 2, 3].map((id) => {
    const table = new RoutingTable();
    table.load(ROUTING_TABLE_PREFIXES.flatMap((prefix) => store.range(prefix).kvs), store.revision());
    for (const prefix of ROUTING_TABLE_PREFIXES) store.watch(prefix, 0, (events) => table.applyEvents(events));
    return { id: nodeId(id), table };
  });
  for (const { id, table } of nodes) t.is(ok(table.route(GREETER, id)).version, OLD);
  put(versionRoutingKey(GREETER), routingValue(1, 0, { updateId: 'u-2' }));
  for (const { id, table } of nodes) t.is(ok(table.route(GREETER, id)).version, NEW, `node ${id} after 1:0`);
  put(versionRoutingKey(GREETER), routingValue(1, 3, { updateId: 'u-2' }));
  for (const { id, table } of nodes) {
    const picks = Array.from({ length: 40 }, () => (ok(table.route(GREETER, id)).version === NEW ? 0 : 1));
    // The selector restarted with the change, so windows are exact from the first call.
    t.is(windowViolation(picks, 4, [1, 3]), undefined, `node ${id} after 1:3`);
    t.is(table.snapshot().revision, store.revision());
  }
});

test('a weight change restarts the selector; a new updateId or scaled weights do not', (t) => {
  const continuous = new RoutingTable();
  continuous.load([routing(1, 3), instance(1, NEW, 'n'), instance(1, OLD, 'o')]);
  const expected = Array.from({ length: 8 }, () => ok(continuous.route(GREETER, LOCAL)).version);
  const table = new RoutingTable();
  table.load([routing(1, 3), instance(1, NEW, 'n'), instance(1, OLD, 'o')]);
  const seen = [ok(table.route(GREETER, LOCAL)).version, ok(table.route(GREETER, LOCAL)).version];
  table.applyEvent(putEvent(versionRoutingKey(GREETER), routingValue(2, 6, { updateId: 'u-9' })));
  table.applyEvent(putEvent(instanceKeyOf(2, OLD, 'o2'), { state: 'STARTING', nodeId: 2, address: 'x:1' }));
  for (let i = 0; i < 6; i++) seen.push(ok(table.route(GREETER, LOCAL)).version);
  t.deepEqual(seen, expected, 'same reduced weights and versions: the sequence continues');
  table.applyEvent(putEvent(versionRoutingKey(GREETER), routingValue(3, 1)));
  const afterChange = Array.from({ length: 4 }, () => ok(table.route(GREETER, LOCAL)).version);
  t.deepEqual(afterChange, [NEW, NEW, OLD, NEW], 'a fresh 3:1 period');
});

test('without a routing record the only deployed version takes every call', (t) => {
  const table = new RoutingTable();
  table.load([instance(1, OLD, 'o1'), instance(2, OLD, 'o2'), instance(3, NEW, 'n', 'STARTING')]);
  const decisions = Array.from({ length: 6 }, () => ok(table.route(GREETER, LOCAL)));
  t.true(decisions.every((d) => d.version === OLD && d.selection === 'only-version' && !d.fallback));
  t.is(table.snapshot().artifacts[0]?.highestVersionChoices, 0);
});

test('without a routing record and several ACTIVE versions, the highest SemVer wins and is counted', (t) => {
  const table = new RoutingTable();
  table.load([instance(1, '1.9.0', 'a'), instance(1, '1.10.0', 'b'), instance(2, '1.10.0-rc.1', 'c')]);
  const decisions = Array.from({ length: 5 }, () => ok(table.route(GREETER, LOCAL)));
  t.true(decisions.every((d) => d.version === '1.10.0' && d.selection === 'highest-version'));
  t.is(table.snapshot().artifacts[0]?.highestVersionChoices, 5);
  // Deleting the routing record of an update returns to this rule at the next call.
  table.applyEvent(putEvent(versionRoutingKey(GREETER), routingValue(0, 1, { newVersion: '1.10.0', oldVersion: '1.9.0' })));
  t.is(ok(table.route(GREETER, LOCAL)).version, '1.9.0');
  table.applyEvent(deleteEvent(versionRoutingKey(GREETER)));
  t.is(ok(table.route(GREETER, LOCAL)).version, '1.10.0');
});

test('malformed keys and values are ignored and counted, never thrown', (t) => {
  const table = new RoutingTable();
  table.load([routing(1, 3), instance(1, NEW, 'n'), instance(1, OLD, 'o')]);
  const bad = [
    putEvent(instanceKeyOf(1, NEW, 'n2'), 'not json'),
    putEvent(instanceKeyOf(1, NEW, 'n3'), [1, 2]),
    putEvent(instanceKeyOf(1, NEW, 'n4'), { state: 'RUNNING', nodeId: 1, address: 'a:1' }),
    putEvent(instanceKeyOf(1, NEW, 'n5'), { state: 'ACTIVE', nodeId: 2, address: 'a:1' }),
    putEvent(instanceKeyOf(1, NEW, 'n6'), { state: 'ACTIVE', nodeId: 1 }),
    putEvent('instance/1/org.example:greeter:latest/n7', { state: 'ACTIVE', nodeId: 1, address: 'a:1' }),
    putEvent('version-routing/greeter', routingValue(1, 1)),
    putEvent(versionRoutingKey(artifactBase('org.example', 'other')), { ...routingValue(0, 0) }),
    putEvent(versionRoutingKey(artifactBase('org.example', 'other2')), { ...routingValue(1, 1), newWeight: -1 }),
    putEvent(versionRoutingKey(artifactBase('org.example', 'other3')), { ...routingValue(1, 1), newWeight: 1.5 }),
    putEvent(versionRoutingKey(artifactBase('org.example', 'other4')), { ...routingValue(1, 1), oldVersion: '1.0' }),
    putEvent(versionRoutingKey(artifactBase('org.example', 'other5')), { ...routingValue(1, 1), updateId: 7 }),
  ];
  t.notThrows(() => table.applyEvents(bad));
  const snapshot = table.snapshot();
  t.is(snapshot.malformedTotal, bad.length);
  t.is(snapshot.malformedCurrent, bad.length);
  t.true(snapshot.malformed.every((m) => m.reason.length > 0));
  t.deepEqual(snapshot.artifacts.map((a) => a.base), [GREETER], 'nothing malformed created an artifact');
  t.deepEqual(snapshot.artifacts[0]?.versions.map((v) => v.instances.length), [1, 1], 'no malformed instance was stored');
  const picks = Array.from({ length: 40 }, () => (ok(table.route(GREETER, LOCAL)).version === NEW ? 0 : 1));
  t.is(windowViolation(picks, 4, [1, 3]), undefined, 'routing is unaffected');
});

test('a malformed value replacing a good one counts as absent until a good one returns', (t) => {
  const table = new RoutingTable();
  table.load([routing(0, 1), instance(1, NEW, 'n'), instance(1, OLD, 'o')]);
  t.is(ok(table.route(GREETER, LOCAL)).version, OLD);
  table.applyEvent(putEvent(versionRoutingKey(GREETER), '{"updateId":'));
  // As if absent: the highest ACTIVE version, counted.
  t.like(table.route(GREETER, LOCAL), { version: NEW, selection: 'highest-version' });
  table.applyEvent(putEvent(instanceKeyOf(1, NEW, 'n'), { state: 'ACTIVE', nodeId: 1 }));
  t.like(table.route(GREETER, LOCAL), { version: OLD, selection: 'only-version' });
  t.like(table.snapshot(), { malformedTotal: 2, malformedCurrent: 2 });
  table.applyEvent(putEvent(versionRoutingKey(GREETER), routingValue(0, 1)));
  table.applyEvent(deleteEvent(instanceKeyOf(1, NEW, 'n')));
  t.like(table.route(GREETER, LOCAL), { version: OLD, selection: 'weighted' });
  t.like(table.snapshot(), { malformedTotal: 2, malformedCurrent: 0, malformed: [] });
});

test('load makes the table match the given state and does not recount what it already counted', (t) => {
  const table = new RoutingTable();
  const bad = kv(instanceKeyOf(2, NEW, 'bad'), 'x');
  const first = [routing(1, 1), instance(1, NEW, 'n'), instance(1, OLD, 'o'), bad];
  table.load(first);
  t.like(table.snapshot(), { malformedTotal: 1, malformedCurrent: 1 });
  table.load(first);
  t.like(table.snapshot(), { malformedTotal: 1, malformedCurrent: 1 });
  // The resynchronised state lost the routing record, the old instance and the bad key.
  table.load([instance(1, NEW, 'n'), instance(2, NEW, 'n2')], 500);
  const snapshot = table.snapshot();
  t.like(snapshot, { revision: 500, malformedCurrent: 0 });
  t.like(snapshot.artifacts[0], { routing: undefined, versions: [{ version: NEW }] });
  t.deepEqual(instanceIds(table, 3), ['n', 'n', 'n']);
  table.load([]);
  t.deepEqual(table.snapshot().artifacts, []);
  t.like(table.route(GREETER, LOCAL), { code: 'UNKNOWN_SLICE' });
});

test('routeRetry picks another ACTIVE instance of the same version without moving the split', (t) => {
  const table = new RoutingTable();
  table.load([routing(1, 3), instance(2, NEW, 'n1'), instance(3, NEW, 'n2'), instance(2, OLD, 'o1')]);
  const picks: number[] = [];
  for (let i = 0; i < 40; i++) {
    const decision = ok(table.route(GREETER, LOCAL));
    picks.push(decision.version === NEW ? 0 : 1);
    const retry = table.routeRetry(decision, LOCAL);
    if (decision.version === NEW) t.like(retry, { ok: true, version: NEW, selection: 'weighted' });
    else t.like(retry, { ok: false, code: 'NO_ACTIVE_INSTANCE' }, 'o1 is the only old instance');
    if (retry.ok) t.not(retry.instance.key, decision.instance.key);
  }
  t.is(windowViolation(picks, 4, [1, 3]), undefined);
});

test('snapshot shows weights, versions, instances by state and counters', (t) => {
  const table = new RoutingTable();
  table.load([routing(2, 6), instance(1, NEW, 'n', 'STARTING'), instance(1, OLD, 'o1'), instance(2, OLD, 'o2', 'DRAINING'), instance(3, '0.9.0', 'z', 'STOPPED')], 42);
  for (let i = 0; i < 8; i++) table.route(GREETER, LOCAL);
  const snapshot = table.snapshot();
  t.is(snapshot.revision, 42);
  const artifact = snapshot.artifacts[0]!;
  t.deepEqual(artifact.routing, { updateId: 'u-1', newVersion: NEW, oldVersion: OLD, newWeight: 2, oldWeight: 6, period: 4 });
  t.deepEqual(artifact.versions.map((v) => [v.version, v.weight]), [[NEW, 2], [OLD, 6], ['0.9.0', undefined]]);
  t.like(artifact.versions[1], { counts: { ACTIVE: 1, DRAINING: 1, STARTING: 0 }, instances: [{ instanceId: 'o1', state: 'ACTIVE' }, { instanceId: 'o2', state: 'DRAINING', nodeId: 2 }] });
  t.is(artifact.fallbacks, 2);
  t.is(artifact.highestVersionChoices, 0);
});
