/**
 * Settings of the gRPC peer transport, their validation, and the gRPC channel options derived
 * from them. Every limit is explicit; `validateTransportOptions` rejects a bad one at start-up with
 * an error that names it.
 */
import type * as grpc from '@grpc/grpc-js';
import type { Clock } from '../util/clock.ts';
import { InvalidArgumentError } from '../util/errors.ts';
import type { Logger } from '../util/logger.ts';
import type { Random } from '../util/random.ts';
import { SNAPSHOT_CHUNK_OVERHEAD_BYTES_MAX } from './codec.ts';

/** Bounds on memory and message sizes. */
export interface TransportLimits {
  /** Messages waiting to be written to one peer; past it, `send` drops and reports unreachable. */
  readonly sendQueueMessagesMax: number;
  /** Messages in one stream write (one `MessageBatch`). */
  readonly batchMessagesMax: number;
  /**
   * The largest gRPC message sent or accepted, in bytes (set as grpc.max_send_message_length and
   * grpc.max_receive_message_length on both sides). A Raft message that cannot fit is refused;
   * keep Raft's maxSizePerMsg well below it.
   */
  readonly messageBytesMax: number;
  /** Snapshot data bytes per `SnapshotChunk`; a chunk plus its framing must fit `messageBytesMax`. */
  readonly snapshotChunkBytes: number;
  /** The largest snapshot accepted from a peer (the receiver holds it in memory until complete). */
  readonly snapshotBytesMax: number;
  /** Snapshots being received at once; more are refused with RESOURCE_EXHAUSTED. */
  readonly inboundSnapshotsMax: number;
}

/** Reconnect back-off after a stream to a peer fails: exponential, with full jitter. */
export interface ReconnectPolicy {
  /** The ceiling of the first delay. */
  readonly initialMs: number;
  /** The ceiling never grows past this. */
  readonly maxMs: number;
}

/** Deadlines. */
export interface TransportTimeouts {
  /** A snapshot stream that has not been acknowledged by then is cancelled (and reported failed). */
  readonly snapshotSendMs: number;
  /** `stop()` waits this long for streams and the server to close, then forces them. */
  readonly stopGraceMs: number;
  /** HTTP/2 keepalive ping interval on peer connections; detects a peer that vanished silently. */
  readonly keepaliveIntervalMs: number;
  /** A keepalive ping unanswered for this long drops the connection. */
  readonly keepaliveTimeoutMs: number;
}

/**
 * Where inbound peer traffic is served:
 * - a `'host:port'` string: the transport owns a `grpc.Server` bound there at `start()` (port 0
 *   picks a free port; see `boundAddress()`) and shuts it down at `stop()`;
 * - `{ server }`: the transport adds the Raft service to a server someone else owns, binds and shuts
 *   down, so that one port serves the peer transport and the management API. That server must be
 *   created with `peerServerChannelOptions(...)` merged into its options.
 */
export type TransportListen = string | { readonly server: grpc.Server };

/** Everything a `GrpcTransport` is built from. */
export interface GrpcTransportOptions {
  readonly nodeId: number;
  readonly listen: TransportListen;
  readonly clock: Clock;
  readonly random: Random;
  readonly logger: Logger;
  readonly limits: TransportLimits;
  readonly reconnect: ReconnectPolicy;
  readonly timeouts: TransportTimeouts;
}

// Listed rather than enumerated from the object, so that a missing setting is caught too.
const LIMIT_NAMES = ['sendQueueMessagesMax', 'batchMessagesMax', 'messageBytesMax', 'snapshotChunkBytes', 'snapshotBytesMax', 'inboundSnapshotsMax'] as const satisfies readonly (keyof TransportLimits)[];
const RECONNECT_NAMES = ['initialMs', 'maxMs'] as const satisfies readonly (keyof ReconnectPolicy)[];
const TIMEOUT_NAMES = ['snapshotSendMs', 'stopGraceMs', 'keepaliveIntervalMs', 'keepaliveTimeoutMs'] as const satisfies readonly (keyof TransportTimeouts)[];

/** Throws `InvalidArgumentError` naming the first setting that is out of range. */
export function validateTransportOptions(options: GrpcTransportOptions): void {
  positiveInteger('transport.nodeId', options.nodeId);
  if (typeof options.listen === 'string') hostPort('transport.listen', options.listen);
  const { limits, reconnect, timeouts } = options;
  for (const name of LIMIT_NAMES) positiveInteger(`transport.limits.${name}`, limits[name]);
  for (const name of RECONNECT_NAMES) positiveInteger(`transport.reconnect.${name}`, reconnect[name]);
  for (const name of TIMEOUT_NAMES) positiveInteger(`transport.timeouts.${name}`, timeouts[name]);
  if (reconnect.maxMs < reconnect.initialMs) throw new InvalidArgumentError('transport.reconnect.maxMs', 'must be >= transport.reconnect.initialMs');
  if (limits.snapshotChunkBytes + SNAPSHOT_CHUNK_OVERHEAD_BYTES_MAX > limits.messageBytesMax) {
    throw new InvalidArgumentError('transport.limits.snapshotChunkBytes', `plus ${SNAPSHOT_CHUNK_OVERHEAD_BYTES_MAX} bytes of framing must fit transport.limits.messageBytesMax`);
  }
  if (limits.snapshotBytesMax > 2 ** 31 - 1) throw new InvalidArgumentError('transport.limits.snapshotBytesMax', 'must be below 2 GiB (one buffer holds it)');
}

function positiveInteger(field: string, value: unknown): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) throw new InvalidArgumentError(field, `must be an integer >= 1, got ${String(value)}`);
}

function hostPort(field: string, value: string): void {
  const match = /^(\[[0-9a-fA-F:]+\]|[^\s:/[\]]+):(\d{1,5})$/.exec(value);
  if (match === null || Number(match[2]) > 65535) throw new InvalidArgumentError(field, `must be host:port, got ${JSON.stringify(value)}`);
}

/** Channel options of the client side (one channel per peer). */
export function peerClientChannelOptions(options: GrpcTransportOptions): grpc.ChannelOptions {
  const { limits, reconnect, timeouts } = options;
  return {
    'grpc.max_send_message_length': limits.messageBytesMax,
    'grpc.max_receive_message_length': limits.messageBytesMax,
    // The channel's own reconnect pacing follows ours, so it is never the slower of the two.
    'grpc.initial_reconnect_backoff_ms': reconnect.initialMs,
    'grpc.max_reconnect_backoff_ms': reconnect.maxMs,
    'grpc.keepalive_time_ms': timeouts.keepaliveIntervalMs,
    'grpc.keepalive_timeout_ms': timeouts.keepaliveTimeoutMs,
    'grpc.keepalive_permit_without_calls': 1,
    // No transparent retries: a message is delivered at most once by the transport.
    'grpc.enable_retries': 0,
    // Each peer gets its own connection, never one shared with another client in the process.
    'grpc.use_local_subchannel_pool': 1,
  };
}

/** Channel options of the server side; merge them into a shared server's options. */
export function peerServerChannelOptions(options: Pick<GrpcTransportOptions, 'limits' | 'timeouts'>): grpc.ServerOptions {
  const { limits, timeouts } = options;
  return {
    'grpc.max_send_message_length': limits.messageBytesMax,
    'grpc.max_receive_message_length': limits.messageBytesMax,
    'grpc.keepalive_time_ms': timeouts.keepaliveIntervalMs,
    'grpc.keepalive_timeout_ms': timeouts.keepaliveTimeoutMs,
  };
}
