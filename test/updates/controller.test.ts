/**
 * The leader-only UpdateController over a MemoryClusterPort and a ManualClock, with fake instance
 * reports that follow the blueprints and a fake health source (test/updates/harness.ts): every
 * strategy to COMPLETED, automatic rollback on an injected error rate and on injected latency,
 * pause and resume, a failover after every committed step (each step committed once), the grace
 * cleanup at its deadline across a failover, validation refusals, and the release history.
 */
import test, { type ExecutionContext } from 'ava';
import { approveStep, cancelUpdate, completeUpdate, pauseUpdate, resumeUpdate, setRouting } from '../../src/updates/commands.ts';
import { activeUpdateKey, formatActiveUpdate, readReleases, releasesPrefix } from '../../src/updates/release.ts';
import { createUpdateRecord, formatUpdateRecord, updateKey, type UpdateRecord } from '../../src/updates/record.ts';
import { parseRatio, parseStartRequest } from '../../src/updates/request.ts';
import { nextRoutingStep } from '../../src/updates/plan.ts';
import { CutoverError } from '../../src/util/errors.ts';
import { BASE, T0, UpdateHarness, artifactMeta, health } from './harness.ts';
import { artifactKey } from '../../src/slices/keys.ts';

const alice = { kind: 'user' as const, name: 'alice' };
const HEALTHY = health('2.0.0', 1000, 0, 50);
const completed = UpdateHarness.inState('COMPLETED');

/** Settings that keep simulated runs short. */
const QUICK = { batchDelaySeconds: 30, monitoringSeconds: 60, gracePeriodSeconds: 120, deployTimeoutSeconds: 120, initiatedBy: 'alice' };

async function start(h: UpdateHarness, fields: Record<string, unknown>): Promise<string> {
  const { record } = await h.ops.start({ artifactBase: BASE, version: '2.0.0', ...QUICK, ...fields });
  return record.id;
}

/** What an operator does each step for strategies that need one: MANUAL routing and completion, STAGED approvals. */
function operator(h: UpdateHarness, id: string) {
  return async (record: UpdateRecord): Promise<void> => {
    if (record.strategy.kind === 'MANUAL' && (record.state === 'DEPLOYED' || record.state === 'ROUTING')) {
      const routing = record.routing === null ? '0:1' : `${record.routing.newWeight}:${record.routing.oldWeight}`;
      const next = { '0:1': '1:3', '1:3': '1:1', '1:1': '1:0' }[routing];
      if (next !== undefined) await h.ops.command(id, (r, nowMs) => setRouting(r, parseRatio(next), { actor: alice, nowMs }));
      else await h.ops.command(id, (r, nowMs) => completeUpdate(r, { actor: alice, nowMs }));
    }
    const step = nextRoutingStep(record);
    if (record.state === 'ROUTING' && step?.needsApproval === true && !record.approvals.some((a) => a.step === step.index)) {
      await h.ops.command(id, (r, nowMs) => approveStep(r, { actor: alice, nowMs }));
    }
  };
}

/** Every step committed once: no controller step, and no log step, twice. */
function assertEachStepOnce(t: ExecutionContext, h: UpdateHarness, id: string): void {
  const steps = h.stepsOf(id);
  t.deepEqual(steps, [...new Set(steps)], `a step was committed twice: ${steps.join(', ')}`);
  const logged = h.record(id).log.map((e) => e.step);
  t.deepEqual(logged, [...new Set(logged)], `a step was logged twice: ${logged.join(', ')}`);
}

function assertCompletedCleanly(t: ExecutionContext, h: UpdateHarness, id: string, cleanup = true): void {
  const record = h.record(id);
  t.is(record.state, 'COMPLETED');
  t.is(h.routing(), '1:0');
  t.is(h.blueprintCount('2.0.0'), record.instances.target ?? -1);
  if (cleanup) t.is(h.blueprintCount('1.0.0'), undefined, 'old version removed by the cleanup');
  t.is(h.get(activeUpdateKey(BASE)), undefined, 'active-update key removed with the terminal step');
  const releases = readReleases(h.port.kv.range(releasesPrefix(BASE), 0).kvs);
  t.like(releases.at(-1), { revision: releases.length, status: 'COMPLETED', version: '2.0.0', previousVersion: '1.0.0', updateId: id });
}

const STRATEGIES: [string, Record<string, unknown>][] = [
  ['MANUAL', { cleanupPolicy: 'IMMEDIATE', gracePeriodSeconds: null }],
  ['CANARY', {}],
  ['ROLLING', { batchSize: 2, maxUnavailablePercentage: 50 }],
  ['BLUE_GREEN', {}],
  ['RECREATE', { cleanupPolicy: 'IMMEDIATE', gracePeriodSeconds: null }],
  ['STAGED', { steps: [25, 50] }],
];

for (const [strategy, fields] of STRATEGIES) {
  test(`${strategy} runs to COMPLETED on the controller: routing 1:0, old version cleaned up, a COMPLETED release`, async (t) => {
    const h = new UpdateHarness();
    h.healthByVersion.set('2.0.0', HEALTHY);
    const id = await start(h, { strategy, ...fields });
    await h.until(id, completed, 3_600_000, operator(h, id));
    assertCompletedCleanly(t, h, id);
    assertEachStepOnce(t, h, id);
    t.true(h.stepsOf(id).includes('DEPLOYING -> DEPLOYED'));
    t.like(await h.ops.statistics(BASE), { total: 1, successful: 1, failed: 0, successRate: 100 });
  });

  test(`${strategy}: a leader change after every committed step resumes where it stopped and commits each step once`, async (t) => {
    const h = new UpdateHarness();
    h.healthByVersion.set('2.0.0', HEALTHY);
    // A new controller (a new leader on the same replicated state) right after each step.
    h.failoverAfterEachCommit = true;
    const id = await start(h, { strategy, ...fields });
    await h.until(id, completed, 3_600_000, operator(h, id));
    assertCompletedCleanly(t, h, id);
    assertEachStepOnce(t, h, id);
    t.is(h.controllers, h.stepsOf(id).length + 1, 'one controller per step');
  });
}

test('CANARY on the controller: each weight step is held for batchDelay from the record deadlines, through failovers', async (t) => {
  const h = new UpdateHarness();
  h.healthByVersion.set('2.0.0', HEALTHY);
  h.failoverAfterEachCommit = true;
  const id = await start(h, { strategy: 'CANARY' });
  const done = await h.until(id, completed);
  const at = (step: string): number => (done.log.find((e) => e.step === step)!.at - T0) / 1000;
  const first = at('route 1:9 (step 1/5)');
  t.is(at('route 1:3 (step 2/5)') - first, 30);
  t.is(at('route 1:1 (step 3/5)') - first, 60);
  t.is(at('route 3:1 (step 4/5)') - first, 90);
  t.is(at('route 1:0 (step 5/5)') - first, 120);
  t.is(at('ROUTING -> COMPLETING') - first, 180, 'monitoring window of 60 s');
  t.is(at('COMPLETING -> COMPLETED') - first, 300, 'grace period of 120 s');
});

for (const [what, bad] of [
  ['error rate', health('2.0.0', 1000, 0.2, 50)],
  ['p99 latency', health('2.0.0', 1000, 0, 900)],
] as const) {
  test(`automatic rollback on injected ${what}: pause on the first breach, rollback after failureThreshold breaches with routing 0:1 first, then ROLLED_BACK`, async (t) => {
    const h = new UpdateHarness();
    h.healthByVersion.set('2.0.0', bad);
    const id = await start(h, { strategy: 'CANARY' });
    const paused = await h.until(id, (r) => r.paused);
    t.regex(paused.pauseReason ?? '', what === 'error rate' ? /error rate 20\.00% above 1\.00%/ : /p99 latency 900 ms above 500 ms/);
    const rolling = await h.until(id, UpdateHarness.inState('ROLLING_BACK', 'ROLLED_BACK'), 120_000, () => {}, 100);
    t.is(h.routing(), '0:1', 'traffic left the new version with the rollback decision');
    const rollback = rolling.rollback!;
    t.deepEqual(rollback.initiatedBy, { kind: 'system', name: 'health-gate' });
    t.is(rollback.currentFailures, 3);
    t.regex(rollback.reason, /automatic rollback after 3\/3 consecutive breaches/);
    const firstBreach = paused.healthGate.lastBreachAt!;
    t.true(rollback.initiatedAt - firstBreach <= 2 * 10_000 + 1000, `decided ${rollback.initiatedAt - firstBreach} ms after the first breach`);
    const done = await h.until(id, UpdateHarness.inState('ROLLED_BACK'));
    t.deepEqual(new Set(h.windowsAsked), new Set([11_000]), 'one evaluation interval plus the second still filling');
    t.is(h.blueprintCount('2.0.0'), undefined, 'new version stopped');
    t.is(h.blueprintCount('1.0.0'), 4);
    t.is(done.rollback!.rolledBackCount, 4);
    t.is(done.rollback!.rolledBackInstances.length, 4);
    const releases = await h.ops.history(BASE);
    t.like(releases[0], { revision: 1, status: 'ROLLED_BACK', version: '2.0.0' });
    t.like(await h.ops.statistics(BASE), { total: 1, successful: 0, failed: 1, successRate: 0 });
    assertEachStepOnce(t, h, id);
  });
}

test('pause stops progression; resume continues from the same step', async (t) => {
  const h = new UpdateHarness();
  h.healthByVersion.set('2.0.0', HEALTHY);
  const id = await start(h, { strategy: 'CANARY' });
  await h.until(id, (r) => r.stepIndex === 2);
  await h.ops.command(id, (r, nowMs) => pauseUpdate(r, { actor: alice, nowMs, reason: 'looking at dashboards' }));
  const before = h.commits.length;
  await h.advance(600_000, 1000);
  const paused = h.record(id);
  t.like(paused, { state: 'ROUTING', stepIndex: 2, paused: true, pauseReason: 'looking at dashboards' });
  t.is(h.routing(), '1:3');
  t.is(h.commits.length, before, 'nothing committed while paused');
  const resumedAt = h.wall();
  await h.ops.command(id, (r, nowMs) => resumeUpdate(r, { actor: alice, nowMs }));
  await h.settle();
  const resumed = h.record(id);
  t.is(resumed.stepIndex, 3, 'the hold had passed: the next step follows the resume at once');
  t.is(resumed.log.find((e) => e.step === 'route 1:1 (step 3/5)')!.at, resumedAt);
  await h.until(id, completed);
  assertEachStepOnce(t, h, id);
});

test('grace-period cleanup happens at its deadline, across a failover during the grace period', async (t) => {
  const h = new UpdateHarness();
  h.healthByVersion.set('2.0.0', HEALTHY);
  const id = await start(h, { strategy: 'BLUE_GREEN', gracePeriodSeconds: 300 });
  const completing = await h.until(id, UpdateHarness.inState('COMPLETING'), 3_600_000, () => {}, 100);
  const deadline = completing.deadlines.graceCleanupAt!;
  t.is(deadline - completing.log.at(-1)!.at, 300_000);
  await h.advance(120_000, 1000);
  h.failover();
  await h.advance(deadline - h.wall() - 1, 1000);
  t.is(h.record(id).state, 'COMPLETING', 'not before the deadline');
  t.is(h.blueprintCount('1.0.0'), 4);
  const done = await h.until(id, completed, 10_000, () => {}, 1);
  t.is(done.log.at(-1)!.at, deadline, 'cleaned up at the deadline itself');
  t.is(h.blueprintCount('1.0.0'), undefined);
  assertEachStepOnce(t, h, id);
});

/** Writes a PENDING record straight to the store (as an older node or another tool could). */
function putRecord(h: UpdateHarness, fields: Record<string, unknown>, options: { id?: string; oldVersion?: string } = {}): string {
  const record = createUpdateRecord(parseStartRequest({ artifactBase: BASE, version: '2.0.0', ...QUICK, ...fields }), { id: options.id ?? 'u1', oldVersion: options.oldVersion ?? '1.0.0', nowMs: h.wall() });
  h.put(updateKey(record.id), formatUpdateRecord(record));
  h.put(activeUpdateKey(BASE), formatActiveUpdate({ updateId: record.id, rollbackOfRevision: null }));
  return record.id;
}

async function failsWith(t: ExecutionContext, h: UpdateHarness, id: string, pattern: RegExp): Promise<void> {
  const failed = await h.until(id, UpdateHarness.inState('FAILED', 'DEPLOYING'), 60_000);
  t.is(failed.state, 'FAILED');
  t.regex(failed.log.at(-1)!.reason, pattern);
  t.is(h.blueprintCount(failed.newVersion), undefined, 'nothing deployed');
  t.like((await h.ops.history(BASE)).at(-1), { status: 'FAILED', updateId: id });
  t.is(h.get(activeUpdateKey(BASE)), undefined);
}

test('validation in VALIDATING: an unpublished version fails the update naming it', async (t) => {
  const h = new UpdateHarness();
  h.delete(artifactKey(BASE, '2.0.0'));
  await failsWith(t, h, putRecord(h, {}), /\[ARTIFACT_NOT_FOUND\] org\.example:greeter:2\.0\.0 is not published/);
});

test('validation in VALIDATING: an incompatible pair is a blocked path naming minCompatibleVersion; RECREATE may cross it', async (t) => {
  const h = new UpdateHarness();
  h.put(artifactKey(BASE, '3.0.0'), artifactMeta('3.0.0', '2.0.0'));
  await failsWith(t, h, putRecord(h, { version: '3.0.0' }), /\[INCOMPATIBLE_VERSION\] 3\.0\.0 may only run beside 2\.0\.0 or later/);
  const recreate = putRecord(h, { version: '3.0.0', strategy: 'RECREATE' }, { id: 'u2' });
  t.is((await h.until(recreate, UpdateHarness.inState('DEPLOYING', 'FAILED'))).state, 'DEPLOYING');
});

test('validation in VALIDATING: too little placement capacity fails the update with the numbers', async (t) => {
  const h = new UpdateHarness({ controller: { nodeInstancesMax: 6 } });
  await failsWith(t, h, putRecord(h, {}), /\[INSUFFICIENT_CAPACITY\] 2\.0\.0 needs 4 more instance\(s\) and the live nodes have room for 2/);
});

test('validation in VALIDATING: another active update and a changed current version are blockers', async (t) => {
  const h = new UpdateHarness();
  const id = putRecord(h, {});
  // Another update claims the artifact (written behind Start's back).
  h.put(activeUpdateKey(BASE), formatActiveUpdate({ updateId: 'other', rollbackOfRevision: null }));
  const failed = await h.until(id, UpdateHarness.inState('FAILED'), 60_000);
  t.regex(failed.log.at(-1)!.reason, /\[UPDATE_ACTIVE\] update other of org\.example:greeter is not finished/);
  t.is(h.get(activeUpdateKey(BASE)), formatActiveUpdate({ updateId: 'other', rollbackOfRevision: null }), "another update's key is left alone");
  h.delete(activeUpdateKey(BASE));
  await failsWith(t, h, putRecord(h, {}, { id: 'u2', oldVersion: '0.9.0' }), /\[VERSION_CHANGED\] org\.example:greeter serves 1\.0\.0 now; the update was started from 0\.9\.0/);
});

test('Start refuses what validation blocks, with the codes of the status table', async (t) => {
  const h = new UpdateHarness({ controller: { nodeInstancesMax: 64 } });
  const refused = async (fields: Record<string, unknown>, code: string, pattern?: RegExp): Promise<void> => {
    const error = await t.throwsAsync(h.ops.start({ artifactBase: BASE, ...fields }), { instanceOf: CutoverError });
    t.is(error?.code, code, error?.message);
    if (pattern !== undefined) t.regex(error?.message ?? '', pattern);
  };
  await refused({ version: '9.9.9' }, 'ARTIFACT_NOT_FOUND');
  await refused({ version: '1.0.0' }, 'SAME_VERSION');
  h.put(artifactKey(BASE, '3.0.0'), artifactMeta('3.0.0', '2.0.0'));
  await refused({ version: '3.0.0' }, 'INCOMPATIBLE_VERSION', /minCompatibleVersion/);
  await refused({ version: '2.0.0', instances: 100 }, 'INSUFFICIENT_CAPACITY', /needs 100 more/);
  await refused({ version: '2.0.0', strategy: 'SIDEWAYS' }, 'INVALID_ARGUMENT', /strategy/);
  await refused({ artifactBase: 'org.example:nothing', version: '2.0.0' }, 'NOT_DEPLOYED');
  h.controller.stop();
  const { record } = await h.ops.start({ artifactBase: BASE, version: '2.0.0' });
  await refused({ version: '2.0.0' }, 'UPDATE_ACTIVE', new RegExp(`update ${record.id} of org\\.example:greeter is PENDING`));
  // Cancel finishes it (a CANCELLED revision), and the artifact is free again.
  const cancelled = await h.ops.command(record.id, (r, nowMs) => cancelUpdate(r, { actor: alice, nowMs }));
  t.is(cancelled.record.state, 'CANCELLED');
  t.like((await h.ops.history(BASE))[0], { revision: 1, status: 'CANCELLED' });
  t.is(h.get(activeUpdateKey(BASE)), undefined);
  await t.notThrowsAsync(h.ops.start({ artifactBase: BASE, version: '2.0.0' }));
});

test('release history: each finished update is a revision; RollbackTo a revision or the last successful one starts a new update and a new revision', async (t) => {
  const h = new UpdateHarness();
  for (const version of ['2.0.0', '2.1.0']) h.healthByVersion.set(version, health(version, 1000, 0, 50));
  const fast = { strategy: 'BLUE_GREEN', monitoringSeconds: 0, cleanupPolicy: 'IMMEDIATE', gracePeriodSeconds: null };
  const first = await start(h, fast);
  await h.until(first, completed);
  const none = await t.throwsAsync(h.ops.rollbackTo(BASE, { lastSuccessful: true }), { instanceOf: CutoverError });
  t.is(none?.code, 'NO_SUCCESSFUL_RELEASE');
  const current = await t.throwsAsync(h.ops.rollbackTo(BASE, { revision: 1 }), { instanceOf: CutoverError });
  t.is(current?.code, 'ALREADY_CURRENT');
  const missing = await t.throwsAsync(h.ops.rollbackTo(BASE, { revision: 7 }), { instanceOf: CutoverError });
  t.is(missing?.code, 'RELEASE_NOT_FOUND');

  const second = await start(h, { ...fast, version: '2.1.0' });
  await h.until(second, completed);
  const back = await h.ops.rollbackTo(BASE, { lastSuccessful: true }, { initiatedBy: 'bob', reason: '2.1.0 misbehaves' });
  t.like(back.target, { revision: 1, version: '2.0.0' });
  t.like(back.record, { oldVersion: '2.1.0', newVersion: '2.0.0', initiatedBy: 'bob', strategy: { kind: 'BLUE_GREEN' } });
  t.is(back.record.log.at(-1)!.step, 'rollback to revision 1');
  await h.until(back.record.id, completed);

  const history = await h.ops.history(BASE);
  t.deepEqual(
    history.map((r) => [r.revision, r.version, r.previousVersion, r.status, r.rollbackOfRevision]),
    [
      [1, '2.0.0', '1.0.0', 'COMPLETED', null],
      [2, '2.1.0', '2.0.0', 'COMPLETED', null],
      [3, '2.0.0', '2.1.0', 'COMPLETED', 1],
    ],
  );
  t.like(history[0]!.settings, { strategy: 'BLUE_GREEN', monitoringSeconds: 0, cleanupPolicy: 'IMMEDIATE' });
  const stats = await h.ops.statistics(BASE);
  t.like(stats, { total: 3, successful: 3, failed: 0, successRate: 100 });
  t.true(stats.averageDurationSeconds > 0);
});

test('the controller acts only while leading, and a deposed controller commits nothing', async (t) => {
  const h = new UpdateHarness();
  h.healthByVersion.set('2.0.0', HEALTHY);
  h.controller.stop();
  const id = putRecord(h, { strategy: 'BLUE_GREEN' });
  await h.advance(10_000);
  t.is(h.record(id).state, 'PENDING', 'a stopped controller does nothing');
  h.controller.start();
  h.port.setLeader(false);
  await h.advance(10_000);
  t.is(h.record(id).state, 'PENDING', 'a follower does nothing');
  t.false(h.controller.status().active);
  h.port.setLeader(true);
  await h.until(id, UpdateHarness.inState('ROUTING'));
  t.true(h.controller.status().active);
  t.true(h.controller.status().stepsCommitted >= 4);
});

test('a step that loses its compare to an operator command is computed again from the new record', async (t) => {
  const h = new UpdateHarness();
  h.healthByVersion.set('2.0.0', HEALTHY);
  const id = await start(h, { strategy: 'CANARY' });
  await h.until(id, (r) => r.stepIndex === 1);
  // Right before the controller's next proposal, an operator pauses the update (a write that wins the race).
  const txn = h.port.txn.bind(h.port);
  let raced = false;
  h.port.txn = async (compare, success, failure) => {
    if (!raced && success.some((op) => op.type === 'put' && op.key === updateKey(id))) {
      raced = true;
      await h.ops.command(id, (r, nowMs) => pauseUpdate(r, { actor: alice, nowMs, reason: 'race' }));
    }
    return txn(compare, success, failure);
  };
  await h.advance(120_000, 1000);
  t.true(raced);
  t.true(h.controller.status().conflicts >= 1);
  t.like(h.record(id), { stepIndex: 1, paused: true, pauseReason: 'race' });
  t.false(h.stepsOf(id).includes('route 1:3 (step 2/5)'), 'the step computed from the old record never committed');
});
