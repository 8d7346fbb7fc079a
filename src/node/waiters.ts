/** Callbacks waiting for the applied index to reach a value; released in index order. */
export class AppliedWaiters {
  private waiters: { index: number; release: () => void }[] = [];

  /** Calls `release` once applied >= index (at once if already). */
  wait(index: number, applied: number, release: () => void): void {
    if (index <= applied) {
      release();
      return;
    }
    this.waiters.push({ index, release });
  }

  /** Releases every waiter at or below `applied`. */
  appliedTo(applied: number): void {
    if (this.waiters.length === 0) return;
    const ready = this.waiters.filter((w) => w.index <= applied);
    if (ready.length === 0) return;
    this.waiters = this.waiters.filter((w) => w.index > applied);
    for (const w of ready) w.release();
  }

  size(): number {
    return this.waiters.length;
  }
}
