/** Reconnect back-off: exponential ceiling, full jitter, capped. */
import test from 'ava';
import { backoffDelayMs } from '../../src/transport/backoff.ts';
import { AssertionError } from '../../src/util/assert.ts';
import { SeededRandom } from '../../src/util/random.ts';

const policy = { initialMs: 50, maxMs: 2_000 };

test('each delay lies in [0, min(maxMs, initialMs × 2^(failures−1))]', (t) => {
  const random = new SeededRandom(11);
  for (let failures = 1; failures <= 40; failures++) {
    const ceiling = Math.min(policy.maxMs, policy.initialMs * 2 ** (failures - 1));
    for (let draw = 0; draw < 50; draw++) {
      const delay = backoffDelayMs(failures, policy, random);
      t.true(Number.isInteger(delay) && delay >= 0 && delay <= ceiling, `failures ${failures}: ${delay} > ${ceiling}`);
    }
  }
});

test('full jitter spreads delays over the whole range', (t) => {
  const random = new SeededRandom(5);
  const delays = Array.from({ length: 2_000 }, () => backoffDelayMs(10, policy, random));
  t.true(Math.min(...delays) < policy.maxMs * 0.05);
  t.true(Math.max(...delays) > policy.maxMs * 0.95);
});

test('the same seed gives the same delays', (t) => {
  const draw = (seed: number): number[] => {
    const random = new SeededRandom(seed);
    return Array.from({ length: 10 }, (_, i) => backoffDelayMs(i + 1, policy, random));
  };
  t.deepEqual(draw(3), draw(3));
});

test('failures must be at least 1', (t) => {
  t.throws(() => backoffDelayMs(0, policy, new SeededRandom(1)), { instanceOf: AssertionError });
});
