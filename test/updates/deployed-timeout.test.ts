import test from 'ava';
import { artifactBase } from '../../src/slices/keys.ts';
import { nextStep, routingValue } from '../../src/updates/decide.ts';
import { routingFact } from '../../src/updates/facts.ts';
import { createUpdateRecord, type UpdateRecord } from '../../src/updates/record.ts';
import { parseStartRequest } from '../../src/updates/request.ts';

// Found by the health simulator (cluster-sim/health seed 779): a new instance that FAILED after
// DEPLOYED (its node restarted it and the restart failed its start-up checks) is not replaced by
// placement, and DEPLOYED waited for it to be ACTIVE again for ever. The wait is now bounded by
// the deploy timeout, counted from DEPLOYED; then the update rolls back.

const T0 = 1_704_067_200_000;
const base = artifactBase('org.sim', 'hc0');

function deployedAt(atMs: number): UpdateRecord {
  const r = createUpdateRecord(parseStartRequest({ artifactBase: base, version: '2.0.0', strategy: 'ROLLING', deployTimeoutSeconds: 30 }), { id: 'hc0-2.0.0-r1', oldVersion: '1.0.0', nowMs: T0 });
  const log = [...r.log, { step: 'DEPLOYING -> DEPLOYED', at: atMs, actor: { kind: 'system' as const, name: 'controller' }, reason: '1 new instances ACTIVE' }];
  return { ...r, state: 'DEPLOYED', log, routing: { newWeight: 0, oldWeight: 1 }, instances: { requested: null, target: 1, old: { instances: 3 } } };
}

function facts(record: UpdateRecord, active: number) {
  return {
    validation: undefined,
    newInstances: { active, reported: ['i1'], unhealthy: [] },
    oldInstances: { active: 3, reported: ['a', 'b', 'c'], unhealthy: [] },
    health: undefined,
    routing: routingFact(routingValue(record, { newWeight: 0, oldWeight: 1 })),
  };
}

test('DEPLOYED waits for a lost new instance until the deploy timeout, then rolls back', (t) => {
  const record = deployedAt(T0 + 1000);
  const waiting = nextStep(record, facts(record, 0), T0 + 1000 + 29_000);
  t.is(waiting.kind, 'wait');
  t.true(((waiting as { wakeAt: number | null }).wakeAt ?? Infinity) <= T0 + 1000 + 30_000, 'it wakes by the deadline');
  const rolled = nextStep(record, facts(record, 0), T0 + 1000 + 30_000);
  t.like(rolled, { kind: 'commit', step: 'DEPLOYED -> ROLLING_BACK' });
  t.regex((rolled as { record: UpdateRecord }).record.log.at(-1)!.reason, /0 of 1 new instances ACTIVE 30000 ms after DEPLOYED/);
});

test('DEPLOYED with its instances ACTIVE still routes at once, whatever the time', (t) => {
  const record = deployedAt(T0);
  t.like(nextStep(record, facts(record, 1), T0 + 10 * 60_000), { kind: 'commit', step: 'DEPLOYED -> ROUTING' });
});
