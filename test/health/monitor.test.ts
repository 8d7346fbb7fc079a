import test from 'ava';
import { HealthMonitor, type HealthChange, type HealthMonitorDeps, type WatchOptions } from '../../src/health/monitor.ts';
import { MemoryHealthResultsStore } from '../../src/health/results.ts';
import type { CheckTarget, HealthPolicy, HealthResultsStore, HealthSpec, InstanceRef, RoundResult } from '../../src/health/types.ts';
import { ManualClock, flush } from '../helpers/manual-clock.ts';

const WALL_BASE_MS = 1_700_000_000_000;
const REF: InstanceRef = { base: 'acme:greeter', version: '2.0.0', instanceId: 'i-1', nodeId: 1 };

function spec(policy: Partial<HealthPolicy> = {}): HealthSpec {
  return {
    mode: 'ALL',
    checks: [
      { type: 'instance', name: 'hook', timeoutMs: 1_000 },
      { type: 'tcp', name: 'port', timeoutMs: 1_000, host: '127.0.0.1', port: 9 },
    ],
    policy: { successThreshold: 1, failureThreshold: 3, intervalMs: 10_000, initialDelayMs: 30_000, monitoringDurationMs: 300_000, ...policy },
  };
}

function round(pass: boolean, at: number): RoundResult {
  return {
    pass,
    results: [{ check: 'hook', type: 'instance', status: pass ? 'success' : 'failure', at, durationMs: 3, attempts: 1, detail: pass ? 'ok' : 'hook said no' }],
  };
}

interface Deferred {
  resolve(round: RoundResult): void;
  reject(error: unknown): void;
}

/**
 * A scripted runRound: each call takes the next step ('P' pass, 'F' fail, 'T' throw, 'H' hang
 * until the test settles it); past the script it passes. Records each call's clock time.
 */
function scripted(clock: ManualClock, script: string) {
  const calls: number[] = [];
  const hanging: Deferred[] = [];
  const runRound = (_spec: HealthSpec, _target: CheckTarget): Promise<RoundResult> => {
    const step = script[calls.length] ?? 'P';
    calls.push(clock.nowMs());
    const at = WALL_BASE_MS + clock.nowMs();
    if (step === 'T') return Promise.reject(new Error('runner crashed'));
    if (step === 'H') return new Promise((resolve, reject) => hanging.push({ resolve, reject }));
    return Promise.resolve(round(step === 'P', at));
  };
  return { calls, hanging, runRound };
}

function setup(script: string, extra: Partial<HealthMonitorDeps> = {}) {
  const clock = new ManualClock();
  const fake = scripted(clock, script);
  const monitor = new HealthMonitor({ clock, wallClockMs: () => WALL_BASE_MS + clock.nowMs(), runRound: fake.runRound, ...extra });
  const changes: (HealthChange & { atMs: number; roundNo: number })[] = [];
  const watchWith = (options: Partial<WatchOptions> = {}) =>
    monitor.watch({ ref: REF, spec: spec(), target: {}, onChange: (c) => changes.push({ ...c, atMs: clock.nowMs(), roundNo: fake.calls.length }), ...options });
  return { clock, monitor, changes, watchWith, ...fake };
}

test('startup healthy: the first round runs at initialDelay and one pass (default threshold 1) makes it healthy', async (t) => {
  const { clock, changes, watchWith, calls } = setup('P');
  const watch = watchWith();
  let verdict: unknown;
  void watch.firstVerdict().then((v) => (verdict = v));
  await clock.advance(29_999);
  t.deepEqual(calls, []);
  t.is(watch.state(), 'unknown');
  t.is(verdict, undefined);
  await clock.advance(1);
  t.deepEqual(calls, [30_000]);
  t.like(verdict, { state: 'healthy', reason: 'passed 1 consecutive round' });
  t.is((verdict as { round: RoundResult | undefined }).round, watch.last());
  t.is(watch.state(), 'healthy');
  t.is(changes.length, 1);
  t.like(changes[0], { state: 'healthy', previous: 'unknown', consecutive: 1, atMs: 30_000 });
  // Later verdict calls answer at once.
  t.like(await watch.firstVerdict(), { state: 'healthy' });
});

test('startup unhealthy: three failing rounds, each an interval apart, give an unhealthy verdict naming the failure', async (t) => {
  const { clock, changes, watchWith, calls } = setup('FFF');
  const watch = watchWith();
  const verdict = watch.firstVerdict();
  await clock.advance(49_999);
  t.deepEqual(calls, [30_000, 40_000]);
  t.is(watch.state(), 'unknown');
  await clock.advance(1);
  const v = await verdict;
  t.is(v.state, 'unhealthy');
  t.is(v.reason, 'failed 3 consecutive rounds; last: hook failure: hook said no');
  t.deepEqual(calls, [30_000, 40_000, 50_000]);
  t.deepEqual(changes.map((c) => [c.previous, c.state, c.consecutive, c.atMs]), [['unknown', 'unhealthy', 3, 50_000]]);
});

test('deadline: a flapping instance gets an unhealthy verdict at initialDelay + interval x (s + f + 1) and its state stays unknown', async (t) => {
  const { clock, changes, watchWith, calls } = setup('PFPFPFPFPFPF');
  const watch = watchWith({ spec: spec({ successThreshold: 2, failureThreshold: 2 }) });
  let verdict: { state: string; reason: string; round: RoundResult | undefined } | undefined;
  void watch.firstVerdict().then((v) => (verdict = v));
  await clock.advance(79_999);
  t.is(verdict, undefined);
  await clock.advance(1);
  t.truthy(verdict);
  t.is(verdict!.state, 'unhealthy');
  // Rounds at 30, 40, 50, 60 and 70 s: s + f + 1 rounds, and none reached a threshold.
  t.is(verdict!.reason, 'no health verdict within 80000 ms (5 rounds run, the last passed)');
  t.is(calls.length, 6);
  t.is(watch.state(), 'unknown');
  t.deepEqual(changes, []);
  // Checks go on after the deadline; a call after it answers at once.
  t.like(await watch.firstVerdict(), { state: 'unhealthy' });
  await clock.advance(10_000);
  t.is(calls.length, 7);
  t.is(watch.state(), 'unknown');
});

test('deadline: an explicit deadlineMs, measured from watch(), and a round still running is said', async (t) => {
  const { clock, watchWith, hanging } = setup('H');
  const watch = watchWith({ initialDelayMs: 0 });
  await clock.advance(5_000);
  const verdict = watch.firstVerdict({ deadlineMs: 7_000 });
  await clock.advance(2_000);
  const v = await verdict;
  t.is(v.state, 'unhealthy');
  t.is(v.round, undefined);
  t.is(v.reason, 'no health verdict within 7000 ms (0 rounds run; a round is still running)');
  t.is(hanging.length, 1);
  await t.throwsAsync(watch.firstVerdict({ deadlineMs: -1 }), { code: 'INVALID_ARGUMENT' } as never);
});

test('healthy -> unhealthy -> healthy with the exact round counts (thresholds 2/3)', async (t) => {
  const { clock, changes, watchWith } = setup('PPFFFPP');
  const watch = watchWith({ spec: spec({ successThreshold: 2, failureThreshold: 3, initialDelayMs: 1_000, intervalMs: 1_000 }) });
  await clock.advance(7_000);
  t.deepEqual(
    changes.map((c) => [c.roundNo, c.previous, c.state, c.consecutive]),
    [
      [2, 'unknown', 'healthy', 2],
      [5, 'healthy', 'unhealthy', 3],
      [7, 'unhealthy', 'healthy', 2],
    ],
  );
  t.is(watch.state(), 'healthy');
  t.false(changes[1]!.round.pass);
});

test('start to start: a round that takes 4 s does not push the next one back', async (t) => {
  const clock = new ManualClock();
  const calls: number[] = [];
  const runRound = (): Promise<RoundResult> => {
    calls.push(clock.nowMs());
    return new Promise((resolve) => clock.schedule(4_000, () => resolve(round(true, WALL_BASE_MS))));
  };
  const monitor = new HealthMonitor({ clock, wallClockMs: () => WALL_BASE_MS + clock.nowMs(), runRound });
  monitor.watch({ ref: REF, spec: spec({ initialDelayMs: 0 }), target: {}, onChange: () => {} });
  await clock.advance(35_000);
  t.deepEqual(calls, [0, 10_000, 20_000, 30_000]);
});

test('no overlap: a hanging round holds the next one, which starts as soon as it ends', async (t) => {
  const { clock, watchWith, calls, hanging } = setup('HPP');
  const watch = watchWith({ initialDelayMs: 0 });
  await clock.advance(100_000);
  t.deepEqual(calls, [0]);
  hanging[0]!.resolve(round(false, WALL_BASE_MS));
  await flush();
  t.deepEqual(calls, [0, 100_000]);
  t.is(watch.state(), 'healthy');
  await clock.advance(10_000);
  t.deepEqual(calls, [0, 100_000, 110_000]);
});

test('stop mid-round: the outcome is dropped, no round starts again, the verdict says stopped', async (t) => {
  const store = new MemoryHealthResultsStore({ wallClockMs: () => WALL_BASE_MS });
  const { clock, monitor, changes, watchWith, calls, hanging } = setup('H', { store });
  const watch = watchWith({ initialDelayMs: 0 });
  const verdict = watch.firstVerdict();
  await clock.advance(1);
  t.is(calls.length, 1);
  watch.stop();
  watch.stop();
  t.like(await verdict, { state: 'unhealthy', reason: 'health watch stopped before a verdict' });
  hanging[0]!.resolve(round(true, WALL_BASE_MS));
  await clock.advance(60_000);
  t.deepEqual(calls, [0]);
  t.deepEqual(changes, []);
  t.is(watch.last(), undefined);
  t.is(watch.state(), 'unknown');
  t.deepEqual(await store.recent({ limit: 10 }), []);
  t.is(monitor.stats().watches, 0);
  t.like(await watch.firstVerdict(), { state: 'unhealthy' });
});

test('a runRound that throws is a failing round of error results, and the schedule goes on', async (t) => {
  const store = new MemoryHealthResultsStore({ wallClockMs: () => WALL_BASE_MS + 60_000 });
  const { clock, monitor, changes, watchWith, calls } = setup('TTTP', { store });
  const watch = watchWith({ initialDelayMs: 0 });
  await clock.advance(20_000);
  t.deepEqual(calls, [0, 10_000, 20_000]);
  t.is(watch.state(), 'unhealthy');
  const last = watch.last()!;
  t.false(last.pass);
  t.deepEqual(
    last.results.map((r) => [r.check, r.type, r.status, r.detail, r.at]),
    [
      ['hook', 'instance', 'error', 'round failed: runner crashed', WALL_BASE_MS + 20_000],
      ['port', 'tcp', 'error', 'round failed: runner crashed', WALL_BASE_MS + 20_000],
    ],
  );
  await clock.advance(10_000);
  t.is(watch.state(), 'healthy');
  t.deepEqual(changes.map((c) => c.state), ['unhealthy', 'healthy']);
  t.like(monitor.stats(), { rounds: 4, roundErrors: 3 });
  t.is((await store.recent({ limit: 100, instanceId: 'i-1' })).length, 7);
});

test('a runRound resolving to garbage counts as an error round', async (t) => {
  const clock = new ManualClock();
  const monitor = new HealthMonitor({ clock, wallClockMs: () => 0, runRound: () => Promise.resolve(undefined as unknown as RoundResult) });
  const watch = monitor.watch({ ref: REF, spec: spec({ initialDelayMs: 0, failureThreshold: 1 }), target: {}, onChange: () => {} });
  await clock.advance(0);
  t.is(watch.state(), 'unhealthy');
  t.regex(watch.last()!.results[0]!.detail, /without a round result/);
});

test('each round is filed in the store under the instance', async (t) => {
  const store = new MemoryHealthResultsStore({ wallClockMs: () => WALL_BASE_MS + 60_000 });
  const { clock, watchWith } = setup('PF', { store });
  watchWith({ initialDelayMs: 0 });
  await clock.advance(10_000);
  const stored = await store.recent({ limit: 10 });
  t.deepEqual(
    stored.map((r) => [r.base, r.version, r.instanceId, r.nodeId, r.status, r.at]),
    [
      ['acme:greeter', '2.0.0', 'i-1', 1, 'failure', WALL_BASE_MS + 10_000],
      ['acme:greeter', '2.0.0', 'i-1', 1, 'success', WALL_BASE_MS],
    ],
  );
});

test('store failures do not stop checks: counted, reported, and the schedule keeps its times', async (t) => {
  const failing: HealthResultsStore = {
    append: () => Promise.reject(Object.assign(new Error('disk full'), { code: 'STORAGE_WRITE_FAILED' })),
    recent: () => Promise.resolve([]),
    close: () => Promise.resolve(),
  };
  const reported: string[] = [];
  const { clock, monitor, watchWith, calls } = setup('PPPPP', { store: failing, onStoreError: (_e, ref) => reported.push(ref.instanceId) });
  const watch = watchWith({ initialDelayMs: 0 });
  await clock.advance(40_000);
  t.deepEqual(calls, [0, 10_000, 20_000, 30_000, 40_000]);
  t.is(watch.state(), 'healthy');
  t.deepEqual(reported, ['i-1', 'i-1', 'i-1', 'i-1', 'i-1']);
  t.like(monitor.stats(), { storeErrors: 5, storeAppendsInFlight: 0 });
});

test('a store that throws synchronously, or whose error callback throws, does not stop checks either', async (t) => {
  const throwing: HealthResultsStore = {
    append: () => {
      throw new Error('sync');
    },
    recent: () => Promise.resolve([]),
    close: () => Promise.resolve(),
  };
  const { clock, monitor, watchWith, calls } = setup('PPP', {
    store: throwing,
    onStoreError: () => {
      throw new Error('callback');
    },
  });
  watchWith({ initialDelayMs: 0 });
  await clock.advance(20_000);
  t.is(calls.length, 3);
  t.is(monitor.stats().storeErrors, 3);
});

test('a store that never answers: appends in flight stop at the bound, later results are dropped and counted, checks go on', async (t) => {
  const stuck: HealthResultsStore = { append: () => new Promise(() => {}), recent: () => Promise.resolve([]), close: () => Promise.resolve() };
  const { clock, monitor, watchWith, calls } = setup('', { store: stuck, storeAppendsInFlightMax: 3 });
  watchWith({ initialDelayMs: 0 });
  await clock.advance(90_000);
  t.is(calls.length, 10);
  t.like(monitor.stats(), { rounds: 10, storeAppendsInFlight: 3, storeDropped: 7 });
});

test('an onChange that throws does not stop the schedule', async (t) => {
  const { clock, watchWith, calls } = setup('PFFF');
  const watch = watchWith({
    initialDelayMs: 0,
    onChange: () => {
      throw new Error('listener bug');
    },
  });
  await clock.advance(30_000);
  t.is(calls.length, 4);
  t.is(watch.state(), 'unhealthy');
});

test('limits: watchesMax, one watch per instance, close() stops every watch', async (t) => {
  const { clock, monitor, watchWith, calls } = setup('', { watchesMax: 2 });
  const a = watchWith({ initialDelayMs: 0 });
  t.throws(() => watchWith(), { code: 'HEALTH_WATCH_EXISTS' } as never);
  watchWith({ ref: { ...REF, instanceId: 'i-2' }, initialDelayMs: 0 });
  t.throws(() => watchWith({ ref: { ...REF, instanceId: 'i-3' } }), { code: 'HEALTH_WATCH_LIMIT' } as never);
  a.stop();
  const c = watchWith({ ref: { ...REF, instanceId: 'i-3' }, initialDelayMs: 0 });
  await clock.advance(0);
  t.is(calls.length, 2);
  monitor.close();
  t.is(monitor.stats().watches, 0);
  t.throws(() => watchWith({ ref: { ...REF, instanceId: 'i-4' } }), { code: 'HEALTH_MONITOR_CLOSED' } as never);
  await clock.advance(100_000);
  t.is(calls.length, 2);
  t.is(c.state(), 'healthy');
});

test('firstVerdict waiters are bounded', async (t) => {
  const { watchWith } = setup('');
  const watch = watchWith();
  for (let i = 0; i < 64; i++) void watch.firstVerdict();
  await t.throwsAsync(watch.firstVerdict(), { code: 'HEALTH_WATCH_LIMIT' } as never);
  watch.stop();
});

test('bad options are refused with INVALID_ARGUMENT naming the field', (t) => {
  const { watchWith } = setup('');
  const cases: [Partial<WatchOptions>, string][] = [
    [{ spec: spec({ intervalMs: 0 }) }, 'spec.policy.intervalMs'],
    [{ spec: spec({ initialDelayMs: -1 }) }, 'spec.policy.initialDelayMs'],
    [{ spec: spec({ failureThreshold: 0 }) }, 'spec.policy.failureThreshold'],
    [{ spec: { ...spec(), checks: [] } }, 'spec.checks'],
    [{ ref: { ...REF, instanceId: '' } }, 'ref.instanceId'],
    [{ ref: { ...REF, nodeId: -1 } }, 'ref.nodeId'],
    [{ initialDelayMs: Number.NaN }, 'initialDelayMs'],
    [{ onChange: 'no' as never }, 'onChange'],
  ];
  for (const [options, field] of cases) {
    const error = t.throws(() => watchWith(options));
    t.is((error as { code?: string }).code, 'INVALID_ARGUMENT', field);
    t.is((error as { field?: string }).field, field);
  }
  t.throws(() => new HealthMonitor({ clock: new ManualClock(), wallClockMs: () => 0, runRound: () => Promise.reject(new Error('x')), watchesMax: 0 }), {
    code: 'INVALID_ARGUMENT',
  } as never);
});

test('an onChange that stops the watch leaves the first verdict as decided', async (t) => {
  const { clock, watchWith, calls } = setup('FFF');
  let stop = () => {};
  const watch = watchWith({ initialDelayMs: 0, onChange: () => stop() });
  stop = () => watch.stop();
  const verdict = watch.firstVerdict();
  await clock.advance(60_000);
  t.like(await verdict, { state: 'unhealthy', reason: 'failed 3 consecutive rounds; last: hook failure: hook said no' });
  t.is(calls.length, 3);
  t.is(watch.state(), 'unhealthy');
});
