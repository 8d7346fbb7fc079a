/**
 * Reconnect pacing: exponential back-off with full jitter ("Exponential Backoff And Jitter",
 * AWS Architecture Blog, 2015). Full jitter spreads the reconnects of many nodes that lost the same
 * peer at the same moment, instead of having them retry in lockstep.
 */
import { assert } from '../util/assert.ts';
import type { Random } from '../util/random.ts';
import type { ReconnectPolicy } from './options.ts';

/** Doublings after which the ceiling is certainly capped (2^30 × initialMs ≥ any sane maxMs). */
const DOUBLINGS_MAX = 30;

/**
 * The delay before reconnect attempt `failures` (1 after the first failure): uniform in
 * [0, min(maxMs, initialMs × 2^(failures − 1))].
 */
export function backoffDelayMs(failures: number, policy: ReconnectPolicy, random: Random): number {
  assert(Number.isSafeInteger(failures) && failures >= 1, `backoffDelayMs: failures must be >= 1, got ${failures}`);
  const ceilingMs = Math.min(policy.maxMs, policy.initialMs * 2 ** Math.min(failures - 1, DOUBLINGS_MAX));
  const delayMs = random.nextInt(0, ceilingMs + 1);
  assert(delayMs >= 0 && delayMs <= policy.maxMs, 'backoffDelayMs: delay out of range');
  return delayMs;
}
