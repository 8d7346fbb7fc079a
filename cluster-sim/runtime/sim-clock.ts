/**
 * The `Clock` of one incarnation of a simulated node, on the simulator's event queue. A node's
 * clock drifts: it runs at its own fixed rate against simulated time, so its ticks and timeouts
 * stretch or shrink a little. A crash kills the clock: every timer it still has becomes a no-op,
 * so the abandoned node can never act again, and a timer asked for afterwards is reported.
 */
import type { Clock } from '../../src/util/clock.ts';
import type { EventQueue } from '../events.ts';

/** A drifting clock that dies with its node's incarnation. */
export class SimClock implements Clock {
  private alive = true;

  /**
   * @param rate simulated ms per local ms (1.02: this clock's timers fire 2% late)
   * @param onZombie told when a dead incarnation asks for a timer (a bug in the harness or node)
   */
  constructor(
    private readonly queue: EventQueue,
    private readonly rate: number,
    private readonly onZombie: (what: string) => void,
  ) {}

  /** Local time: simulated time at this clock's rate. */
  nowMs(): number {
    return this.queue.nowMs / this.rate;
  }

  schedule(delayMs: number, fn: () => void): () => void {
    if (!this.alive) this.onZombie('scheduled a timer');
    let cancelled = false;
    // A cancelled timer stays queued (the heap has no removal) and does nothing when due.
    this.queue.after(Math.max(0, delayMs) * this.rate, () => {
      if (!cancelled && this.alive) fn();
    });
    return () => {
      cancelled = true;
    };
  }

  /** The node crashed: its timers never fire. */
  kill(): void {
    this.alive = false;
  }
}
