// Tests of src/slices/keys.ts (kept under test/invoker/ with the routing tests that depend on it).
import test from 'ava';
import {
  artifactBase,
  blueprintKey,
  compareSemVer,
  formatCoordinates,
  instanceKey,
  instanceNodePrefix,
  parseArtifactBase,
  parseBlueprintKey,
  parseCoordinates,
  parseInstanceKey,
  parseSemVer,
  parseVersionRoutingKey,
  requireArtifactBase,
  requireCoordinates,
  requireSemVer,
  splitArtifactBase,
  versionRoutingKey,
} from '../../src/slices/keys.ts';
import { nodeId } from '../../src/util/ids.ts';

const greeter = artifactBase('org.example', 'greeter');

test('keys follow the DESIGN.md layout and parse back', (t) => {
  t.is(greeter as string, 'org.example:greeter');
  t.deepEqual(splitArtifactBase(greeter), { groupId: 'org.example', artifactId: 'greeter' });
  t.is(versionRoutingKey(greeter), 'version-routing/org.example:greeter');
  t.is(parseVersionRoutingKey('version-routing/org.example:greeter'), greeter);
  t.is(blueprintKey(greeter, '2.1.0-bad'), 'blueprint/org.example:greeter/2.1.0-bad');
  t.like(parseBlueprintKey('blueprint/org.example:greeter/2.1.0-bad'), { base: greeter, version: { text: '2.1.0-bad', major: 2, minor: 1, patch: 0 } });
  const key = instanceKey(nodeId(3), greeter, '1.0.0', 'i-7f3a');
  t.is(key, 'instance/3/org.example:greeter:1.0.0/i-7f3a');
  t.like(parseInstanceKey(key), { nodeId: 3, base: greeter, version: { text: '1.0.0' }, instanceId: 'i-7f3a' });
  t.is(instanceNodePrefix(nodeId(3)), 'instance/3/');
  t.is(formatCoordinates(greeter, '1.0.0'), 'org.example:greeter:1.0.0');
  t.like(parseCoordinates('org.example:greeter:1.0.0+build.5'), { groupId: 'org.example', artifactId: 'greeter', base: greeter, version: { build: ['build', '5'] } });
});

test('malformed keys parse to undefined', (t) => {
  const routing = ['version-routing/', 'version-routing/greeter', 'version-routing/org.example:', 'version-routing/:greeter', 'version-routing/org..example:greeter', 'version-routing/org.example:greeter/x', 'version-routing/org.example:gr:eeter', 'rolling-update/org.example:greeter'];
  for (const key of routing) t.is(parseVersionRoutingKey(key), undefined, key);
  const instances = [
    'instance/',
    'instance/3/org.example:greeter:1.0.0',
    'instance/0/org.example:greeter:1.0.0/i1',
    'instance/03/org.example:greeter:1.0.0/i1',
    'instance/x/org.example:greeter:1.0.0/i1',
    'instance/3/org.example:greeter/i1',
    'instance/3/org.example:greeter:v1.0.0/i1',
    'instance/3/org.example:greeter:1.0/i1',
    'instance/3/org.example:greeter:1.0.0/',
    'instance/3/org.example:greeter:1.0.0/-i1',
    'instance/3/org.example:greeter:1.0.0/i1/extra',
    `instance/3/org.example:greeter:1.0.0/${'i'.repeat(129)}`,
    'instance/99999999999999999999/org.example:greeter:1.0.0/i1',
  ];
  for (const key of instances) t.is(parseInstanceKey(key), undefined, key);
  for (const key of ['blueprint/org.example:greeter', 'blueprint/org.example:greeter/1', 'blueprint/greeter/1.0.0']) t.is(parseBlueprintKey(key), undefined, key);
  for (const text of ['org.example:greeter', 'org.example:greeter:1.0.0:x', ':greeter:1.0.0']) t.is(parseCoordinates(text), undefined, text);
});

test('user input is refused with INVALID_ARGUMENT naming the field', (t) => {
  const field = (fn: () => unknown): string | undefined => {
    const error = t.throws(fn);
    t.is((error as { code?: string } | undefined)?.code, 'INVALID_ARGUMENT');
    return (error as { field?: string } | undefined)?.field;
  };
  t.is(field(() => artifactBase('org/example', 'greeter')), 'groupId');
  t.is(field(() => artifactBase('', 'greeter')), 'groupId');
  t.is(field(() => artifactBase('org.example', 'greeter:1')), 'artifactId');
  t.is(field(() => artifactBase('org.example', 'g'.repeat(129))), 'artifactId');
  t.is(field(() => blueprintKey(greeter, '1.0')), 'version');
  t.is(field(() => instanceKey(nodeId(0), greeter, '1.0.0', 'i1')), 'nodeId');
  t.is(field(() => instanceKey(nodeId(1), greeter, 'latest', 'i1')), 'version');
  t.is(field(() => instanceKey(nodeId(1), greeter, '1.0.0', 'a/b')), 'instanceId');
  t.is(field(() => requireArtifactBase('greeter')), 'artifact');
  t.is(field(() => requireArtifactBase(42, 'slice')), 'slice');
  t.is(field(() => requireCoordinates('org.example:greeter')), 'coordinates');
  t.is(field(() => requireSemVer('01.0.0', 'toVersion')), 'toVersion');
  t.is(requireArtifactBase('org.example:greeter'), greeter);
  t.is(parseArtifactBase('com.acme-corp.billing_v2:order-service.api') as string | undefined, 'com.acme-corp.billing_v2:order-service.api');
});

test('the SemVer parser is strict', (t) => {
  for (const text of ['0.0.0', '1.2.3', '10.20.30', '1.0.0-alpha', '1.0.0-alpha.1', '1.0.0-0.3.7', '1.0.0-x.7.z.92', '1.0.0-x-y-z.--', '1.0.0+20130313144700', '1.0.0-beta+exp.sha.5114f85', '2.1.0-bad']) {
    t.is(parseSemVer(text)?.text, text, text);
  }
  for (const text of ['', '1', '1.2', 'v1.2.3', '01.2.3', '1.02.3', '1.2.03', '1.2.3-', '1.2.3-01', '1.2.3+', '1.2.3-a..b', ' 1.2.3', '1.2.3 ', '1.2.3.4', '9007199254740992.0.0', '1.0.0-99999999999999999999', '1.2.3-a_b']) {
    t.is(parseSemVer(text), undefined, JSON.stringify(text));
  }
  t.deepEqual(parseSemVer('1.0.0-rc.11.x')?.prerelease, ['rc', 11, 'x']);
});

test('SemVer precedence follows the specification (§11), ignoring build metadata', (t) => {
  // The chain of semver.org §11, plus numeric (not lexical) comparison of each part.
  const ordered = ['0.9.9', '1.0.0-alpha', '1.0.0-alpha.1', '1.0.0-alpha.beta', '1.0.0-beta', '1.0.0-beta.2', '1.0.0-beta.11', '1.0.0-rc.1', '1.0.0', '1.2.0', '1.9.0', '1.10.0', '2.0.0-0', '2.0.0', '10.0.0'];
  const parsed = ordered.map((v) => requireSemVer(v));
  for (let i = 0; i < parsed.length; i++) {
    for (let j = 0; j < parsed.length; j++) {
      t.is(Math.sign(compareSemVer(parsed[i]!, parsed[j]!)), Math.sign(i - j), `${ordered[i]} vs ${ordered[j]}`);
    }
  }
  t.is(compareSemVer(requireSemVer('1.0.0+a'), requireSemVer('1.0.0+b')), 0);
  const shuffled = [...parsed].reverse().sort(compareSemVer).map((v) => v.text);
  t.deepEqual(shuffled, ordered);
});
