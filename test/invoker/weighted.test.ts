import test from 'ava';
import { CHOICES_MAX, SmoothWeightedRoundRobin, WEIGHT_MAX, areValidWeights, gcd, reduceWeights } from '../../src/invoker/weighted.ts';
import { AssertionError } from '../../src/util/assert.ts';
import { SeededRandom } from '../../src/util/random.ts';
import { windowViolation } from './windows.ts';

/** Runs `periods` full periods plus a partial one, so windows at every offset are covered. */
function picks(weights: readonly number[], periods = 2): Int32Array {
  const selector = new SmoothWeightedRoundRobin(weights);
  const out = new Int32Array(selector.period * periods + selector.period - 1);
  for (let i = 0; i < out.length; i++) out[i] = selector.next();
  return out;
}

function assertExact(weights: readonly number[]): string | undefined {
  const reduced = reduceWeights(weights);
  const period = reduced.reduce((a, b) => a + b, 0);
  const violation = windowViolation(picks(weights), period, reduced);
  return violation === undefined ? undefined : `[${weights.join(':')}] ${violation}`;
}

test('new:old = 1:3 holds exactly one new (index 0) in every window of 4, at every offset', (t) => {
  t.is(windowViolation(picks([1, 3], 25), 4, [1, 3]), undefined);
  // The sequence itself, which pins down the tie rule (ties go to the lower index).
  t.deepEqual([...picks([1, 3], 1)].slice(0, 4), [1, 0, 1, 1]);
});

test('every window of sum(weights) picks holds exactly weight_i of each, for the named pairs', (t) => {
  const pairs = [[1, 0], [0, 1], [1, 9], [9, 1], [1, 1], [3, 1], [1, 3], [2, 6], [5, 95], [999_999, 1], [1, 999_999], [123_457, 98_765]];
  for (const pair of pairs) t.is(assertExact(pair), undefined);
});

test('property: exact windows for 400 seeded random weight pairs and 100 triples', (t) => {
  const random = new SeededRandom(20_240_531);
  const weight = (max: number): number => random.nextInt(0, max + 1);
  const failures: string[] = [];
  for (let i = 0; i < 500; i++) {
    const max = i % 5 === 0 ? 5_000 : 60;
    const weights = i < 400 ? [weight(max), weight(max)] : [weight(max), weight(max), weight(max)];
    if (!weights.some((w) => w > 0)) weights[0] = 1;
    const failure = assertExact(weights);
    if (failure !== undefined) failures.push(failure);
  }
  t.deepEqual(failures, []);
});

test('weights are reduced by their gcd so that the exact window is as short as possible', (t) => {
  t.is(gcd(12, 18), 6);
  t.is(gcd(0, 7), 7);
  t.is(gcd(0, 0), 0);
  t.deepEqual(reduceWeights([2, 6]), [1, 3]);
  t.deepEqual(reduceWeights([5, 0]), [1, 0]);
  const selector = new SmoothWeightedRoundRobin([20, 60]);
  t.is(selector.period, 4);
  t.deepEqual(selector.reducedWeights(), [1, 3]);
  t.is(new SmoothWeightedRoundRobin([999_999, 1]).period, 1_000_000);
  // Scaled weights give the same sequence.
  t.deepEqual([...picks([300, 900])], [...picks([1, 3])]);
});

test('a weight of 0 is never picked', (t) => {
  t.false(picks([0, 1], 5).includes(0));
  t.false(picks([1, 0], 5).includes(1));
  t.false(picks([2, 0, 3], 5).includes(1));
});

test('reset starts a fresh period', (t) => {
  const selector = new SmoothWeightedRoundRobin([1, 3]);
  const first = [selector.next(), selector.next()];
  selector.reset();
  t.deepEqual([selector.next(), selector.next()], first);
});

test('invalid weights are a programmer error', (t) => {
  const invalid = [[], [0, 0], [-1, 2], [1.5, 1], [WEIGHT_MAX + 1, 1], [Number.NaN, 1], new Array<number>(CHOICES_MAX + 1).fill(1)];
  for (const weights of invalid) {
    t.false(areValidWeights(weights), `[${weights.join(', ')}]`);
    t.throws(() => new SmoothWeightedRoundRobin(weights), { instanceOf: AssertionError });
  }
  t.true(areValidWeights([WEIGHT_MAX, 0]));
  t.true(areValidWeights([7]));
});
