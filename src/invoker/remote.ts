/**
 * The remote side of the invoker: calls an instance on another node over gRPC
 * (`cutover.peer.v1.Invoke/Call`) and pushes metrics windows to the leader (`PushMetrics`).
 *
 * One grpc-js channel per address, reused by every call to it, at most `channelsMax` of them
 * (the least recently used is closed to make room), closed when unused for `channelIdleMs` or when
 * connecting to it fails.
 *
 * The error contract, on which the invoker's single retry depends:
 * - CONNECT_FAILED: the request was certainly not sent. See `whenReady` for how we know.
 * - after the request may have been sent, the server's own code when it sent one (in the
 *   `cutover-error-code` trailer: INSTANCE_NOT_FOUND, UNKNOWN_METHOD, SLICE_ERROR, NOT_LEADER, ...),
 *   else INVOKE_DEADLINE_EXCEEDED for an expired deadline and UNAVAILABLE_AFTER_SEND for a
 *   connection lost mid-call; never CONNECT_FAILED.
 * - before anything is sent: INVALID_PAYLOAD (not JSON-serialisable), PAYLOAD_TOO_LARGE,
 *   INVOKE_DEADLINE_EXCEEDED (the deadline ran out while connecting), INVOKER_CLOSED.
 */
import type { Buffer } from 'node:buffer';
import * as grpc from '@grpc/grpc-js';
import { ERROR_CODE_KEY, fromServiceError } from '../transport/grpc-errors.ts';
import { deadlineIn } from '../platform/wall-clock.ts';
import type { Clock } from '../util/clock.ts';
import { CutoverError, InvalidArgumentError } from '../util/errors.ts';
import { silentLogger, type Logger } from '../util/logger.ts';
import { invokeService, type WireCallReply, type WireCallRequest } from './invoke-proto.ts';
import { decodeJsonPayload, encodeJsonPayload, PAYLOAD_OVERHEAD_BYTES_MAX } from './json-payload.ts';

/** One call to one instance on another node. */
export interface RemoteCallRequest {
  /** `groupId:artifactId`. */
  readonly base: string;
  /** The version the call was routed to; the instance runs it. */
  readonly version: string;
  readonly instanceId: string;
  readonly method: string;
  /** JSON-serialisable; `undefined` travels as `null`. */
  readonly payload: unknown;
}

/** How the invoker reaches instances on other nodes (`RemoteInvoker`, or a fake in tests). */
export interface RemoteCaller {
  /**
   * Runs `request` on the node serving invokes at `address` (`host:port`), within `timeoutMs`,
   * and resolves with the method's result. Rejects with a `CutoverError` whose code follows the
   * contract in this module's comment: CONNECT_FAILED only when the request was certainly not sent.
   */
  call(address: string, request: RemoteCallRequest, timeoutMs: number): Promise<unknown>;
}

/** Settings; every one has a default (`REMOTE_INVOKER_DEFAULTS`). */
export interface RemoteInvokerOptions {
  readonly clock: Clock;
  readonly logger?: Logger;
  /** Longest wait for a connection before a call fails with CONNECT_FAILED. */
  readonly connectTimeoutMs?: number;
  /** Channels (one per address) open at once. */
  readonly channelsMax?: number;
  /** A channel without a call for this long is closed (on the next call to any address). */
  readonly channelIdleMs?: number;
  /** The largest gRPC message sent or accepted, in bytes; payloads get this less 4 KiB. */
  readonly messageBytesMax?: number;
  /** The channel's own reconnect back-off, first and largest delay. */
  readonly reconnectInitialMs?: number;
  readonly reconnectMaxMs?: number;
  /** HTTP/2 keepalive: detects a node that vanished without closing its connections. */
  readonly keepaliveIntervalMs?: number;
  readonly keepaliveTimeoutMs?: number;
}

type Settings = Required<Omit<RemoteInvokerOptions, 'clock' | 'logger'>>;

export const REMOTE_INVOKER_DEFAULTS: Readonly<Settings> = {
  connectTimeoutMs: 1000,
  channelsMax: 256,
  channelIdleMs: 5 * 60_000,
  messageBytesMax: 4 * 1024 * 1024,
  reconnectInitialMs: 100,
  reconnectMaxMs: 5000,
  keepaliveIntervalMs: 10_000,
  keepaliveTimeoutMs: 5000,
};

/** Counters, for status pages and tests. */
export interface RemoteInvokerStats {
  readonly channels: number;
  readonly channelsOpened: number;
  readonly channelsEvicted: number;
  readonly connectFailures: number;
}

interface ChannelEntry {
  readonly address: string;
  readonly client: grpc.Client;
  lastUsedMs: number;
  /** Calls between `acquire` and the end of their gRPC call; an entry with some is not idle. */
  inFlight: number;
}

type UnaryMethod<Req, Res> = grpc.MethodDefinition<Req, Res>;

/** See the module comment. Build one per process; `close()` it on shutdown. */
export class RemoteInvoker implements RemoteCaller {
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly settings: Settings;
  private readonly channelOptions: grpc.ChannelOptions;
  /** In least-recently-used order: an entry is moved to the end each time it is used. */
  private readonly channels = new Map<string, ChannelEntry>();
  private lastSweepMs: number;
  private closed = false;
  private counters = { channelsOpened: 0, channelsEvicted: 0, connectFailures: 0 };

  /** Throws INVALID_ARGUMENT naming the first bad setting. */
  constructor(options: RemoteInvokerOptions) {
    this.clock = options.clock;
    this.log = (options.logger ?? silentLogger).child({ component: 'remote-invoker' });
    this.settings = validateSettings(options);
    this.channelOptions = channelOptionsOf(this.settings);
    this.lastSweepMs = this.clock.nowMs();
  }

  call(address: string, request: RemoteCallRequest, timeoutMs: number): Promise<unknown> {
    const payloadBytesMax = this.settings.messageBytesMax - PAYLOAD_OVERHEAD_BYTES_MAX;
    let wire: WireCallRequest;
    try {
      const payload = encodeJsonPayload(request.payload, payloadBytesMax, 'payload', 'INVALID_PAYLOAD');
      wire = { artifact: request.base, version: request.version, instance_id: request.instanceId, method: request.method, payload };
    } catch (error) {
      return Promise.reject(error);
    }
    return this.unary(address, invokeService.Call, wire, timeoutMs).then((reply: WireCallReply) =>
      decodeJsonPayload(reply.payload, this.settings.messageBytesMax, 'reply payload', 'INVALID_REPLY'),
    );
  }

  /**
   * Sends one metrics window (any JSON value) to the node at `address`, normally the leader.
   * Rejects like `call`; a node that is not the leader rejects with `NotLeaderError` (NOT_LEADER,
   * with the leader's id and address when it knows them).
   */
  pushMetrics(address: string, window: unknown, timeoutMs: number): Promise<void> {
    let bytes: Buffer;
    try {
      bytes = encodeJsonPayload(window, this.settings.messageBytesMax - PAYLOAD_OVERHEAD_BYTES_MAX, 'metrics window', 'INVALID_PAYLOAD');
    } catch (error) {
      return Promise.reject(error);
    }
    return this.unary(address, invokeService.PushMetrics, { window: bytes }, timeoutMs).then(() => undefined);
  }

  /** Closes every channel. Calls already sent end on their own; later calls fail with INVOKER_CLOSED. */
  close(): void {
    this.closed = true;
    for (const entry of this.channels.values()) entry.client.close();
    this.channels.clear();
  }

  stats(): RemoteInvokerStats {
    return { channels: this.channels.size, ...this.counters };
  }

  /** Waits for a connection (not sent yet), then makes the call (sent, maybe). */
  private async unary<Req, Res>(address: string, method: UnaryMethod<Req, Res>, request: Req, timeoutMs: number): Promise<Res> {
    if (!(Number.isFinite(timeoutMs) && timeoutMs > 0)) throw new InvalidArgumentError('timeoutMs', `must be a positive number of milliseconds, got ${String(timeoutMs)}`);
    if (this.closed) throw new CutoverError('INVOKER_CLOSED', 'the remote invoker is closed');
    const startedMs = this.clock.nowMs();
    const entry = this.acquire(address);
    entry.inFlight++;
    try {
      // Connected, the common case: no promise to wait on, so the request goes out in this turn.
      if (!isReady(entry)) await this.whenReady(entry, Math.min(this.settings.connectTimeoutMs, timeoutMs), timeoutMs);
      const remainingMs = timeoutMs - (this.clock.nowMs() - startedMs);
      if (remainingMs <= 0) throw new CutoverError('INVOKE_DEADLINE_EXCEEDED', `the ${timeoutMs} ms deadline passed while connecting to ${address}; the request was not sent`);
      return await this.send(entry, method, request, remainingMs);
    } finally {
      entry.inFlight--;
      entry.lastUsedMs = this.clock.nowMs();
    }
  }

  /**
   * Resolves once the channel is READY (it has a connected HTTP/2 transport); rejects with
   * CONNECT_FAILED when it fails to connect, or INVOKE_DEADLINE_EXCEEDED when `waitMs` is the
   * whole call deadline and it passes first.
   *
   * Why this tells "not sent" reliably: grpc-js reports a failed call as UNAVAILABLE both when no
   * connection could be made and when one broke after the request went out (the difference,
   * `progress` NOT_STARTED vs PROCESSED in load-balancing-call.js, stays inside the library).
   * So we do not start the call at all until the channel reports READY: any rejection from here on
   * happens before `makeUnaryRequest` was called, and no byte of the request can have left. Once
   * READY, we start the call, and every failure of it counts as "maybe sent" even when, in a race
   * (the connection drops between READY and the call's pick), it was not: that costs a retry that
   * would have been safe, never a duplicate.
   *
   * TRANSIENT_FAILURE fails at once rather than waiting out the timeout: the connection attempt
   * has failed, and the channel would only retry after its back-off. It also closes the channel,
   * so that the next call dials afresh (the node may be back) instead of inheriting that back-off,
   * and a dead address holds no channel. With `grpc.use_local_subchannel_pool`, closing the
   * channel really drops its connection attempts.
   */
  private whenReady(entry: ChannelEntry, waitMs: number, timeoutMs: number): Promise<void> {
    const channel = entry.client.getChannel();
    const deadline = deadlineIn(waitMs);
    return new Promise((resolve, reject) => {
      const fail = (reason: 'connection failed' | 'timed out' | 'channel closed'): void => {
        if (reason === 'timed out' && waitMs >= timeoutMs) {
          reject(new CutoverError('INVOKE_DEADLINE_EXCEEDED', `the ${timeoutMs} ms deadline passed while connecting to ${entry.address}; the request was not sent`));
          return;
        }
        this.counters.connectFailures++;
        // Only a failed attempt closes the channel: after a mere timeout it is still connecting,
        // maybe for other calls with more time left.
        if (reason === 'connection failed') this.evict(entry, reason);
        reject(new CutoverError('CONNECT_FAILED', `cannot connect to ${entry.address}: ${reason}; the request was not sent`));
      };
      const check = (): void => {
        let state: grpc.connectivityState;
        try {
          // true: an IDLE channel starts connecting.
          state = channel.getConnectivityState(true);
        } catch {
          return fail('channel closed');
        }
        if (state === grpc.connectivityState.READY) return resolve();
        if (state === grpc.connectivityState.TRANSIENT_FAILURE) return fail('connection failed');
        if (state === grpc.connectivityState.SHUTDOWN) return fail('channel closed');
        try {
          channel.watchConnectivityState(state, deadline, (error) => (error === undefined ? check() : fail('timed out')));
        } catch {
          fail('channel closed');
        }
      };
      check();
    });
  }

  /** Makes the call on a READY channel. Every failure from here on may be after the request was sent. */
  private send<Req, Res>(entry: ChannelEntry, method: UnaryMethod<Req, Res>, request: Req, timeoutMs: number): Promise<Res> {
    return new Promise((resolve, reject) => {
      const callback = (error: grpc.ServiceError | null, reply?: Res): void => {
        if (error !== null) reject(errorAfterSend(error, entry.address));
        else if (reply === undefined) reject(new CutoverError('INVALID_REPLY', `empty reply from ${entry.address}`));
        else resolve(reply);
      };
      try {
        entry.client.makeUnaryRequest(method.path, method.requestSerialize, method.responseDeserialize, request, new grpc.Metadata(), { deadline: deadlineIn(timeoutMs) }, callback);
      } catch (error) {
        // grpc-js throws before creating the call when the channel was closed under us (evicted
        // or `close()`d): nothing was sent.
        reject(new CutoverError('CONNECT_FAILED', `cannot call ${entry.address}: ${error instanceof Error ? error.message : String(error)}; the request was not sent`, { cause: error }));
      }
    });
  }

  /** The channel for `address`, made if needed; marks it most recently used. */
  private acquire(address: string): ChannelEntry {
    const nowMs = this.clock.nowMs();
    this.sweepIdle(nowMs);
    const known = this.channels.get(address);
    if (known !== undefined) {
      this.channels.delete(address);
      this.channels.set(address, known);
      known.lastUsedMs = nowMs;
      return known;
    }
    if (this.channels.size >= this.settings.channelsMax) this.evictLeastRecentlyUsed();
    // Insecure credentials, like the peer transport: node-to-node TLS is to come.
    const client = new grpc.Client(address, grpc.credentials.createInsecure(), this.channelOptions);
    const entry: ChannelEntry = { address, client, lastUsedMs: nowMs, inFlight: 0 };
    this.channels.set(address, entry);
    this.counters.channelsOpened++;
    return entry;
  }

  /** Closes channels unused for `channelIdleMs`; looks at most every quarter of it. */
  private sweepIdle(nowMs: number): void {
    const { channelIdleMs } = this.settings;
    if (nowMs - this.lastSweepMs < channelIdleMs / 4) return;
    this.lastSweepMs = nowMs;
    for (const entry of [...this.channels.values()]) {
      if (entry.inFlight === 0 && nowMs - entry.lastUsedMs >= channelIdleMs) this.evict(entry, 'idle');
    }
  }

  /** Makes room: the least recently used channel without calls, else the least recently used. */
  private evictLeastRecentlyUsed(): void {
    let victim: ChannelEntry | undefined;
    for (const entry of this.channels.values()) {
      victim ??= entry;
      if (entry.inFlight === 0) {
        victim = entry;
        break;
      }
    }
    // A channel with calls may be closed: grpc-js lets calls already started on it finish.
    if (victim !== undefined) this.evict(victim, 'channelsMax reached');
  }

  private evict(entry: ChannelEntry, reason: string): void {
    if (this.channels.get(entry.address) !== entry) return;
    this.channels.delete(entry.address);
    this.counters.channelsEvicted++;
    this.log.debug({ address: entry.address, reason, inFlight: entry.inFlight }, 'closing invoke channel');
    entry.client.close();
  }
}

/**
 * True when the entry's channel is READY now (an IDLE one starts connecting); false otherwise,
 * also when it was closed. Checked before `whenReady`: with 32 callers on a 2-core machine,
 * skipping its promise and closures when already connected took the client's CPU per call from
 * ~185 to ~160 µs and the server's from ~80 to ~65 µs (bench/invoker, remote part).
 */
function isReady(entry: ChannelEntry): boolean {
  try {
    return entry.client.getChannel().getConnectivityState(true) === grpc.connectivityState.READY;
  } catch {
    return false;
  }
}

/**
 * A gRPC failure after the call started, as a CutoverError. The server's own code (trailer) wins,
 * except CONNECT_FAILED: the request reached that server, so it is not ours to call "not sent".
 */
function errorAfterSend(error: grpc.ServiceError, address: string): CutoverError {
  const converted = fromServiceError(error);
  const hasServerCode = (error.metadata?.get(ERROR_CODE_KEY).length ?? 0) > 0;
  if (hasServerCode && converted.code !== 'CONNECT_FAILED') return converted;
  const message = `call to ${address} failed after the request may have been sent: ${error.details || error.message}`;
  if (error.code === grpc.status.DEADLINE_EXCEEDED) return new CutoverError('INVOKE_DEADLINE_EXCEEDED', message, { cause: error });
  if (error.code === grpc.status.UNAVAILABLE || error.code === grpc.status.CANCELLED || hasServerCode) return new CutoverError('UNAVAILABLE_AFTER_SEND', message, { cause: error });
  if (error.code === grpc.status.RESOURCE_EXHAUSTED) return new CutoverError('PAYLOAD_TOO_LARGE', message, { cause: error });
  return new CutoverError('RPC_FAILED', message, { cause: error });
}

function validateSettings(options: RemoteInvokerOptions): Settings {
  const settings: Settings = {
    connectTimeoutMs: options.connectTimeoutMs ?? REMOTE_INVOKER_DEFAULTS.connectTimeoutMs,
    channelsMax: options.channelsMax ?? REMOTE_INVOKER_DEFAULTS.channelsMax,
    channelIdleMs: options.channelIdleMs ?? REMOTE_INVOKER_DEFAULTS.channelIdleMs,
    messageBytesMax: options.messageBytesMax ?? REMOTE_INVOKER_DEFAULTS.messageBytesMax,
    reconnectInitialMs: options.reconnectInitialMs ?? REMOTE_INVOKER_DEFAULTS.reconnectInitialMs,
    reconnectMaxMs: options.reconnectMaxMs ?? REMOTE_INVOKER_DEFAULTS.reconnectMaxMs,
    keepaliveIntervalMs: options.keepaliveIntervalMs ?? REMOTE_INVOKER_DEFAULTS.keepaliveIntervalMs,
    keepaliveTimeoutMs: options.keepaliveTimeoutMs ?? REMOTE_INVOKER_DEFAULTS.keepaliveTimeoutMs,
  };
  for (const [name, value] of Object.entries(settings)) {
    if (!Number.isSafeInteger(value) || value < 1) throw new InvalidArgumentError(`remoteInvoker.${name}`, `must be an integer >= 1, got ${String(value)}`);
  }
  if (settings.messageBytesMax <= PAYLOAD_OVERHEAD_BYTES_MAX) throw new InvalidArgumentError('remoteInvoker.messageBytesMax', `must be more than ${PAYLOAD_OVERHEAD_BYTES_MAX}`);
  if (settings.reconnectMaxMs < settings.reconnectInitialMs) throw new InvalidArgumentError('remoteInvoker.reconnectMaxMs', 'must be >= remoteInvoker.reconnectInitialMs');
  return settings;
}

function channelOptionsOf(settings: Settings): grpc.ChannelOptions {
  return {
    'grpc.max_send_message_length': settings.messageBytesMax,
    'grpc.max_receive_message_length': settings.messageBytesMax,
    'grpc.initial_reconnect_backoff_ms': settings.reconnectInitialMs,
    'grpc.max_reconnect_backoff_ms': settings.reconnectMaxMs,
    'grpc.keepalive_time_ms': settings.keepaliveIntervalMs,
    'grpc.keepalive_timeout_ms': settings.keepaliveTimeoutMs,
    'grpc.keepalive_permit_without_calls': 1,
    // grpc-js drops the connection of a channel idle this long (ours closes the channel too).
    'grpc.client_idle_timeout_ms': settings.channelIdleMs,
    // Transparent retries only: there is no retry policy (service configs are not resolved), and
    // grpc-js resends only attempts the server application never saw (NOT_STARTED, REFUSED_STREAM).
    'grpc.enable_retries': 1,
    'grpc.service_config_disable_resolution': 1,
    // A channel of its own per address: closing it really closes its connection, and a new one
    // dials afresh instead of sharing a subchannel that is backing off.
    'grpc.use_local_subchannel_pool': 1,
  };
}
