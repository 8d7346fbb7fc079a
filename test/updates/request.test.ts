import test from 'ava';
import { formatRatio, HEALTH_PRESETS, parseRatio, parseStartRequest, percentNew, reduceRatio } from '../../src/updates/request.ts';
import { InvalidArgumentError } from '../../src/util/errors.ts';

const minimal = { artifactBase: 'org.example:greeter', version: '2.0.0' };

test('defaults: the seeds\' values for every optional field', (t) => {
  t.deepEqual(parseStartRequest(minimal), {
    base: 'org.example:greeter',
    newVersion: '2.0.0',
    instances: null,
    strategy: 'MANUAL',
    canaryPercentage: 10,
    steps: [],
    batchSize: 5,
    batchDelaySeconds: 60,
    maxUnavailablePercentage: 25,
    monitoringSeconds: 300,
    deployTimeoutSeconds: 300,
    maxErrorRate: 0.01,
    maxLatencyMs: 500,
    minRequestCount: 20,
    healthEvaluationIntervalSeconds: 10,
    autoRollbackEnabled: true,
    failureThreshold: 3,
    requireManualApproval: false,
    cleanupPolicy: 'GRACE_PERIOD',
    gracePeriodSeconds: 300,
    initiatedBy: 'anonymous',
    healthChecks: null,
  });
});

test('Aether\'s REST example parses as written', (t) => {
  const request = parseStartRequest({ ...minimal, instances: 3, maxErrorRate: 0.01, maxLatencyMs: 500, requireManualApproval: false, cleanupPolicy: 'GRACE_PERIOD' });
  t.is(request.instances, 3);
  t.is(request.cleanupPolicy, 'GRACE_PERIOD');
});

test('presets DEFAULT 1%/500 ms, STRICT 0.1%/200 ms, RELAXED 5%/1000 ms; explicit thresholds override the preset', (t) => {
  t.deepEqual(HEALTH_PRESETS, { DEFAULT: { maxErrorRate: 0.01, maxLatencyMs: 500 }, STRICT: { maxErrorRate: 0.001, maxLatencyMs: 200 }, RELAXED: { maxErrorRate: 0.05, maxLatencyMs: 1000 } });
  for (const [name, preset] of Object.entries(HEALTH_PRESETS)) {
    const request = parseStartRequest({ ...minimal, healthPreset: name });
    t.deepEqual({ maxErrorRate: request.maxErrorRate, maxLatencyMs: request.maxLatencyMs }, preset, name);
  }
  const mixed = parseStartRequest({ ...minimal, healthPreset: 'STRICT', maxLatencyMs: 300 });
  t.deepEqual([mixed.maxErrorRate, mixed.maxLatencyMs], [0.001, 300]);
});

test('cleanup policies: GRACE_PERIOD configurable, IMMEDIATE and MANUAL without a grace period', (t) => {
  t.is(parseStartRequest({ ...minimal, gracePeriodSeconds: 60 }).gracePeriodSeconds, 60);
  t.deepEqual([parseStartRequest({ ...minimal, cleanupPolicy: 'IMMEDIATE' }).gracePeriodSeconds, parseStartRequest({ ...minimal, cleanupPolicy: 'MANUAL' }).cleanupPolicy], [0, 'MANUAL']);
});

test('steps: CANARY defaults to 25/50/75 above the canary share; 100 may be named; STAGED takes its list', (t) => {
  t.deepEqual(parseStartRequest({ ...minimal, strategy: 'CANARY' }).steps, [25, 50, 75]);
  t.deepEqual(parseStartRequest({ ...minimal, strategy: 'CANARY', canaryPercentage: 30 }).steps, [50, 75]);
  t.deepEqual(parseStartRequest({ ...minimal, strategy: 'CANARY', steps: [20, 60, 100] }).steps, [20, 60]);
  t.deepEqual(parseStartRequest({ ...minimal, strategy: 'STAGED', steps: [5, 50] }).steps, [5, 50]);
  t.deepEqual(parseStartRequest({ ...minimal, strategy: 'STAGED', steps: [100] }).steps, []);
  t.deepEqual(parseStartRequest({ ...minimal, strategy: 'ROLLING' }).steps, []);
});

test('null means the default, like an absent field', (t) => {
  t.deepEqual(parseStartRequest({ ...minimal, instances: null, strategy: null, maxErrorRate: null }), parseStartRequest(minimal));
});

// Every refusal names its field and shows the accepted form.
const refusals: [string, Record<string, unknown>, string, RegExp][] = [
  ['unknown field', { maxErrorrate: 0.1 }, 'maxErrorrate', /not a start request field; accepted: artifactBase/],
  ['artifactBase missing', { artifactBase: undefined }, 'artifactBase', /groupId:artifactId/],
  ['artifactBase malformed', { artifactBase: 'greeter' }, 'artifactBase', /groupId:artifactId/],
  ['version missing', { version: undefined }, 'version', /semantic version/],
  ['version with v', { version: 'v2.0.0' }, 'version', /semantic version/],
  ['instances 0', { instances: 0 }, 'instances', /integer in \[1, 1000\]/],
  ['instances too many', { instances: 1001 }, 'instances', /integer in \[1, 1000\]/],
  ['instances fraction', { instances: 1.5 }, 'instances', /integer/],
  ['instances text', { instances: '3' }, 'instances', /integer/],
  ['strategy unknown', { strategy: 'BIG_BANG' }, 'strategy', /one of MANUAL, CANARY, ROLLING, BLUE_GREEN, RECREATE, STAGED/],
  ['strategy lower case', { strategy: 'canary' }, 'strategy', /one of/],
  ['canaryPercentage 0', { canaryPercentage: 0 }, 'canaryPercentage', /\[1, 99\]/],
  ['canaryPercentage 100', { canaryPercentage: 100 }, 'canaryPercentage', /\[1, 99\]/],
  ['steps with ROLLING', { strategy: 'ROLLING', steps: [50] }, 'steps', /only accepted with strategy CANARY or STAGED/],
  ['steps missing with STAGED', { strategy: 'STAGED' }, 'steps', /required with strategy STAGED/],
  ['steps empty', { strategy: 'STAGED', steps: [] }, 'steps', /strictly increasing integer percentages/],
  ['steps not increasing', { strategy: 'STAGED', steps: [50, 50] }, 'steps', /strictly increasing/],
  ['steps above 100', { strategy: 'STAGED', steps: [50, 101] }, 'steps', /\[1, 100\]/],
  ['steps not above canary', { strategy: 'CANARY', canaryPercentage: 20, steps: [10, 50] }, 'steps', /\[21, 100\]/],
  ['steps not a list', { strategy: 'STAGED', steps: '10,50' }, 'steps', /list/],
  ['steps too long', { strategy: 'STAGED', steps: Array.from({ length: 101 }, (_, i) => i + 1) }, 'steps', /at most 100/],
  ['batchSize 0', { batchSize: 0 }, 'batchSize', /\[1, 1000\]/],
  ['batchDelaySeconds negative', { batchDelaySeconds: -1 }, 'batchDelaySeconds', /\[0, 86400\]/],
  ['batchDelaySeconds above a day', { batchDelaySeconds: 86_401 }, 'batchDelaySeconds', /\[0, 86400\]/],
  ['maxUnavailablePercentage 101', { maxUnavailablePercentage: 101 }, 'maxUnavailablePercentage', /\[0, 100\]/],
  ['monitoringSeconds negative', { monitoringSeconds: -5 }, 'monitoringSeconds', /\[0, 86400\]/],
  ['deployTimeoutSeconds 0', { deployTimeoutSeconds: 0 }, 'deployTimeoutSeconds', /\[1, 86400\]/],
  ['healthPreset unknown', { healthPreset: 'LAX' }, 'healthPreset', /one of DEFAULT, STRICT, RELAXED/],
  ['maxErrorRate above 1', { maxErrorRate: 1.5 }, 'maxErrorRate', /fraction in \[0, 1\] like 0.01/],
  ['maxErrorRate negative', { maxErrorRate: -0.1 }, 'maxErrorRate', /fraction/],
  ['maxErrorRate NaN', { maxErrorRate: Number.NaN }, 'maxErrorRate', /fraction/],
  ['maxErrorRate text', { maxErrorRate: '0.01' }, 'maxErrorRate', /fraction/],
  ['maxLatencyMs 0', { maxLatencyMs: 0 }, 'maxLatencyMs', /\[1, 600000\]/],
  ['maxLatencyMs too large', { maxLatencyMs: 600_001 }, 'maxLatencyMs', /\[1, 600000\]/],
  ['minRequestCount 0', { minRequestCount: 0 }, 'minRequestCount', /\[1, 1000000\]/],
  ['healthEvaluationIntervalSeconds 0', { healthEvaluationIntervalSeconds: 0 }, 'healthEvaluationIntervalSeconds', /\[1, 3600\]/],
  ['healthEvaluationIntervalSeconds too large', { healthEvaluationIntervalSeconds: 3601 }, 'healthEvaluationIntervalSeconds', /\[1, 3600\]/],
  ['autoRollbackEnabled text', { autoRollbackEnabled: 'yes' }, 'autoRollbackEnabled', /true or false/],
  ['failureThreshold 0', { failureThreshold: 0 }, 'failureThreshold', /\[1, 100\]/],
  ['failureThreshold too large', { failureThreshold: 101 }, 'failureThreshold', /\[1, 100\]/],
  ['requireManualApproval number', { requireManualApproval: 1 }, 'requireManualApproval', /true or false/],
  ['cleanupPolicy unknown', { cleanupPolicy: 'NEVER' }, 'cleanupPolicy', /one of IMMEDIATE, GRACE_PERIOD, MANUAL/],
  ['gracePeriodSeconds 0', { gracePeriodSeconds: 0 }, 'gracePeriodSeconds', /\[1, 604800\]/],
  ['gracePeriodSeconds with IMMEDIATE', { cleanupPolicy: 'IMMEDIATE', gracePeriodSeconds: 60 }, 'gracePeriodSeconds', /only accepted with cleanupPolicy GRACE_PERIOD/],
  ['initiatedBy empty', { initiatedBy: '' }, 'initiatedBy', /1 to 128 characters/],
  ['initiatedBy too long', { initiatedBy: 'a'.repeat(129) }, 'initiatedBy', /1 to 128 characters/],
  ['initiatedBy control character', { initiatedBy: 'al\nice' }, 'initiatedBy', /control characters/],
];

for (const [title, change, field, form] of refusals) {
  test(`refused: ${title} (field ${field})`, (t) => {
    const error = t.throws(() => parseStartRequest({ ...minimal, ...change }), { instanceOf: InvalidArgumentError });
    t.is(error.code, 'INVALID_ARGUMENT');
    t.is(error.field, field);
    t.regex(error.message, form);
  });
}

test('refused: a request that is not an object', (t) => {
  for (const input of [null, undefined, 'start', 3, [minimal]]) {
    t.is(t.throws(() => parseStartRequest(input), { instanceOf: InvalidArgumentError }).field, 'request');
  }
});

test('ratios: accepted forms', (t) => {
  t.deepEqual(parseRatio('1:3'), { newWeight: 1, oldWeight: 3 });
  t.deepEqual(parseRatio('0:1'), { newWeight: 0, oldWeight: 1 });
  t.deepEqual(parseRatio('1:0'), { newWeight: 1, oldWeight: 0 });
  t.deepEqual(parseRatio('1000000:1000000'), { newWeight: 1_000_000, oldWeight: 1_000_000 });
  t.deepEqual(parseRatio('007:1'), { newWeight: 7, oldWeight: 1 });
  for (const text of ['1:9', '3:1', '25:75', '0:1000000']) t.is(formatRatio(parseRatio(text)), text);
});

test('ratios: every other form is refused with the accepted form and the input', (t) => {
  for (const text of ['', '1', '1:', ':1', '0:0', '00:000', '-1:3', '+1:3', '1.5:1', '1:3:4', ' 1:3', '1:3 ', '1000001:1', '1:1000001', '99999999:1', '1/3', 'a:b', '１:３']) {
    const error = t.throws(() => parseRatio(text), { instanceOf: InvalidArgumentError }, text);
    t.is(error.field, 'ratio');
    t.true(error.message.includes('ratio must be new:old with integers 0..1000000, not both 0, like 1:3; got '), error.message);
    t.true(error.message.endsWith(JSON.stringify(text)), error.message);
  }
  for (const value of [13, null, undefined, { newWeight: 1, oldWeight: 3 }]) t.throws(() => parseRatio(value), { instanceOf: InvalidArgumentError });
});

test('ratios reduce to lowest terms and give the new share in percent', (t) => {
  t.deepEqual(reduceRatio({ newWeight: 25, oldWeight: 75 }), { newWeight: 1, oldWeight: 3 });
  t.deepEqual(reduceRatio({ newWeight: 0, oldWeight: 7 }), { newWeight: 0, oldWeight: 1 });
  t.deepEqual(reduceRatio({ newWeight: 5, oldWeight: 0 }), { newWeight: 1, oldWeight: 0 });
  t.is(percentNew({ newWeight: 1, oldWeight: 3 }), 25);
});

test("healthChecks: an update's own checks, kept in canonical JSON form; a bad one is refused naming the field", (t) => {
  const request = parseStartRequest({ ...minimal, healthChecks: { checks: [{ type: 'tcp', port: 6379 }], policy: { intervalSeconds: 2 } } });
  t.like(request.healthChecks, { mode: 'ALL', checks: [{ type: 'tcp', port: 6379, host: '127.0.0.1' }], policy: { intervalSeconds: 2, failureThreshold: 3 } });
  t.deepEqual(parseStartRequest({ ...minimal, healthChecks: request.healthChecks }).healthChecks, request.healthChecks, 'the stored form parses back to itself');
  const error = t.throws(() => parseStartRequest({ ...minimal, healthChecks: { checks: [{ type: 'tcp', port: 70000 }] } }));
  t.is((error as { code?: string }).code, 'INVALID_HEALTH_CHECK');
  t.regex(error!.message, /healthChecks\.checks\[0\]\.port/);
});
