/**
 * The simulated clock and its event queue. Time is in milliseconds (a float: delays are drawn from
 * continuous distributions, so two events rarely share an instant). Events due at the same time run
 * in the order they were scheduled: the queue breaks ties by an insertion sequence number, which
 * makes a run depend on nothing but its seed.
 */
import { assert } from '../src/util/assert.ts';

/** Something that happens at a simulated instant. */
export type EventAction = () => void;

interface ScheduledEvent {
  readonly atMs: number;
  readonly sequence: number;
  readonly action: EventAction;
}

/** A binary min-heap of events ordered by (atMs, sequence). */
export class EventQueue {
  private readonly heap: ScheduledEvent[] = [];
  private sequenceNext = 0;
  private nowMsValue = 0;
  private eventsRunCount = 0;

  /** The current simulated time. Only moves forward. */
  get nowMs(): number {
    return this.nowMsValue;
  }

  /** How many events have run so far. */
  get eventsRun(): number {
    return this.eventsRunCount;
  }

  get size(): number {
    return this.heap.length;
  }

  /** Runs `action` `delayMs` from now (0 means "after everything already due now"). */
  after(delayMs: number, action: EventAction): void {
    assert(delayMs >= 0 && Number.isFinite(delayMs), `EventQueue.after: bad delay ${delayMs}`);
    this.push({ atMs: this.nowMsValue + delayMs, sequence: this.sequenceNext++, action });
  }

  /**
   * Runs due events in order until the queue is empty, simulated time would pass `untilMs`, or
   * `shouldStop()` returns true (checked after every event). Returns the number of events run.
   */
  runUntil(untilMs: number, shouldStop: () => boolean): number {
    let count = 0;
    for (let next = this.takeDue(untilMs); next !== undefined; next = this.takeDue(untilMs)) {
      count++;
      next.action();
      if (shouldStop()) return count;
    }
    this.advanceTo(untilMs);
    return count;
  }

  /**
   * `runUntil` for asynchronous code (the node runtime awaits its disk writes): after each event it
   * awaits `settle()`, which must let every promise chain the event started run to its end, so the
   * next event sees their effects. Events run one at a time, in the same order as `runUntil`.
   */
  async runUntilSettled(untilMs: number, shouldStop: () => boolean, settle: () => Promise<void>): Promise<number> {
    let count = 0;
    for (let next = this.takeDue(untilMs); next !== undefined; next = this.takeDue(untilMs)) {
      count++;
      next.action();
      await settle();
      if (shouldStop()) return count;
    }
    this.advanceTo(untilMs);
    return count;
  }

  /** Removes the next event due at or before `untilMs` and moves time to it; undefined if none. */
  private takeDue(untilMs: number): ScheduledEvent | undefined {
    const next = this.heap[0];
    if (next === undefined || next.atMs > untilMs) return undefined;
    this.pop();
    assert(next.atMs >= this.nowMsValue, 'EventQueue: time went backwards');
    this.nowMsValue = next.atMs;
    this.eventsRunCount++;
    return next;
  }

  private advanceTo(untilMs: number): void {
    if (untilMs > this.nowMsValue && Number.isFinite(untilMs)) this.nowMsValue = untilMs;
  }

  private push(event: ScheduledEvent): void {
    const heap = this.heap;
    heap.push(event);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(event, heap[parent]!)) break;
      heap[i] = heap[parent]!;
      i = parent;
    }
    heap[i] = event;
  }

  private pop(): void {
    const heap = this.heap;
    const last = heap.pop();
    if (last === undefined || heap.length === 0) return;
    let i = 0;
    const length = heap.length;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= length) break;
      const right = left + 1;
      const child = right < length && before(heap[right]!, heap[left]!) ? right : left;
      if (!before(heap[child]!, last)) break;
      heap[i] = heap[child]!;
      i = child;
    }
    heap[i] = last;
  }
}

function before(a: ScheduledEvent, b: ScheduledEvent): boolean {
  return a.atMs < b.atMs || (a.atMs === b.atMs && a.sequence < b.sequence);
}
