/**
 * The load generator's half of a failover trial: it watches every completed request and, once it
 * knows when the leader was killed, settles with the completion time of the first write that was
 * issued after the kill and acknowledged.
 */

/** Successes remembered while the kill time is not yet known (a few seconds' worth at most). */
const RECENT_SUCCESSES_MAX = 100_000;

/** See the module comment. Times are CLOCK_MONOTONIC nanoseconds. */
export class FailoverProbe {
  /** Failed requests issued after the kill. */
  errorsAfterKill = 0;
  /** Resolves with the first qualifying acknowledgement, or undefined after `giveUp()`. */
  readonly firstAcknowledgedNs: Promise<bigint | undefined>;
  private killNs: bigint | undefined;
  // The kill time reaches this process a little after the kill: keep recent successes to look back at.
  private readonly recent: (readonly [startNs: bigint, endNs: bigint])[] = [];
  private settle: (endNs: bigint | undefined) => void = () => {};

  constructor() {
    this.firstAcknowledgedNs = new Promise((resolve) => (this.settle = resolve));
  }

  /** A CompletionObserver for the closed loop. */
  readonly observe = (startNs: bigint, endNs: bigint, ok: boolean): void => {
    if (this.killNs === undefined) {
      if (ok) this.recent.push([startNs, endNs]);
      if (this.recent.length > RECENT_SUCCESSES_MAX) this.recent.splice(0, RECENT_SUCCESSES_MAX / 2);
    } else if (startNs >= this.killNs) {
      if (ok) this.settle(endNs);
      else this.errorsAfterKill++;
    }
  };

  /** Records the kill time and looks back at the successes completed since. */
  setKillTime(killNs: bigint): void {
    if (this.killNs !== undefined) throw new Error('FailoverProbe: the kill time is already set');
    this.killNs = killNs;
    // In completion order, so the first match is the earliest acknowledgement.
    for (const [startNs, endNs] of this.recent) if (startNs >= killNs) this.settle(endNs);
    this.recent.length = 0;
  }

  /** Settles with undefined if no write was acknowledged yet. */
  giveUp(): void {
    this.settle(undefined);
  }
}
