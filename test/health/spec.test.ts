// Tests of src/health/spec.ts: the JSON form of health checks, its defaults, refusals, override and round trip.
import test from 'ava';
import { HEALTH_POLICY_DEFAULTS, HEALTH_CHECKS_MAX, InvalidHealthCheckError, healthSpecJson, overrideHealthSpec, parseHealthSpec } from '../../src/health/spec.ts';
import type { HealthSpec } from '../../src/health/types.ts';

/** The example of the issue: every kind, every field. */
const full = {
  mode: 'ALL',
  checks: [
    { type: 'http', name: 'ready', path: '/healthz', port: 8080, method: 'GET', expectedStatus: [200, 204], timeoutSeconds: 2, maxResponseTimeMs: 500, bodyContains: 'ok', headers: { 'x-probe': '1' } },
    { type: 'http', url: 'http://127.0.0.1:9000/status' },
    { type: 'tcp', host: '127.0.0.1', port: 6379, timeoutSeconds: 1 },
    { type: 'script', command: 'node', args: ['check.mjs'], timeoutSeconds: 5, expectedExitCode: 0 },
    { type: 'instance', timeoutSeconds: 5 },
  ],
  policy: { successThreshold: 1, failureThreshold: 3, intervalSeconds: 10, initialDelaySeconds: 30, monitoringDurationSeconds: 300 },
};

function refusal(json: unknown, field?: string): InvalidHealthCheckError {
  try {
    parseHealthSpec(json, field);
  } catch (error) {
    if (error instanceof InvalidHealthCheckError) return error;
    throw new Error(`expected INVALID_HEALTH_CHECK for ${JSON.stringify(json)}, got ${String(error)}`);
  }
  throw new Error(`expected INVALID_HEALTH_CHECK for ${JSON.stringify(json)}, got a spec`);
}

test('the policy defaults are the seeds’ (1, 3, 10 s, 30 s, 300 s)', (t) => {
  t.deepEqual(HEALTH_POLICY_DEFAULTS, { successThreshold: 1, failureThreshold: 3, intervalMs: 10_000, initialDelayMs: 30_000, monitoringDurationMs: 300_000 });
});

test('the issue’s example parses to milliseconds, every field kept', (t) => {
  const spec = parseHealthSpec(full);
  t.is(spec.mode, 'ALL');
  t.deepEqual(spec.checks[0], {
    type: 'http',
    name: 'ready',
    timeoutMs: 2000,
    method: 'GET',
    host: '127.0.0.1',
    port: 8080,
    path: '/healthz',
    expectedStatus: [200, 204],
    maxResponseTimeMs: 500,
    bodyContains: 'ok',
    headers: { 'x-probe': '1' },
  });
  t.deepEqual(spec.checks[2], { type: 'tcp', name: 'tcp-2', timeoutMs: 1000, host: '127.0.0.1', port: 6379 });
  t.deepEqual(spec.checks[3], { type: 'script', name: 'script-3', timeoutMs: 5000, command: 'node', args: ['check.mjs'], expectedExitCode: 0 });
  t.deepEqual(spec.checks[4], { type: 'instance', name: 'instance-4', timeoutMs: 5000 });
  t.deepEqual(spec.policy, HEALTH_POLICY_DEFAULTS);
});

test('defaults: mode ALL, GET, 127.0.0.1, path /, [200], 5 s (30 s for scripts), exit 0, no headers, {type}-{index} names, default policy', (t) => {
  const spec = parseHealthSpec({ checks: [{ type: 'http', port: 80 }, { type: 'tcp', port: 1 }, { type: 'script', command: 'true' }, { type: 'instance' }, { type: 'http', url: 'https://example.com/' }] });
  t.is(spec.mode, 'ALL');
  t.deepEqual(spec.checks[0], { type: 'http', name: 'http-0', timeoutMs: 5000, method: 'GET', host: '127.0.0.1', port: 80, path: '/', expectedStatus: [200], headers: {} });
  t.deepEqual(spec.checks[1], { type: 'tcp', name: 'tcp-1', timeoutMs: 5000, host: '127.0.0.1', port: 1 });
  t.deepEqual(spec.checks[2], { type: 'script', name: 'script-2', timeoutMs: 30_000, command: 'true', args: [], expectedExitCode: 0 });
  t.deepEqual(spec.checks[3], { type: 'instance', name: 'instance-3', timeoutMs: 5000 });
  // The url form keeps host and path at their (unused) defaults and has no port.
  t.deepEqual(spec.checks[4], { type: 'http', name: 'http-4', timeoutMs: 5000, method: 'GET', url: 'https://example.com/', host: '127.0.0.1', path: '/', expectedStatus: [200], headers: {} });
  t.deepEqual(spec.policy, HEALTH_POLICY_DEFAULTS);
});

test('an http check without port or url is valid: it checks the instance’s own HTTP port', (t) => {
  const spec = parseHealthSpec({ checks: [{ type: 'http', path: '/ready' }] });
  t.false('port' in spec.checks[0]!);
});

test('decimal seconds become whole milliseconds; a method is upper-cased; one status may be a number', (t) => {
  const spec = parseHealthSpec({
    mode: 'ANY',
    checks: [{ type: 'http', port: 8080, method: 'head', expectedStatus: 204, timeoutSeconds: 0.2 }],
    policy: { intervalSeconds: 0.25, initialDelaySeconds: 0, monitoringDurationSeconds: 1.5, successThreshold: 2, failureThreshold: 5 },
  });
  t.is(spec.mode, 'ANY');
  const check = spec.checks[0]!;
  t.is(check.timeoutMs, 200);
  t.true(check.type === 'http' && check.method === 'HEAD');
  t.true(check.type === 'http' && check.expectedStatus.length === 1 && check.expectedStatus[0] === 204);
  t.deepEqual(spec.policy, { successThreshold: 2, failureThreshold: 5, intervalMs: 250, initialDelayMs: 0, monitoringDurationMs: 1500 });
});

test('unknown fields are ignored, everywhere', (t) => {
  const spec = parseHealthSpec({ future: 1, checks: [{ type: 'tcp', port: 5, retries: 9 }], policy: { jitter: true } });
  t.deepEqual(spec, parseHealthSpec({ checks: [{ type: 'tcp', port: 5 }] }));
  t.false('retries' in spec.checks[0]!);
});

test('parsing does not alias the caller’s arrays and objects', (t) => {
  const args = ['a'];
  const headers: Record<string, string> = { 'x-a': '1' };
  const status = [200];
  const spec = parseHealthSpec({ checks: [{ type: 'script', command: 'x', args }, { type: 'http', port: 1, headers, expectedStatus: status }] });
  args.push('b');
  headers['x-b'] = '2';
  status.push(201);
  t.deepEqual(spec.checks[0]!.type === 'script' ? spec.checks[0]!.args : undefined, ['a']);
  const http = spec.checks[1]!;
  t.true(http.type === 'http' && Object.keys(http.headers).length === 1 && http.expectedStatus.length === 1);
});

const check = (fields: Record<string, unknown>): unknown => ({ checks: [{ type: 'tcp', port: 1 }, fields] });
const bad: readonly [string, unknown, string][] = [
  ['not an object', [1], 'healthChecks'],
  ['null', null, 'healthChecks'],
  ['checks missing', {}, 'healthChecks.checks'],
  ['checks an object', { checks: {} }, 'healthChecks.checks'],
  ['checks empty', { checks: [] }, 'healthChecks.checks'],
  ['too many checks', { checks: Array.from({ length: HEALTH_CHECKS_MAX + 1 }, () => ({ type: 'instance' })) }, 'healthChecks.checks'],
  ['mode lower case', { mode: 'all', checks: [{ type: 'instance' }] }, 'healthChecks.mode'],
  ['check not an object', { checks: ['tcp'] }, 'healthChecks.checks[0]'],
  ['type missing', check({ port: 1 }), 'healthChecks.checks[1].type'],
  ['type unknown', check({ type: 'grpc' }), 'healthChecks.checks[1].type'],
  ['name repeated', { checks: [{ type: 'instance', name: 'a' }, { type: 'instance', name: 'a' }] }, 'healthChecks.checks[1].name'],
  ['name colliding with a default', { checks: [{ type: 'instance', name: 'instance-1' }, { type: 'instance' }] }, 'healthChecks.checks[1].name'],
  ['name with a space', check({ type: 'instance', name: 'my check' }), 'healthChecks.checks[1].name'],
  ['name too long', check({ type: 'instance', name: 'n'.repeat(65) }), 'healthChecks.checks[1].name'],
  ['timeout a string', check({ type: 'instance', timeoutSeconds: '5' }), 'healthChecks.checks[1].timeoutSeconds'],
  ['timeout too small', check({ type: 'instance', timeoutSeconds: 0.001 }), 'healthChecks.checks[1].timeoutSeconds'],
  ['timeout too large', check({ type: 'instance', timeoutSeconds: 301 }), 'healthChecks.checks[1].timeoutSeconds'],
  ['timeout NaN-like', check({ type: 'instance', timeoutSeconds: null }), 'healthChecks.checks[1].timeoutSeconds'],
  ['tcp without port', check({ type: 'tcp' }), 'healthChecks.checks[1].port'],
  ['tcp port 0', check({ type: 'tcp', port: 0 }), 'healthChecks.checks[1].port'],
  ['tcp port too large', check({ type: 'tcp', port: 65_536 }), 'healthChecks.checks[1].port'],
  ['tcp port a string', check({ type: 'tcp', port: '80' }), 'healthChecks.checks[1].port'],
  ['tcp port fractional', check({ type: 'tcp', port: 80.5 }), 'healthChecks.checks[1].port'],
  ['tcp host with a slash', check({ type: 'tcp', port: 1, host: 'a/b' }), 'healthChecks.checks[1].host'],
  ['tcp host empty', check({ type: 'tcp', port: 1, host: '' }), 'healthChecks.checks[1].host'],
  ['http path without a slash', check({ type: 'http', path: 'healthz' }), 'healthChecks.checks[1].path'],
  ['http path with a space', check({ type: 'http', path: '/a b' }), 'healthChecks.checks[1].path'],
  ['http path with CRLF', check({ type: 'http', path: '/a\r\nX: y' }), 'healthChecks.checks[1].path'],
  ['http method unknown', check({ type: 'http', method: 'DELETE' }), 'healthChecks.checks[1].method'],
  ['http method a number', check({ type: 'http', method: 1 }), 'healthChecks.checks[1].method'],
  ['http status out of range', check({ type: 'http', expectedStatus: [200, 99] }), 'healthChecks.checks[1].expectedStatus[1]'],
  ['http status a string', check({ type: 'http', expectedStatus: ['200'] }), 'healthChecks.checks[1].expectedStatus[0]'],
  ['http status repeated', check({ type: 'http', expectedStatus: [200, 200] }), 'healthChecks.checks[1].expectedStatus[1]'],
  ['http status empty', check({ type: 'http', expectedStatus: [] }), 'healthChecks.checks[1].expectedStatus'],
  ['http status an object', check({ type: 'http', expectedStatus: { ok: 200 } }), 'healthChecks.checks[1].expectedStatus'],
  ['http maxResponseTimeMs zero', check({ type: 'http', maxResponseTimeMs: 0 }), 'healthChecks.checks[1].maxResponseTimeMs'],
  ['http bodyContains empty', check({ type: 'http', bodyContains: '' }), 'healthChecks.checks[1].bodyContains'],
  ['http bodyContains with HEAD', check({ type: 'http', method: 'HEAD', bodyContains: 'ok' }), 'healthChecks.checks[1].bodyContains'],
  ['http headers an array', check({ type: 'http', headers: [['a', 'b']] }), 'healthChecks.checks[1].headers'],
  ['http header value with CR/LF', check({ type: 'http', headers: { 'x-a': 'ok\r\nX-Injected: 1' } }), 'healthChecks.checks[1].headers.x-a'],
  ['http header value a number', check({ type: 'http', headers: { 'x-a': 1 } }), 'healthChecks.checks[1].headers.x-a'],
  ['http header name with a space', check({ type: 'http', headers: { 'x a': '1' } }), 'healthChecks.checks[1].headers.x a'],
  ['http header name with a colon', check({ type: 'http', headers: { 'x:a': '1' } }), 'healthChecks.checks[1].headers.x:a'],
  ['http header repeated in another case', check({ type: 'http', headers: { 'X-A': '1', 'x-a': '2' } }), 'healthChecks.checks[1].headers.x-a'],
  ['http content-length header', check({ type: 'http', headers: { 'Content-Length': '5' } }), 'healthChecks.checks[1].headers.Content-Length'],
  ['http url relative', check({ type: 'http', url: '/status' }), 'healthChecks.checks[1].url'],
  ['http url ftp', check({ type: 'http', url: 'ftp://example.com/' }), 'healthChecks.checks[1].url'],
  ['http url with credentials', check({ type: 'http', url: 'http://u:p@example.com/' }), 'healthChecks.checks[1].url'],
  ['http url with port', check({ type: 'http', url: 'http://127.0.0.1:9000/', port: 9000 }), 'healthChecks.checks[1].port'],
  ['http url with host', check({ type: 'http', url: 'http://127.0.0.1:9000/', host: '127.0.0.1' }), 'healthChecks.checks[1].host'],
  ['http url with path', check({ type: 'http', url: 'http://127.0.0.1:9000/', path: '/x' }), 'healthChecks.checks[1].path'],
  ['script without command', check({ type: 'script' }), 'healthChecks.checks[1].command'],
  ['script command empty', check({ type: 'script', command: '' }), 'healthChecks.checks[1].command'],
  ['script command an array', check({ type: 'script', command: ['node', 'x'] }), 'healthChecks.checks[1].command'],
  ['script args a string', check({ type: 'script', command: 'node', args: 'check.mjs --fast' }), 'healthChecks.checks[1].args'],
  ['script arg a number', check({ type: 'script', command: 'node', args: ['a', 2] }), 'healthChecks.checks[1].args[1]'],
  ['script arg with NUL', check({ type: 'script', command: 'node', args: ['a\u0000b'] }), 'healthChecks.checks[1].args[0]'],
  ['script exit code negative', check({ type: 'script', command: 'x', expectedExitCode: -1 }), 'healthChecks.checks[1].expectedExitCode'],
  ['script exit code 256', check({ type: 'script', command: 'x', expectedExitCode: 256 }), 'healthChecks.checks[1].expectedExitCode'],
  ['policy an array', { checks: [{ type: 'instance' }], policy: [] }, 'healthChecks.policy'],
  ['policy threshold zero', { checks: [{ type: 'instance' }], policy: { failureThreshold: 0 } }, 'healthChecks.policy.failureThreshold'],
  ['policy threshold fractional', { checks: [{ type: 'instance' }], policy: { successThreshold: 1.5 } }, 'healthChecks.policy.successThreshold'],
  ['policy threshold too large', { checks: [{ type: 'instance' }], policy: { successThreshold: 101 } }, 'healthChecks.policy.successThreshold'],
  ['policy interval too small', { checks: [{ type: 'instance' }], policy: { intervalSeconds: 0.01 } }, 'healthChecks.policy.intervalSeconds'],
  ['policy interval a string', { checks: [{ type: 'instance' }], policy: { intervalSeconds: '10s' } }, 'healthChecks.policy.intervalSeconds'],
  ['policy initial delay negative', { checks: [{ type: 'instance' }], policy: { initialDelaySeconds: -1 } }, 'healthChecks.policy.initialDelaySeconds'],
  ['policy monitoring too long', { checks: [{ type: 'instance' }], policy: { monitoringDurationSeconds: 86_401 } }, 'healthChecks.policy.monitoringDurationSeconds'],
];

for (const [title, json, field] of bad) {
  test(`refused, naming the field: ${title}`, (t) => {
    const error = refusal(json);
    t.is(error.code, 'INVALID_HEALTH_CHECK');
    t.is(error.field, field);
    t.true(error.message.includes(`"${field}"`), error.message);
    t.true(error.message.includes('Accepted form: {'), error.message);
  });
}

test('the field prefix is the caller’s', (t) => {
  const error = refusal({ checks: [{ type: 'tcp' }] }, 'update.healthChecks');
  t.is(error.field, 'update.healthChecks.checks[0].port');
  t.true(error.acceptedForm.includes('"type": "tcp"'));
});

test('round trip: json → spec → json → spec is the same spec, and the JSON is stable', (t) => {
  const specs: HealthSpec[] = [
    parseHealthSpec(full),
    parseHealthSpec({ mode: 'ANY', checks: [{ type: 'http', url: 'https://example.com/x?y=1', method: 'POST', headers: { Authorization: 'Bearer t' } }, { type: 'script', command: '/bin/check', args: ['a b', ''], timeoutSeconds: 0.75, expectedExitCode: 3 }], policy: { intervalSeconds: 0.05, monitoringDurationSeconds: 0 } }),
    parseHealthSpec({ checks: [{ type: 'http', timeoutSeconds: 0.01 }] }),
  ];
  for (const spec of specs) {
    const json = healthSpecJson(spec);
    const again = parseHealthSpec(JSON.parse(JSON.stringify(json)));
    t.deepEqual(again, spec);
    t.deepEqual(healthSpecJson(again), json);
  }
  const json = healthSpecJson(specs[0]!);
  t.deepEqual(json['policy'], full.policy);
  t.deepEqual((json['checks'] as unknown[])[1], { type: 'http', name: 'http-1', timeoutSeconds: 5, url: 'http://127.0.0.1:9000/status', method: 'GET', expectedStatus: [200], headers: {} });
});

test('override: checks and mode replace, policy fields merge over the base’s', (t) => {
  const base = parseHealthSpec(full);
  t.deepEqual(overrideHealthSpec(base, {}, 'override'), base);
  const policyOnly = overrideHealthSpec(base, { policy: { failureThreshold: 1, intervalSeconds: 0.5 } }, 'override');
  t.deepEqual(policyOnly.checks, base.checks);
  t.deepEqual(policyOnly.policy, { ...base.policy, failureThreshold: 1, intervalMs: 500 });
  const replaced = overrideHealthSpec(base, { mode: 'ANY', checks: [{ type: 'tcp', port: 7 }] }, 'override');
  t.is(replaced.mode, 'ANY');
  t.deepEqual(replaced.checks, [{ type: 'tcp', name: 'tcp-0', timeoutMs: 5000, host: '127.0.0.1', port: 7 }]);
  t.deepEqual(replaced.policy, base.policy);
  // The base's own policy (not the defaults) is what a partial override merges over.
  const custom = parseHealthSpec({ checks: [{ type: 'instance' }], policy: { successThreshold: 4, intervalSeconds: 2 } });
  t.deepEqual(overrideHealthSpec(custom, { policy: { failureThreshold: 9 } }, 'o').policy, { ...HEALTH_POLICY_DEFAULTS, successThreshold: 4, intervalMs: 2000, failureThreshold: 9 });
});

test('override without a base must bring checks; its refusals name the override’s fields', (t) => {
  const error = t.throws(() => overrideHealthSpec(undefined, { policy: { intervalSeconds: 1 } }, 'update.healthChecks'), { instanceOf: InvalidHealthCheckError });
  t.is(error?.field, 'update.healthChecks.checks');
  t.deepEqual(overrideHealthSpec(undefined, { checks: [{ type: 'instance' }] }, 'o'), parseHealthSpec({ checks: [{ type: 'instance' }] }));
  const base = parseHealthSpec(full);
  t.is(t.throws(() => overrideHealthSpec(base, { checks: [{ type: 'tcp', port: 0 }] }, 'o'), { instanceOf: InvalidHealthCheckError })?.field, 'o.checks[0].port');
  t.is(t.throws(() => overrideHealthSpec(base, { policy: { intervalSeconds: -1 } }, 'o'), { instanceOf: InvalidHealthCheckError })?.field, 'o.policy.intervalSeconds');
  t.is(t.throws(() => overrideHealthSpec(base, { policy: 5 }, 'o'), { instanceOf: InvalidHealthCheckError })?.field, 'o.policy');
  t.is(t.throws(() => overrideHealthSpec(base, 'fast', 'o'), { instanceOf: InvalidHealthCheckError })?.field, 'o');
  t.is(t.throws(() => overrideHealthSpec(base, { mode: 'SOME' }, 'o'), { instanceOf: InvalidHealthCheckError })?.field, 'o.mode');
});
