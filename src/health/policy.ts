/**
 * The consecutive-threshold policy (issue 7, item 2): how a stream of round verdicts becomes an
 * instance's health state. Pure: no time, no I/O; the monitor feeds it one verdict per round.
 *
 * ```
 * unknown   --successThreshold consecutive passes-->   healthy
 * unknown   --failureThreshold consecutive failures--> unhealthy
 * healthy   --failureThreshold consecutive failures--> unhealthy
 * unhealthy --successThreshold consecutive passes-->   healthy
 * ```
 *
 * A pass resets the failure streak and a failure resets the pass streak, so a flapping instance
 * never reaches a threshold above 1 and stays where it is.
 */
import type { HealthPolicy } from './types.ts';
import { InvalidArgumentError } from '../util/errors.ts';

/** `unknown` until the first threshold is reached; never `unknown` again after that. */
export type HealthState = 'unknown' | 'healthy' | 'unhealthy';

/** The part of a policy the tracker needs. */
export type HealthThresholds = Pick<HealthPolicy, 'successThreshold' | 'failureThreshold'>;

/** A threshold above this is refused (a streak counter stops there, so it can never overflow). */
export const THRESHOLD_MAX = 1_000_000;

/** What one observation did. */
export interface Observation {
  /** The state after this observation. */
  readonly state: HealthState;
  /** The state before it. */
  readonly previous: HealthState;
  /** True when `state !== previous`. */
  readonly changed: boolean;
  /** The current streak of passes (0 after a failure); stops growing at `THRESHOLD_MAX`. */
  readonly consecutiveSuccesses: number;
  /** The current streak of failures (0 after a pass); stops growing at `THRESHOLD_MAX`. */
  readonly consecutiveFailures: number;
}

/**
 * Validates `thresholds` (which may come from untyped input): each must be an integer in
 * 1..THRESHOLD_MAX. Throws INVALID_ARGUMENT naming `{field}.successThreshold` or
 * `{field}.failureThreshold`.
 */
export function validateThresholds(thresholds: HealthThresholds, field = 'policy'): void {
  for (const name of ['successThreshold', 'failureThreshold'] as const) {
    const value: unknown = (thresholds as Partial<Record<string, unknown>> | null)?.[name];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > THRESHOLD_MAX) {
      throw new InvalidArgumentError(`${field}.${name}`, `must be an integer from 1 to ${THRESHOLD_MAX}`);
    }
  }
}

/** The health state of one instance under one policy. */
export class HealthTracker {
  private readonly successThreshold: number;
  private readonly failureThreshold: number;
  private current: HealthState = 'unknown';
  private successes = 0;
  private failures = 0;

  /** Throws INVALID_ARGUMENT (see `validateThresholds`) for a bad threshold. */
  constructor(thresholds: HealthThresholds) {
    validateThresholds(thresholds);
    this.successThreshold = thresholds.successThreshold;
    this.failureThreshold = thresholds.failureThreshold;
  }

  /** The current state. */
  state(): HealthState {
    return this.current;
  }

  /** Records one round's verdict and moves the state when a streak reaches its threshold. */
  observe(pass: boolean): Observation {
    const previous = this.current;
    if (pass) {
      this.successes = Math.min(this.successes + 1, THRESHOLD_MAX);
      this.failures = 0;
      if (this.current !== 'healthy' && this.successes >= this.successThreshold) this.current = 'healthy';
    } else {
      this.failures = Math.min(this.failures + 1, THRESHOLD_MAX);
      this.successes = 0;
      if (this.current !== 'unhealthy' && this.failures >= this.failureThreshold) this.current = 'unhealthy';
    }
    return {
      state: this.current,
      previous,
      changed: this.current !== previous,
      consecutiveSuccesses: this.successes,
      consecutiveFailures: this.failures,
    };
  }
}
