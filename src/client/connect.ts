/**
 * The embedded client: an application process that calls slices without being a cluster member.
 *
 * It follows the cluster's routing state over the management KV API (`RoutingFeed`: Range, then
 * Watch from the next revision, moving to another endpoint when one is lost) into its own
 * `RoutingTable`, and calls the chosen instance directly on its node with a `RemoteInvoker`: no
 * proxy hop through the endpoint. Routing, the single retry when a request was certainly not
 * sent, and deadlines are the `Invoker`'s, as on a node; the client hosts no instance
 * (`localNodeId` 0).
 */
import { randomInt } from 'node:crypto';
import { Invoker } from '../invoker/invoker.ts';
import { InvocationMetrics, MetricsPusher, type MetricsWindow } from '../invoker/metrics.ts';
import { RemoteInvoker, type RemoteInvokerOptions } from '../invoker/remote.ts';
import { RoutingTable } from '../invoker/routing-table.ts';
import { realClock } from '../platform/scheduler.ts';
import { withTimeout, type Clock } from '../util/clock.ts';
import { CutoverError, InvalidArgumentError, NotLeaderError } from '../util/errors.ts';
import { silentLogger, type Logger } from '../util/logger.ts';
import { SeededRandom, type Random } from '../util/random.ts';
import { RoutingFeed, type RoutingFeedStatus } from './routing-feed.ts';

export interface ConnectOptions {
  /** `host:port` of the gRPC API of one or more nodes. More than one lets the client survive the loss of a node. */
  readonly endpoints: readonly string[];
  /** How long `connect` waits for the first read of the routing state. Default 10 s. */
  readonly timeoutMs?: number;
  readonly logger?: Logger;
  /** Deadline of an `invoke` that names none. Default 30 s. */
  readonly invokeTimeoutMs?: number;
  /** Back-off between attempts to reach an endpoint. Default 50 ms doubling up to 2 s. */
  readonly reconnect?: { readonly initialMs: number; readonly maxMs: number };
  /** Settings of the channels to instances (see `RemoteInvokerOptions`). */
  readonly remote?: Omit<RemoteInvokerOptions, 'clock' | 'logger'>;
  /**
   * Push this client's call metrics to the leader every `metricsIntervalMs` (default 1000), so
   * that the rolling-update health gate sees calls made from outside the cluster too. 0 = off.
   */
  readonly metricsIntervalMs?: number;
  /** Injected time and randomness (tests, the simulator). Default: the real clock, a random seed. */
  readonly clock?: Clock;
  readonly random?: Random;
}

/** What `client.status()` reports. */
export interface ClientStatus {
  readonly feed: RoutingFeedStatus;
  /** Calls retried on another instance after a connection failure. */
  readonly retries: number;
}

/** A connected embedded client. */
export interface CutoverClient {
  /** `invoker.invoke(artifact, method, payload, { timeoutMs })`: see `Invoker.invoke`. */
  readonly invoker: Invoker;
  /** The routing table the client follows (read-only use: `snapshot()`). */
  readonly table: RoutingTable;
  status(): ClientStatus;
  /** Stops following the cluster and closes every channel. Calls already sent end on their own. */
  close(): Promise<void>;
}

const DEFAULTS = {
  timeoutMs: 10_000,
  reconnect: { initialMs: 50, maxMs: 2000 },
  messageBytesMax: 16 * 1024 * 1024,
  keepaliveIntervalMs: 10_000,
  keepaliveTimeoutMs: 5000,
} as const;

/**
 * Connects to the cluster through `endpoints` and resolves once the routing state is loaded, so
 * that the first `invoke` can route. Rejects with INVALID_ARGUMENT for bad options, and with
 * UNAVAILABLE (the last failure as `cause`) when no endpoint answered within `timeoutMs`.
 */
export async function connect(options: ConnectOptions): Promise<CutoverClient> {
  const endpoints = requireEndpoints(options.endpoints);
  const timeoutMs = options.timeoutMs ?? DEFAULTS.timeoutMs;
  if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 1) throw new InvalidArgumentError('timeoutMs', `must be an integer >= 1, got ${String(timeoutMs)}`);
  const reconnect = options.reconnect ?? DEFAULTS.reconnect;
  if (!(Number.isSafeInteger(reconnect.initialMs) && reconnect.initialMs >= 1 && Number.isSafeInteger(reconnect.maxMs) && reconnect.maxMs >= reconnect.initialMs)) {
    throw new InvalidArgumentError('reconnect', 'initialMs must be an integer >= 1 and maxMs an integer >= initialMs');
  }
  const clock = options.clock ?? realClock;
  const logger = (options.logger ?? silentLogger).child({ component: 'cutover-client' });
  const random = options.random ?? new SeededRandom(randomInt(0, 2 ** 32));
  const table = new RoutingTable();
  const remote = new RemoteInvoker({ ...options.remote, clock, logger });
  const metrics = new InvocationMetrics({ startMs: clock.nowMs() });
  const invoker = new Invoker({ table, localNodeId: 0, remote, clock, metrics, ...(options.invokeTimeoutMs === undefined ? {} : { defaultTimeoutMs: options.invokeTimeoutMs }) });
  const pusher = metricsPusher(options.metricsIntervalMs ?? 1000, { endpoints, remote, metrics, clock, random, logger });
  const feed = new RoutingFeed({
    endpoints,
    table,
    clock,
    random,
    logger,
    reconnect,
    readTimeoutMs: timeoutMs,
    channel: { messageBytesMax: DEFAULTS.messageBytesMax, keepaliveIntervalMs: DEFAULTS.keepaliveIntervalMs, keepaliveTimeoutMs: DEFAULTS.keepaliveTimeoutMs },
  });
  const close = (): Promise<void> => {
    pusher?.stop();
    feed.stop();
    remote.close();
    return Promise.resolve();
  };
  feed.start();
  try {
    await withTimeout(feed.ready(), clock, timeoutMs, () => {
      const cause = feed.lastFailure();
      return new CutoverError('UNAVAILABLE', `could not read the routing state from ${endpoints.join(', ')} within ${timeoutMs} ms${cause === undefined ? '' : `: ${cause.message}`}`, { cause });
    });
  } catch (error) {
    await close();
    throw error;
  }
  pusher?.start();
  logger.info({ endpoints, revision: table.snapshot().revision }, 'connected');
  return { invoker, table, status: () => ({ feed: feed.status(), retries: invoker.retryCount() }), close };
}

/** Ids of embedded clients in metrics windows: above any node id a cluster would use. */
const CLIENT_METRICS_ID_MIN = 2 ** 40;

/**
 * Pushes the client's windows to the leader: first to an endpoint, then wherever a NOT_LEADER
 * answer points. A window that finds no leader is dropped (metrics are soft state).
 */
function metricsPusher(
  intervalMs: number,
  deps: { endpoints: readonly string[]; remote: RemoteInvoker; metrics: InvocationMetrics; clock: Clock; random: Random; logger: Logger },
): MetricsPusher | undefined {
  if (intervalMs === 0) return undefined;
  const id = CLIENT_METRICS_ID_MIN + deps.random.nextUint32() * 256 + deps.random.nextInt(0, 256);
  let target = deps.endpoints[0]!;
  let next = 0;
  const send = async (window: MetricsWindow): Promise<void> => {
    for (let hop = 0; hop < 3; hop++) {
      try {
        await deps.remote.pushMetrics(target, window, 2000);
        return;
      } catch (error) {
        if (error instanceof NotLeaderError && error.leaderAddress !== undefined && error.leaderAddress !== target) {
          target = error.leaderAddress;
          continue;
        }
        // Unreachable, or no leader known there: try the next endpoint with the next window.
        next = (next + 1) % deps.endpoints.length;
        target = deps.endpoints[next]!;
        throw error;
      }
    }
  };
  return new MetricsPusher({ nodeId: id, metrics: deps.metrics, clock: deps.clock, intervalMs, send, onSendFailed: (error) => deps.logger.debug({ error: String(error) }, 'metrics window not delivered') });
}

function requireEndpoints(endpoints: unknown): string[] {
  if (!Array.isArray(endpoints) || endpoints.length === 0) throw new InvalidArgumentError('endpoints', 'must be a non-empty array of host:port');
  for (const endpoint of endpoints) {
    const match = typeof endpoint === 'string' ? /^(\[[0-9a-fA-F:]+\]|[^\s:/[\]]+):(\d{1,5})$/.exec(endpoint) : null;
    if (match === null || Number(match[2]) > 65535) throw new InvalidArgumentError('endpoints', `each must be host:port, got ${JSON.stringify(endpoint)}`);
  }
  return [...(endpoints as string[])];
}
