import test from 'ava';
import { evaluateHealth } from '../../src/updates/health-gate.ts';
import type { UpdateRecord } from '../../src/updates/record.ts';
import { health, recordIn, T0 } from './fixtures.ts';

function gated(fields: Record<string, unknown> = {}, breaches = 0, lastBreachAt: number | null = null): UpdateRecord {
  const record = recordIn('ROUTING', fields);
  return { ...record, healthGate: { ...record.healthGate, consecutiveBreaches: breaches, lastBreachAt } };
}

test('healthy: within both thresholds (a value equal to a threshold is accepted)', (t) => {
  t.deepEqual(evaluateHealth(gated(), health(100, 0.01, 500), T0), { verdict: 'healthy', breach: false, reasons: [], consecutiveBreaches: 0, counted: false, decision: 'continue' });
});

test('error-rate breach pauses, with the reason', (t) => {
  const result = evaluateHealth(gated(), health(200, 0.05, 100), T0);
  t.like(result, { verdict: 'breach', breach: true, consecutiveBreaches: 1, counted: true, decision: 'pause' });
  t.deepEqual(result.reasons, ['error rate 5.00% above 1.00% (10 of 200 calls)']);
});

test('p99 latency breach pauses, with the reason; both thresholds give two reasons', (t) => {
  t.deepEqual(evaluateHealth(gated(), health(200, 0, 812.4), T0).reasons, ['p99 latency 812 ms above 500 ms']);
  t.is(evaluateHealth(gated(), health(200, 0.5, 900), T0).reasons.length, 2);
  // STRICT thresholds.
  t.true(evaluateHealth(gated({ healthPreset: 'STRICT' }), health(1000, 0.002, 150), T0).breach);
  t.true(evaluateHealth(gated({ healthPreset: 'STRICT' }), health(1000, 0, 201), T0).breach);
  t.false(evaluateHealth(gated({ healthPreset: 'RELAXED' }), health(1000, 0.04, 900), T0).breach);
});

test('no traffic or too little traffic is inconclusive: not a breach, and the count stays', (t) => {
  const record = gated({}, 2, T0);
  const none = evaluateHealth(record, undefined, T0 + 60_000);
  t.like(none, { verdict: 'inconclusive', breach: false, consecutiveBreaches: 2, counted: false, decision: 'continue' });
  t.regex(none.reasons[0]!, /no traffic on 2.0.0/);
  const few = evaluateHealth(record, health(19, 1, 5000), T0 + 60_000);
  t.like(few, { verdict: 'inconclusive', consecutiveBreaches: 2, decision: 'continue' });
  t.regex(few.reasons[0]!, /too little traffic: 19 calls in the window, fewer than 20/);
  t.true(evaluateHealth(record, health(20, 1, 5000), T0 + 60_000).breach, '20 calls are enough (the default minimum)');
  t.false(evaluateHealth(gated({ minRequestCount: 100 }), health(99, 1, 5000), T0).breach);
  t.is(evaluateHealth(record, { ...health(100, 0, 10), p99LatencyMs: Number.NaN }, T0).verdict, 'inconclusive');
});

test('consecutive breaches count once per interval; failureThreshold of them decide a rollback', (t) => {
  // interval 10 s, threshold 3.
  const second = evaluateHealth(gated({}, 1, T0), health(100, 0.5, 10), T0 + 10_000);
  t.like(second, { consecutiveBreaches: 2, counted: true, decision: 'pause' });
  const tooSoon = evaluateHealth(gated({}, 2, T0), health(100, 0.5, 10), T0 + 9_999);
  t.like(tooSoon, { breach: true, consecutiveBreaches: 2, counted: false, decision: 'pause' });
  const third = evaluateHealth(gated({}, 2, T0), health(100, 0.5, 10), T0 + 10_000);
  t.like(third, { consecutiveBreaches: 3, counted: true, decision: 'rollback' });
  t.like(evaluateHealth(gated({ failureThreshold: 1 }), health(100, 0.5, 10), T0), { consecutiveBreaches: 1, decision: 'rollback' });
});

test('with auto-rollback off, breaches only pause, however many', (t) => {
  t.like(evaluateHealth(gated({ autoRollbackEnabled: false }, 50, T0), health(100, 0.5, 10), T0 + 10_000), { consecutiveBreaches: 51, decision: 'pause' });
});

test('a healthy evaluation resets the count', (t) => {
  t.like(evaluateHealth(gated({}, 2, T0), health(100, 0, 10), T0 + 1), { verdict: 'healthy', consecutiveBreaches: 0, decision: 'continue' });
});

test('new instances failing their health checks are a breach even without traffic, beside the metric breaches', (t) => {
  const failing = ['instance i1 on node 2 of 2.0.0: health checks failing: ready failure (HTTP 500 in 3 ms)'];
  const alone = evaluateHealth(gated(), undefined, T0, failing);
  t.like(alone, { verdict: 'breach', breach: true, consecutiveBreaches: 1, counted: true, decision: 'pause' });
  t.deepEqual(alone.reasons, failing);
  t.like(evaluateHealth(gated(), health(5, 0, 10), T0, failing), { verdict: 'breach' }, 'too little traffic does not hide them');
  t.deepEqual(evaluateHealth(gated(), health(200, 0.05, 100), T0, failing).reasons, ['error rate 5.00% above 1.00% (10 of 200 calls)', ...failing]);
  const third = evaluateHealth(gated({}, 2, T0), undefined, T0 + 60_000, failing);
  t.like(third, { consecutiveBreaches: 3, decision: 'rollback' });
  t.is(evaluateHealth(gated(), health(200, 0, 10), T0, []).verdict, 'healthy');
});
