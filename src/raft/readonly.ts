/** One pending ReadIndex request: who asked, and the commit index when it was asked. */
export interface ReadRequest {
  readonly index: number;
  readonly from: number;
  readonly context: string;
  readonly acks: Set<number>;
}

/**
 * Pending ReadIndex requests on the leader, in arrival order. A request completes when a quorum
 * acknowledged a heartbeat round sent after it arrived; completing one completes every earlier one
 * too, since leadership confirmed later also holds for them.
 */
export class ReadOnly {
  private queue: ReadRequest[] = [];
  private readonly byContext = new Map<string, ReadRequest>();

  /** Queues a request; false when one with the same context is already pending. */
  add(index: number, from: number, context: string): boolean {
    if (this.byContext.has(context)) return false;
    const request: ReadRequest = { index, from, context, acks: new Set() };
    this.queue.push(request);
    this.byContext.set(context, request);
    return true;
  }

  /** Records an ack for `context`; returns the set of ackers, or undefined if not pending. */
  ack(context: string, from: number): ReadonlySet<number> | undefined {
    const request = this.byContext.get(context);
    if (request === undefined) return undefined;
    request.acks.add(from);
    return request.acks;
  }

  /** Removes and returns every request up to and including `context`. */
  advance(context: string): ReadRequest[] {
    const at = this.queue.findIndex((r) => r.context === context);
    if (at < 0) return [];
    const done = this.queue.slice(0, at + 1);
    this.queue = this.queue.slice(at + 1);
    for (const r of done) this.byContext.delete(r.context);
    return done;
  }

  pending(): number {
    return this.queue.length;
  }

  reset(): void {
    this.queue = [];
    this.byContext.clear();
  }
}
