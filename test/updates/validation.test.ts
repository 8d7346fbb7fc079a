import test from 'ava';
import { artifactBase, blueprintKey } from '../../src/slices/keys.ts';
import { formatActiveUpdate } from '../../src/updates/release.ts';
import { UpdateValidationError, compatibilityProblem, currentVersion, toValidationOutcome, validateUpdate, type ArtifactLookup, type ValidationSubject, type ValidationView } from '../../src/updates/validation.ts';
import { parseArtifactMeta } from '../../src/slices/artifact-store.ts';
import { artifactMeta } from './harness.ts';

const base = artifactBase('org.example', 'greeter');

function found(version: string, min?: string): ArtifactLookup {
  const parsed = parseArtifactMeta(artifactMeta(version, min));
  if (!parsed.ok) throw new Error(parsed.reason);
  return { kind: 'found', meta: parsed.meta };
}

function bp(version: string, instances: number, perNodeMax?: number): { key: string; value: string } {
  return { key: blueprintKey(base, version), value: JSON.stringify(perNodeMax === undefined ? { instances } : { instances, perNodeMax }) };
}

function routing(oldVersion: string, newVersion: string, newWeight: number, oldWeight: number): string {
  return JSON.stringify({ updateId: 'u0', oldVersion, newVersion, newWeight, oldWeight });
}

const subject: ValidationSubject = { id: 'u1', base, oldVersion: '1.0.0', newVersion: '2.0.0', strategy: 'CANARY', requestedInstances: null };

function view(overrides: Partial<ValidationView> = {}): ValidationView {
  return {
    blueprints: [bp('1.0.0', 4)],
    assignments: [],
    instanceKeys: [],
    routingValue: undefined,
    activeUpdateValue: undefined,
    members: [
      { id: 1, silentForMs: 0 },
      { id: 2, silentForMs: 0 },
    ],
    nodeDownAfterMs: 15_000,
    nodeInstancesMax: 8,
    newArtifact: found('2.0.0', '1.0.0'),
    oldArtifact: found('1.0.0'),
    ...overrides,
  };
}

function codes(v: ValidationView, s: ValidationSubject = subject): string[] {
  const result = validateUpdate(s, v);
  return result.ok ? [] : result.blockers.map((b) => b.code);
}

test('a valid update: the old blueprint and the target count', (t) => {
  t.deepEqual(validateUpdate(subject, view()), { ok: true, oldBlueprint: { instances: 4 }, target: 4 });
  t.deepEqual(validateUpdate({ ...subject, requestedInstances: 6 }, view()), { ok: true, oldBlueprint: { instances: 4 }, target: 6 });
  t.deepEqual(toValidationOutcome(validateUpdate(subject, view())), { ok: true, oldBlueprint: { instances: 4 } });
});

test('the current version: the routing record names it when it sends every call to a deployed version; else the only blueprint', (t) => {
  t.deepEqual(currentVersion(base, [bp('1.0.0', 4)], undefined), { ok: true, version: '1.0.0' });
  t.deepEqual(currentVersion(base, [bp('1.0.0', 4), bp('2.0.0', 4)], routing('1.0.0', '2.0.0', 1, 0)), { ok: true, version: '2.0.0' });
  t.deepEqual(currentVersion(base, [bp('1.0.0', 4), bp('2.0.0', 4)], routing('1.0.0', '2.0.0', 0, 1)), { ok: true, version: '1.0.0' });
  t.false(currentVersion(base, [bp('1.0.0', 4), bp('2.0.0', 4)], routing('1.0.0', '2.0.0', 1, 1)).ok);
  t.false(currentVersion(base, [], undefined).ok);
  t.deepEqual(currentVersion(base, [bp('1.0.0', 4), { key: blueprintKey(artifactBase('org.other', 'x'), '5.0.0'), value: '{"instances":1}' }], undefined), { ok: true, version: '1.0.0' }, 'other artifacts do not count');
});

test('each refusal names what blocked it', (t) => {
  t.deepEqual(codes(view({ activeUpdateValue: formatActiveUpdate({ updateId: 'other', rollbackOfRevision: null }) })), ['UPDATE_ACTIVE']);
  t.deepEqual(codes(view({ activeUpdateValue: formatActiveUpdate({ updateId: 'u1', rollbackOfRevision: null }) })), [], 'its own key is no blocker');
  t.deepEqual(codes(view({ newArtifact: { kind: 'missing' } })), ['ARTIFACT_NOT_FOUND']);
  t.deepEqual(codes(view({ newArtifact: { kind: 'corrupt', reason: 'bad' } })), ['ARTIFACT_CORRUPT']);
  t.deepEqual(codes(view({ newArtifact: found('2.0.0') }), { ...subject, base: artifactBase('org.example', 'other') }).includes('ARTIFACT_MISMATCH'), true);
  t.deepEqual(codes(view(), { ...subject, newVersion: '1.0.0' }), ['SAME_VERSION']);
  t.deepEqual(codes(view(), { ...subject, oldVersion: '0.9.0' }), ['VERSION_CHANGED', 'NOT_DEPLOYED', 'INCOMPATIBLE_VERSION']);
  t.deepEqual(codes(view({ blueprints: [] })), ['NOT_DEPLOYED']);
  t.deepEqual(codes(view({ newArtifact: found('2.0.0', '1.5.0') })), ['INCOMPATIBLE_VERSION']);
  t.deepEqual(codes(view({ nodeInstancesMax: 3 })), ['INSUFFICIENT_CAPACITY']);
  const result = validateUpdate(subject, view({ newArtifact: found('2.0.0', '1.5.0'), nodeInstancesMax: 3 }));
  t.false(result.ok);
  if (!result.ok) {
    const error = new UpdateValidationError({ base, oldVersion: '1.0.0', newVersion: '2.0.0' }, result.blockers);
    t.is(error.code, 'INCOMPATIBLE_VERSION');
    t.regex(error.message, /\[INCOMPATIBLE_VERSION\] .*; \[INSUFFICIENT_CAPACITY\] 2\.0\.0 needs 4 more instance\(s\) and the live nodes have room for 2/);
    t.deepEqual(toValidationOutcome(result), { ok: false, blockers: result.blockers.map((b) => `[${b.code}] ${b.message}`) });
  }
});

test('compatibility: the higher version must admit the lower one, for upgrades and downgrades', (t) => {
  t.is(compatibilityProblem('1.0.0', '2.0.0', found('1.0.0'), found('2.0.0', '1.0.0')), undefined);
  t.regex(compatibilityProblem('1.0.0', '2.0.0', found('1.0.0'), found('2.0.0', '1.5.0')) ?? '', /2\.0\.0 may only run beside 1\.5\.0 or later.*1\.0\.0 is older: upgrade through/);
  t.is(compatibilityProblem('1.0.0', '2.0.0', found('1.0.0'), found('2.0.0')), undefined, 'no minCompatibleVersion, no constraint');
  t.regex(compatibilityProblem('3.0.0', '1.0.0', found('3.0.0', '2.0.0'), found('1.0.0')) ?? '', /3\.0\.0 may only run beside 2\.0\.0.*roll back to a version it admits/);
  t.is(compatibilityProblem('3.0.0', '2.5.0', found('3.0.0', '2.0.0'), found('2.5.0')), undefined);
  t.is(compatibilityProblem('1.0.0', '2.0.0-rc.1', found('1.0.0'), found('2.0.0-rc.1', '1.0.0')), undefined);
  t.deepEqual(codes(view({ newArtifact: found('2.0.0', '1.5.0') }), { ...subject, strategy: 'RECREATE' }), [], 'RECREATE never runs both versions');
});

test('capacity: the room on live nodes for the new set beside the old one; RECREATE counts the old set as freed', (t) => {
  t.deepEqual(codes(view({ nodeInstancesMax: 4 })), [], 'two nodes of 4: 4 old + 4 new fit');
  t.deepEqual(codes(view({ nodeInstancesMax: 3 })), ['INSUFFICIENT_CAPACITY']);
  t.deepEqual(codes(view({ nodeInstancesMax: 2 }), { ...subject, strategy: 'RECREATE' }), []);
  t.deepEqual(codes(view({ members: [{ id: 1, silentForMs: 0 }, { id: 2, silentForMs: 60_000 }], nodeInstancesMax: 6 })), ['INSUFFICIENT_CAPACITY'], 'a down node has no room');
  t.deepEqual(codes(view({ nodeInstancesMax: 6 })), [], 'both live: room for it');
  t.deepEqual(codes(view({ blueprints: [bp('1.0.0', 4, 1)] })), ['INSUFFICIENT_CAPACITY'], "the old blueprint's perNodeMax applies to the new set");
  t.deepEqual(codes(view({ members: undefined, nodeInstancesMax: 1 })), [], 'not the leader: capacity is left to the controller');
  t.deepEqual(codes(view({ blueprints: [bp('1.0.0', 4), bp('2.0.0', 4)], routingValue: routing('1.0.0', '2.0.0', 0, 1), nodeInstancesMax: 4 })), [], 'instances the new version already has count');
});
