import test from 'ava';
import { artifactBase } from '../../src/slices/keys.ts';
import { nextStep, routingValue } from '../../src/updates/decide.ts';
import { routingFact } from '../../src/updates/facts.ts';
import { createUpdateRecord, type UpdateRecord } from '../../src/updates/record.ts';
import { parseStartRequest } from '../../src/updates/request.ts';

// Found by the updates simulator (cluster-sim/updates): DEPLOYED -> ROUTING was committed without
// looking at the instances, so a new instance lost between DEPLOYED and the next step (a failed
// health check, or its node gone while a new leader took over) let routing start short of them.

const T0 = 1_704_067_200_000;
const base = artifactBase('org.sim', 'upd0');

function deployed(): UpdateRecord {
  const r = createUpdateRecord(parseStartRequest({ artifactBase: base, version: '2.0.0', strategy: 'CANARY' }), { id: 'upd0-2.0.0-r1', oldVersion: '1.0.0', nowMs: T0 });
  return { ...r, state: 'DEPLOYED', routing: { newWeight: 0, oldWeight: 1 }, instances: { requested: null, target: 2, old: { instances: 2 } } };
}

function facts(record: UpdateRecord, active: number) {
  return {
    validation: undefined,
    newInstances: { active, reported: ['a', 'b'] },
    oldInstances: { active: 2, reported: ['c', 'd'] },
    health: undefined,
    routing: routingFact(routingValue(record, { newWeight: 0, oldWeight: 1 })),
  };
}

test('DEPLOYED moves to ROUTING only while the new instances are ACTIVE', (t) => {
  const record = deployed();
  // Short of them: the loss is recorded with a deadline (deployed-timeout.test.ts), then it waits.
  const short = nextStep(record, facts(record, 1), T0 + 10);
  t.like(short, { kind: 'commit', step: 'new instances lost' });
  const stored = (short as { record: UpdateRecord }).record;
  const waiting = nextStep(stored, facts(stored, 1), T0 + 20);
  t.is(waiting.kind, 'wait');
  t.regex((waiting as { reason: string }).reason, /waiting for 2 new instances ACTIVE again \(1 are\)/);
  const ok = nextStep(record, facts(record, 2), T0 + 10);
  t.like(ok, { kind: 'commit', step: 'DEPLOYED -> ROUTING' });
});
