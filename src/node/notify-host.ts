/**
 * The notification part of a node, next to `UpdatesHost`: the leader-only `NotifyDispatcher`.
 * Every node runs one; only the leader's delivers (it follows leadership through the port). The
 * `cutover.v1.Notifications` service needs no part of it: channels are records in the store, and
 * the leader's dispatcher sees every change through its watch.
 */
import { NotifyDispatcher, type NotifyStats } from '../notify/dispatcher.ts';
import type { PostFunction } from '../notify/send.ts';
import type { NotifySettings } from '../notify/settings.ts';
import type { Clock } from '../util/clock.ts';
import type { Logger } from '../util/logger.ts';
import type { Random } from '../util/random.ts';
import type { ClusterPort } from './cluster-port.ts';

export interface NotifyHostOptions {
  readonly port: ClusterPort;
  readonly clock: Clock;
  /** Wall-clock epoch ms (`epochMs` from src/platform/wall-clock.ts in production). */
  readonly wallClockMs: () => number;
  /** For the retries' jitter (a fork of the node's Random). */
  readonly random: Random;
  readonly logger: Logger;
  /** Overrides of DEFAULT_NOTIFY_SETTINGS, checked at construction (INVALID_ARGUMENT names the setting). */
  readonly settings?: Partial<NotifySettings>;
  /** How requests are sent (default `postJson`: real node:http; the simulator passes its own). */
  readonly post?: PostFunction;
}

export class NotifyHost {
  readonly dispatcher: NotifyDispatcher;

  constructor(options: NotifyHostOptions) {
    this.dispatcher = new NotifyDispatcher({
      port: options.port,
      clock: options.clock,
      wallClockMs: options.wallClockMs,
      random: options.random,
      logger: options.logger,
      ...(options.settings === undefined ? {} : { settings: options.settings }),
      ...(options.post === undefined ? {} : { post: options.post }),
    });
  }

  start(): void {
    this.dispatcher.start();
  }

  /** Stops delivery; resolves once the last cursor write (if the node can still write) settled. */
  stop(): Promise<void> {
    return this.dispatcher.stop();
  }

  /** Delivered, failed, dropped and retried notifications (for metrics). */
  stats(): NotifyStats {
    return this.dispatcher.stats();
  }
}
