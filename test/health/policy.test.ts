import test from 'ava';
import { HealthTracker, THRESHOLD_MAX, type HealthState } from '../../src/health/policy.ts';

/** Feeds `verdicts` ('P' pass, 'F' fail) and returns each observation's state. */
function run(tracker: HealthTracker, verdicts: string): HealthState[] {
  return [...verdicts].map((v) => tracker.observe(v === 'P').state);
}

test('defaults 1/3: one pass makes unknown healthy', (t) => {
  const tracker = new HealthTracker({ successThreshold: 1, failureThreshold: 3 });
  t.is(tracker.state(), 'unknown');
  const o = tracker.observe(true);
  t.deepEqual(o, { state: 'healthy', previous: 'unknown', changed: true, consecutiveSuccesses: 1, consecutiveFailures: 0 });
});

test('defaults 1/3: unknown becomes unhealthy on the third consecutive failure, not before', (t) => {
  const tracker = new HealthTracker({ successThreshold: 1, failureThreshold: 3 });
  t.deepEqual(run(tracker, 'FF'), ['unknown', 'unknown']);
  const o = tracker.observe(false);
  t.deepEqual(o, { state: 'unhealthy', previous: 'unknown', changed: true, consecutiveSuccesses: 0, consecutiveFailures: 3 });
});

test('healthy -> unhealthy after failureThreshold consecutive failures; a pass in between resets the streak', (t) => {
  const tracker = new HealthTracker({ successThreshold: 1, failureThreshold: 3 });
  t.deepEqual(run(tracker, 'PFFPFF'), ['healthy', 'healthy', 'healthy', 'healthy', 'healthy', 'healthy']);
  const o = tracker.observe(false);
  t.is(o.state, 'unhealthy');
  t.is(o.previous, 'healthy');
  t.true(o.changed);
  t.is(o.consecutiveFailures, 3);
});

test('unhealthy -> healthy after successThreshold consecutive passes; a failure in between resets the streak', (t) => {
  const tracker = new HealthTracker({ successThreshold: 2, failureThreshold: 1 });
  t.deepEqual(run(tracker, 'FPFP'), ['unhealthy', 'unhealthy', 'unhealthy', 'unhealthy']);
  const o = tracker.observe(true);
  t.deepEqual(o, { state: 'healthy', previous: 'unhealthy', changed: true, consecutiveSuccesses: 2, consecutiveFailures: 0 });
});

test('staying in a state reports changed false and keeps counting the streak', (t) => {
  const tracker = new HealthTracker({ successThreshold: 1, failureThreshold: 2 });
  tracker.observe(true);
  const o = tracker.observe(true);
  t.deepEqual(o, { state: 'healthy', previous: 'healthy', changed: false, consecutiveSuccesses: 2, consecutiveFailures: 0 });
  tracker.observe(false);
  tracker.observe(false);
  const again = tracker.observe(false);
  t.deepEqual(again, { state: 'unhealthy', previous: 'unhealthy', changed: false, consecutiveSuccesses: 0, consecutiveFailures: 3 });
});

test('a flapping instance with thresholds above 1 never leaves unknown', (t) => {
  const tracker = new HealthTracker({ successThreshold: 2, failureThreshold: 2 });
  t.true(run(tracker, 'PFPFPFPFPF').every((s) => s === 'unknown'));
});

/**
 * An independent statement of the policy: after a prefix, the state is the verdict of the most
 * recent position where a run of equal verdicts had reached that verdict's threshold; unknown if none.
 */
function model(verdicts: string, successThreshold: number, failureThreshold: number): HealthState[] {
  const states: HealthState[] = [];
  let state: HealthState = 'unknown';
  for (let i = 0; i < verdicts.length; i++) {
    let run = 0;
    for (let j = i; j >= 0 && verdicts[j] === verdicts[i]; j--) run++;
    const pass = verdicts[i] === 'P';
    if (run >= (pass ? successThreshold : failureThreshold)) state = pass ? 'healthy' : 'unhealthy';
    states.push(state);
  }
  return states;
}

test('exhaustive: every verdict sequence up to length 9 for thresholds 1..3 x 1..3 matches the model', (t) => {
  let sequences = 0;
  for (let successThreshold = 1; successThreshold <= 3; successThreshold++) {
    for (let failureThreshold = 1; failureThreshold <= 3; failureThreshold++) {
      for (let length = 1; length <= 9; length++) {
        for (let bits = 0; bits < 2 ** length; bits++) {
          const verdicts = [...Array(length).keys()].map((i) => ((bits >> i) & 1 ? 'P' : 'F')).join('');
          const tracker = new HealthTracker({ successThreshold, failureThreshold });
          const expected = model(verdicts, successThreshold, failureThreshold);
          let previous: HealthState = 'unknown';
          for (let i = 0; i < length; i++) {
            const o = tracker.observe(verdicts[i] === 'P');
            if (o.state !== expected[i] || o.previous !== previous || o.changed !== (o.state !== previous)) {
              t.fail(`${verdicts} with ${successThreshold}/${failureThreshold}: step ${i} gave ${JSON.stringify(o)}, expected ${expected[i]}`);
              return;
            }
            previous = o.state;
          }
          t.is(tracker.state(), expected[length - 1]!);
          sequences++;
        }
      }
    }
  }
  t.is(sequences, 9 * (2 ** 10 - 2));
});

test('bad thresholds are refused with INVALID_ARGUMENT naming the field', (t) => {
  const cases: [unknown, unknown, string][] = [
    [0, 3, 'policy.successThreshold'],
    [1.5, 3, 'policy.successThreshold'],
    ['1', 3, 'policy.successThreshold'],
    [1, 0, 'policy.failureThreshold'],
    [1, Number.NaN, 'policy.failureThreshold'],
    [1, THRESHOLD_MAX + 1, 'policy.failureThreshold'],
    [1, undefined, 'policy.failureThreshold'],
  ];
  for (const [successThreshold, failureThreshold, field] of cases) {
    const error = t.throws(() => new HealthTracker({ successThreshold, failureThreshold } as never));
    t.is((error as { code?: string }).code, 'INVALID_ARGUMENT');
    t.is((error as { field?: string }).field, field);
  }
});

test('streak counters stop at THRESHOLD_MAX', (t) => {
  const tracker = new HealthTracker({ successThreshold: 1, failureThreshold: 1 });
  let o = tracker.observe(true);
  for (let i = 0; i < THRESHOLD_MAX + 5; i++) o = tracker.observe(true);
  t.is(o.consecutiveSuccesses, THRESHOLD_MAX);
  t.is(o.state, 'healthy');
});
