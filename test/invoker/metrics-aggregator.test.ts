import test from 'ava';
import { InvocationMetrics, type MetricsWindow } from '../../src/invoker/metrics.ts';
import { MetricsAggregator, type MetricsAggregatorOptions } from '../../src/invoker/metrics-aggregator.ts';
import { LATENCY_COUNTS_LENGTH, SparseLatencyCounts, type LatencyCountsList } from '../../src/invoker/latency-histogram.ts';
import { CutoverError } from '../../src/util/errors.ts';
import { SeededRandom } from '../../src/util/random.ts';
import { ManualClock } from '../helpers/manual-clock.ts';

type Call = readonly [base: string, version: string, latencyMs: number, ok: boolean];

/** A real window, made by InvocationMetrics from `calls`. */
function windowOf(nodeId: number, startMs: number, endMs: number, calls: readonly Call[]): MetricsWindow {
  const metrics = new InvocationMetrics({ startMs });
  for (const [base, version, latencyMs, ok] of calls) metrics.record(base, version, latencyMs, ok);
  return metrics.takeWindow(nodeId, endMs);
}

const repeat = (n: number, call: Call): Call[] => Array.from({ length: n }, () => call);

/** Relative precision of two significant digits, plus the 1 µs unit. */
const withinPrecision = (actualMs: number, expectedMs: number): boolean => Math.abs(actualMs - expectedMs) <= expectedMs / 128 + 0.001;

function setup(options: Partial<MetricsAggregatorOptions> = {}) {
  const clock = new ManualClock();
  const aggregator = new MetricsAggregator({ clock, ...options });
  return { clock, aggregator };
}

test('windows from several nodes merge into one cluster-wide view per version', async (t) => {
  const { clock, aggregator } = setup();
  await clock.advance(10_000);
  // Node 1: 90 ok calls at 10 ms; node 2: 8 ok at 10 ms and 2 errors at 400 ms; another version on node 2.
  t.like(aggregator.ingest(windowOf(1, 9000, 10_000, repeat(90, ['acme:shop', '2.0.0', 10, true]))), { ok: true });
  await clock.advance(200);
  t.like(aggregator.ingest(windowOf(2, 500, 1500, [...repeat(8, ['acme:shop', '2.0.0', 10, true]), ...repeat(2, ['acme:shop', '2.0.0', 400, false]), ['acme:shop', '1.0.0', 5, true]])), { ok: true });

  const health = aggregator.snapshot('acme:shop', '2.0.0', { windowMs: 10_000, nowMs: clock.nowMs() });
  t.truthy(health);
  t.like(health, { base: 'acme:shop', version: '2.0.0', requestCount: 100, errorCount: 2, errorRate: 0.02, nodes: 2, collectedAt: 10_200, windowMs: 10_000 });
  t.is(health!.avgLatencyMs, (98 * 10 + 2 * 400) / 100);
  // The two slow calls are the top 2%: p99 is one of them, not the 10 ms bulk.
  t.true(withinPrecision(health!.p99LatencyMs, 400), `p99 ${health!.p99LatencyMs}`);
  t.like(aggregator.snapshot('acme:shop', '1.0.0', { windowMs: 10_000 }), { requestCount: 1, nodes: 1 });
  t.is(aggregator.snapshot('acme:shop', '3.0.0'), undefined);
  t.deepEqual(aggregator.snapshotAll({ windowMs: 5000 }).map((h) => h.version).sort(), ['1.0.0', '2.0.0']);
});

test('p99 merges histograms across nodes and seconds, not averages of per-node p99s', async (t) => {
  const { clock, aggregator } = setup();
  // 20 seconds, 4 nodes; node 4 is slow (100 ms) and serves 5% of calls: the cluster p99 is 100 ms
  // although three of four nodes report p99 = 5 ms.
  for (let second = 1; second <= 20; second++) {
    await clock.advance(1000);
    for (let node = 1; node <= 4; node++) {
      const calls = node === 4 ? repeat(5, ['a:b', '1', 100, true]) : repeat(32, ['a:b', '1', 5, true]);
      t.like(aggregator.ingest(windowOf(node, second * 1000 - 1000, second * 1000, calls)), { ok: true });
    }
  }
  const health = aggregator.snapshot('a:b', '1', { windowMs: 20_000 });
  t.is(health!.requestCount, 20 * 101);
  t.is(health!.nodes, 4);
  t.true(withinPrecision(health!.p99LatencyMs, 100), `p99 ${health!.p99LatencyMs}`);
});

test('old seconds slide out of the window and out of the span', async (t) => {
  const { clock, aggregator } = setup({ spanMs: 60_000 });
  await clock.advance(500);
  aggregator.ingest(windowOf(1, 0, 500, repeat(10, ['a:b', '1', 1, false])));
  await clock.advance(30_000); // 30.5 s
  aggregator.ingest(windowOf(1, 500, 30_500, repeat(30, ['a:b', '1', 1, true])));

  t.like(aggregator.snapshot('a:b', '1', { windowMs: 60_000, nowMs: 59_000 }), { requestCount: 40, errorCount: 10, errorRate: 0.25, collectedAt: 30_500 });
  // A 10-second window at 31 s covers seconds 22..31: only the second window.
  t.like(aggregator.snapshot('a:b', '1', { windowMs: 10_000, nowMs: 31_000 }), { requestCount: 30, errorRate: 0 });
  // At 60.5 s second 0 has slid out of the 60-second window.
  t.like(aggregator.snapshot('a:b', '1', { windowMs: 60_000, nowMs: 60_500 }), { requestCount: 30 });
  t.is(aggregator.snapshot('a:b', '1', { windowMs: 60_000, nowMs: 91_000 }), undefined);

  // The next ingest after the span has passed drops the pair altogether.
  await clock.advance(61_000);
  aggregator.ingest(windowOf(1, 30_500, 31_000, [['c:d', '1', 1, true]]));
  t.is(aggregator.stats().versions, 1);
  t.is(aggregator.snapshot('a:b', '1'), undefined);
});

test('a duplicate window (same node and startMs) is ignored', async (t) => {
  const { clock, aggregator } = setup();
  await clock.advance(1000);
  const window = windowOf(3, 0, 1000, repeat(7, ['a:b', '1', 2, true]));
  t.like(aggregator.ingest(window), { ok: true });
  await clock.advance(100);
  t.like(aggregator.ingest(structuredClone(window)), { ok: false, reason: 'duplicate' });
  t.is(aggregator.snapshot('a:b', '1')!.requestCount, 7);
  // The same window from another node is not a duplicate.
  t.like(aggregator.ingest({ ...window, nodeId: 4 }), { ok: true });
  t.is(aggregator.snapshot('a:b', '1')!.requestCount, 14);
});

test('windows out of order or far in the past or future of the node clock are refused', async (t) => {
  const { clock, aggregator } = setup({ skewMaxMs: 5000, nodeIdleMs: 20_000 });
  // Node 1's clock is 1,000,000 ms ahead of the leader's: only differences on it matter.
  const ahead = 1_000_000;
  await clock.advance(2000);
  t.like(aggregator.ingest(windowOf(1, ahead + 1000, ahead + 2000, [['a:b', '1', 1, true]])), { ok: true });
  await clock.advance(1000);
  t.like(aggregator.ingest(windowOf(1, ahead + 2000, ahead + 3000, [['a:b', '1', 1, true]])), { ok: true });
  t.like(aggregator.ingest(windowOf(1, ahead + 1500, ahead + 2500, [['a:b', '1', 1, true]])), { ok: false, reason: 'out-of-order' });
  await clock.advance(1000);
  t.like(aggregator.ingest(windowOf(1, ahead + 3000, ahead + 60_000, [['a:b', '1', 1, true]])), { ok: false, reason: 'skew' });
  // A window held up in transit for 8 s is stale by the time it arrives.
  await clock.advance(8000);
  t.like(aggregator.ingest(windowOf(1, ahead + 3000, ahead + 4000, [['a:b', '1', 1, true]])), { ok: false, reason: 'skew' });
  t.is(aggregator.snapshot('a:b', '1')!.requestCount, 2);
  t.is(aggregator.stats().windowsRefused, 3);

  // The node restarts (its clock starts again near 0): refused while its old offset is fresh,
  // taken back once it has been silent for nodeIdleMs.
  t.like(aggregator.ingest(windowOf(1, 0, 1000, [['a:b', '1', 1, true]])), { ok: false });
  await clock.advance(20_000);
  t.like(aggregator.ingest(windowOf(1, 20_000, 21_000, [['a:b', '1', 1, true]])), { ok: true });
  await clock.advance(1000);
  t.like(aggregator.ingest(windowOf(1, 21_000, 22_000, [['a:b', '1', 1, true]])), { ok: true });
});

test('malformed windows are refused whole and leave no trace', async (t) => {
  const { clock, aggregator } = setup();
  await clock.advance(1000);
  const good = windowOf(1, 0, 1000, [['a:b', '1', 1, true], ['a:b', '2', 1, true]]);
  const other = windowOf(1, 0, 1000, repeat(3, ['a:b', '2', 50, true]));
  const cases: [string, unknown][] = [
    ['not an object', 'window'],
    ['nodeId missing', { ...good, nodeId: undefined }],
    ['count differs from the histogram', { ...good, versions: [good.versions[0], { ...good.versions[1], count: 2 }] }],
    ['histogram garbage', { ...good, versions: [good.versions[0], { ...good.versions[1], histogram: 'SElTVA==' }] }],
    ['histogram of another entry', { ...good, versions: [good.versions[0], { ...good.versions[1]!, histogram: other.versions[0]!.histogram }] }],
    ['window longer than allowed', { ...good, startMs: -120_000 }],
    ['errors above count', { ...good, versions: [{ ...good.versions[0], errors: 5 }] }],
  ];
  for (const [name, window] of cases) {
    const result = aggregator.ingest(window as MetricsWindow);
    t.like(result, { ok: false, reason: 'malformed' }, name);
  }
  t.deepEqual(aggregator.snapshotAll(), []);
  t.like(aggregator.stats(), { versions: 0, buckets: 0, nodes: 0, windowsRefused: cases.length });
  t.like(aggregator.ingest(good), { ok: true }, 'the node is not held to a refused window');
});

test('memory is bounded: versions, buckets per version and nodes', async (t) => {
  const { clock, aggregator } = setup({ spanMs: 10_000, versionsMax: 3, nodesMax: 2, nodeIdleMs: 5000 });
  await clock.advance(1000);
  const result = aggregator.ingest(windowOf(1, 0, 1000, [['a:b', '1', 1, true], ['a:b', '2', 1, true], ['a:b', '3', 1, true], ['a:b', '4', 1, true]]));
  t.deepEqual(result, { ok: true, versionsDropped: 1 });
  t.is(aggregator.stats().versions, 3);

  // 100 seconds of windows for the three versions: the ring keeps at most 10 buckets each.
  for (let second = 2; second <= 100; second++) {
    await clock.advance(1000);
    aggregator.ingest(windowOf(1, second * 1000 - 1000, second * 1000, [['a:b', '1', 1, true], ['a:b', '2', 1, true], ['a:b', '3', 1, true]]));
  }
  t.like(aggregator.stats(), { versions: 3, buckets: 30 });
  t.is(aggregator.snapshot('a:b', '1', { windowMs: 10_000 })!.requestCount, 10);

  // Versions 2 and 3 stop; once they leave the span a new version fits.
  for (let second = 101; second <= 112; second++) {
    await clock.advance(1000);
    aggregator.ingest(windowOf(1, second * 1000 - 1000, second * 1000, [['a:b', '1', 1, true]]));
  }
  t.deepEqual(aggregator.ingest(windowOf(1, 112_000, 112_500, [['a:b', '5', 1, true]])), { ok: true, versionsDropped: 0 });
  t.is(aggregator.stats().versions, 2);

  // Nodes: a third node is refused while two are active, taken once one has gone idle.
  t.like(aggregator.ingest(windowOf(2, 0, 1000, [['a:b', '1', 1, true]])), { ok: true });
  t.like(aggregator.ingest(windowOf(3, 0, 1000, [['a:b', '1', 1, true]])), { ok: false, reason: 'too-many-nodes' });
  for (let i = 0; i < 6; i++) {
    await clock.advance(1000);
    aggregator.ingest(windowOf(1, 113_000 + i * 1000, 114_000 + i * 1000, [['a:b', '1', 1, true]]));
  }
  t.like(aggregator.ingest(windowOf(3, 0, 1000, [['a:b', '1', 1, true]])), { ok: true });
  t.is(aggregator.stats().nodes, 2);
});

test('clear() forgets everything (leadership lost)', async (t) => {
  const { clock, aggregator } = setup();
  await clock.advance(1000);
  const window = windowOf(1, 0, 1000, [['a:b', '1', 1, true]]);
  aggregator.ingest(window);
  aggregator.clear();
  t.is(aggregator.snapshot('a:b', '1'), undefined);
  t.like(aggregator.stats(), { versions: 0, nodes: 0 });
  t.like(aggregator.ingest(window), { ok: true }, 'no memory of the node either');
});

test('settings and snapshot windows are checked with INVALID_ARGUMENT', (t) => {
  const clock = new ManualClock();
  for (const options of [{ spanMs: 0 }, { spanMs: 1500 }, { bucketMs: 0.5 }, { spanMs: 4_000_000 }, { versionsMax: -1 }, { skewMaxMs: Number.NaN }]) {
    t.is(t.throws(() => new MetricsAggregator({ clock, ...options }), { instanceOf: CutoverError })?.code, 'INVALID_ARGUMENT');
  }
  const aggregator = new MetricsAggregator({ clock });
  for (const windowMs of [0, -1, 60_001, Number.NaN]) {
    t.is(t.throws(() => aggregator.snapshot('a:b', '1', { windowMs }), { instanceOf: CutoverError })?.code, 'INVALID_ARGUMENT');
  }
});

test('property: merging sparse bucket counts equals adding them densely', (t) => {
  const random = new SeededRandom(31);
  const randomList = (): LatencyCountsList => {
    const dense = new Float64Array(LATENCY_COUNTS_LENGTH);
    const filled = random.nextInt(0, 60);
    for (let i = 0; i < filled; i++) dense[random.nextInt(0, LATENCY_COUNTS_LENGTH)] = random.nextInt(1, 1000);
    const indexes = [...dense.keys()].filter((i) => dense[i]! > 0);
    return { indexes: Uint16Array.from(indexes), counts: Float64Array.from(indexes.map((i) => dense[i]!)), size: indexes.length };
  };
  for (let round = 0; round < 200; round++) {
    const sparse = new SparseLatencyCounts();
    const expected = new Float64Array(LATENCY_COUNTS_LENGTH);
    if (round % 3 === 0) {
      sparse.merge(randomList());
      sparse.clear(); // reused bucket: old counts are gone
    }
    for (let n = random.nextInt(1, 6); n > 0; n--) {
      const list = randomList();
      for (let i = 0; i < list.size; i++) expected[list.indexes[i]!]! += list.counts[i]!;
      sparse.merge(list);
    }
    const actual = new Float64Array(LATENCY_COUNTS_LENGTH);
    for (let i = 0; i < sparse.size; i++) {
      if (i > 0 && sparse.indexes[i]! <= sparse.indexes[i - 1]!) return t.fail('indexes not strictly increasing');
      actual[sparse.indexes[i]!] = sparse.counts[i]!;
    }
    if (!actual.every((count, i) => count === expected[i])) return t.fail(`round ${round}: merged counts differ`);
  }
  t.pass();
});
