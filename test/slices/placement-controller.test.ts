import test from 'ava';
import type { Compare, Operation } from '../../src/kv/index.ts';
import { MemoryClusterPort, type MemberActivity, type TxnResult } from '../../src/node/cluster-port.ts';
import { formatBlueprint, parseAssignment } from '../../src/slices/blueprints.ts';
import { artifactBase, ASSIGNMENT_PREFIX, blueprintKey, instanceKey, INSTANCE_PREFIX, parseAssignmentKey } from '../../src/slices/keys.ts';
import { PLACEMENT_GUARD_KEY, PlacementController, type PlacementControllerOptions } from '../../src/slices/placement-controller.ts';
import { InvalidArgumentError } from '../../src/util/errors.ts';
import { nodeId } from '../../src/util/ids.ts';
import { silentLogger } from '../../src/util/logger.ts';
import { ManualClock } from '../helpers/manual-clock.ts';

const base = artifactBase('org.example', 'greeter');
const key = blueprintKey(base, '1.0.0');

function members(silences: Record<number, number>): MemberActivity[] {
  return Object.entries(silences).map(([id, silentForMs]) => ({ id: Number(id), address: `127.0.0.1:${7000 + Number(id)}`, voter: true, silentForMs }));
}

function setup(options: Partial<PlacementControllerOptions> = {}, port = new MemoryClusterPort()) {
  port.setMembers(members({ 1: 0, 2: 0, 3: 0 }));
  const clock = new ManualClock();
  const controller = new PlacementController({ port, clock, logger: silentLogger, nodeDownAfterMs: 15_000, ...options });
  return { port, clock, controller };
}

/** An operator's write (straight into the store, so that it never meets a test's port hooks). */
function write(port: MemoryClusterPort, operations: Operation[]): void {
  const outcome = port.kv.apply({ clientId: 0, sequence: 0, command: { type: 'txn', compare: [], success: operations, failure: [] } });
  if (!outcome.ok) throw new Error(outcome.message);
}

async function putBlueprint(port: MemoryClusterPort, instances: number, perNodeMax?: number): Promise<void> {
  write(port, [{ type: 'put', key, value: formatBlueprint(perNodeMax === undefined ? { instances } : { instances, perNodeMax }) }]);
}

/** Instances per node, as the assignments stand. */
function perNode(port: MemoryClusterPort): Record<number, number> {
  const counts: Record<number, number> = {};
  for (const kv of port.kv.range(ASSIGNMENT_PREFIX).kvs) {
    const node = parseAssignmentKey(kv.key)!.nodeId;
    counts[node] = (counts[node] ?? 0) + 1;
  }
  return counts;
}

test('places the blueprints when it leads, and follows later changes', async (t) => {
  const { port, clock, controller } = setup();
  await putBlueprint(port, 3);
  controller.start();
  await clock.advance(0);
  t.deepEqual(perNode(port), { 1: 1, 2: 1, 3: 1 });
  const first = port.kv.range(ASSIGNMENT_PREFIX).kvs[0]!;
  const record = parseAssignment(first.value);
  t.true(record.ok && record.value.term === port.term());
  t.is(JSON.parse(port.kv.get(PLACEMENT_GUARD_KEY)!.value).term, port.term());
  await putBlueprint(port, 5);
  await clock.advance(0);
  t.deepEqual(perNode(port), { 1: 2, 2: 2, 3: 1 });
  write(port, [{ type: 'delete', key }]);
  await clock.advance(0);
  t.deepEqual(perNode(port), {});
  const status = controller.status();
  t.true(status.active);
  t.is(status.plansCommitted, 3);
  t.is(status.lastError, undefined);
  controller.stop();
});

test('reports what does not fit and keeps the placement stable across rechecks', async (t) => {
  const { port, clock, controller } = setup({ nodeInstancesMax: 2 });
  await putBlueprint(port, 8);
  controller.start();
  await clock.advance(0);
  t.deepEqual(perNode(port), { 1: 2, 2: 2, 3: 2 });
  t.deepEqual(controller.status().unplaced, [{ blueprint: key, count: 2 }]);
  const revision = port.revision();
  await clock.advance(10_000);
  t.is(port.revision(), revision, 'no writes when nothing changes');
  controller.stop();
});

test('re-places a silent node’s instances only once it is silent past the timeout', async (t) => {
  const { port, clock, controller } = setup();
  await putBlueprint(port, 3);
  controller.start();
  await clock.advance(0);
  const onThree = port.kv.range(ASSIGNMENT_PREFIX).kvs.find((kv) => parseAssignmentKey(kv.key)!.nodeId === 3)!;
  const report = instanceKey(nodeId(3), base, '1.0.0', parseAssignmentKey(onThree.key)!.instanceId);
  write(port, [{ type: 'put', key: report, value: JSON.stringify({ state: 'ACTIVE', nodeId: 3, address: 'x:1' }) }]);
  port.setMembers(members({ 1: 0, 2: 0, 3: 14_000 }));
  await clock.advance(1000);
  port.setMembers(members({ 1: 0, 2: 0, 3: 15_000 }));
  await clock.advance(1000);
  t.deepEqual(perNode(port), { 1: 1, 2: 1, 3: 1 }, 'not down before the timeout');
  port.setMembers(members({ 1: 0, 2: 0, 3: 15_001 }));
  await clock.advance(999);
  t.deepEqual(perNode(port), { 1: 1, 2: 1, 3: 1 }, 'noticed on the next recheck, not before');
  await clock.advance(1);
  t.deepEqual(perNode(port), { 1: 2, 2: 1 });
  t.is(port.kv.get(onThree.key), undefined);
  t.is(port.kv.get(report), undefined, 'the down node’s report is deleted');
  controller.stop();
});

test('a member removed from the cluster loses its instances at once', async (t) => {
  const { port, clock, controller } = setup();
  write(port, [{ type: 'put', key: 'cluster/member/3', value: '{"id":3,"address":"127.0.0.1:7003"}' }]);
  await putBlueprint(port, 3);
  controller.start();
  await clock.advance(0);
  port.setMembers(members({ 1: 0, 2: 0 }));
  // A membership change shows in cluster/member/, which the controller watches.
  write(port, [{ type: 'delete', key: 'cluster/member/3' }]);
  await clock.advance(0);
  t.deepEqual(perNode(port), { 1: 2, 2: 1 });
  controller.stop();
});

test('stops when leadership is lost and resumes in the new term when regained', async (t) => {
  const { port, clock, controller } = setup();
  controller.start();
  await clock.advance(0);
  port.setLeader(false);
  t.false(controller.status().active);
  await putBlueprint(port, 2);
  await clock.advance(5000);
  t.deepEqual(perNode(port), {}, 'a follower places nothing');
  port.setLeader(true);
  await clock.advance(0);
  t.deepEqual(perNode(port), { 1: 1, 2: 1 });
  t.is(controller.status().term, port.term());
  t.is(JSON.parse(port.kv.get(PLACEMENT_GUARD_KEY)!.value).term, port.term());
  controller.stop();
  await putBlueprint(port, 3);
  await clock.advance(5000);
  t.deepEqual(perNode(port), { 1: 1, 2: 1 }, 'stop() ends everything');
});

/** A port that lets a test slip a write in just before the controller's next transaction. */
class InterferingPort extends MemoryClusterPort {
  before: (() => void) | undefined;
  txns = 0;

  override async txn(compare: readonly Compare[], success: readonly Operation[], failure: readonly Operation[] = []): Promise<TxnResult> {
    this.txns++;
    const before = this.before;
    this.before = undefined;
    before?.();
    return super.txn(compare, success, failure);
  }
}

test('a concurrent guard change fails the stale plan, which is re-read and planned again', async (t) => {
  const port = new InterferingPort();
  const { clock, controller } = setup({}, port);
  controller.start();
  await clock.advance(0);
  const claimed = port.kv.get(PLACEMENT_GUARD_KEY)!;
  // Another writer of the guard (an older leader's forwarded plan, say) lands first, with an
  // assignment of its own that the stale plan did not see.
  port.before = () => {
    write(port, [
      { type: 'put', key: PLACEMENT_GUARD_KEY, value: claimed.value },
      { type: 'put', key: `${ASSIGNMENT_PREFIX}2/${base}:1.0.0/other-0`, value: JSON.stringify({ nodeId: 2, base, version: '1.0.0', instanceId: 'other-0', term: 1, placedAt: 0 }) },
    ]);
  };
  await putBlueprint(port, 2);
  await clock.advance(0);
  const status = controller.status();
  t.is(status.conflicts, 1);
  t.deepEqual(perNode(port), { 1: 1, 2: 1 }, 'the re-plan counts the assignment it had missed');
  t.truthy(port.kv.get(`${ASSIGNMENT_PREFIX}2/${base}:1.0.0/other-0`));
  controller.stop();
});

test('a concurrent blueprint edit fails the plan made from the old count', async (t) => {
  const port = new InterferingPort();
  const { clock, controller } = setup({}, port);
  controller.start();
  await clock.advance(0);
  port.before = () => write(port, [{ type: 'put', key, value: formatBlueprint({ instances: 1 }) }]);
  await putBlueprint(port, 3);
  await clock.advance(0);
  t.is(controller.status().conflicts, 1);
  t.deepEqual(perNode(port), { 1: 1 });
  controller.stop();
});

test('a leader that finds a newer term in the guard never acts', async (t) => {
  const { port, clock, controller } = setup();
  write(port, [{ type: 'put', key: PLACEMENT_GUARD_KEY, value: JSON.stringify({ term: 99, leaderId: 2, planRevision: 0 }) }]);
  await putBlueprint(port, 3);
  controller.start();
  await clock.advance(3000);
  t.deepEqual(perNode(port), {});
  t.false(controller.status().active);
  controller.stop();
});

test('errors are logged, recorded and retried after a doubling back-off', async (t) => {
  let failuresLeft = 3;
  class FlakyPort extends MemoryClusterPort {
    attempts: number[] = [];
    constructor(private readonly clock: ManualClock) {
      super();
    }
    override async txn(compare: readonly Compare[], success: readonly Operation[], failure: readonly Operation[] = []): Promise<TxnResult> {
      this.attempts.push(this.clock.nowMs());
      if (failuresLeft-- > 0) throw Object.assign(new Error('timed out'), { code: 'TIMEOUT' });
      return super.txn(compare, success, failure);
    }
  }
  const clock = new ManualClock();
  const port = new FlakyPort(clock);
  port.setMembers(members({ 1: 0 }));
  const warnings: object[] = [];
  const logger = { ...silentLogger, warn: (obj: object) => warnings.push(obj), child: () => logger };
  const controller = new PlacementController({ port, clock, logger, retryDelayMsMin: 100, retryDelayMsMax: 250, recheckIntervalMs: 50 });
  await putBlueprint(port, 1);
  controller.start();
  await clock.advance(0);
  t.is(controller.status().lastError?.code, 'TIMEOUT');
  await clock.advance(1000);
  t.deepEqual(port.attempts, [0, 100, 300, 550], 'back-off 100, 200, then capped at 250; rechecks do not cut it short');
  t.deepEqual(perNode(port), { 1: 1 });
  t.is(warnings.length, 3);
  controller.stop();
});

test('bad settings are refused naming the setting', (t) => {
  const port = new MemoryClusterPort();
  const clock = new ManualClock();
  for (const [field, value] of [['nodeDownAfterMs', 0], ['nodeInstancesMax', 1.5], ['recheckIntervalMs', -1], ['txnOperationsMax', 3]] as const) {
    const error = t.throws(() => new PlacementController({ port, clock, logger: silentLogger, [field]: value }), { instanceOf: InvalidArgumentError });
    t.is(error.field, field);
  }
});

test('a large plan is split over several transactions within the KV limit', async (t) => {
  const { port, clock, controller } = setup({ txnOperationsMax: 10 });
  await putBlueprint(port, 40);
  controller.start();
  await clock.advance(0);
  t.deepEqual(perNode(port), { 1: 14, 2: 13, 3: 13 });
  t.true(controller.status().plansCommitted >= 6);
  t.is(port.kv.range(INSTANCE_PREFIX).kvs.length, 0);
  controller.stop();
});

test('a plan whose outcome was unknown (timed out, applied later) cannot apply twice', async (t) => {
  // The first transaction "times out" but stays in the log; it applies just before the retry's.
  class LatePort extends MemoryClusterPort {
    late: (() => void) | undefined;
    calls = 0;
    override async txn(compare: readonly Compare[], success: readonly Operation[], failure: readonly Operation[] = []): Promise<TxnResult> {
      this.calls++;
      if (this.calls === 2) {
        this.late = () => void super.txn(compare, success, failure);
        throw Object.assign(new Error('timed out'), { code: 'TIMEOUT' });
      }
      this.late?.();
      this.late = undefined;
      return super.txn(compare, success, failure);
    }
  }
  const port = new LatePort();
  const { clock, controller } = setup({}, port);
  controller.start();
  await clock.advance(0);
  await putBlueprint(port, 3);
  await clock.advance(0);
  t.is(controller.status().lastError?.code, 'TIMEOUT');
  t.deepEqual(perNode(port), {}, 'nothing applied yet');
  await clock.advance(1000);
  t.deepEqual(perNode(port), { 1: 1, 2: 1, 3: 1 }, 'the late plan applied, the retry planned on the same state lost its compare');
  t.is(controller.status().conflicts, 1);
  controller.stop();
});
