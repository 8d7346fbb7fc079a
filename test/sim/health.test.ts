import test from 'ava';
import { AuditLog, judgeDeliveries, outcomeProblem, pickProblem, stepLatenessMs, type HealthViolationKind, type SeenEvent } from '../../cluster-sim/health/checker.ts';
import { scriptedPass } from '../../cluster-sim/health/loader.ts';
import { drawHealthOptions, formatHealthOptions } from '../../cluster-sim/health/options.ts';
import type { Delivery } from '../../cluster-sim/health/receiver.ts';
import { runHealthSimulation, type HealthResult } from '../../cluster-sim/health/simulation.ts';
import { eventKey, formatEvent, type AuditEvent, type StoredEvent } from '../../src/events/event.ts';
import type { KeyValue, WatchEvent } from '../../src/kv/index.ts';
import { channelKey, CURSOR_KEY } from '../../src/notify/channel.ts';
import { updateKey, type UpdateRecord } from '../../src/updates/record.ts';
import { recordIn } from '../updates/fixtures.ts';

// Issue 7 on whole simulated nodes: scripted health checks on the real HealthMonitor and
// InstanceManager, the update health gate, audit events in the same transactions, the leader-only
// pruner, and notifications to simulated receivers (one down for a while, one hanging), under
// faults and leader crashes after update steps. `npx tsx cluster-sim/health/cli.ts --seeds N` runs more.

function explain(result: HealthResult): string {
  const violations = result.violations.map((v) => `${v.kind} at ${v.atMs.toFixed(1)}ms: ${v.message}`);
  return [formatHealthOptions(result.options), ...violations, ...result.trace, `replay: npx tsx cluster-sim/health/cli.ts --seed ${result.options.sim.seed} --verbose`].join('\n');
}

// 15: a DRAINING record of the previous run stayed for ever (stale-record delete); 23: a health
// report retried after a lost answer wrote its audit event twice; 29: a term-99 leader elected by a
// late vote after a term-100 commit (the checker's leader completeness); 4: every-step leader crashes.
const SEEDS = [4, 15, 23, 29];
let runs: Promise<HealthResult[]> | undefined;
function results(): Promise<HealthResult[]> {
  runs ??= (async () => {
    const done: HealthResult[] = [];
    for (const seed of SEEDS) done.push(await runHealthSimulation(drawHealthOptions(seed, 3)));
    return done;
  })();
  return runs;
}

test.serial(`health, 3 nodes, seeds ${SEEDS.join(', ')}: routing, outcomes, audit, pruning and notifications hold`, async (t) => {
  t.timeout(120_000);
  for (const result of await results()) {
    t.deepEqual(result.violations, [], explain(result));
    t.not(result.stats.finalOutcome, '-', `SEED=${result.options.sim.seed}: the clean update ran`);
  }
});

test.serial('the health seeds exercise unhealthy instances, pruning, deliveries and leader crashes', async (t) => {
  t.timeout(120_000);
  const all = await results();
  t.true(all.reduce((s, r) => s + r.stats.unhealthyReports, 0) > 0, 'instances reported UNHEALTHY');
  t.true(all.reduce((s, r) => s + r.stats.eventsPruned, 0) > 10, 'events pruned');
  t.true(all.reduce((s, r) => s + r.stats.picksChecked, 0) > 1000, 'picks checked');
  t.true(all.reduce((s, r) => s + r.stats.leaderCrashes, 0) > 5, 'leader crashes after a step');
  t.true(all.every((r) => Object.values(r.stats.deliveries).every((d) => d.required > 0 && d.delivered >= d.required)), 'deliveries');
  t.true(all.some((r) => r.stats.finalOutcome.endsWith(':ROLLED_BACK')), 'a clean update rolled back');
});

test.serial('a health seed replays exactly', async (t) => {
  t.timeout(120_000);
  const [first] = await results();
  const again = await runHealthSimulation(drawHealthOptions(SEEDS[0]!, 3));
  t.is(again.traceDigest, first!.traceDigest);
  t.deepEqual(again.stats, first!.stats);
});

test('the scripted checks: sick passes for sickAfterMs, flapping alternates, never never passes', (t) => {
  const options = drawHealthOptions(1).health;
  t.true(scriptedPass('sick', options.sickAfterMs - 1, options));
  t.false(scriptedPass('sick', options.sickAfterMs, options));
  t.true(scriptedPass('flapping', 0, options));
  t.false(scriptedPass('flapping', options.flapPeriodMs, options));
  t.false(scriptedPass('never', 0, options));
  t.true(scriptedPass('healthy', 1e9, options));
});

// ---- the checks on hand-made states ----

function kv(key: string, value: string, revision: number, version = 1): KeyValue {
  return { key, value, createRevision: revision - version + 1, modRevision: revision, version };
}
function put(key: string, value: string, revision: number, version = 1): WatchEvent {
  return { type: 'put', revision, kv: kv(key, value, revision, version), prev: undefined };
}
function del(key: string, revision: number): WatchEvent {
  return { type: 'delete', revision, kv: kv(key, '', revision), prev: undefined };
}
function event(id: string, action: AuditEvent['action'], target: AuditEvent['target']): AuditEvent {
  return { id, at: Number(id.slice(0, 13)), actor: { kind: 'system', name: 'controller' }, action, target, reason: 'test' };
}
function eventPut(e: AuditEvent, revision: number, version = 1): WatchEvent {
  return put(eventKey(e.id), formatEvent(e), revision, version);
}
function collect(): { log: AuditLog; found: { kind: HealthViolationKind; message: string }[] } {
  const found: { kind: HealthViolationKind; message: string }[] = [];
  const log = new AuditLog(
    (kind, message) => found.push({ kind, message }),
    (version) => version === '9.0.0',
  );
  return { log, found };
}
function withLog(record: UpdateRecord, steps: number): UpdateRecord {
  return { ...record, log: Array.from({ length: steps }, (_, i) => ({ step: `step ${i}`, at: 0, actor: { kind: 'system' as const, name: 'controller' }, reason: 'r' })) };
}
const INSTANCE = 'instance/1/org.example:greeter:2.0.0/i1';
const unhealthyValue = JSON.stringify({ state: 'UNHEALTHY', nodeId: 1, address: 'a', instanceId: 'i1', artifact: 'org.example:greeter', version: '2.0.0', reason: 'health checks failing' });

test('audit: a well-formed history passes', (t) => {
  const { log, found } = collect();
  const record = withLog(recordIn('PENDING'), 1);
  log.entry(1, [put(updateKey(record.id), JSON.stringify(record), 10), eventPut(event('1700000000000-u.u1.1', 'update.started', { updateId: record.id }), 10)], 0);
  log.entry(1, [put(INSTANCE, unhealthyValue, 11), eventPut(event('1700000000001-i.i1.1.1', 'instance.unhealthy', { instanceId: 'i1' }), 11)], 1);
  t.deepEqual(found, []);
  t.is(log.checkedEntries, 2);
});

test('audit: an event id written twice is caught', (t) => {
  const { log, found } = collect();
  const e = event('1700000000001-i.i1.1.1', 'instance.unhealthy', { instanceId: 'i1' });
  log.entry(1, [put(INSTANCE, unhealthyValue, 11), eventPut(e, 11)], 0);
  log.entry(1, [put(INSTANCE, unhealthyValue, 12, 2), eventPut(e, 12, 2)], 1);
  t.is(found[0]?.kind, 'health-audit');
  t.regex(found[0]!.message, /written again/);
});

test('audit: two update.started for one update are caught', (t) => {
  const { log, found } = collect();
  const record = withLog(recordIn('PENDING'), 1);
  log.entry(1, [put(updateKey(record.id), JSON.stringify(record), 10), eventPut(event('1700000000000-u.u1.1', 'update.started', { updateId: record.id }), 10)], 0);
  log.entry(1, [put(updateKey(record.id), JSON.stringify(withLog(record, 2)), 11, 2), eventPut(event('1700000000001-u.u1.2', 'update.started', { updateId: record.id }), 11)], 0);
  t.true(found.some((f) => /update.started written 2 times/.test(f.message)));
});

test('audit: an update record changed without its event, or an event without its record, is caught', (t) => {
  const first = collect();
  const record = withLog(recordIn('DEPLOYING'), 3);
  first.log.entry(1, [put(updateKey(record.id), JSON.stringify(record), 10)], 0);
  t.regex(first.found[0]?.message ?? '', /without an event in the same revision/);
  const second = collect();
  second.log.entry(1, [eventPut(event('1700000000000-u.u1.4', 'update.routing', { updateId: 'u1' }), 10)], 0);
  t.regex(second.found[0]?.message ?? '', /without its update record written/);
});

test('audit: instance.unhealthy without the instance written UNHEALTHY in its revision is caught', (t) => {
  const { log, found } = collect();
  log.entry(1, [put(INSTANCE, unhealthyValue.replace('UNHEALTHY', 'ACTIVE'), 11), eventPut(event('1700000000001-i.i1.1.1', 'instance.unhealthy', { instanceId: 'i1' }), 11)], 0);
  t.regex(found[0]?.message ?? '', /without that instance written UNHEALTHY/);
});

test('health: an instance of a never-healthy version reported ACTIVE is caught', (t) => {
  const { log, found } = collect();
  log.entry(1, [put('instance/1/org.example:greeter:9.0.0/i9', JSON.stringify({ state: 'ACTIVE' }), 11)], 0);
  t.is(found[0]?.kind, 'health-outcome');
});

test('pruning: a delete that leaves an older event behind is caught; oldest first passes', (t) => {
  const { log, found } = collect();
  const old = event('1700000000000-a', 'update.step', {});
  const newer = event('1700000000500-b', 'update.step', {});
  log.entry(1, [eventPut(old, 5)], 0);
  log.entry(1, [eventPut(newer, 6)], 0);
  log.entry(1, [del(eventKey(newer.id), 7)], 10_000);
  t.is(found[0]?.kind, 'health-prune');
  const ok = collect();
  ok.log.entry(1, [eventPut(old, 5)], 0);
  ok.log.entry(1, [eventPut(newer, 6)], 0);
  ok.log.entry(1, [del(eventKey(old.id), 7)], 10_000);
  t.deepEqual(ok.found, []);
  t.is(ok.log.prunedEvents, 1);
});

test('pruning: a younger-keyed event written while the delete was in flight is not the pruner\'s fault', (t) => {
  const { log, found } = collect();
  const skewed = event('1700000000000-a', 'update.step', {});
  const newer = event('1700000000500-b', 'update.step', {});
  log.entry(1, [eventPut(newer, 6)], 0);
  log.entry(1, [eventPut(skewed, 7)], 9_500);
  log.entry(1, [del(eventKey(newer.id), 8)], 10_000);
  t.deepEqual(found, []);
});

test('the first cursor and the channels\' revisions are recorded', (t) => {
  const { log } = collect();
  log.entry(1, [put(channelKey('alpha'), '{}', 3)], 0);
  log.entry(1, [put(CURSOR_KEY, JSON.stringify({ revision: 2, term: 1, nodeId: 1 }), 4)], 0);
  log.entry(1, [put(CURSOR_KEY, JSON.stringify({ revision: 9, term: 1, nodeId: 1 }), 10, 2)], 0);
  t.is(log.firstCursor, 2);
  t.is(log.channelRevision.get('alpha'), 3);
});

function seen(id: string, revision: number, deletedAtMs?: number): SeenEvent {
  const stored: StoredEvent = { ...event(id, 'update.started', { updateId: 'u' }), revision };
  return { event: stored, seenAtMs: revision * 10, deletedAtMs };
}
function delivery(eventId: string, revision: number, atMs: number, deliveryId = '1-5-1'): Delivery {
  return { atMs, eventId, revision, deliveryId };
}
const judgeOptions = { fromRevision: 2, attemptsMax: 3, givenUp: new Set<string>() };

test('notifications: every required event delivered, in order, passes; before the cursor is not required', (t) => {
  const events = [seen('1700000000000-a', 2), seen('1700000000001-b', 3), seen('1700000000002-c', 4)];
  const verdict = judgeDeliveries('alpha', events, [delivery('1700000000001-b', 3, 1), delivery('1700000000002-c', 4, 2), delivery('1700000000002-c', 4, 3, '2-6-1')], judgeOptions);
  t.deepEqual(verdict.problems, []);
  t.is(verdict.required, 2);
  t.is(verdict.duplicates, 1);
});

test('notifications: a lost event, first deliveries out of order, and unbounded duplicates are caught', (t) => {
  const events = [seen('1700000000001-b', 3), seen('1700000000002-c', 4)];
  const lost = judgeDeliveries('alpha', events, [delivery('1700000000002-c', 4, 2)], judgeOptions);
  t.regex(lost.problems[0] ?? '', /never delivered/);
  const reordered = judgeDeliveries('alpha', events, [delivery('1700000000002-c', 4, 1), delivery('1700000000001-b', 3, 2)], judgeOptions);
  t.regex(reordered.problems[0] ?? '', /first delivered .* after/);
  const flood = judgeDeliveries('alpha', events, [1, 2, 3, 4].map((i) => delivery('1700000000001-b', 3, i)).concat(delivery('1700000000002-c', 4, 5)), judgeOptions);
  t.regex(flood.problems[0] ?? '', /delivered 4 times in term 1-5/);
});

test('notifications: an event given up, or pruned before its first delivery, is exempt and counted', (t) => {
  const events = [seen('1700000000001-b', 3, 50), seen('1700000000002-c', 4)];
  const verdict = judgeDeliveries('alpha', events, [], { ...judgeOptions, givenUp: new Set(['1700000000002-c']) });
  t.deepEqual(verdict.problems, []);
  t.is(verdict.prunedFirst, 1);
});

test('routing: a pick of an instance the caller has UNHEALTHY is caught; a draining one is only counted', (t) => {
  t.is(pickProblem(1, 20, INSTANCE, kv(INSTANCE, JSON.stringify({ state: 'ACTIVE' }), 10)), undefined);
  t.regex(pickProblem(1, 20, INSTANCE, kv(INSTANCE, unhealthyValue, 10)) ?? '', /reported UNHEALTHY at revision 10/);
  t.is(pickProblem(1, 20, INSTANCE, kv(INSTANCE, JSON.stringify({ state: 'DRAINING' }), 10)), 'not-active');
});

test('outcome: a sick version COMPLETED, a clean sick rollback without the failing check, a clean healthy rollback are caught', (t) => {
  t.regex(outcomeProblem(recordIn('COMPLETED'), 'sick', true) ?? '', /sick version ended COMPLETED/);
  t.is(outcomeProblem(recordIn('COMPLETED'), 'sick', false), undefined, 'under faults a sick version may never stay up long enough to fail');
  t.regex(outcomeProblem(recordIn('COMPLETED'), 'never', false) ?? '', /never version ended COMPLETED/);
  t.is(outcomeProblem(recordIn('ROLLED_BACK'), 'sick', false), undefined, 'under faults the reason may be the metrics');
  t.regex(outcomeProblem(recordIn('ROLLED_BACK'), 'sick', true) ?? '', /without the failing checks/);
  const named = { ...recordIn('ROLLED_BACK'), log: [{ step: 'ROUTING -> ROLLING_BACK', at: 0, actor: { kind: 'system' as const, name: 'health-gate' }, reason: 'health checks failing: healthz failure (HTTP 503)' }] };
  t.is(outcomeProblem(named, 'sick', true), undefined);
  t.regex(outcomeProblem(recordIn('ROLLED_BACK'), 'healthy', true) ?? '', /expected COMPLETED/);
  t.regex(outcomeProblem(recordIn('ROUTING'), 'never', true) ?? '', /expected ROLLED_BACK or FAILED/);
});

test('timing: a step committed after its deadline is measured; no deadline, a pause or no new step is not', (t) => {
  const prev = { ...recordIn('ROUTING'), deadlines: { nextStepAt: 1_000, monitoringUntil: null, deployUntil: null, restoreUntil: null, graceCleanupAt: null } };
  const next = withLog(prev, prev.log.length + 1);
  t.is(stepLatenessMs(prev, next, 4_000), 3_000);
  t.is(stepLatenessMs({ ...prev, paused: true }, next, 4_000), undefined);
  t.is(stepLatenessMs(prev, { ...next, log: prev.log }, 4_000), undefined);
  t.is(stepLatenessMs(recordIn('ROUTING'), next, 4_000), undefined);
  t.is(stepLatenessMs(prev, next, 4_000, 3_500), 500, 'a deadline already past when the previous change committed counts from that commit');
});
