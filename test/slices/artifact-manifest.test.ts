// Tests of src/slices/manifest.ts: slice.json validation.
import test from 'ava';
import { parseHealthSpec } from '../../src/health/spec.ts';
import { InvalidManifestError, manifestBase, manifestHealthSpec, parseManifest, parseManifestJson, relativePathProblem } from '../../src/slices/manifest.ts';

const valid = { groupId: 'org.example', artifactId: 'greeter', version: '2.0.0', entry: 'index.js', methods: ['hello', 'goodbye'], health: true, minCompatibleVersion: '1.0.0', description: 'says hello' };

function refusal(value: unknown): InvalidManifestError {
  const error = (() => {
    try {
      parseManifest(value);
    } catch (caught) {
      return caught;
    }
    return undefined;
  })();
  if (!(error instanceof InvalidManifestError)) throw new Error(`expected INVALID_MANIFEST for ${JSON.stringify(value)}, got ${String(error)}`);
  return error;
}

test('a valid manifest parses to its known fields', (t) => {
  const manifest = parseManifest(valid);
  t.deepEqual(manifest, valid);
  t.is(manifestBase(manifest) as string, 'org.example:greeter');
  t.deepEqual(parseManifest({ groupId: 'org.example', artifactId: 'greeter', version: '1.0.0-rc.1', entry: 'lib/main.mjs', methods: ['$run'] }), {
    groupId: 'org.example',
    artifactId: 'greeter',
    version: '1.0.0-rc.1',
    entry: 'lib/main.mjs',
    methods: ['$run'],
  });
});

test('unknown fields are accepted and dropped', (t) => {
  const manifest = parseManifest({ ...valid, author: 'someone', x: { nested: [1] } });
  t.false('author' in manifest);
  t.false('x' in manifest);
});

test('the methods array is copied, not aliased', (t) => {
  const methods = ['hello'];
  const manifest = parseManifest({ ...valid, methods });
  methods.push('later');
  t.deepEqual(manifest.methods, ['hello']);
});

const bad: readonly [string, Record<string, unknown> | unknown, string][] = [
  ['not an object', [1, 2], '(document)'],
  ['null', null, '(document)'],
  ['missing groupId', { ...valid, groupId: undefined }, 'groupId'],
  ['groupId wrong type', { ...valid, groupId: 7 }, 'groupId'],
  ['groupId malformed', { ...valid, groupId: 'org..example' }, 'groupId'],
  ['artifactId with a colon', { ...valid, artifactId: 'a:b' }, 'artifactId'],
  ['version with a v', { ...valid, version: 'v1.0.0' }, 'version'],
  ['version loose', { ...valid, version: '1.0' }, 'version'],
  ['version a number', { ...valid, version: 1 }, 'version'],
  ['entry missing', { ...valid, entry: undefined }, 'entry'],
  ['entry absolute', { ...valid, entry: '/etc/passwd.js' }, 'entry'],
  ['entry escapes', { ...valid, entry: '../index.js' }, 'entry'],
  ['entry dot segment', { ...valid, entry: './index.js' }, 'entry'],
  ['entry backslash', { ...valid, entry: 'lib\\index.js' }, 'entry'],
  ['entry not a module', { ...valid, entry: 'index.ts' }, 'entry'],
  ['methods missing', { ...valid, methods: undefined }, 'methods'],
  ['methods a string', { ...valid, methods: 'hello' }, 'methods'],
  ['methods empty', { ...valid, methods: [] }, 'methods'],
  ['method not a string', { ...valid, methods: ['hello', 3] }, 'methods[1]'],
  ['method not an identifier', { ...valid, methods: ['say-hello'] }, 'methods[0]'],
  ['method starts with a digit', { ...valid, methods: ['1hello'] }, 'methods[0]'],
  ['method is a lifecycle hook', { ...valid, methods: ['hello', 'stop'] }, 'methods[1]'],
  ['method is health', { ...valid, methods: ['health'] }, 'methods[0]'],
  ['method is then', { ...valid, methods: ['then'] }, 'methods[0]'],
  ['method from Object.prototype', { ...valid, methods: ['toString'] }, 'methods[0]'],
  ['method repeated', { ...valid, methods: ['hello', 'bye', 'hello'] }, 'methods[2]'],
  ['health a string', { ...valid, health: 'yes' }, 'health'],
  ['health null', { ...valid, health: null }, 'health'],
  ['minCompatibleVersion malformed', { ...valid, minCompatibleVersion: '1' }, 'minCompatibleVersion'],
  ['minCompatibleVersion above version', { ...valid, minCompatibleVersion: '2.0.1' }, 'minCompatibleVersion'],
  ['description a number', { ...valid, description: 5 }, 'description'],
  ['healthChecks an array', { ...valid, healthChecks: [{ type: 'tcp', port: 1 }] }, 'healthChecks'],
  ['healthChecks without checks', { ...valid, healthChecks: { mode: 'ALL' } }, 'healthChecks.checks'],
  ['health check port out of range', { ...valid, healthChecks: { checks: [{ type: 'http', port: 70_000 }] } }, 'healthChecks.checks[0].port'],
  ['health check header with CRLF', { ...valid, healthChecks: { checks: [{ type: 'http', headers: { 'x-a': 'a\r\nb' } }] } }, 'healthChecks.checks[0].headers.x-a'],
  ['health policy interval a string', { ...valid, healthChecks: { checks: [{ type: 'instance' }], policy: { intervalSeconds: '10' } } }, 'healthChecks.policy.intervalSeconds'],
];

for (const [title, value, field] of bad) {
  test(`refused, naming the field: ${title}`, (t) => {
    const error = refusal(value);
    t.is(error.code, 'INVALID_MANIFEST');
    t.is(error.field, field);
    t.true(error.message.includes(`"${field}"`), error.message);
    t.true(error.message.includes('Accepted form: {"groupId"'), error.message);
  });
}

test('parseManifestJson refuses text that is not JSON', (t) => {
  const error = t.throws(() => parseManifestJson('{"groupId": '), { instanceOf: InvalidManifestError });
  t.is(error?.code, 'INVALID_MANIFEST');
  t.deepEqual(parseManifestJson(JSON.stringify(valid)), valid);
});

test('relativePathProblem accepts nested relative paths only', (t) => {
  t.is(relativePathProblem('a/b/c.js'), undefined);
  for (const path of ['', '/a', 'C:/a', 'a//b', 'a/./b', 'a/../b', '..', 'a/', 'a\\b', 'a\u0000b']) t.not(relativePathProblem(path), undefined, path);
});

const healthChecks = {
  mode: 'ANY',
  checks: [
    { type: 'http', name: 'ready', path: '/healthz', expectedStatus: [200, 204], timeoutSeconds: 0.5, bodyContains: 'ok', headers: { 'x-probe': '1' } },
    { type: 'instance' },
  ],
  policy: { intervalSeconds: 2, failureThreshold: 2 },
};

test('healthChecks is validated and kept in its canonical JSON form; manifestHealthSpec parses it', (t) => {
  const manifest = parseManifest({ ...valid, healthChecks });
  const spec = parseHealthSpec(healthChecks);
  t.deepEqual(manifestHealthSpec(manifest), spec);
  t.deepEqual(manifest.healthChecks, {
    mode: 'ANY',
    checks: [
      { type: 'http', name: 'ready', timeoutSeconds: 0.5, host: '127.0.0.1', path: '/healthz', method: 'GET', expectedStatus: [200, 204], headers: { 'x-probe': '1' }, bodyContains: 'ok' },
      { type: 'instance', name: 'instance-1', timeoutSeconds: 5 },
    ],
    policy: { successThreshold: 1, failureThreshold: 2, intervalSeconds: 2, initialDelaySeconds: 30, monitoringDurationSeconds: 300 },
  });
  t.is(manifestHealthSpec(parseManifest(valid)), undefined);
  t.false('healthChecks' in parseManifest(valid));
});

test('a manifest with healthChecks means the same after a JSON round trip (as artifact metadata stores it)', (t) => {
  const manifest = parseManifest({ ...valid, healthChecks });
  const again = parseManifest(JSON.parse(JSON.stringify(manifest)));
  t.deepEqual(again, manifest);
  t.deepEqual(manifestHealthSpec(again), manifestHealthSpec(manifest));
});

test('the health: true flag works alone, as before, and beside healthChecks', (t) => {
  t.is(parseManifest(valid).health, true);
  const withTcp = parseManifest({ ...valid, health: undefined, healthChecks: { checks: [{ type: 'tcp', port: 6379 }] } });
  t.is(withTcp.health, undefined);
  t.is(manifestHealthSpec(withTcp)?.checks[0]?.type, 'tcp');
  // An instance check calls the hook itself; the flag (the start-up hook gate without checks) is not required.
  const withHook = parseManifest({ ...valid, health: undefined, healthChecks: { checks: [{ type: 'instance' }] } });
  t.is(manifestHealthSpec(withHook)?.checks[0]?.type, 'instance');
});

test('a health-check refusal is INVALID_MANIFEST naming the field and quoting the check form', (t) => {
  const error = refusal({ ...valid, healthChecks: { checks: [{ type: 'tcp', port: '80' }] } });
  t.is(error.field, 'healthChecks.checks[0].port');
  t.true(error.message.includes('must be an integer from 1 to 65535'), error.message);
  t.true(error.message.includes('"type": "tcp"'), error.message);
});
