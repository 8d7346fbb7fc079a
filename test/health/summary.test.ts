import test from 'ava';
import { summarize, SUMMARY_BUCKETS_MAX } from '../../src/health/summary.ts';
import type { CheckStatus, StoredResult } from '../../src/health/types.ts';

const NOW = 1_700_000_600_000;

function result(over: Partial<StoredResult> & { at: number; status: CheckStatus }): StoredResult {
  return {
    base: 'acme:greeter',
    version: '2.0.0',
    instanceId: 'i-1',
    nodeId: 1,
    check: 'http',
    type: 'http',
    durationMs: 10,
    attempts: 1,
    detail: over.status,
    ...over,
  };
}

test('buckets run oldest to newest over the window ending now, with counts, rate, instances and durations', (t) => {
  const results = [
    // Bucket 0: [NOW-180s, NOW-120s)
    result({ at: NOW - 180_000, status: 'success', durationMs: 5 }),
    result({ at: NOW - 150_000, status: 'failure', durationMs: 30, instanceId: 'i-2', nodeId: 2 }),
    result({ at: NOW - 121_000, status: 'success', durationMs: 10 }),
    // Bucket 1 is empty. Bucket 2: [NOW-60s, NOW]
    result({ at: NOW - 60_000, status: 'timeout', durationMs: 1_000 }),
    result({ at: NOW - 1, status: 'error', durationMs: 0, instanceId: 'i-3', nodeId: 3 }),
    result({ at: NOW, status: 'success', durationMs: 7 }),
    result({ at: NOW, status: 'success', durationMs: 8, instanceId: 'i-2', nodeId: 2 }),
  ];
  const [trend, ...rest] = summarize(results, { bucketMs: 60_000, nowMs: NOW, buckets: 3 });
  t.deepEqual(rest, []);
  t.is(trend!.artifact, 'acme:greeter');
  t.is(trend!.version, '2.0.0');
  t.deepEqual(trend!.buckets, [
    { startMs: NOW - 180_000, success: 2, failure: 1, timeout: 0, error: 0, successRate: 2 / 3, instances: 2, p50DurationMs: 10, maxDurationMs: 30 },
    { startMs: NOW - 120_000, success: 0, failure: 0, timeout: 0, error: 0, successRate: 0, instances: 0, p50DurationMs: 0, maxDurationMs: 0 },
    { startMs: NOW - 60_000, success: 2, failure: 0, timeout: 1, error: 1, successRate: 0.5, instances: 3, p50DurationMs: 7, maxDurationMs: 1_000 },
  ]);
});

test('results before the window count only toward the latest; results after now land in the last bucket', (t) => {
  const results = [result({ at: NOW - 10_000_000, status: 'failure', instanceId: 'old' }), result({ at: NOW + 2_000, status: 'success' })];
  const [trend] = summarize(results, { bucketMs: 1_000, nowMs: NOW, buckets: 5 });
  t.deepEqual(
    trend!.buckets.map((b) => b.success + b.failure + b.timeout + b.error),
    [0, 0, 0, 0, 1],
  );
  t.deepEqual(
    trend!.instances.map((i) => [i.instanceId, i.status]),
    [
      ['i-1', 'success'],
      ['old', 'failure'],
    ],
  );
});

test('one trend per base@version, sorted; the latest per instance and check, whatever the input order', (t) => {
  const results = [
    result({ at: NOW - 5_000, status: 'failure', check: 'tcp', type: 'tcp' }),
    result({ at: NOW - 1_000, status: 'success', check: 'tcp', type: 'tcp', detail: 'open' }),
    result({ at: NOW - 3_000, status: 'timeout', check: 'http' }),
    result({ at: NOW - 9_000, status: 'success', check: 'http' }),
    result({ at: NOW - 2_000, status: 'success', version: '1.0.0', instanceId: 'o-1', nodeId: 2 }),
    result({ at: NOW - 2_000, status: 'success', base: 'acme:billing', version: '3.1.0', instanceId: 'b-1' }),
  ];
  const trends = summarize(results, { bucketMs: 10_000, nowMs: NOW, buckets: 1 });
  t.deepEqual(
    trends.map((v) => `${v.artifact}@${v.version}`),
    ['acme:billing@3.1.0', 'acme:greeter@1.0.0', 'acme:greeter@2.0.0'],
  );
  t.deepEqual(trends[2]!.instances, [
    { instanceId: 'i-1', nodeId: 1, check: 'http', status: 'timeout', atMs: NOW - 3_000, detail: 'timeout' },
    { instanceId: 'i-1', nodeId: 1, check: 'tcp', status: 'success', atMs: NOW - 1_000, detail: 'open' },
  ]);
  t.like(trends[2]!.buckets[0], { success: 2, failure: 1, timeout: 1, instances: 1, successRate: 0.5 });
});

test('the median is the nearest rank (an even count takes the lower middle)', (t) => {
  const results = [40, 10, 30, 20].map((durationMs, i) => result({ at: NOW - i, status: 'success', durationMs }));
  const [trend] = summarize(results, { bucketMs: 100, nowMs: NOW, buckets: 1 });
  t.like(trend!.buckets[0], { p50DurationMs: 20, maxDurationMs: 40 });
});

test('no results, no trends', (t) => {
  t.deepEqual(summarize([], { bucketMs: 1_000, nowMs: NOW, buckets: 10 }), []);
});

test('bad options are refused with INVALID_ARGUMENT naming the field', (t) => {
  const cases: [Record<string, unknown>, string][] = [
    [{ bucketMs: 0, nowMs: NOW, buckets: 1 }, 'bucketMs'],
    [{ bucketMs: 1.5, nowMs: NOW, buckets: 1 }, 'bucketMs'],
    [{ bucketMs: 10, nowMs: Number.NaN, buckets: 1 }, 'nowMs'],
    [{ bucketMs: 10, nowMs: NOW, buckets: 0 }, 'buckets'],
    [{ bucketMs: 10, nowMs: NOW, buckets: SUMMARY_BUCKETS_MAX + 1 }, 'buckets'],
  ];
  for (const [options, field] of cases) {
    const error = t.throws(() => summarize([], options as never));
    t.is((error as { code?: string }).code, 'INVALID_ARGUMENT');
    t.is((error as { field?: string }).field, field);
  }
});
