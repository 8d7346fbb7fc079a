/**
 * The real monotonic clock. Only src/platform/ reads real time (this module for durations,
 * wall-clock.ts for dates); everything else is handed a clock (or, in `src/raft`, counts ticks),
 * so the simulator can replace it and a run replays exactly from its seed. The lint rule against
 * `performance.now` and friends is lifted for src/platform/ alone.
 */
import { performance } from 'node:perf_hooks';

/** A source of monotonic time: never goes backwards, unrelated to the wall-clock date. */
export interface MonotonicClock {
  /** Milliseconds since an arbitrary origin, with sub-millisecond resolution. */
  nowMs(): number;
  /** Nanoseconds since an arbitrary origin, as an exact integer. */
  nowNs(): bigint;
}

/**
 * The process's monotonic clock: `performance.now()` for milliseconds and
 * `process.hrtime.bigint()` for nanoseconds. Both are immune to wall-clock adjustments (NTP, DST).
 */
export const monotonicClock: MonotonicClock = {
  nowMs(): number {
    return performance.now();
  },
  nowNs(): bigint {
    return process.hrtime.bigint();
  },
};

/**
 * CPU time this process has used (user + system, all threads, so GC helpers count), in
 * milliseconds. Benchmarks divide work by it to get a figure that other load on the machine
 * does not distort the way it distorts wall time.
 */
export function processCpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}
