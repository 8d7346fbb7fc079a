/**
 * The rolling-update part of a node, next to `SliceHost`: the leader-only `UpdateController`,
 * reading health from the slice host's metrics aggregator (the leader's cluster-wide windows).
 * Every node runs one; only the leader's controller acts. The `cutover.v1.RollingUpdates` service
 * needs no part of it: it commits through the KV store, and the leader's controller sees every
 * record change through its watch.
 */
import type { MetricsAggregator } from '../invoker/metrics-aggregator.ts';
import { UpdateController, type CommittedStep } from '../updates/controller.ts';
import type { Clock } from '../util/clock.ts';
import type { Logger } from '../util/logger.ts';
import type { ClusterPort } from './cluster-port.ts';

export interface UpdatesHostOptions {
  readonly port: ClusterPort;
  readonly clock: Clock;
  /** Wall-clock epoch ms (`epochMs` from src/platform/wall-clock.ts in production). */
  readonly wallClockMs: () => number;
  readonly logger: Logger;
  /** The leader's metrics (SliceHost.aggregator). */
  readonly aggregator: MetricsAggregator;
  /** The aggregator's span: the longest health window (default 60 000). */
  readonly healthWindowMsMax?: number;
  /** As the placement controller's, for the capacity check of validation. */
  readonly nodeDownAfterMs: number;
  readonly nodeInstancesMax: number;
  readonly onCommit?: (event: CommittedStep) => void;
}

export class UpdatesHost {
  readonly controller: UpdateController;

  constructor(options: UpdatesHostOptions) {
    const { port, clock, wallClockMs, logger, aggregator } = options;
    this.controller = new UpdateController({
      port,
      clock,
      wallClockMs,
      logger,
      health: aggregator,
      healthWindowMsMax: options.healthWindowMsMax ?? 60_000,
      nodeDownAfterMs: options.nodeDownAfterMs,
      nodeInstancesMax: options.nodeInstancesMax,
      ...(options.onCommit === undefined ? {} : { onCommit: options.onCommit }),
    });
  }

  start(): void {
    this.controller.start();
  }

  stop(): void {
    this.controller.stop();
  }
}
