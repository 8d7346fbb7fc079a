import test from 'ava';
import { createUpdateRecord, formatUpdateRecord, LOG_MAX, parseUpdateKey, parseUpdateRecord, updateKey, withLogEntry, type UpdateRecord } from '../../src/updates/record.ts';
import { parseStartRequest } from '../../src/updates/request.ts';
import { AssertionError } from '../../src/util/assert.ts';
import { InvalidArgumentError } from '../../src/util/errors.ts';
import { pendingRecord, recordIn, T0 } from './fixtures.ts';

test('a new record is PENDING with the request\'s settings in ms and a start log entry', (t) => {
  const record = pendingRecord({ strategy: 'CANARY', batchDelaySeconds: 30, cleanupPolicy: 'GRACE_PERIOD', gracePeriodSeconds: 120 });
  t.is(record.state, 'PENDING');
  t.is(record.strategy.kind, 'CANARY');
  t.is(record.strategy.batchDelayMs, 30_000);
  t.is(record.strategy.monitoringMs, 300_000);
  t.is(record.healthGate.intervalMs, 10_000);
  t.deepEqual(record.cleanup, { policy: 'GRACE_PERIOD', gracePeriodMs: 120_000 });
  t.deepEqual(record.instances, { requested: null, target: null, old: null });
  t.is(record.routing, null);
  t.false(record.paused);
  t.deepEqual(record.log, [{ step: 'start', at: T0, actor: { kind: 'user', name: 'alice' }, reason: 'CANARY update of org.example:greeter from 1.0.0 to 2.0.0' }]);
  t.is(record.createdAt, T0);
});

test('createUpdateRecord refuses a bad id, a bad old version, and a new version equal to the old one', (t) => {
  const request = parseStartRequest({ artifactBase: 'org.example:greeter', version: '2.0.0' });
  t.is(t.throws(() => createUpdateRecord(request, { id: 'a/b', oldVersion: '1.0.0', nowMs: T0 }), { instanceOf: InvalidArgumentError }).field, 'updateId');
  t.is(t.throws(() => createUpdateRecord(request, { id: 'u1', oldVersion: 'one', nowMs: T0 }), { instanceOf: InvalidArgumentError }).field, 'oldVersion');
  t.is(t.throws(() => createUpdateRecord(request, { id: 'u1', oldVersion: '2.0.0', nowMs: T0 }), { instanceOf: InvalidArgumentError }).field, 'version');
});

test('keys: rolling-update/{id}', (t) => {
  t.is(updateKey('u-1.a_b'), 'rolling-update/u-1.a_b');
  t.is(parseUpdateKey('rolling-update/u1'), 'u1');
  t.is(parseUpdateKey('rolling-update/'), undefined);
  t.is(parseUpdateKey('rolling-update/a/b'), undefined);
  t.is(parseUpdateKey('version-routing/u1'), undefined);
  t.throws(() => updateKey(''), { instanceOf: InvalidArgumentError });
});

test('records in every state round-trip through format and parse', (t) => {
  for (const state of ['PENDING', 'VALIDATING', 'DEPLOYING', 'DEPLOYED', 'ROUTING', 'COMPLETING', 'COMPLETED', 'ROLLING_BACK', 'ROLLED_BACK', 'CANCELLED', 'FAILED'] as const) {
    const record = recordIn(state);
    t.deepEqual(parseUpdateRecord(formatUpdateRecord(record)), { ok: true, value: record }, state);
  }
  const full = { ...recordIn('ROUTING', { strategy: 'STAGED', steps: [10, 50] }), instances: { requested: 4, target: 4, old: { instances: 4, perNodeMax: 2 } } };
  t.deepEqual(parseUpdateRecord(formatUpdateRecord(full)), { ok: true, value: full });
});

test('unknown extra fields are ignored (a newer writer may add some)', (t) => {
  const record = recordIn('ROUTING');
  const parsed = parseUpdateRecord(JSON.stringify({ ...record, futureField: { a: 1 } }));
  t.deepEqual(parsed, { ok: true, value: record });
});

function refusedWith(t: import('ava').ExecutionContext, record: UpdateRecord, change: (json: Record<string, unknown>) => void, reason: RegExp): void {
  const json = JSON.parse(JSON.stringify(record)) as Record<string, unknown>;
  change(json);
  const parsed = parseUpdateRecord(JSON.stringify(json));
  t.false(parsed.ok, reason.source);
  if (!parsed.ok) t.regex(parsed.reason, reason);
}

test('parseUpdateRecord refuses unknown states and strategies, wrong types and broken invariants, naming the field; never throws', (t) => {
  const routing = recordIn('ROUTING');
  const cases: [(json: Record<string, unknown>) => void, RegExp][] = [
    [(j) => (j.state = 'PAUSED'), /^state must be one of/],
    [(j) => (j.state = 3), /^state must be one of/],
    [(j) => ((j.strategy as Record<string, unknown>).kind = 'BIG_BANG'), /^strategy.kind must be one of/],
    [(j) => ((j.strategy as Record<string, unknown>).batchSize = '5'), /^strategy.batchSize must be an integer/],
    [(j) => ((j.strategy as Record<string, unknown>).steps = [50]), /^strategy.steps must be empty with MANUAL/],
    [(j) => (j.id = ''), /^id /],
    [(j) => (j.base = 'nobase'), /^base /],
    [(j) => (j.oldVersion = 'v1'), /^oldVersion must be a semantic version/],
    [(j) => (j.newVersion = j.oldVersion), /^newVersion must differ/],
    [(j) => (j.paused = 'no'), /^paused must be true or false/],
    [(j) => (j.paused = true), /^pauseReason must be set exactly when paused/],
    [(j) => (j.routing = { newWeight: 0, oldWeight: 0 }), /^routing must be/],
    [(j) => (j.routing = null), /^routing /],
    [(j) => ((j.instances as Record<string, unknown>).target = 0), /^instances.target must be an integer/],
    [(j) => ((j.thresholds as Record<string, unknown>).maxErrorRate = 2), /^thresholds.maxErrorRate must be a fraction/],
    [(j) => ((j.healthGate as Record<string, unknown>).consecutiveBreaches = 2), /^healthGate.lastBreachAt must be set exactly/],
    [(j) => ((j.cleanup as Record<string, unknown>).policy = 'NEVER'), /^cleanup.policy must be one of/],
    [(j) => ((j.deadlines as Record<string, unknown>).nextStepAt = -1), /^deadlines.nextStepAt must be a time/],
    [(j) => (j.approvals = [{ step: 0, by: { kind: 'robot', name: 'x' }, at: T0 }]), /^approvals\[0\].by.kind must be one of user, system/],
    [(j) => (j.log = Array.from({ length: LOG_MAX + 1 }, () => (j.log as unknown[])[0])), /^log must be a list of at most 100/],
    [(j) => (j.updatedAt = T0 - 1), /^updatedAt must not be before createdAt/],
    [(j) => (j.stepIndex = 1.5), /^stepIndex must be an integer/],
    [(j) => delete j.rollback, /^rollback must be an object/],
  ];
  for (const [change, reason] of cases) refusedWith(t, routing, change, reason);
  refusedWith(t, recordIn('PENDING'), (j) => (j.routing = { newWeight: 0, oldWeight: 1 }), /^routing instances.target and instances.old must be set together/);
  refusedWith(t, recordIn('PENDING'), (j) => ((j.routing = { newWeight: 0, oldWeight: 1 }), (j.instances = { requested: null, target: 2, old: { instances: 2 } })), /^routing must be null in PENDING/);
  refusedWith(t, recordIn('ROLLING_BACK'), (j) => (j.rollback = null), /^rollback must be set in ROLLING_BACK/);
  refusedWith(t, recordIn('COMPLETED'), (j) => ((j.paused = true), (j.pauseReason = 'x')), /^paused must be false in COMPLETED/);
  for (const value of ['', 'null', '[]', '"record"', '{']) t.false(parseUpdateRecord(value).ok, value);
});

test('formatUpdateRecord asserts that the record is valid (a bug otherwise)', (t) => {
  t.throws(() => formatUpdateRecord({ ...recordIn('ROUTING'), routing: null }), { instanceOf: AssertionError });
});

test('the transition log keeps the last LOG_MAX entries and counts the dropped ones', (t) => {
  let record = recordIn('ROUTING');
  for (let i = 0; i < LOG_MAX + 25; i++) record = withLogEntry(record, { step: `s${i}`, at: T0 + i, actor: { kind: 'system', name: 'controller' }, reason: 'r' });
  t.is(record.log.length, LOG_MAX);
  t.is(record.logDropped, 26, 'the start entry and 25 more');
  t.is(record.log.at(-1)?.step, `s${LOG_MAX + 24}`);
  t.is(record.updatedAt, T0 + LOG_MAX + 24);
  const long = withLogEntry(record, { step: 'x', at: T0, actor: { kind: 'system', name: 'controller' }, reason: 'r'.repeat(5000) });
  t.is(long.log.at(-1)?.reason.length, 1024);
  t.true(parseUpdateRecord(formatUpdateRecord(long)).ok);
});
