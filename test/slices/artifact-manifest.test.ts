// Tests of src/slices/manifest.ts: slice.json validation.
import test from 'ava';
import { InvalidManifestError, manifestBase, parseManifest, parseManifestJson, relativePathProblem } from '../../src/slices/manifest.ts';

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
