import test from 'ava';
import { formatAssignment, formatBlueprint, INSTANCES_MAX, parseAssignment, parseBlueprint, requireBlueprint } from '../../src/slices/blueprints.ts';
import { artifactBase } from '../../src/slices/keys.ts';
import { CutoverError, InvalidArgumentError } from '../../src/util/errors.ts';
import { nodeId } from '../../src/util/ids.ts';

test('a blueprint round-trips and keeps only its fields', (t) => {
  t.deepEqual(parseBlueprint(formatBlueprint({ instances: 3, perNodeMax: 1 })), { ok: true, value: { instances: 3, perNodeMax: 1 } });
  t.deepEqual(parseBlueprint('{"instances":0,"future":"field"}'), { ok: true, value: { instances: 0 } });
  t.deepEqual(requireBlueprint({ instances: 2, extra: true }), { instances: 2 });
});

test('parseBlueprint refuses bad stored values with a reason and never throws', (t) => {
  for (const value of ['', 'nope', '[]', 'null', '{}', '{"instances":-1}', '{"instances":1.5}', `{"instances":${INSTANCES_MAX + 1}}`, '{"instances":1,"perNodeMax":0}', '{"instances":"3"}']) {
    const parsed = parseBlueprint(value);
    t.false(parsed.ok, value);
    if (!parsed.ok) t.true(parsed.reason.length > 0);
  }
});

test('requireBlueprint throws INVALID_ARGUMENT naming the field', (t) => {
  const field = (input: unknown): string => {
    const error = t.throws(() => requireBlueprint(input), { instanceOf: InvalidArgumentError });
    t.is((error as CutoverError).code, 'INVALID_ARGUMENT');
    return (error as InvalidArgumentError).field;
  };
  t.is(field(null), 'blueprint');
  t.is(field({ instances: 1001 }), 'instances');
  t.is(field({ instances: 1, perNodeMax: 2.5 }), 'perNodeMax');
  t.is(t.throws(() => formatBlueprint({ instances: -2 }), { instanceOf: InvalidArgumentError }).field, 'instances');
});

test('an assignment round-trips; bad stored values are refused', (t) => {
  const record = { nodeId: nodeId(2), base: artifactBase('org.example', 'greeter'), version: '1.0.0-rc.1', instanceId: 'i12-0', term: 3, placedAt: 1500.5 };
  t.deepEqual(parseAssignment(formatAssignment(record)), { ok: true, value: record });
  for (const change of [{ nodeId: 0 }, { base: 'nocolon' }, { version: 'v1' }, { instanceId: '-x' }, { term: -1 }, { placedAt: 'soon' }]) {
    t.false(parseAssignment(JSON.stringify({ ...record, ...change })).ok, JSON.stringify(change));
  }
  t.false(parseAssignment('{').ok);
  t.is(t.throws(() => formatAssignment({ ...record, instanceId: 'a/b' }), { instanceOf: InvalidArgumentError }).field, 'assignment');
});
