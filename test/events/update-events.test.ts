/**
 * The audit events of rolling updates (update-events.ts): every transition, routing change and
 * operator command writes its event in the same transaction as the change, with the right action,
 * actor and details, under a deterministic id; a retried commit writes one event.
 */
import test from 'ava';
import { EVENT_ACTIONS, EVENT_PREFIX, notifies, parseEvent, type StoredEvent } from '../../src/events/event.ts';
import { approveStep, cancelUpdate, completeUpdate, pauseUpdate, promoteUpdate, resumeUpdate, rollbackUpdate, setRouting, type CommandResult } from '../../src/updates/commands.ts';
import { commitTxn, nextStep } from '../../src/updates/decide.ts';
import { LOG_MAX, withLogEntry, type UpdateRecord } from '../../src/updates/record.ts';
import { addedEntries, entryAction, pendingApproval, updateEvents } from '../../src/updates/update-events.ts';
import { FakeCluster, HEALTHY, T0, health, pendingRecord } from '../updates/fixtures.ts';

const alice = { kind: 'user' as const, name: 'alice' };
const bob = { kind: 'user' as const, name: 'bob' };

/** The events in the fake store, in commit order (then id order within a commit). */
function events(cluster: FakeCluster): StoredEvent[] {
  const out: StoredEvent[] = [];
  for (const [key, stored] of cluster.kv) {
    if (!key.startsWith(EVENT_PREFIX)) continue;
    const parsed = parseEvent(key, stored.value, stored.modRevision);
    if (!parsed.ok) throw new Error(`${key}: ${parsed.reason}`);
    out.push(parsed.value);
  }
  return out.sort((a, b) => a.revision - b.revision || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

function actions(cluster: FakeCluster): string[] {
  return events(cluster).map((e) => `${e.action} ${e.actor.name}`);
}

/** Runs the controller's steps until `stop` holds or the update waits with nothing due; returns the time. */
function drive(cluster: FakeCluster, now: number, stop: (record: UpdateRecord) => boolean = () => false): number {
  for (let i = 0; i < 500; i++) {
    const { record, modRevision } = cluster.record();
    if (stop(record)) return now;
    const action = nextStep(record, cluster.facts(record), now);
    if (action.kind === 'wait') {
      if (action.wakeAt === null) return now;
      now = action.wakeAt;
      continue;
    }
    if (!cluster.apply(action, modRevision)) throw new Error(`commit ${action.step} lost its compare`);
  }
  throw new Error('drive did not stop');
}

function run(cluster: FakeCluster, result: CommandResult): void {
  if (result.kind !== 'commit') throw new Error(`expected a commit, got noop: ${result.reason}`);
  if (!cluster.apply(result, cluster.record().modRevision)) throw new Error('command lost its compare');
}

test('Start writes update.started by the operator who started it', (t) => {
  const record = pendingRecord({ strategy: 'CANARY' });
  const [started, ...rest] = updateEvents(undefined, record);
  t.deepEqual(rest, []);
  t.like(started, { id: `${T0}-u.u1.0`, at: T0, action: 'update.started', actor: alice, target: { artifact: 'org.example:greeter', updateId: 'u1', version: '2.0.0' } });
  t.like(started?.details, { step: 'start', oldVersion: '1.0.0', newVersion: '2.0.0', strategy: 'CANARY', state: 'PENDING' });
  t.true(started !== undefined && notifies(started));
});

test('a CANARY update run by the controller: every step is an event by the controller, routing changes carry the ratio, completion cleans up', (t) => {
  const cluster = new FakeCluster(pendingRecord({ strategy: 'CANARY', cleanupPolicy: 'IMMEDIATE' }));
  drive(cluster, T0);
  t.is(cluster.record().record.state, 'COMPLETED');
  t.deepEqual(actions(cluster), [
    'update.step controller',
    'update.step controller',
    'update.step controller',
    'update.step controller',
    'update.routing controller',
    'update.routing controller',
    'update.routing controller',
    'update.routing controller',
    'update.routing controller',
    'update.completing controller',
    'update.completed controller',
    'update.cleanup controller',
  ]);
  const all = events(cluster);
  t.deepEqual(
    all.filter((e) => e.action === 'update.step').map((e) => [e.details?.from, e.details?.to]),
    [
      ['PENDING', 'VALIDATING'],
      ['VALIDATING', 'DEPLOYING'],
      ['DEPLOYING', 'DEPLOYED'],
      ['DEPLOYED', 'ROUTING'],
    ],
  );
  t.deepEqual(
    all.filter((e) => e.action === 'update.routing').map((e) => e.details?.ratio),
    ['1:9', '1:3', '1:1', '3:1', '1:0'],
  );
  t.like(all.find((e) => e.action === 'update.routing')?.details, { newWeight: 1, oldWeight: 9, stepIndex: 1, stepsTotal: 5 });
  const cleanup = all.find((e) => e.action === 'update.cleanup');
  t.like(cleanup, { target: { version: '1.0.0', updateId: 'u1' }, details: { policy: 'IMMEDIATE', removedVersion: '1.0.0' } });
  // Ids sort by time, and two events of one commit still differ.
  t.is(new Set(all.map((e) => e.id)).size, all.length);
  t.deepEqual(
    all.map((e) => e.id),
    [...all.map((e) => e.id)].sort(),
  );
});

test('MANUAL cleanup completes without a cleanup event', (t) => {
  const cluster = new FakeCluster(pendingRecord({ strategy: 'BLUE_GREEN', cleanupPolicy: 'MANUAL' }));
  drive(cluster, T0);
  t.is(cluster.record().record.state, 'COMPLETED');
  t.false(events(cluster).some((e) => e.action === 'update.cleanup'));
  t.true(events(cluster).some((e) => e.action === 'update.completed'));
});

test('STAGED: approval is requested when a stage starts waiting, approved by the operator, then routed', (t) => {
  const cluster = new FakeCluster(pendingRecord({ strategy: 'STAGED', steps: [10, 50] }));
  const waiting = (r: UpdateRecord): boolean => r.state === 'ROUTING' && pendingApproval(r) !== undefined;
  let now = drive(cluster, T0, waiting);
  t.is(cluster.record().record.state, 'ROUTING');
  t.deepEqual(actions(cluster).slice(-2), ['update.approval-requested controller', 'update.step controller']);
  const requested = events(cluster).filter((e) => e.action === 'update.approval-requested');
  t.is(requested.length, 1, 'asked once, when DEPLOYED showed the first stage waiting');
  t.like(requested[0], { actor: { kind: 'system', name: 'controller' }, reason: 'step 1/3 (1:9) waits for an Approve', details: { stepIndex: 0, stepsTotal: 3 } });
  t.true(requested[0] !== undefined && notifies(requested[0]));
  t.is(pendingApproval(cluster.record().record), 0);
  run(cluster, approveStep(cluster.record().record, { actor: bob, nowMs: now, reason: 'dashboards green' }));
  now = drive(cluster, now, waiting);
  t.deepEqual(actions(cluster).slice(-3), ['update.approved bob', 'update.routing controller', 'update.approval-requested controller']);
  t.like(events(cluster).at(-1), { reason: 'step 2/3 (1:1) waits for an Approve' });
  t.like(events(cluster).at(-3), { reason: 'dashboards green' });
  run(cluster, promoteUpdate(cluster.record().record, { actor: alice, nowMs: now }));
  t.deepEqual(actions(cluster).slice(-1), ['update.promoted alice']);
});

test('the health gate: a breach pauses (actor health-gate, with the failing metrics), repeated breaches roll back automatically', (t) => {
  const cluster = new FakeCluster(pendingRecord({ strategy: 'CANARY' }));
  let now = drive(cluster, T0, (r) => r.stepIndex === 2);
  cluster.health = health(1000, 0.2, 900);
  now = drive(cluster, now, (r) => r.state === 'ROLLED_BACK');
  const all = events(cluster);
  const paused = all.find((e) => e.action === 'update.paused');
  t.like(paused, { actor: { kind: 'system', name: 'health-gate' } });
  t.true(paused !== undefined && notifies(paused), 'a pause by the health gate notifies');
  t.like(paused?.details?.evidence, { consecutiveBreaches: 1, failureThreshold: 3, thresholds: { maxErrorRate: 0.01, maxLatencyMs: 500 }, metrics: { requestCount: 1000, errorCount: 200, errorRate: 0.2, p99LatencyMs: 900 } });
  const breaches = all.filter((e) => e.action === 'update.step' && e.details?.step === 'health breach');
  t.is(breaches.length, 1, 'the second counted breach, while paused');
  const rollback = all.find((e) => e.action === 'update.rollback-started');
  t.like(rollback, { actor: { kind: 'system', name: 'health-gate' }, details: { from: 'ROUTING', to: 'ROLLING_BACK', automatic: true, consecutiveBreaches: 3, failureThreshold: 3, routing: '0:1' } });
  const evidence = rollback?.details?.evidence as { reasons: string[] } | undefined;
  t.deepEqual(evidence?.reasons, ['error rate 20.00% above 1.00% (200 of 1000 calls)', 'p99 latency 900 ms above 500 ms']);
  t.regex(rollback?.reason ?? '', /^automatic rollback after 3\/3 consecutive breaches: error rate 20\.00%/);
  t.like(all.at(-1), { action: 'update.rolled-back', actor: { name: 'controller' }, details: { rolledBackCount: 4 } });
  t.true(now > T0);
});

test('health recovered is recorded as a step of the health gate', (t) => {
  const cluster = new FakeCluster(pendingRecord({ strategy: 'CANARY' }));
  let now = drive(cluster, T0, (r) => r.stepIndex === 1);
  cluster.health = health(1000, 0.2, 10);
  now = drive(cluster, now, (r) => r.paused);
  run(cluster, resumeUpdate(cluster.record().record, { actor: alice, nowMs: now }));
  cluster.health = HEALTHY;
  drive(cluster, now, (r) => r.healthGate.consecutiveBreaches === 0);
  t.deepEqual(actions(cluster).slice(-3), ['update.paused health-gate', 'update.resumed alice', 'update.step health-gate']);
  t.like(events(cluster).at(-1), { details: { step: 'health recovered' } });
});

test('operator commands: pause, resume, MANUAL routing, complete from a pause (two events, one transaction), by their operators', (t) => {
  const cluster = new FakeCluster(pendingRecord({ strategy: 'MANUAL' }));
  const now = drive(cluster, T0, (r) => r.state === 'ROUTING');
  run(cluster, setRouting(cluster.record().record, { newWeight: 1, oldWeight: 3 }, { actor: alice, nowMs: now, reason: 'canary by hand' }));
  t.deepEqual(actions(cluster).slice(-2), ['update.step controller', 'update.routing alice']);
  t.like(events(cluster).at(-1), { reason: 'canary by hand', details: { ratio: '1:3', newWeight: 1, oldWeight: 3 } });
  t.false('stepIndex' in (events(cluster).at(-1)?.details ?? {}));
  run(cluster, pauseUpdate(cluster.record().record, { actor: bob, nowMs: now, reason: 'lunch' }));
  const paused = events(cluster).at(-1);
  t.like(paused, { action: 'update.paused', actor: bob, reason: 'lunch' });
  t.false(paused !== undefined && notifies(paused), "an operator's pause does not notify");
  run(cluster, setRouting(cluster.record().record, { newWeight: 1, oldWeight: 0 }, { actor: alice, nowMs: now }));
  run(cluster, completeUpdate(cluster.record().record, { actor: alice, nowMs: now, reason: 'all good' }));
  t.deepEqual(actions(cluster).slice(-3), ['update.routing alice', 'update.resumed alice', 'update.completing alice']);
  const revisions = events(cluster)
    .slice(-2)
    .map((e) => e.revision);
  t.is(revisions[0], revisions[1], 'the resume and the completion committed together');
});

test('a manual rollback is not automatic; cancel and failed validation are their own actions', (t) => {
  const rolled = new FakeCluster(pendingRecord({ strategy: 'CANARY' }));
  const now = drive(rolled, T0, (r) => r.stepIndex === 1);
  run(rolled, rollbackUpdate(rolled.record().record, { actor: bob, nowMs: now, reason: 'customer reports' }));
  t.like(events(rolled).at(-1), { action: 'update.rollback-started', actor: bob, reason: 'customer reports', details: { automatic: false, consecutiveBreaches: 0 } });
  t.false('evidence' in (events(rolled).at(-1)?.details ?? {}));

  const cancelled = new FakeCluster(pendingRecord());
  run(cancelled, cancelUpdate(cancelled.record().record, { actor: alice, nowMs: T0 }));
  t.deepEqual(actions(cancelled), ['update.cancelled alice']);

  const failed = new FakeCluster(pendingRecord());
  failed.validation = { ok: false, blockers: ['INCOMPATIBLE_VERSION: 2.0.0 drops an operation'] };
  drive(failed, T0);
  t.deepEqual(actions(failed), ['update.step controller', 'update.failed controller']);
  t.regex(events(failed).at(-1)?.reason ?? '', /INCOMPATIBLE_VERSION/);
});

test('ids are deterministic: the same commit computes the same keys, and a retried commit writes one event', (t) => {
  const cluster = new FakeCluster(pendingRecord({ strategy: 'CANARY' }));
  const { record, modRevision } = cluster.record();
  const step = nextStep(record, cluster.facts(record), T0);
  if (step.kind !== 'commit') return t.fail('expected a commit');
  t.deepEqual(commitTxn(step, modRevision), commitTxn(nextStep(record, cluster.facts(record), T0) as typeof step, modRevision));
  t.true(cluster.apply(step, modRevision));
  t.false(cluster.apply(step, modRevision), 'the retry loses its compare');
  t.deepEqual(
    events(cluster).map((e) => e.id),
    [`${T0}-u.u1.1`],
  );
  // A step computed again after another writer won is computed from the newer record: new sequence numbers.
  const after = cluster.record();
  const next = nextStep(after.record, cluster.facts(after.record), T0);
  if (next.kind !== 'commit') return t.fail('expected a commit');
  t.true(cluster.apply(next, after.modRevision));
  t.deepEqual(
    events(cluster).map((e) => e.id),
    [`${T0}-u.u1.1`, `${T0}-u.u1.2`],
  );
});

test('sequence numbers count dropped log entries, so ids stay unique once the log is cut', (t) => {
  let record = pendingRecord();
  for (let i = 0; i < LOG_MAX + 5; i++) record = withLogEntry(record, { step: 'health breach', at: T0 + i, actor: alice, reason: `r${i}` });
  t.is(record.logDropped, 6);
  const next = withLogEntry(record, { step: 'pause', at: T0 + 1000, actor: alice, reason: 'stop' });
  t.deepEqual(addedEntries(record, next), [{ seq: LOG_MAX + 6, entry: next.log.at(-1)! }]);
  t.deepEqual(
    updateEvents(record, next).map((e) => e.id),
    [`${T0 + 1000}-u.u1.${LOG_MAX + 6}`],
  );
  t.deepEqual(updateEvents(record, record), []);
});

test('every log step maps to an action; every update action is produced by some step', (t) => {
  const table: [string, string][] = [
    ['start', 'update.started'],
    ['PENDING -> VALIDATING', 'update.step'],
    ['DEPLOYED -> ROUTING', 'update.step'],
    ['ROUTING -> ROLLING_BACK', 'update.rollback-started'],
    ['VALIDATING -> ROLLING_BACK', 'update.rollback-started'],
    ['ROLLING_BACK -> ROLLED_BACK', 'update.rolled-back'],
    ['ROUTING -> COMPLETING', 'update.completing'],
    ['COMPLETING -> COMPLETED', 'update.completed'],
    ['PENDING -> CANCELLED', 'update.cancelled'],
    ['ROLLING_BACK -> FAILED', 'update.failed'],
    ['route 1:3', 'update.routing'],
    ['route 1:3 (step 2/5)', 'update.routing'],
    ['pause', 'update.paused'],
    ['resume', 'update.resumed'],
    ['approve step 2/5 (1:3)', 'update.approved'],
    ['promote to step 5/5', 'update.promoted'],
    ['health breach', 'update.step'],
    ['health recovered', 'update.step'],
    ['repair routing', 'update.step'],
    ['new instances ACTIVE', 'update.step'],
    ['rollback to revision 3', 'update.step'],
    ['a step a newer Cutover logs', 'update.step'],
  ];
  for (const [step, action] of table) t.is(entryAction(step).action as string, action, step);
  t.deepEqual(entryAction('rollback to revision 3').details, { rollbackOfRevision: 3 });
  const produced = new Set<string>([...table.map(([, action]) => action), 'update.approval-requested', 'update.cleanup']);
  for (const action of EVENT_ACTIONS.filter((a) => a.startsWith('update.'))) t.true(produced.has(action), `${action} is produced`);
});

test('a breach by failing health checks records the failing instances in the evidence', (t) => {
  const cluster = new FakeCluster(pendingRecord({ strategy: 'CANARY' }));
  const now = drive(cluster, T0, (r) => r.stepIndex === 1);
  const { record, modRevision } = cluster.record();
  const facts = cluster.facts(record);
  const step = nextStep(record, { ...facts, health: undefined, newInstances: { ...facts.newInstances, unhealthy: ['n0: http GET /health answered 503'] } }, now);
  if (step.kind !== 'commit') return t.fail(`expected a commit, got ${step.reason}`);
  t.true(cluster.apply(step, modRevision));
  const paused = events(cluster).at(-1);
  t.like(paused, { action: 'update.paused', actor: { name: 'health-gate' } });
  t.like(paused?.details?.evidence, { metrics: null, failingChecks: { count: 1, instances: ['n0: http GET /health answered 503'] } });
});
