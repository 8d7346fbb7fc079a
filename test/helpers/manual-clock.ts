import type { Clock } from '../../src/util/clock.ts';

/** A Clock that moves only when a test advances it; due timers run in time order. */
export class ManualClock implements Clock {
  private now = 0;
  private seq = 0;
  private timers: { at: number; seq: number; fn: () => void }[] = [];

  nowMs(): number {
    return this.now;
  }

  schedule(delayMs: number, fn: () => void): () => void {
    const timer = { at: this.now + Math.max(0, delayMs), seq: this.seq++, fn };
    this.timers.push(timer);
    return () => {
      this.timers = this.timers.filter((t) => t !== timer);
    };
  }

  /** Advances time by `ms`, running each due timer and letting promises settle after each. */
  async advance(ms: number): Promise<void> {
    const end = this.now + ms;
    for (;;) {
      this.timers.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const next = this.timers[0];
      if (next === undefined || next.at > end) break;
      this.timers.shift();
      this.now = next.at;
      next.fn();
      await flush();
    }
    this.now = end;
    await flush();
  }
}

/** Lets every pending promise chain run (bounded). */
export async function flush(rounds = 50): Promise<void> {
  for (let i = 0; i < rounds; i++) await Promise.resolve();
}
