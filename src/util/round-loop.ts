/**
 * The round loop of a leader-only reconciler: `wake()` asks for a round; rounds run one at a time,
 * never inside the caller (a watch or leadership callback on the apply path), and again while
 * someone asked for more; a failed round backs off (doubling from `retryDelayMsMin` up to
 * `retryDelayMsMax`) before the next one. `live()` false ends it: the session it serves is over.
 */
import type { Clock } from './clock.ts';

export interface RoundLoopOptions {
  readonly clock: Clock;
  readonly retryDelayMsMin: number;
  readonly retryDelayMsMax: number;
  readonly round: () => Promise<void>;
  /** Whether the loop's session is still the current one. */
  readonly live: () => boolean;
  /** Told about each failed round (record it, log it, forget cached state); must not throw. */
  readonly onFailure: (error: unknown, failures: number, retryInMs: number) => void;
}

export class RoundLoop {
  private running = false;
  private dirty = false;
  private failures = 0;
  private retryAtMs = 0;
  private cancelRetry: () => void = () => {};

  constructor(private readonly options: RoundLoopOptions) {}

  /** Asks for another round; starts one unless a round is running or the loop is backing off. */
  wake(): void {
    this.dirty = true;
    if (this.running || this.options.clock.nowMs() < this.retryAtMs) return;
    this.running = true;
    void this.drive();
  }

  /** From inside a round: run one more after it (the round left work undone). */
  again(): void {
    this.dirty = true;
  }

  /** Cancels a pending retry (the session ends). */
  cancel(): void {
    this.cancelRetry();
  }

  private async drive(): Promise<void> {
    await Promise.resolve();
    try {
      while (this.dirty && this.options.live()) {
        this.dirty = false;
        await this.options.round();
      }
      this.failures = 0;
    } catch (error) {
      if (this.options.live()) this.failed(error);
    } finally {
      this.running = false;
    }
  }

  private failed(error: unknown): void {
    const { clock, retryDelayMsMin, retryDelayMsMax } = this.options;
    this.failures++;
    const delayMs = Math.min(retryDelayMsMax, retryDelayMsMin * 2 ** Math.min(this.failures - 1, 30));
    this.retryAtMs = clock.nowMs() + delayMs;
    this.options.onFailure(error, this.failures, delayMs);
    this.cancelRetry();
    this.cancelRetry = clock.schedule(delayMs, () => {
      // The timer ends the back-off, whatever the clock reads now: a timer can fire a hair before
      // `retryAtMs` as the clock tells it (a drifting clock's rounding, a real timer a little early),
      // and a wake() refused then was never retried: the loop stopped for good (cluster-sim/updates
      // seed 65: an update left in COMPLETING after a dropped proposal).
      this.retryAtMs = 0;
      if (this.options.live()) this.wake();
    });
  }
}
