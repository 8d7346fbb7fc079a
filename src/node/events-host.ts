/**
 * The audit-trail part of a node, next to `UpdatesHost`: the leader-only `EventPruner` that keeps
 * `event/` within its count and age bounds. Every node runs one; only the leader's acts. Events
 * are written by the changes they describe (in their transactions) and read by the
 * `cutover.v1.Events` service, neither of which needs this host.
 */
import { EventPruner, type EventPrunerOptions, type EventPrunerStatus } from '../events/pruner.ts';
import type { Clock } from '../util/clock.ts';
import type { Logger } from '../util/logger.ts';
import type { ClusterPort } from './cluster-port.ts';

export interface EventsHostOptions {
  readonly port: ClusterPort;
  readonly clock: Clock;
  /** Wall-clock epoch ms (`epochMs` from src/platform/wall-clock.ts in production). */
  readonly wallClockMs: () => number;
  readonly logger: Logger;
  /** Most events kept (default 10 000). */
  readonly eventsCountMax?: number;
  /** Oldest event kept, in ms (default 7 days). */
  readonly eventsAgeMsMax?: number;
  /** Time between pruning rounds (default 60 000). */
  readonly pruneIntervalMs?: number;
  /** Keys deleted per transaction (default 100). */
  readonly pruneBatchMax?: number;
}

export class EventsHost {
  readonly pruner: EventPruner;

  /** Validates the settings; throws INVALID_ARGUMENT naming the bad one. */
  constructor(options: EventsHostOptions) {
    const settings: EventPrunerOptions = {
      port: options.port,
      clock: options.clock,
      wallClockMs: options.wallClockMs,
      logger: options.logger,
      ...(options.eventsCountMax === undefined ? {} : { countMax: options.eventsCountMax }),
      ...(options.eventsAgeMsMax === undefined ? {} : { ageMsMax: options.eventsAgeMsMax }),
      ...(options.pruneIntervalMs === undefined ? {} : { intervalMs: options.pruneIntervalMs }),
      ...(options.pruneBatchMax === undefined ? {} : { batchMax: options.pruneBatchMax }),
    };
    this.pruner = new EventPruner(settings);
  }

  start(): void {
    this.pruner.start();
  }

  stop(): void {
    this.pruner.stop();
  }

  status(): EventPrunerStatus {
    return this.pruner.status();
  }
}
