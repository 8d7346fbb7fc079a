/**
 * The real `Clock`: monotonic time and timers from the Node.js event loop. Only `src/platform/`
 * touches real timers; everything else is handed a Clock so the simulator can replace it.
 */
import type { Clock } from '../util/clock.ts';
import { monotonicClock } from './clock.ts';

export const realClock: Clock = {
  nowMs: () => monotonicClock.nowMs(),
  schedule(delayMs: number, fn: () => void): () => void {
    // Like setTimeout, a pending timer keeps the process alive; owners cancel theirs on stop.
    const handle = setTimeout(fn, Math.max(0, delayMs));
    return () => clearTimeout(handle);
  },
};
