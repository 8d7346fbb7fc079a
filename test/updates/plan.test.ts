import test from 'ava';
import { deployInstances, initialRouting, oldInstancesDuring, planSteps, ratioOfPercent, resolveTarget, rollingBatch, routingProgress, type RoutingStep } from '../../src/updates/plan.ts';
import type { StrategySettings, UpdateRecord } from '../../src/updates/record.ts';
import { formatRatio } from '../../src/updates/request.ts';
import { recordIn, T0 } from './fixtures.ts';

function settings(fields: Record<string, unknown>): StrategySettings {
  return recordIn('ROUTING', fields).strategy;
}

/** A compact view of steps: ratio, required ACTIVE → blueprint after, hold, approval. */
function view(steps: RoutingStep[]): string[] {
  return steps.map((s) => `${formatRatio(s.ratio)} ${s.requiredActive}->${s.newInstancesAfter} hold ${s.holdMs}${s.needsApproval ? ' approve' : ''}`);
}

test('percent ratios in lowest terms', (t) => {
  t.deepEqual([10, 25, 50, 75, 100].map((p) => formatRatio(ratioOfPercent(p))), ['1:9', '1:3', '1:1', '3:1', '1:0']);
  t.is(formatRatio(ratioOfPercent(33)), '33:67');
});

test('MANUAL has no steps: the operator sets the ratio', (t) => {
  t.deepEqual(planSteps(settings({}), 4), []);
  t.deepEqual(initialRouting(settings({})), { newWeight: 0, oldWeight: 1 });
});

test('CANARY: canary share, the weight steps, then 100%; the full set deployed first; last hold is the monitoring window', (t) => {
  const canary = settings({ strategy: 'CANARY', batchDelaySeconds: 60, monitoringSeconds: 120 });
  t.deepEqual(view(planSteps(canary, 4)), ['1:9 4->4 hold 60000', '1:3 4->4 hold 60000', '1:1 4->4 hold 60000', '3:1 4->4 hold 60000', '1:0 4->4 hold 120000']);
  t.is(deployInstances(canary, 4), 4);
  t.deepEqual(view(planSteps(settings({ strategy: 'CANARY', canaryPercentage: 5, steps: [50], requireManualApproval: true, batchDelaySeconds: 1, monitoringSeconds: 2 }), 2)), ['1:19 2->2 hold 1000 approve', '1:1 2->2 hold 1000 approve', '1:0 2->2 hold 2000 approve']);
});

test('ROLLING: batches of batchSize, limited by maxUnavailable; routing follows the new instances ACTIVE; each step starts the next batch', (t) => {
  const rolling = settings({ strategy: 'ROLLING', batchSize: 5, maxUnavailablePercentage: 25, batchDelaySeconds: 60, monitoringSeconds: 300 });
  t.is(rollingBatch(rolling, 20), 5);
  t.is(deployInstances(rolling, 20), 5);
  t.deepEqual(view(planSteps(rolling, 20)), ['1:3 5->10 hold 60000', '1:1 10->15 hold 60000', '3:1 15->20 hold 60000', '1:0 20->20 hold 300000']);
  // 25% of 10 is 2.5: at most 2 new instances starting at once, though batchSize is 5.
  t.is(rollingBatch(rolling, 10), 2);
  t.deepEqual(
    planSteps(rolling, 10).map((s) => formatRatio(s.ratio)),
    ['1:4', '2:3', '3:2', '4:1', '1:0'],
  );
  // A batch never exceeds the set, and is at least 1.
  t.is(rollingBatch(rolling, 3), 1);
  t.is(rollingBatch(settings({ strategy: 'ROLLING', batchSize: 5, maxUnavailablePercentage: 100 }), 3), 3);
  t.is(rollingBatch(settings({ strategy: 'ROLLING', batchSize: 5, maxUnavailablePercentage: 0 }), 50), 1);
  // An uneven last batch.
  t.deepEqual(view(planSteps(settings({ strategy: 'ROLLING', batchSize: 3, maxUnavailablePercentage: 100, batchDelaySeconds: 0, monitoringSeconds: 0 }), 7)), ['3:4 3->6 hold 0', '6:1 6->7 hold 0', '1:0 7->7 hold 0']);
});

test('BLUE_GREEN: the full new set at 0%, one switch to 100%', (t) => {
  const blueGreen = settings({ strategy: 'BLUE_GREEN', monitoringSeconds: 60 });
  t.deepEqual(initialRouting(blueGreen), { newWeight: 0, oldWeight: 1 });
  t.is(deployInstances(blueGreen, 6), 6);
  t.deepEqual(view(planSteps(blueGreen, 6)), ['1:0 6->6 hold 60000']);
  t.is(oldInstancesDuring(blueGreen, { instances: 6 }), 6);
});

test('RECREATE: the old set stopped and 1:0 from DEPLOYING, so never mixed routing; one step starts the monitoring window', (t) => {
  const recreate = settings({ strategy: 'RECREATE', monitoringSeconds: 60 });
  t.deepEqual(initialRouting(recreate), { newWeight: 1, oldWeight: 0 });
  t.is(oldInstancesDuring(recreate, { instances: 6 }), 0);
  t.deepEqual(view(planSteps(recreate, 6)), ['1:0 6->6 hold 60000']);
});

test('STAGED: the explicit stages then 100%, each needing an Approve, no hold between stages', (t) => {
  t.deepEqual(view(planSteps(settings({ strategy: 'STAGED', steps: [10, 50], monitoringSeconds: 30 }), 4)), ['1:9 4->4 hold 0 approve', '1:1 4->4 hold 0 approve', '1:0 4->4 hold 30000 approve']);
});

test('the target count is the request\'s, or the old version\'s when the request names none', (t) => {
  t.is(resolveTarget(null, { instances: 7 }), 7);
  t.is(resolveTarget(3, { instances: 7 }), 3);
});

function routingAt(fields: Record<string, unknown>, change: Partial<UpdateRecord> = {}): UpdateRecord {
  return { ...recordIn('ROUTING', fields), ...change };
}

test('routingProgress: hold, then approval, then instances, then apply', (t) => {
  const canary = routingAt({ strategy: 'CANARY', requireManualApproval: true }, { stepIndex: 1, deadlines: { ...recordIn('ROUTING').deadlines, nextStepAt: T0 + 100 } });
  t.like(routingProgress(canary, 4, T0 + 99), { kind: 'wait', for: 'hold', until: T0 + 100 });
  t.like(routingProgress(canary, 4, T0 + 100), { kind: 'wait', for: 'approval', until: null });
  const approved = { ...canary, approvals: [{ step: 1, by: { kind: 'user' as const, name: 'bob' }, at: T0 }] };
  t.like(routingProgress(approved, 3, T0 + 100), { kind: 'wait', for: 'instances', until: null });
  const apply = routingProgress(approved, 4, T0 + 100);
  t.is(apply.kind, 'apply');
  if (apply.kind === 'apply') t.deepEqual([apply.step.index, formatRatio(apply.step.ratio), apply.of], [1, '1:3', 5]);
});

test('routingProgress: after the last step, wait out the monitoring window, then complete; MANUAL waits for the operator', (t) => {
  const done = routingAt({ strategy: 'BLUE_GREEN' }, { stepIndex: 1, deadlines: { ...recordIn('ROUTING').deadlines, monitoringUntil: T0 + 500 } });
  t.like(routingProgress(done, 4, T0 + 499), { kind: 'wait', for: 'monitoring', until: T0 + 500 });
  t.deepEqual(routingProgress(done, 4, T0 + 500), { kind: 'complete' });
  t.like(routingProgress(routingAt({}), 4, T0), { kind: 'wait', for: 'operator', until: null });
});
