/**
 * Pushes a node's metrics windows to the leader every `intervalMs` (DESIGN.md §8). Windows are
 * soft state: a failed send is counted and the window dropped, never retried and never thrown,
 * and at most one send is in flight, so a slow leader cannot pile up windows in memory.
 */
import type { Clock } from '../util/clock.ts';
import { InvalidArgumentError } from '../util/errors.ts';
import type { MetricsWindow } from './metrics-window.ts';

/** What the pusher needs from `InvocationMetrics`. */
export interface WindowSource {
  takeWindow(nodeId: number, nowMs: number): MetricsWindow;
  discardWindow(nowMs: number): void;
}

/** Settings and collaborators of a `MetricsPusher`. */
export interface MetricsPusherOptions {
  readonly nodeId: number;
  readonly metrics: WindowSource;
  readonly clock: Clock;
  /**
   * Delivers one window to the leader. It must settle (the transport puts a deadline on the call):
   * while it is pending no other window is taken.
   */
  readonly send: (window: MetricsWindow) => Promise<void>;
  /** Period between windows, an integer in [10, 60000] ms (default 1000). */
  readonly intervalMs?: number;
  /** Told about each failed send (for logging); must not throw. */
  readonly onSendFailed?: (error: unknown, window: MetricsWindow) => void;
}

/** What the pusher has done since it was built. */
export interface MetricsPusherStats {
  /** Sends that resolved. */
  readonly windowsSent: number;
  /** Sends that rejected or threw; their windows are lost. */
  readonly windowsFailed: number;
  /** Windows without any call, not sent. */
  readonly windowsEmpty: number;
  /** Ticks that found a send still in flight; their calls roll into the next window. */
  readonly ticksBusy: number;
}

export const PUSH_INTERVAL_MS_MIN = 10;
export const PUSH_INTERVAL_MS_MAX = 60_000;

/** Takes a window every `intervalMs` on the injected clock and sends it; see the module comment. */
export class MetricsPusher {
  private readonly options: MetricsPusherOptions;
  private readonly intervalMs: number;
  private cancelTimer: (() => void) | undefined;
  private nextTickMs = 0;
  private inFlight = false;
  private windowsSent = 0;
  private windowsFailed = 0;
  private windowsEmpty = 0;
  private ticksBusy = 0;

  constructor(options: MetricsPusherOptions) {
    this.options = options;
    this.intervalMs = options.intervalMs ?? 1000;
    if (!Number.isSafeInteger(this.intervalMs) || this.intervalMs < PUSH_INTERVAL_MS_MIN || this.intervalMs > PUSH_INTERVAL_MS_MAX) {
      throw new InvalidArgumentError('intervalMs', `must be an integer in [${PUSH_INTERVAL_MS_MIN}, ${PUSH_INTERVAL_MS_MAX}], got ${this.intervalMs}`);
    }
    if (!Number.isSafeInteger(options.nodeId) || options.nodeId <= 0) throw new InvalidArgumentError('nodeId', `must be a positive integer, got ${options.nodeId}`);
  }

  /**
   * Starts pushing. Calls recorded before now stay in the totals but are not pushed: the first
   * window starts here, so that it is no longer than one interval. Idempotent.
   */
  start(): void {
    if (this.cancelTimer !== undefined) return;
    const now = this.options.clock.nowMs();
    this.options.metrics.discardWindow(now);
    this.nextTickMs = now + this.intervalMs;
    this.cancelTimer = this.options.clock.schedule(this.intervalMs, () => this.tick());
  }

  /** Stops taking windows. A send in flight settles on its own; nothing new is sent. Idempotent. */
  stop(): void {
    this.cancelTimer?.();
    this.cancelTimer = undefined;
  }

  get running(): boolean {
    return this.cancelTimer !== undefined;
  }

  stats(): MetricsPusherStats {
    return { windowsSent: this.windowsSent, windowsFailed: this.windowsFailed, windowsEmpty: this.windowsEmpty, ticksBusy: this.ticksBusy };
  }

  private tick(): void {
    const { clock } = this.options;
    const now = clock.nowMs();
    // Fixed rate on the clock; after a stall, start again from now rather than catch up in a burst.
    this.nextTickMs += this.intervalMs;
    if (this.nextTickMs <= now) this.nextTickMs = now + this.intervalMs;
    this.cancelTimer = clock.schedule(this.nextTickMs - now, () => this.tick());
    if (this.inFlight) {
      this.ticksBusy++;
      return;
    }
    const window = this.options.metrics.takeWindow(this.options.nodeId, now);
    if (window.versions.length === 0) {
      this.windowsEmpty++;
      return;
    }
    this.send(window);
  }

  private send(window: MetricsWindow): void {
    this.inFlight = true;
    let pending: Promise<void>;
    try {
      pending = this.options.send(window);
    } catch (error) {
      this.failed(error, window);
      return;
    }
    pending.then(
      () => {
        this.inFlight = false;
        this.windowsSent++;
      },
      (error: unknown) => this.failed(error, window),
    );
  }

  private failed(error: unknown, window: MetricsWindow): void {
    this.inFlight = false;
    this.windowsFailed++;
    try {
      this.options.onSendFailed?.(error, window);
    } catch {
      // A logging hook that throws must not take the pusher down; the failure is counted already.
    }
  }
}
