import test from 'ava';
import { artifactBase } from '../../src/slices/keys.ts';
import { nextStep, routingValue } from '../../src/updates/decide.ts';
import { routingFact } from '../../src/updates/facts.ts';
import { createUpdateRecord, type UpdateRecord } from '../../src/updates/record.ts';
import { parseStartRequest } from '../../src/updates/request.ts';

// Found by the health simulator (cluster-sim/health seed 779): a new instance that FAILED after
// DEPLOYED (its node restarted it and the restart failed its start-up checks) is not replaced by
// placement, and DEPLOYED waited for it to be ACTIVE again for ever. The step that first sees the
// loss now stores a deadline (the deploy timeout from then) in the record; at it the update rolls
// back, whichever leader is in charge.

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

test('DEPLOYED stores a deadline when it first sees a new instance lost, waits for it, then rolls back at it', (t) => {
  const record = deployedAt(T0 + 1000);
  const seen = nextStep(record, facts(record, 0), T0 + 5000);
  t.like(seen, { kind: 'commit', step: 'new instances lost' });
  const stored = (seen as { record: UpdateRecord }).record;
  t.is(stored.deadlines.deployUntil, T0 + 5000 + 30_000);
  const waiting = nextStep(stored, facts(stored, 0), T0 + 5000 + 29_000);
  t.is(waiting.kind, 'wait');
  t.is((waiting as { wakeAt: number | null }).wakeAt, T0 + 5000 + 30_000, 'it wakes at the deadline');
  const rolled = nextStep(stored, facts(stored, 0), T0 + 5000 + 30_000);
  t.like(rolled, { kind: 'commit', step: 'DEPLOYED -> ROLLING_BACK' });
  t.regex((rolled as { record: UpdateRecord }).record.log.at(-1)!.reason, /0 of 1 new instances ACTIVE 30000 ms after they were found lost/);
});

test('instances back before the deadline: DEPLOYED -> ROUTING clears it', (t) => {
  const record = deployedAt(T0);
  const stored = (nextStep(record, facts(record, 0), T0 + 1000) as { record: UpdateRecord }).record;
  const routed = nextStep(stored, facts(stored, 1), T0 + 2000);
  t.like(routed, { kind: 'commit', step: 'DEPLOYED -> ROUTING' });
  t.is((routed as { record: UpdateRecord }).record.deadlines.deployUntil, null);
});

test('DEPLOYED with its instances ACTIVE still routes at once, whatever the time', (t) => {
  const record = deployedAt(T0);
  t.like(nextStep(record, facts(record, 1), T0 + 10 * 60_000), { kind: 'commit', step: 'DEPLOYED -> ROUTING' });
});
