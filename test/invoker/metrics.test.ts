import test from 'ava';
import { deflateSync } from 'node:zlib';
import { Float64Histogram, decodeFromCompressedBase64, encodeIntoCompressedBase64 } from 'hdr-histogram-js';
import { InvocationMetrics, MetricsPusher, WINDOW_VERSIONS_MAX, parseMetricsWindow, type MetricsWindow } from '../../src/invoker/metrics.ts';
import {
  HISTOGRAM_ENCODED_LENGTH_MAX,
  LATENCY_COUNTS_LENGTH,
  LATENCY_US_MAX,
  addCountsLists,
  checkEncodedHistogram,
  latencyIndex,
  latencyMsToUs,
  newLatencyHistogram,
} from '../../src/invoker/latency-histogram.ts';
import { CutoverError } from '../../src/util/errors.ts';
import { SeededRandom } from '../../src/util/random.ts';
import { ManualClock, flush } from '../helpers/manual-clock.ts';

/** Relative precision of two significant digits (sub-bucket half count 128), plus the 1 µs unit. */
function withinPrecision(actualMs: number, expectedMs: number): boolean {
  return Math.abs(actualMs - expectedMs) <= expectedMs / 128 + 0.001;
}

/** The exact value at `percentile` of `values` (nearest rank), as HdrHistogram defines it. */
function exactPercentile(values: readonly number[], percentile: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(1, Math.ceil((percentile / 100) * sorted.length)) - 1]!;
}

const byKey = (window: MetricsWindow) => [...window.versions].sort((a, b) => (a.base + a.version < b.base + b.version ? -1 : 1));

test('a window holds exact counts, errors and latency sums per (artifact, version), then resets', (t) => {
  const metrics = new InvocationMetrics();
  for (let i = 0; i < 10; i++) metrics.record('acme:shop', '1.0.0', 2, i % 4 !== 0);
  for (let i = 0; i < 5; i++) metrics.record('acme:shop', '1.1.0', 3.5, true);
  metrics.record('acme:cart', '2.0.0', 0.25, false);

  const first = metrics.takeWindow(7, 1000);
  t.is(first.nodeId, 7);
  t.is(first.startMs, 0);
  t.is(first.endMs, 1000);
  const versions = byKey(first);
  t.deepEqual(
    versions.map(({ base, version, count, errors, latencySumMs }) => ({ base, version, count, errors, latencySumMs })),
    [
      { base: 'acme:cart', version: '2.0.0', count: 1, errors: 1, latencySumMs: 0.25 },
      { base: 'acme:shop', version: '1.0.0', count: 10, errors: 3, latencySumMs: 20 },
      { base: 'acme:shop', version: '1.1.0', count: 5, errors: 0, latencySumMs: 17.5 },
    ],
  );
  for (const entry of versions) t.is(decodeFromCompressedBase64(entry.histogram).totalCount, entry.count);

  const empty = metrics.takeWindow(7, 2000);
  t.deepEqual(empty, { nodeId: 7, startMs: 1000, endMs: 2000, versions: [] });

  metrics.record('acme:shop', '1.0.0', 1, false);
  const third = metrics.takeWindow(7, 3000);
  t.is(third.startMs, 2000);
  t.deepEqual(third.versions.map((v) => [v.base, v.version, v.count, v.errors]), [['acme:shop', '1.0.0', 1, 1]]);
  t.is(decodeFromCompressedBase64(third.versions[0]!.histogram).totalCount, 1, 'the window histogram was reset, not accumulated');
});

test('a window is plain JSON and parses back to itself', (t) => {
  const metrics = new InvocationMetrics({ startMs: 500 });
  metrics.record('acme:shop', '1.0.0', 12.5, true);
  metrics.record('acme:shop', '1.0.0', 40, false);
  const window = metrics.takeWindow(3, 1500);
  const parsed = parseMetricsWindow(JSON.parse(JSON.stringify(window)));
  t.deepEqual(parsed, { ok: true, value: window });
});

test('p99 from a window histogram is within two significant digits for known distributions', (t) => {
  const random = new SeededRandom(4_004);
  const distributions: Record<string, number[]> = {
    'uniform 1..1000 ms': Array.from({ length: 1000 }, (_, i) => i + 1),
    'bimodal 98% 5 ms, 2% 800 ms': Array.from({ length: 5000 }, (_, i) => (i % 50 === 0 ? 800 : 5)),
    'exponential mean 40 ms': Array.from({ length: 20_000 }, () => -40 * Math.log(1 - random.nextFloat())),
    'sub-millisecond 10..990 µs': Array.from({ length: 99 }, (_, i) => (i + 1) / 100),
  };
  for (const [name, values] of Object.entries(distributions)) {
    const metrics = new InvocationMetrics();
    for (const value of values) metrics.record('acme:shop', '1.0.0', value, true);
    const histogram = decodeFromCompressedBase64(metrics.takeWindow(1, 1000).versions[0]!.histogram);
    for (const percentile of [50, 99]) {
      const expected = exactPercentile(values.map((v) => latencyMsToUs(v) / 1000), percentile);
      const actual = histogram.getValueAtPercentile(percentile) / 1000;
      t.true(withinPrecision(actual, expected), `${name} p${percentile}: ${actual} vs exact ${expected}`);
    }
  }
});

test('latencies are clamped to [0, 10 min] and recorded to the microsecond', (t) => {
  t.is(latencyMsToUs(0.0004), 0);
  t.is(latencyMsToUs(1.2345), 1235);
  t.is(latencyMsToUs(-3), 0);
  t.is(latencyMsToUs(Number.NaN), 0);
  t.is(latencyMsToUs(Number.POSITIVE_INFINITY), LATENCY_US_MAX);
  t.is(latencyMsToUs(20 * 60_000), LATENCY_US_MAX);

  const metrics = new InvocationMetrics();
  metrics.record('acme:shop', '1.0.0', 20 * 60_000, true);
  metrics.record('acme:shop', '1.0.0', -5, true);
  const [entry] = metrics.takeWindow(1, 1000).versions;
  t.is(entry!.latencySumMs, 600_000);
  const histogram = decodeFromCompressedBase64(entry!.histogram);
  t.is(histogram.totalCount, 2);
  t.true(withinPrecision(histogram.maxValue / 1000, 600_000));
});

test('totals are cumulative across windows and include the current one', (t) => {
  const metrics = new InvocationMetrics();
  for (let i = 1; i <= 100; i++) metrics.record('acme:shop', '1.0.0', i, i <= 95);
  metrics.takeWindow(1, 1000);
  for (let i = 101; i <= 200; i++) metrics.record('acme:shop', '1.0.0', i, true);
  const [totals] = metrics.totals();
  t.is(totals!.count, 200);
  t.is(totals!.errors, 5);
  t.is(totals!.latencySumMs, (200 * 201) / 2);
  t.true(withinPrecision(totals!.p50LatencyMs, 100), `p50 ${totals!.p50LatencyMs}`);
  t.true(withinPrecision(totals!.p99LatencyMs, 198), `p99 ${totals!.p99LatencyMs}`);
  t.true(withinPrecision(totals!.maxLatencyMs, 200), `max ${totals!.maxLatencyMs}`);
  // Taking the window does not change the totals.
  metrics.takeWindow(1, 2000);
  t.is(metrics.totals()[0]!.count, 200);
});

test('the version table is bounded: a new pair is dropped when full, idle pairs are evicted to make room', (t) => {
  const metrics = new InvocationMetrics({ versionsMax: 2, idleWindowsEvict: 3 });
  metrics.record('a:a', '1', 1, true);
  metrics.record('a:a', '2', 1, true);
  metrics.record('a:a', '3', 1, true);
  t.deepEqual(metrics.stats(), { versions: 2, callsDropped: 1, versionsEvicted: 0 });
  t.deepEqual(metrics.takeWindow(1, 1000).versions.map((v) => v.version).sort(), ['1', '2']);

  // Version 1 stays busy; version 2 goes idle for three windows and is then evicted for version 3.
  for (let second = 2; second <= 4; second++) {
    metrics.record('a:a', '1', 1, true);
    metrics.takeWindow(1, second * 1000);
  }
  metrics.record('a:a', '3', 1, true);
  t.deepEqual(metrics.stats(), { versions: 2, callsDropped: 1, versionsEvicted: 1 });
  t.deepEqual(metrics.totals().map((v) => v.version).sort(), ['1', '3']);

  t.true(metrics.forget('a:a', '3'));
  t.false(metrics.forget('a:a', '3'));
  t.is(metrics.stats().versions, 1);
});

test('names the leader would refuse are dropped at the node, not sent', (t) => {
  const metrics = new InvocationMetrics();
  metrics.record('x'.repeat(300), '1.0.0', 1, true);
  metrics.record('acme:shop', 'bad\nversion', 1, true);
  metrics.record('', '1.0.0', 1, true);
  t.is(metrics.stats().callsDropped, 3);
  t.deepEqual(metrics.takeWindow(1, 1000).versions, []);
});

test('settings and misuse are refused with INVALID_ARGUMENT', (t) => {
  for (const options of [{ versionsMax: 0 }, { versionsMax: WINDOW_VERSIONS_MAX + 1 }, { idleWindowsEvict: 0 }, { startMs: Number.NaN }]) {
    t.is(t.throws(() => new InvocationMetrics(options), { instanceOf: CutoverError })?.code, 'INVALID_ARGUMENT');
  }
  const metrics = new InvocationMetrics({ startMs: 1000 });
  t.is(t.throws(() => metrics.takeWindow(1, 999), { instanceOf: CutoverError })?.code, 'INVALID_ARGUMENT');
});

// ---- parseMetricsWindow ----

function validWindow(): Record<string, unknown> {
  const metrics = new InvocationMetrics();
  metrics.record('acme:shop', '1.0.0', 3, true);
  return JSON.parse(JSON.stringify(metrics.takeWindow(2, 1000))) as Record<string, unknown>;
}

function withVersion(patch: Record<string, unknown>): Record<string, unknown> {
  const window = validWindow();
  const [entry] = window.versions as Record<string, unknown>[];
  return { ...window, versions: [{ ...entry, ...patch }] };
}

test('parseMetricsWindow refuses malformed windows with a reason and never throws', (t) => {
  const entry = (validWindow().versions as unknown[])[0];
  const cases: [string, unknown][] = [
    ['null', null],
    ['array', []],
    ['nodeId 0', { ...validWindow(), nodeId: 0 }],
    ['nodeId fraction', { ...validWindow(), nodeId: 1.5 }],
    ['startMs missing', { ...validWindow(), startMs: undefined }],
    ['endMs before startMs', { ...validWindow(), startMs: 2000 }],
    ['endMs infinite', { ...validWindow(), endMs: Number.POSITIVE_INFINITY }],
    ['versions not an array', { ...validWindow(), versions: {} }],
    ['too many versions', { ...validWindow(), versions: Array.from({ length: WINDOW_VERSIONS_MAX + 1 }, (_, i) => ({ ...(entry as object), version: `${i}` })) }],
    ['same pair twice', { ...validWindow(), versions: [entry, entry] }],
    ['entry not an object', { ...validWindow(), versions: ['x'] }],
    ['empty base', withVersion({ base: '' })],
    ['base too long', withVersion({ base: 'b'.repeat(258) })],
    ['control character', withVersion({ version: '1.0\u0000' })],
    ['negative count', withVersion({ count: -1 })],
    ['errors above count', withVersion({ errors: 2 })],
    ['latency sum NaN', withVersion({ latencySumMs: Number.NaN })],
    ['histogram too long', withVersion({ histogram: 'A'.repeat(HISTOGRAM_ENCODED_LENGTH_MAX + 4) })],
    ['histogram not a string', withVersion({ histogram: 5 })],
  ];
  for (const [name, json] of cases) {
    const result = parseMetricsWindow(json);
    t.false(result.ok, name);
    if (!result.ok) t.true(result.reason.length > 0, name);
  }
  t.true(parseMetricsWindow({ ...validWindow(), extra: 'ignored' }).ok, 'unknown fields are accepted');
});

test('property: parseMetricsWindow never throws on mutated windows', (t) => {
  const random = new SeededRandom(77);
  const junk: unknown[] = [null, -1, 0, 1e308, Number.NaN, '', 'x', [], {}, true, 'A'.repeat(70_000)];
  for (let i = 0; i < 2000; i++) {
    const window = validWindow();
    const entry = (window.versions as Record<string, unknown>[])[0]!;
    const target = random.nextInt(0, 2) === 0 ? window : entry;
    const keys = Object.keys(target);
    target[keys[random.nextInt(0, keys.length)]!] = junk[random.nextInt(0, junk.length)];
    t.notThrows(() => parseMetricsWindow(window));
  }
});

// ---- received histograms ----

test('latencyIndex is the library\'s countsArrayIndex at every bucket edge and on random values', (t) => {
  const histogram = newLatencyHistogram();
  const values = [0, 1, 255, 256, 257, LATENCY_US_MAX - 1, LATENCY_US_MAX];
  for (let power = 1; power < 30; power++) for (const delta of [-2, -1, 0, 1, 2]) values.push(2 ** power + delta);
  const random = new SeededRandom(12);
  for (let i = 0; i < 100_000; i++) values.push(random.nextInt(0, LATENCY_US_MAX + 1));
  const mismatches = values.filter((value) => latencyIndex(value) !== histogram.countsArrayIndex(value));
  t.deepEqual(mismatches, []);
  t.true(latencyIndex(LATENCY_US_MAX) < LATENCY_COUNTS_LENGTH);
});

test('a checked histogram adds the same counts as the library decoder', (t) => {
  const random = new SeededRandom(9);
  const source = newLatencyHistogram();
  for (let i = 0; i < 5000; i++) source.recordValue(latencyMsToUs(-25 * Math.log(1 - random.nextFloat())));
  source.recordValue(LATENCY_US_MAX);
  source.recordValue(0);
  const encoded = encodeIntoCompressedBase64(source);
  const check = checkEncodedHistogram(encoded);
  if (!check.ok) return t.fail(check.reason);
  t.is(check.histogram.totalCount, 5002);
  const target = newLatencyHistogram();
  addCountsLists(target, [check.histogram]);
  const reference = decodeFromCompressedBase64(encoded, 64) as Float64Histogram;
  t.is(target.totalCount, reference.totalCount);
  for (let i = 0; i < LATENCY_COUNTS_LENGTH; i++) {
    if (target.getCountAtIndex(i) !== reference.getCountAtIndex(i)) return t.fail(`count at index ${i} differs`);
  }
  t.is(target.getValueAtPercentile(99), reference.getValueAtPercentile(99));
});

/** Builds a V2 compressed histogram by hand, with any header and payload. */
function encodeRaw(payload: Buffer, header: { digits?: number; lowest?: number; highest?: number; payloadLength?: number } = {}): string {
  const inner = Buffer.alloc(40);
  inner.writeUInt32BE(0x1c849313, 0);
  inner.writeUInt32BE(header.payloadLength ?? payload.length, 4);
  inner.writeUInt32BE(header.digits ?? 2, 12);
  inner.writeUInt32BE(0, 16);
  inner.writeUInt32BE(header.lowest ?? 1, 20);
  inner.writeUInt32BE(0, 24);
  inner.writeUInt32BE(header.highest ?? LATENCY_US_MAX, 28);
  inner.writeUInt32BE(1, 36);
  const compressed = deflateSync(Buffer.concat([inner, payload]));
  const outer = Buffer.alloc(8);
  outer.writeUInt32BE(0x1c849314, 0);
  outer.writeUInt32BE(compressed.length, 4);
  return Buffer.concat([outer, compressed]).toString('base64');
}

/** LEB128 ZigZag words as the V2 payload holds them. */
function words(...values: number[]): Buffer {
  const bytes: number[] = [];
  for (const value of values) {
    let word = value >= 0 ? value * 2 : -value * 2 - 1;
    while (word >= 0x80) {
      bytes.push((word % 0x80) | 0x80);
      word = Math.floor(word / 0x80);
    }
    bytes.push(word);
  }
  return Buffer.from(bytes);
}

test('received histograms are refused without decoding when they do not fit the latency shape', (t) => {
  t.true(checkEncodedHistogram(encodeRaw(words(0, 3, -10, 4))).ok, 'the hand-built encoding itself reads');
  const threeDigits = new Float64Histogram(1, LATENCY_US_MAX, 3);
  threeDigits.recordValue(1000);
  const cases: [string, string][] = [
    ['empty', ''],
    ['not base64', '@@@@'],
    ['bad padding', 'QUJD='],
    ['not a histogram', Buffer.from('hello world!').toString('base64')],
    ['three significant digits', encodeIntoCompressedBase64(threeDigits)],
    ['other range', encodeRaw(words(1), { highest: 1_000_000 })],
    ['payload length lies', encodeRaw(words(1), { payloadLength: 2 ** 31 })],
    // A zero run of 2^40 makes the library decoder loop for hours; here it is one comparison.
    ['zero run past the end', encodeRaw(words(-(2 ** 40), 1))],
    ['count past the end', encodeRaw(words(-LATENCY_COUNTS_LENGTH, 1))],
    ['truncated word', encodeRaw(Buffer.from([0x80]))],
    ['word too long', encodeRaw(Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]))],
    // 1 MiB of zeros deflates to about 1 KiB; the inflated size is capped far below.
    ['inflates too far', encodeRaw(Buffer.alloc(1 << 20))],
  ];
  for (const [name, encoded] of cases) {
    const result = checkEncodedHistogram(encoded);
    t.false(result.ok, name);
  }
});

// ---- MetricsPusher ----

interface Deferred {
  window: MetricsWindow;
  resolve: () => void;
  reject: (error: Error) => void;
}

function pusherSetup(options: { intervalMs?: number } = {}) {
  const clock = new ManualClock();
  const metrics = new InvocationMetrics();
  const sends: Deferred[] = [];
  const failures: unknown[] = [];
  const pusher = new MetricsPusher({
    nodeId: 4,
    metrics,
    clock,
    ...options,
    send: (window) => new Promise<void>((resolve, reject) => sends.push({ window, resolve, reject })),
    onSendFailed: (error) => failures.push(error),
  });
  return { clock, metrics, sends, failures, pusher };
}

test('the pusher sends one window per interval and skips empty ones', async (t) => {
  const { clock, metrics, sends, pusher } = pusherSetup();
  metrics.record('acme:shop', '1.0.0', 1, true); // before start: in the totals, never pushed
  pusher.start();
  await clock.advance(1000);
  t.is(sends.length, 0, 'nothing recorded since start');
  metrics.record('acme:shop', '1.0.0', 1, true);
  metrics.record('acme:shop', '1.0.0', 1, false);
  await clock.advance(1000);
  t.is(sends.length, 1);
  t.like(sends[0]!.window, { nodeId: 4, startMs: 1000, endMs: 2000 });
  t.deepEqual(sends[0]!.window.versions.map((v) => [v.count, v.errors]), [[2, 1]]);
  sends[0]!.resolve();
  await flush();
  t.deepEqual(pusher.stats(), { windowsSent: 1, windowsFailed: 0, windowsEmpty: 1, ticksBusy: 0 });
  t.is(metrics.totals()[0]!.count, 3);
  pusher.stop();
  metrics.record('acme:shop', '1.0.0', 1, true);
  await clock.advance(5000);
  t.is(sends.length, 1, 'nothing after stop');
  t.false(pusher.running);
});

test('the pusher keeps at most one send in flight; calls roll into the next window', async (t) => {
  const { clock, metrics, sends, pusher } = pusherSetup();
  pusher.start();
  metrics.record('acme:shop', '1.0.0', 1, true);
  await clock.advance(1000);
  t.is(sends.length, 1);
  for (let second = 0; second < 3; second++) {
    metrics.record('acme:shop', '1.0.0', 1, true);
    await clock.advance(1000);
  }
  t.is(sends.length, 1, 'still only the first send');
  t.is(pusher.stats().ticksBusy, 3);
  sends[0]!.resolve();
  await flush();
  await clock.advance(1000);
  t.is(sends.length, 2);
  t.like(sends[1]!.window, { startMs: 1000, endMs: 5000 });
  t.is(sends[1]!.window.versions[0]!.count, 3);
});

test('failed sends are counted, reported and dropped, never thrown', async (t) => {
  const clock = new ManualClock();
  const metrics = new InvocationMetrics();
  const failures: unknown[] = [];
  let calls = 0;
  const pusher = new MetricsPusher({
    nodeId: 1,
    metrics,
    clock,
    intervalMs: 500,
    send: () => {
      calls++;
      if (calls === 1) throw new Error('synchronous');
      return Promise.reject(new Error('leader gone'));
    },
    onSendFailed: (error) => {
      failures.push(error);
      throw new Error('a throwing hook is contained too');
    },
  });
  pusher.start();
  for (let i = 0; i < 4; i++) {
    metrics.record('acme:shop', '1.0.0', 1, true);
    await clock.advance(500);
  }
  t.is(calls, 4);
  t.deepEqual(pusher.stats(), { windowsSent: 0, windowsFailed: 4, windowsEmpty: 0, ticksBusy: 0 });
  t.deepEqual(failures.map((e) => (e as Error).message), ['synchronous', 'leader gone', 'leader gone', 'leader gone']);
  t.is(metrics.totals()[0]!.count, 4, 'dropped windows still count locally');
  pusher.stop();
});

test('the pusher refuses bad settings with INVALID_ARGUMENT', (t) => {
  const clock = new ManualClock();
  const base = { metrics: new InvocationMetrics(), clock, send: () => Promise.resolve() };
  for (const options of [{ nodeId: 1, intervalMs: 5 }, { nodeId: 1, intervalMs: 1.5 }, { nodeId: 0 }]) {
    t.is(t.throws(() => new MetricsPusher({ ...base, ...options }), { instanceOf: CutoverError })?.code, 'INVALID_ARGUMENT');
  }
});
