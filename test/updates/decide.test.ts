import test, { type ExecutionContext } from 'ava';
import { parseRoutingRecord } from '../../src/invoker/records.ts';
import { approveStep, cancelUpdate, completeUpdate, pauseUpdate, promoteUpdate, resumeUpdate, rollbackUpdate, setRouting, type CommandResult } from '../../src/updates/commands.ts';
import { commitTxn, nextStep, routingValue, type Action } from '../../src/updates/decide.ts';
import { updateKey, type UpdateRecord } from '../../src/updates/record.ts';
import { parseRatio, reduceRatio } from '../../src/updates/request.ts';
import { InvalidTransitionError } from '../../src/updates/transitions.ts';
import { CutoverError } from '../../src/util/errors.ts';
import { BASE, FakeCluster, health, pendingRecord, T0 } from './fixtures.ts';

const alice = { kind: 'user' as const, name: 'alice' };

interface Drive {
  now: number;
  record: UpdateRecord;
  action: Action;
}

/**
 * Runs the controller loop on `cluster` from `now`: read the record and the facts, take
 * `nextStep`, commit it or sleep until its wake-up time, until `stop` holds or the record is
 * terminal. At every step it checks what a leader crash would do:
 * - before the commit: a new leader computes the same action from the same stored state;
 * - a stale leader retrying the same transaction fails its compare;
 * - after the commit: the next leader, reading the advanced record (with fresh facts, and with
 *   the facts from before the commit), never computes the same step again.
 */
function drive(t: ExecutionContext, cluster: FakeCluster, now: number, stop: (d: Drive) => boolean = () => false, maxIterations = 1000): Drive {
  for (let i = 0; i < maxIterations; i++) {
    const { record, modRevision } = cluster.record();
    const facts = cluster.facts(record);
    const action = nextStep(record, facts, now);
    t.deepEqual(nextStep(record, facts, now), action, 'deterministic');
    if (stop({ now, record, action })) return { now, record, action };
    if (action.kind === 'wait') {
      if (action.wakeAt === null) return { now, record, action };
      t.true(action.wakeAt > now, `wait wakes up later: ${action.reason}`);
      now = action.wakeAt;
      continue;
    }
    t.true(cluster.apply(action, modRevision), `commit ${action.step}`);
    t.false(cluster.apply(action, modRevision), 'a stale leader cannot commit the same step again');
    const after = cluster.record().record;
    for (const seen of [cluster.facts(after), ...(action.step === 'repair routing' ? [] : [facts])]) {
      const again = nextStep(after, seen, now);
      t.false(again.kind === 'commit' && again.step === action.step, `step ${action.step} repeated`);
    }
    if (after.routing !== null && after.state !== 'COMPLETED' && after.state !== 'ROLLED_BACK' && after.state !== 'FAILED') {
      t.deepEqual(reduceRatio(cluster.routing()!), reduceRatio(after.routing), `routing stored with ${action.step}`);
    }
  }
  t.fail('drive did not stop');
  return { now, record: cluster.record().record, action: { kind: 'wait', wakeAt: null, reason: 'limit' } };
}

function run(t: ExecutionContext, cluster: FakeCluster, result: CommandResult): void {
  t.is(result.kind, 'commit');
  if (result.kind === 'commit') t.true(cluster.apply(result, cluster.record().modRevision));
}

const completed = (d: Drive): boolean => d.record.state === 'COMPLETED';
const waitingFor = (pattern: RegExp) => (d: Drive): boolean => d.action.kind === 'wait' && pattern.test(d.action.reason);

function stepTimes(record: UpdateRecord): Record<string, number> {
  return Object.fromEntries(record.log.map((entry) => [entry.step, (entry.at - T0) / 1000]));
}

test('CANARY walks PENDING to COMPLETED: canary share, weight steps held for batchDelay, 100%, monitoring, grace cleanup at its deadline', (t) => {
  const cluster = new FakeCluster(pendingRecord({ strategy: 'CANARY', batchDelaySeconds: 60, monitoringSeconds: 120, gracePeriodSeconds: 300 }));
  const end = drive(t, cluster, T0, completed);
  t.deepEqual(cluster.steps, [
    'PENDING -> VALIDATING',
    'VALIDATING -> DEPLOYING',
    'DEPLOYING -> DEPLOYED',
    'DEPLOYED -> ROUTING',
    'route 1:9 (step 1/5)',
    'route 1:3 (step 2/5)',
    'route 1:1 (step 3/5)',
    'route 3:1 (step 4/5)',
    'route 1:0 (step 5/5)',
    'ROUTING -> COMPLETING',
    'COMPLETING -> COMPLETED',
  ]);
  t.like(stepTimes(end.record), { 'route 1:9 (step 1/5)': 0, 'route 1:3 (step 2/5)': 60, 'route 1:0 (step 5/5)': 240, 'ROUTING -> COMPLETING': 360, 'COMPLETING -> COMPLETED': 660 });
  t.deepEqual(cluster.routing(), { newWeight: 1, oldWeight: 0 }, 'the routing record stays at 1:0');
  t.is(cluster.blueprintCount(BASE, '2.0.0'), 4);
  t.is(cluster.blueprintCount(BASE, '1.0.0'), undefined, 'old version removed by the cleanup');
  t.is(end.action.kind, 'wait');
  t.like(end.record, { state: 'COMPLETED', paused: false, stepIndex: 5 });
});

test('ROLLING walks in batches: each step routes by the new instances ACTIVE and starts the next batch; the old set stays until cleanup', (t) => {
  const cluster = new FakeCluster(pendingRecord({ strategy: 'ROLLING', batchSize: 2, maxUnavailablePercentage: 50, batchDelaySeconds: 30, monitoringSeconds: 60, cleanupPolicy: 'IMMEDIATE' }), 8);
  const counts: string[] = [];
  drive(t, cluster, T0, (d) => {
    counts.push(`${d.record.stepIndex}:${cluster.blueprintCount(BASE, '2.0.0') ?? 0}`);
    return completed(d);
  });
  t.deepEqual(cluster.steps, [
    'PENDING -> VALIDATING',
    'VALIDATING -> DEPLOYING',
    'DEPLOYING -> DEPLOYED',
    'DEPLOYED -> ROUTING',
    'route 1:3 (step 1/4)',
    'new instances ACTIVE',
    'route 1:1 (step 2/4)',
    'new instances ACTIVE',
    'route 3:1 (step 3/4)',
    'new instances ACTIVE',
    'route 1:0 (step 4/4)',
    'ROUTING -> COMPLETING',
    'COMPLETING -> COMPLETED',
  ]);
  t.true(counts.includes('0:2') && counts.includes('1:4') && counts.includes('2:6') && counts.includes('3:8'), counts.join(' '));
  t.is(cluster.blueprintCount(BASE, '1.0.0'), undefined);
});

test('ROLLING: a batch that does not become ACTIVE by its deadline rolls the update back', (t) => {
  const cluster = new FakeCluster(pendingRecord({ strategy: 'ROLLING', batchSize: 2, maxUnavailablePercentage: 50, deployTimeoutSeconds: 120 }), 8);
  cluster.newCap = 3;
  const end = drive(t, cluster, T0, (d) => d.record.state === 'ROLLED_BACK');
  t.true(cluster.steps.includes('route 1:3 (step 1/4)'));
  t.true(cluster.steps.includes('ROUTING -> ROLLING_BACK'));
  t.regex(end.record.rollback?.reason ?? '', /deploy timed out: 3 of 4 new instances ACTIVE/);
  t.is((end.record.rollback!.initiatedAt - T0) / 1000, 120, 'at the batch deadline');
});

test('BLUE_GREEN: full new set at 0%, one switch to 100%', (t) => {
  const cluster = new FakeCluster(pendingRecord({ strategy: 'BLUE_GREEN', monitoringSeconds: 60, cleanupPolicy: 'MANUAL' }));
  const routings: string[] = [];
  drive(t, cluster, T0, (d) => {
    const r = cluster.routing();
    if (r !== undefined && routings.at(-1) !== `${r.newWeight}:${r.oldWeight}`) routings.push(`${r.newWeight}:${r.oldWeight}`);
    return completed(d);
  });
  t.deepEqual(routings, ['0:1', '1:0']);
  t.deepEqual(cluster.steps.slice(3), ['DEPLOYED -> ROUTING', 'route 1:0 (step 1/1)', 'ROUTING -> COMPLETING', 'COMPLETING -> COMPLETED']);
  t.is(cluster.blueprintCount(BASE, '1.0.0'), 4, 'cleanup MANUAL keeps the old version');
});

test('RECREATE: DEPLOYING stops the old set and routes 1:0 in one transaction; never mixed routing', (t) => {
  const cluster = new FakeCluster(pendingRecord({ strategy: 'RECREATE', monitoringSeconds: 0, cleanupPolicy: 'IMMEDIATE' }));
  drive(t, cluster, T0, (d) => d.record.state === 'DEPLOYING');
  t.is(cluster.blueprintCount(BASE, '1.0.0'), 0);
  t.is(cluster.blueprintCount(BASE, '2.0.0'), 4);
  t.deepEqual(cluster.routing(), { newWeight: 1, oldWeight: 0 });
  drive(t, cluster, T0, completed);
  t.deepEqual(cluster.steps.slice(2), ['DEPLOYING -> DEPLOYED', 'DEPLOYED -> ROUTING', 'route 1:0 (step 1/1)', 'ROUTING -> COMPLETING', 'COMPLETING -> COMPLETED']);
  t.is(cluster.blueprintCount(BASE, '1.0.0'), undefined);
});

test('RECREATE rollback restores the old blueprint with routing 0:1 in the same transaction', (t) => {
  const cluster = new FakeCluster(pendingRecord({ strategy: 'RECREATE', deployTimeoutSeconds: 60 }));
  cluster.newCap = 0;
  const rolling = drive(t, cluster, T0, (d) => d.record.state === 'ROLLING_BACK');
  t.is(cluster.steps.at(-1), 'DEPLOYING -> ROLLING_BACK');
  t.is(cluster.blueprintCount(BASE, '1.0.0'), 4);
  t.deepEqual(cluster.routing(), { newWeight: 0, oldWeight: 1 });
  t.regex(rolling.record.rollback!.reason, /deploy timed out: 0 of 4/);
  t.deepEqual(rolling.record.rollback!.initiatedBy, { kind: 'system', name: 'controller' });
  drive(t, cluster, rolling.now, (d) => d.record.state === 'ROLLED_BACK');
  t.is(cluster.blueprintCount(BASE, '2.0.0'), undefined);
});

test('STAGED: each stage waits for an Approve; approvals are checked against the next step', (t) => {
  const cluster = new FakeCluster(pendingRecord({ strategy: 'STAGED', steps: [10, 50], monitoringSeconds: 0, cleanupPolicy: 'IMMEDIATE' }));
  let d = drive(t, cluster, T0, waitingFor(/waits for an Approve/));
  t.like(d.record, { state: 'ROUTING', stepIndex: 0 });
  t.is(cluster.routing()?.newWeight, 0);
  const wrong = t.throws(() => approveStep(d.record, { actor: alice, nowMs: d.now, stepIndex: 1 }), { instanceOf: CutoverError });
  t.is(wrong.code, 'NOTHING_TO_APPROVE');
  for (const stage of ['1:9', '1:1', '1:0']) {
    run(t, cluster, approveStep(cluster.record().record, { actor: alice, nowMs: d.now, stepIndex: cluster.record().record.stepIndex }));
    t.is(approveStep(cluster.record().record, { actor: alice, nowMs: d.now }).kind, 'noop', 'approving twice is harmless');
    d = drive(t, cluster, d.now + 5000, (x) => waitingFor(/waits for an Approve/)(x) || completed(x));
    t.is(cluster.steps.filter((s) => s.startsWith('route ')).at(-1)?.split(' ')[1], stage);
  }
  t.is(d.record.state, 'COMPLETED');
  t.regex(d.record.log.find((e) => e.step === 'route 1:9 (step 1/3)')!.reason, /approved by alice/);
});

test('requireManualApproval makes every CANARY step wait for an Approve', (t) => {
  const cluster = new FakeCluster(pendingRecord({ strategy: 'CANARY', requireManualApproval: true, batchDelaySeconds: 0 }));
  const d = drive(t, cluster, T0, waitingFor(/waits for an Approve/));
  t.is(d.record.stepIndex, 0);
  run(t, cluster, approveStep(d.record, { actor: alice, nowMs: d.now }));
  const next = drive(t, cluster, d.now, waitingFor(/waits for an Approve/));
  t.is(next.record.stepIndex, 1);
});

test('MANUAL: the operator sets the ratio; complete needs 1:0', (t) => {
  const cluster = new FakeCluster(pendingRecord({ gracePeriodSeconds: 60 }));
  const d = drive(t, cluster, T0, (x) => x.record.state === 'ROUTING' && x.action.kind === 'wait');
  t.regex((d.action as { reason: string }).reason, /MANUAL/);
  for (const ratio of ['1:3', '1:1']) {
    run(t, cluster, setRouting(cluster.record().record, parseRatio(ratio), { actor: alice, nowMs: d.now }));
    t.deepEqual(cluster.routing(), parseRatio(ratio));
  }
  t.is(setRouting(cluster.record().record, parseRatio('1:1'), { actor: alice, nowMs: d.now }).kind, 'noop');
  const early = t.throws(() => completeUpdate(cluster.record().record, { actor: alice, nowMs: d.now }), { instanceOf: CutoverError });
  t.is(early.code, 'ROUTING_INCOMPLETE');
  t.regex(early.message, /complete needs routing 1:0, it is 1:1/);
  run(t, cluster, setRouting(cluster.record().record, parseRatio('1:0'), { actor: alice, nowMs: d.now }));
  run(t, cluster, completeUpdate(cluster.record().record, { actor: alice, nowMs: d.now + 1000 }));
  t.is(completeUpdate(cluster.record().record, { actor: alice, nowMs: d.now }).kind, 'noop');
  const waiting = nextStep(cluster.record().record, cluster.facts(cluster.record().record), d.now + 1000);
  t.like(waiting, { kind: 'wait', wakeAt: d.now + 1000 + 10_000 }, 'the health wake-up comes before the grace deadline');
  const end = drive(t, cluster, d.now + 1000, completed);
  t.is(end.now, d.now + 1000 + 60_000, 'old version removed exactly at the grace deadline');
  t.is(cluster.blueprintCount(BASE, '1.0.0'), undefined);
});

test('SetRouting and Promote belong to their strategies', (t) => {
  const canary = new FakeCluster(pendingRecord({ strategy: 'CANARY' }));
  const d = drive(t, canary, T0, (x) => x.record.state === 'ROUTING');
  t.is(t.throws(() => setRouting(d.record, parseRatio('1:1'), { actor: alice, nowMs: d.now }), { instanceOf: CutoverError }).code, 'STRATEGY_MISMATCH');
  const manual = new FakeCluster(pendingRecord());
  const m = drive(t, manual, T0, (x) => x.record.state === 'ROUTING');
  t.is(t.throws(() => promoteUpdate(m.record, { actor: alice, nowMs: m.now }), { instanceOf: CutoverError }).code, 'STRATEGY_MISMATCH');
  const deploying = new FakeCluster(pendingRecord());
  const p = drive(t, deploying, T0, (x) => x.record.state === 'DEPLOYING');
  t.is(t.throws(() => setRouting(p.record, parseRatio('1:1'), { actor: alice, nowMs: p.now }), { instanceOf: CutoverError }).code, 'UPDATE_NOT_ROUTING');
});

test('Promote skips to 100%: no hold, approved by the promoter; ROLLING starts the remaining instances in the same transaction', (t) => {
  const cluster = new FakeCluster(pendingRecord({ strategy: 'ROLLING', batchSize: 2, maxUnavailablePercentage: 50, batchDelaySeconds: 600, requireManualApproval: true }), 8);
  let d = drive(t, cluster, T0, waitingFor(/waits for an Approve/));
  run(t, cluster, approveStep(d.record, { actor: alice, nowMs: d.now }));
  d = drive(t, cluster, d.now, (x) => x.record.stepIndex === 1 && x.action.kind === 'wait');
  t.is(cluster.blueprintCount(BASE, '2.0.0'), 4);
  run(t, cluster, promoteUpdate(cluster.record().record, { actor: alice, nowMs: d.now }));
  t.is(cluster.blueprintCount(BASE, '2.0.0'), 8);
  d = drive(t, cluster, d.now, (x) => x.record.stepIndex === 4 && x.action.kind === 'wait');
  t.deepEqual(cluster.steps.filter((s) => s.startsWith('route ')), ['route 1:3 (step 1/4)', 'route 1:0 (step 4/4)']);
  t.regex(d.record.log.find((e) => e.step === 'route 1:0 (step 4/4)')!.reason, /approved by alice/);
  t.is(promoteUpdate(d.record, { actor: alice, nowMs: d.now }).kind, 'noop', 'every step applied');
  t.is(drive(t, cluster, d.now, completed).record.state, 'COMPLETED');
});

test('health: a breach pauses progression with its reason; failureThreshold consecutive breaches roll back with routing 0:1 first', (t) => {
  const cluster = new FakeCluster(pendingRecord({ strategy: 'CANARY', batchDelaySeconds: 60 }));
  const atStep2 = drive(t, cluster, T0, (d) => d.record.stepIndex === 2);
  cluster.health = health(400, 0.08, 100);
  const paused = drive(t, cluster, atStep2.now, (d) => d.record.paused);
  t.regex(paused.record.pauseReason!, /^health breach 1\/3 consecutive breaches: error rate 8.00% above 1.00%/);
  const rolling = drive(t, cluster, paused.now, (d) => d.record.state === 'ROLLING_BACK');
  t.deepEqual(cluster.routing(), { newWeight: 0, oldWeight: 1 }, 'routing 0:1 committed with the transition');
  t.is(cluster.blueprintCount(BASE, '2.0.0'), 4, 'new instances still there until the old set is confirmed ACTIVE');
  t.is(rolling.now - paused.now, 20_000, 'third breach two intervals after the first');
  t.false(cluster.steps.some((s) => s.startsWith('route 1:1')), 'no routing step while breaching');
  t.deepEqual(cluster.steps.slice(-3), ['health breach: pause', 'health breach', 'ROUTING -> ROLLING_BACK']);
  const info = rolling.record.rollback!;
  t.like(info, { initiatedBy: { kind: 'system', name: 'health-gate' }, currentFailures: 3, initiatedAt: rolling.now });
  t.regex(info.reason, /^automatic rollback after 3\/3 consecutive breaches: error rate 8.00%/);
  const done = drive(t, cluster, rolling.now, (d) => d.record.state === 'ROLLED_BACK');
  t.is(cluster.blueprintCount(BASE, '2.0.0'), undefined);
  t.deepEqual(done.record.rollback!.rolledBackInstances, ['n0', 'n1', 'n2', 'n3']);
  t.is(done.record.rollback!.rolledBackCount, 4);
  t.deepEqual(cluster.steps.slice(-1), ['ROLLING_BACK -> ROLLED_BACK']);
});

test('health: injected latency rolls back too; a healthy window resets the count but keeps the pause', (t) => {
  const cluster = new FakeCluster(pendingRecord({ strategy: 'BLUE_GREEN', monitoringSeconds: 600 }));
  const routed = drive(t, cluster, T0, (d) => d.record.stepIndex === 1);
  cluster.health = health(400, 0, 900);
  const twice = drive(t, cluster, routed.now, (d) => d.record.healthGate.consecutiveBreaches === 2);
  cluster.health = health(400, 0, 100);
  const healed = drive(t, cluster, twice.now, (d) => d.record.healthGate.consecutiveBreaches === 0);
  t.true(healed.record.paused, 'an operator resumes after a breach');
  t.is(cluster.steps.at(-1), 'health recovered');
  cluster.health = health(400, 0, 900);
  const rolled = drive(t, cluster, healed.now, (d) => d.record.state === 'ROLLING_BACK');
  t.regex(rolled.record.rollback!.reason, /p99 latency 900 ms above 500 ms/);
  t.is(rolled.now - healed.now, 20_000, 'the count started again from 0');
});

test('health: too little traffic is not a breach; with auto-rollback off breaches only pause', (t) => {
  const quiet = new FakeCluster(pendingRecord({ strategy: 'CANARY', batchDelaySeconds: 10, monitoringSeconds: 10, cleanupPolicy: 'IMMEDIATE' }));
  quiet.health = health(5, 1, 9000);
  drive(t, quiet, T0, completed);
  t.false(quiet.steps.some((s) => s.startsWith('health')));
  const manualOnly = new FakeCluster(pendingRecord({ strategy: 'CANARY', autoRollbackEnabled: false }));
  const routed = drive(t, manualOnly, T0, (d) => d.record.stepIndex === 1);
  manualOnly.health = health(100, 0.5, 10);
  const late = drive(t, manualOnly, routed.now, (d) => d.now >= routed.now + 600_000);
  t.like(late.record, { state: 'ROUTING', paused: true, stepIndex: 1 });
  t.true(late.record.healthGate.consecutiveBreaches >= 60);
});

test('pause stops progression and resume continues from the same step', (t) => {
  const cluster = new FakeCluster(pendingRecord({ strategy: 'CANARY', batchDelaySeconds: 60 }));
  const d = drive(t, cluster, T0, (x) => x.record.stepIndex === 2);
  run(t, cluster, pauseUpdate(d.record, { actor: alice, nowMs: d.now, reason: 'checking dashboards' }));
  t.is(pauseUpdate(cluster.record().record, { actor: alice, nowMs: d.now, reason: 'checking dashboards' }).kind, 'noop');
  const later = drive(t, cluster, d.now, (x) => x.now >= d.now + 3_600_000);
  t.like(later.record, { stepIndex: 2, paused: true, pauseReason: 'checking dashboards' });
  t.regex((later.action as { reason: string }).reason, /^paused: checking dashboards/);
  run(t, cluster, resumeUpdate(later.record, { actor: alice, nowMs: later.now }));
  t.is(resumeUpdate(cluster.record().record, { actor: alice, nowMs: later.now }).kind, 'noop');
  drive(t, cluster, later.now, (x) => x.record.stepIndex === 3);
  t.deepEqual(cluster.steps.slice(-3), ['pause', 'resume', 'route 1:1 (step 3/5)']);
});

test('operator Rollback commits routing 0:1 in its own transaction; the rollback waits for the old set, then stops the new one', (t) => {
  const cluster = new FakeCluster(pendingRecord({ strategy: 'CANARY' }));
  const d = drive(t, cluster, T0, (x) => x.record.stepIndex === 3);
  const result = rollbackUpdate(d.record, { actor: alice, nowMs: d.now, reason: 'customer reports' });
  t.is(result.kind, 'commit');
  if (result.kind !== 'commit') return;
  const txn = commitTxn(result, cluster.record().modRevision);
  t.deepEqual(txn.compare, [{ key: updateKey('u1'), target: 'modRevision', op: '=', value: cluster.record().modRevision }]);
  t.deepEqual(txn.success.map((op) => `${op.type} ${'key' in op ? op.key : ''}`), ['put rolling-update/u1', 'put version-routing/org.example:greeter', 'put event/1700000120000-u.u1.8']);
  run(t, cluster, result);
  t.deepEqual(cluster.routing(), { newWeight: 0, oldWeight: 1 });
  t.is(rollbackUpdate(cluster.record().record, { actor: alice, nowMs: d.now }).kind, 'noop');
  t.like(cluster.record().record.rollback, { reason: 'customer reports', initiatedBy: alice, currentFailures: 0 });
  cluster.oldCap = 2;
  const waiting = drive(t, cluster, d.now, (x) => x.action.kind === 'wait');
  t.regex((waiting.action as { reason: string }).reason, /waiting for 4 old instances ACTIVE \(2 are\)/);
  cluster.oldCap = Number.POSITIVE_INFINITY;
  drive(t, cluster, waiting.now, (x) => x.record.state === 'ROLLED_BACK');
  t.is(cluster.blueprintCount(BASE, '2.0.0'), undefined);
});

test('rollback restore deadline: a partial old set finishes the rollback; none at all ends FAILED with the new version kept', (t) => {
  for (const [cap, state] of [[2, 'ROLLED_BACK'], [0, 'FAILED']] as const) {
    const cluster = new FakeCluster(pendingRecord({ strategy: 'CANARY', deployTimeoutSeconds: 30 }));
    const d = drive(t, cluster, T0, (x) => x.record.stepIndex === 1);
    cluster.oldCap = cap;
    run(t, cluster, rollbackUpdate(d.record, { actor: alice, nowMs: d.now }));
    const end = drive(t, cluster, d.now, (x) => x.record.state === state);
    t.is(end.now - d.now, 30_000, 'at the restore deadline');
    t.is(cluster.blueprintCount(BASE, '2.0.0'), state === 'FAILED' ? 4 : undefined);
    t.deepEqual(cluster.routing(), { newWeight: 0, oldWeight: 1 });
  }
});

test('DEPLOYED only once the new instances are ACTIVE; a deploy past its deadline rolls back', (t) => {
  const cluster = new FakeCluster(pendingRecord({ strategy: 'BLUE_GREEN', deployTimeoutSeconds: 300 }));
  cluster.newCap = 3;
  const d = drive(t, cluster, T0, (x) => x.record.state === 'DEPLOYING' && x.action.kind === 'wait');
  t.like(d.action, { kind: 'wait', wakeAt: T0 + 300_000 });
  t.regex((d.action as { reason: string }).reason, /waiting for 4 new instances ACTIVE \(3 are\)/);
  t.deepEqual(cluster.routing(), { newWeight: 0, oldWeight: 1 }, 'the new instances get no calls while deploying');
  cluster.newCap = 4;
  drive(t, cluster, T0 + 1000, (x) => x.record.state === 'DEPLOYED');
  t.is(cluster.steps.at(-1), 'DEPLOYING -> DEPLOYED');
});

test('validation: pending waits without a deadline; blockers fail the update naming them; zero instances fail', (t) => {
  const cluster = new FakeCluster(pendingRecord());
  cluster.validation = undefined;
  const d = drive(t, cluster, T0);
  t.like(d, { record: { state: 'VALIDATING' }, action: { kind: 'wait', wakeAt: null, reason: 'waiting for validation' } });
  cluster.validation = { ok: false, blockers: ['2.0.0 is not published', 'minCompatibleVersion 1.5.0 does not admit 1.0.0'] };
  const failed = drive(t, cluster, T0);
  t.is(failed.record.state, 'FAILED');
  t.regex(failed.record.log.at(-1)!.reason, /validation blocked: 2.0.0 is not published; minCompatibleVersion 1.5.0/);
  t.is(cluster.routing(), undefined, 'nothing written');
  const empty = new FakeCluster(pendingRecord(), 0);
  t.is(drive(t, empty, T0).record.state, 'FAILED');
});

test('Cancel: only before anything is deployed', (t) => {
  const pending = new FakeCluster(pendingRecord());
  run(t, pending, cancelUpdate(pending.record().record, { actor: alice, nowMs: T0 }));
  t.is(pending.record().record.state, 'CANCELLED');
  t.is(cancelUpdate(pending.record().record, { actor: alice, nowMs: T0 }).kind, 'noop');
  t.like(drive(t, pending, T0).action, { kind: 'wait', wakeAt: null });
  const routing = new FakeCluster(pendingRecord());
  const d = drive(t, routing, T0, (x) => x.record.state === 'ROUTING');
  const error = t.throws(() => cancelUpdate(d.record, { actor: alice, nowMs: d.now }), { instanceOf: InvalidTransitionError });
  t.deepEqual([error.code, error.from, error.to], ['INVALID_TRANSITION', 'ROUTING', 'CANCELLED']);
});

test('a routing record changed behind the update is repaired', (t) => {
  const cluster = new FakeCluster(pendingRecord({ strategy: 'CANARY' }));
  const d = drive(t, cluster, T0, (x) => x.record.stepIndex === 2);
  cluster.kv.delete('version-routing/org.example:greeter');
  drive(t, cluster, d.now, (x) => x.record.log.at(-1)?.step === 'repair routing');
  t.deepEqual(cluster.routing(), { newWeight: 1, oldWeight: 3 });
  cluster.put('version-routing/org.example:greeter', JSON.stringify({ updateId: 'other', oldVersion: '1.0.0', newVersion: '2.0.0', newWeight: 1, oldWeight: 3 }));
  drive(t, cluster, d.now, (x) => x.record.log.filter((e) => e.step === 'repair routing').length === 2);
  t.is(JSON.parse(cluster.get('version-routing/org.example:greeter')!).updateId, 'u1');
});

test('paused: forward progress stops, but facts, deadlines that protect and the rollback path still run', (t) => {
  const cluster = new FakeCluster(pendingRecord({ strategy: 'BLUE_GREEN', deployTimeoutSeconds: 60 }));
  cluster.newCap = 0;
  const deploying = drive(t, cluster, T0, (x) => x.record.state === 'DEPLOYING');
  run(t, cluster, pauseUpdate(deploying.record, { actor: alice, nowMs: deploying.now }));
  cluster.newCap = Number.POSITIVE_INFINITY;
  const deployed = drive(t, cluster, deploying.now, (x) => x.record.state === 'DEPLOYED' && x.action.kind === 'wait');
  t.regex((deployed.action as { reason: string }).reason, /^paused/);
  run(t, cluster, resumeUpdate(deployed.record, { actor: alice, nowMs: deployed.now }));
  t.is(drive(t, cluster, deployed.now, (x) => x.record.state === 'ROUTING').record.state, 'ROUTING');
});

test('the routing value is what the invoker parses; the stored record is the first write of every transaction', (t) => {
  const record = { ...pendingRecord(), id: 'u7' };
  const parsed = parseRoutingRecord(routingValue(record, { newWeight: 1, oldWeight: 3 }));
  t.true(parsed.ok);
  if (parsed.ok) t.deepEqual([parsed.value.updateId, parsed.value.oldVersion.text, parsed.value.newVersion.text, parsed.value.newWeight, parsed.value.oldWeight], ['u7', '1.0.0', '2.0.0', 1, 3]);
  const cluster = new FakeCluster(pendingRecord({ strategy: 'CANARY' }));
  const d = drive(t, cluster, T0, (x) => x.record.state === 'VALIDATING');
  const action = nextStep(d.record, cluster.facts(d.record), d.now);
  t.is(action.kind, 'commit');
  if (action.kind !== 'commit') return;
  const txn = commitTxn(action, 42);
  t.deepEqual(txn.success.map((op) => (op.type === 'put' ? op.key : op.type)), ['rolling-update/u1', 'blueprint/org.example:greeter/2.0.0', 'version-routing/org.example:greeter', 'event/1700000000000-u.u1.2']);
  t.deepEqual(txn.failure, []);
});

test('a new leader with a clock behind never moves the record back in time', (t) => {
  const cluster = new FakeCluster(pendingRecord({ strategy: 'CANARY' }));
  drive(t, cluster, T0 + 60_000, (x) => x.record.state === 'ROUTING');
  const { record } = cluster.record();
  const action = nextStep(record, cluster.facts(record), T0);
  t.is(action.kind, 'commit');
  if (action.kind === 'commit') t.is(action.record.log.at(-1)!.at, T0 + 60_000);
});

test('grace cleanup happens at its deadline, by whichever leader reads the record then (no timer state needed)', (t) => {
  const cluster = new FakeCluster(pendingRecord({ strategy: 'BLUE_GREEN', monitoringSeconds: 0, gracePeriodSeconds: 300 }));
  const completing = drive(t, cluster, T0, (x) => x.record.state === 'COMPLETING');
  const deadline = completing.record.deadlines.graceCleanupAt!;
  t.is(deadline, completing.now + 300_000);
  // The leader that entered COMPLETING dies; a new one starts later from the stored record only.
  const { record } = cluster.record();
  const before = nextStep(record, cluster.facts(record), deadline - 1);
  t.is(before.kind, 'wait');
  t.true(before.kind === 'wait' && before.wakeAt !== null && before.wakeAt <= deadline);
  t.is(cluster.blueprintCount(BASE, '1.0.0'), 4, 'the old version still runs during the grace period');
  const at = nextStep(record, cluster.facts(record), deadline);
  t.like(at, { kind: 'commit', step: 'COMPLETING -> COMPLETED', writes: [{ type: 'delete', key: 'blueprint/org.example:greeter/1.0.0' }] });
  // A leader that comes up long after the deadline (the cluster was down) cleans up at once.
  t.like(nextStep(record, cluster.facts(record), deadline + 3_600_000), { kind: 'commit', step: 'COMPLETING -> COMPLETED' });
  // During the grace period a rollback is still instant: the old version is there.
  const back = rollbackUpdate(record, { actor: alice, nowMs: deadline - 1 });
  t.like(back, { kind: 'commit', step: 'COMPLETING -> ROLLING_BACK' });
});

test('health: a pass between two counted breaches does not push the next count later', (t) => {
  const cluster = new FakeCluster(pendingRecord({ strategy: 'CANARY', batchDelaySeconds: 60 }));
  const atStep2 = drive(t, cluster, T0, (d) => d.record.stepIndex === 2);
  cluster.health = health(400, 0.08, 100);
  const paused = drive(t, cluster, atStep2.now, (d) => d.record.paused);
  const interval = paused.record.healthGate.intervalMs;
  t.is(paused.record.healthGate.lastBreachAt, paused.now);
  // A controller pass 4 s later (woken by some unrelated change): the breach is not counted yet.
  const between = nextStep(cluster.record().record, cluster.facts(cluster.record().record), paused.now + 4000);
  t.is(between.kind, 'wait');
  if (between.kind === 'wait') t.is(between.wakeAt, paused.now + interval, 'wakes when the next breach can be counted, not 4 s + interval');
});
