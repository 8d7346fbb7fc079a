/**
 * Smooth weighted round-robin, the algorithm of nginx's upstream module
 * (ngx_http_upstream_get_peer): on each pick every choice adds its weight to its `current`, the
 * choice with the largest `current` is picked, and the total weight is subtracted from it.
 *
 * Why this one: with weights reduced by their gcd to total T, the picks are periodic with period T
 * (after T picks each choice was picked exactly weight_i times, so every `current` is back to 0),
 * so every window of T consecutive picks, wherever it starts, holds exactly weight_i picks of
 * choice i. For new:old = 1:3 every 4 consecutive calls hold exactly one new call. It is also
 * "smooth": picks of a choice are spread out rather than bunched (3:1 gives a,a,b,a rather than
 * a,a,a,b), which keeps a canary's calls evenly spaced in time.
 */
import { assert } from '../util/assert.ts';

/**
 * Largest weight accepted. With a handful of choices the totals and `current` values stay far
 * below 2^53, so the arithmetic on doubles is exact integer arithmetic.
 */
export const WEIGHT_MAX = 1_000_000_000;

/** Most choices one selector takes: a routing record has two; the limit keeps a pick O(small). */
export const CHOICES_MAX = 16;

/** Greatest common divisor of two non-negative integers; gcd(0, 0) = 0. */
export function gcd(a: number, b: number): number {
  let x = a;
  let y = b;
  while (y !== 0) {
    const rest = x % y;
    x = y;
    y = rest;
  }
  return x;
}

/**
 * The weights divided by their gcd, so that the period (their sum) is as short as possible:
 * 2:6 becomes 1:3, 5:0 becomes 1:0. Requires at least one positive weight.
 */
export function reduceWeights(weights: readonly number[]): number[] {
  const divisor = weights.reduce(gcd, 0);
  assert(divisor > 0, 'reduceWeights: at least one weight must be positive');
  return weights.map((w) => w / divisor);
}

/**
 * True when `weights` is a valid input of `SmoothWeightedRoundRobin`: 1 to `CHOICES_MAX` integers
 * in [0, WEIGHT_MAX], at least one positive.
 */
export function areValidWeights(weights: readonly number[]): boolean {
  if (weights.length < 1 || weights.length > CHOICES_MAX) return false;
  if (!weights.every((w) => Number.isSafeInteger(w) && w >= 0 && w <= WEIGHT_MAX)) return false;
  return weights.some((w) => w > 0);
}

/**
 * Picks indexes into a fixed list of choices in proportion to integer weights. `next()` is O(number
 * of choices) and allocation-free. Choices of weight 0 are never picked. Ties go to the lower
 * index, so the sequence is a pure function of the weights: every node with the same weights makes
 * the same sequence of picks from a reset.
 */
export class SmoothWeightedRoundRobin {
  /** Weights reduced by their gcd. Invariant: sum = `period`, each in [0, WEIGHT_MAX]. */
  private readonly weights: Float64Array;
  /** Invariant: sums to 0 between picks; each value in (-period, period]. */
  private readonly current: Float64Array;
  /** Sum of the reduced weights: the length of the shortest exact window. */
  readonly period: number;

  /** `weights` must satisfy `areValidWeights` (a programmer error otherwise). */
  constructor(weights: readonly number[]) {
    assert(areValidWeights(weights), `SmoothWeightedRoundRobin: invalid weights [${weights.join(', ')}]`);
    this.weights = Float64Array.from(reduceWeights(weights));
    this.current = new Float64Array(weights.length);
    this.period = this.weights.reduce((sum, w) => sum + w, 0);
  }

  /** The weights after reduction by their gcd (a copy). */
  reducedWeights(): number[] {
    return Array.from(this.weights);
  }

  /** The index of the next pick. */
  next(): number {
    const weights = this.weights;
    const current = this.current;
    let best = 0;
    let bestValue = -Infinity;
    for (let i = 0; i < weights.length; i++) {
      const value = current[i]! + weights[i]!;
      current[i] = value;
      if (value > bestValue) {
        best = i;
        bestValue = value;
      }
    }
    current[best] = bestValue - this.period;
    return best;
  }

  /** Forgets all picks: the next pick is the first of a fresh period. */
  reset(): void {
    this.current.fill(0);
  }
}
