/**
 * Everything this node sends to one peer: a bounded queue, one long-lived `Send` stream drained in
 * batches, reconnect with back-off when the stream fails, and snapshots on their own stream.
 *
 * Stream states: idle (no stream; the next message opens one) → open (messages are written;
 * `connected` once the peer's headers arrive) → on failure, backoff (messages are dropped and the
 * peer reported unreachable until the delay passes) → idle. closed is final.
 */
import * as grpc from '@grpc/grpc-js';
import type { Message } from '../raft/index.ts';
import { assert } from '../util/assert.ts';
import type { Logger } from '../util/logger.ts';
import { backoffDelayMs } from './backoff.ts';
import { encodedBytesUpperBound, encodeMessage } from './codec.ts';
import { isLogWorthy } from './log-limit.ts';
import { peerClientChannelOptions, type GrpcTransportOptions } from './options.ts';
import { raftService, SENDER_METADATA_KEY, type WireMessageBatch, type WireSendAck } from './proto.ts';
import { sendSnapshot, type SnapshotSendResult } from './snapshot-sender.ts';

/** Counters and state of the link to one peer, for metrics and tests. */
export interface PeerStats {
  readonly peer: number;
  readonly address: string;
  /** The peer accepted the current stream (its headers arrived) and it has not failed since. */
  readonly connected: boolean;
  /** Messages waiting to be written. */
  readonly queueDepth: number;
  /** Stream writes (one batch each) and the messages in them. */
  readonly batchesWritten: number;
  readonly messagesWritten: number;
  /** Messages dropped: queue full, peer down, too large, or lost in a stream that failed. */
  readonly messagesDropped: number;
  /** Of those, refused because they could never fit `limits.messageBytesMax`. */
  readonly messagesTooLarge: number;
  readonly streamFailures: number;
  readonly snapshotsSent: number;
  readonly snapshotsFailed: number;
  /** The last failure: a gRPC status name (UNAVAILABLE, RESOURCE_EXHAUSTED…) or a TRANSPORT_* code. */
  readonly lastErrorCode: string | null;
}

export interface PeerStreamOptions {
  readonly peer: number;
  readonly address: string;
  readonly transport: GrpcTransportOptions;
  readonly logger: Logger;
  /** Messages to the peer were dropped, or may have been lost. */
  readonly onUnreachable: () => void;
  /** A snapshot send ended (acknowledged whole, or not). */
  readonly onSnapshotStatus: (ok: boolean) => void;
}

interface QueuedMessage {
  readonly message: Message;
  readonly bytesMax: number;
}

interface OpenState {
  readonly kind: 'open';
  readonly call: grpc.ClientWritableStream<WireMessageBatch>;
  connected: boolean;
  /** The stream's buffer is full: wait for 'drain' before the next write. */
  awaitingDrain: boolean;
}
type StreamState = { readonly kind: 'idle' } | OpenState | { readonly kind: 'backoff'; cancel: () => void } | { readonly kind: 'closed' };

/** The outbound half of the link to one peer. */
export class PeerStream {
  private readonly client: grpc.Client;
  private readonly log: Logger;
  private state: StreamState = { kind: 'idle' };
  private queue: QueuedMessage[] = [];
  private flushScheduled = false;
  /** Consecutive stream failures; reset when the peer accepts a stream. */
  private failures = 0;
  private cancelSnapshot: (() => void) | undefined;
  private snapshotInFlight = false;
  private counters = { batchesWritten: 0, messagesWritten: 0, messagesDropped: 0, messagesTooLarge: 0, streamFailures: 0, snapshotsSent: 0, snapshotsFailed: 0 };
  private lastErrorCode: string | null = null;

  constructor(private readonly options: PeerStreamOptions) {
    // Insecure credentials: peers talk over loopback for now. Node-to-node TLS (mTLS) is to come.
    this.client = new grpc.Client(options.address, grpc.credentials.createInsecure(), peerClientChannelOptions(options.transport));
    this.log = options.logger;
  }

  /** Queues `message` (not a snapshot) for the stream, or drops it and reports the peer unreachable. */
  enqueue(message: Message): void {
    assert(message.type !== 'snap', 'snapshots go through sendSnapshot');
    const bytesMax = encodedBytesUpperBound(message);
    if (bytesMax > this.options.transport.limits.messageBytesMax) return this.refuseTooLarge(message, bytesMax);
    const refusal = this.refusal();
    if (refusal !== undefined) return this.drop(refusal);
    this.queue.push({ message, bytesMax });
    if (this.state.kind === 'idle') this.open();
    this.scheduleFlush();
  }

  /** Why a message cannot be queued now, if it cannot. */
  private refusal(): string | undefined {
    if (this.state.kind === 'closed') return 'closed';
    if (this.state.kind === 'backoff') return 'peer down (reconnecting)';
    if (this.queue.length >= this.options.transport.limits.sendQueueMessagesMax) return 'queue full';
    return undefined;
  }

  /** A message that no peer could accept: Raft's maxSizePerMsg should keep this from happening. */
  private refuseTooLarge(message: Message, bytesMax: number): void {
    this.counters.messagesTooLarge++;
    this.lastErrorCode = 'TRANSPORT_MESSAGE_TOO_LARGE';
    if (isLogWorthy(this.counters.messagesTooLarge)) {
      const { messageBytesMax } = this.options.transport.limits;
      this.log.warn({ code: this.lastErrorCode, type: message.type, bytesMax, messageBytesMax, count: this.counters.messagesTooLarge }, 'refused a message larger than limits.messageBytesMax');
    }
    this.drop('too large');
  }

  private drop(reason: string): void {
    this.counters.messagesDropped++;
    if (isLogWorthy(this.counters.messagesDropped)) this.log.debug({ reason, dropped: this.counters.messagesDropped }, 'dropped messages to peer');
    this.options.onUnreachable();
  }

  /** Opens the `Send` stream. Writes may start at once; gRPC buffers them until connected. */
  private open(): void {
    const method = raftService.Send;
    const metadata = new grpc.Metadata();
    metadata.set(SENDER_METADATA_KEY, String(this.options.transport.nodeId));
    const call = this.client.makeClientStreamRequest<WireMessageBatch, WireSendAck>(method.path, method.requestSerialize, method.responseDeserialize, metadata, {}, (error) => this.onStreamEnded(call, error));
    // Failures arrive through the callback above; this keeps a stray stream error from being fatal.
    call.on('error', () => {});
    call.on('metadata', () => this.onConnected(call));
    this.state = { kind: 'open', call, connected: false, awaitingDrain: false };
  }

  private onConnected(call: grpc.ClientWritableStream<WireMessageBatch>): void {
    if (this.state.kind !== 'open' || this.state.call !== call) return;
    this.state.connected = true;
    if (this.failures > 0) this.log.info({ failures: this.failures }, 'reconnected to peer');
    this.failures = 0;
  }

  /** The stream failed or was closed by the peer: drop what is queued and back off. */
  private onStreamEnded(call: grpc.ClientWritableStream<WireMessageBatch>, error: grpc.ServiceError | null): void {
    if (this.state.kind !== 'open' || this.state.call !== call) return;
    const wasConnected = this.state.connected;
    this.failures++;
    this.counters.streamFailures++;
    this.lastErrorCode = error === null ? 'TRANSPORT_STREAM_CLOSED' : (grpc.status[error.code] ?? String(error.code));
    const details = error?.details ?? 'closed by the peer';
    if (wasConnected || isLogWorthy(this.failures)) this.log.warn({ code: this.lastErrorCode, details, failures: this.failures }, 'stream to peer failed');
    this.counters.messagesDropped += this.queue.length;
    this.queue = [];
    // Reported even with nothing queued: batches written but not yet delivered may be lost.
    this.options.onUnreachable();
    this.startBackoff();
  }

  private startBackoff(): void {
    const { clock, random, reconnect } = this.options.transport;
    const delayMs = backoffDelayMs(this.failures, reconnect, random);
    const state: StreamState = { kind: 'backoff', cancel: () => {} };
    this.state = state;
    state.cancel = clock.schedule(delayMs, () => {
      if (this.state === state) this.state = { kind: 'idle' };
    });
  }

  /** Flushes on the next microtask, so that everything sent in this turn shares batches. */
  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    queueMicrotask(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  /** Writes the queue in batches until it is empty or the stream asks us to wait. */
  private flush(): void {
    const state = this.state;
    if (state.kind !== 'open' || state.awaitingDrain) return;
    while (this.queue.length > 0) {
      const batch = this.takeBatch();
      this.counters.batchesWritten++;
      this.counters.messagesWritten += batch.length;
      if (!state.call.write({ messages: batch.map(encodeMessage) })) {
        state.awaitingDrain = true;
        state.call.once('drain', () => {
          state.awaitingDrain = false;
          this.flush();
        });
        return;
      }
    }
  }

  /** Takes up to batchMessagesMax messages whose bounds fit messageBytesMax (at least one). */
  private takeBatch(): Message[] {
    const { batchMessagesMax, messageBytesMax } = this.options.transport.limits;
    let count = 0;
    let bytes = 0;
    for (const queued of this.queue) {
      if (count === batchMessagesMax || (count > 0 && bytes + queued.bytesMax > messageBytesMax)) break;
      bytes += queued.bytesMax;
      count++;
    }
    assert(count > 0 && bytes <= messageBytesMax, 'takeBatch: a queued message exceeds messageBytesMax');
    return this.queue.splice(0, count).map((queued) => queued.message);
  }

  /** Streams a snapshot on its own RPC; one at a time per peer (a second one fails at once). */
  sendSnapshot(message: Message): void {
    if (this.state.kind === 'closed') return this.finishSnapshot({ ok: false, code: 'TRANSPORT_STREAM_CLOSED', details: 'the link to this peer is closed' });
    if (this.snapshotInFlight) {
      this.log.warn({ index: message.snapshot?.metadata.index }, 'a snapshot to this peer is already in flight; reporting the new one failed');
      return this.finishSnapshot({ ok: false, code: 'TRANSPORT_SNAPSHOT_BUSY', details: 'another snapshot is in flight' });
    }
    this.snapshotInFlight = true;
    const { limits, timeouts, clock } = this.options.transport;
    const sending = sendSnapshot({
      client: this.client,
      senderId: this.options.transport.nodeId,
      message,
      chunkBytes: limits.snapshotChunkBytes,
      messageBytesMax: limits.messageBytesMax,
      clock,
      timeoutMs: timeouts.snapshotSendMs,
      onStarted: (cancel) => (this.cancelSnapshot = cancel),
    });
    void sending.then((result) => {
      this.snapshotInFlight = false;
      this.cancelSnapshot = undefined;
      this.finishSnapshot(result);
    });
  }

  private finishSnapshot(result: SnapshotSendResult): void {
    if (result.ok) {
      this.counters.snapshotsSent++;
      this.log.info({ chunks: result.chunks }, 'snapshot delivered');
    } else {
      this.counters.snapshotsFailed++;
      this.lastErrorCode = result.code;
      this.log.warn({ code: result.code, details: result.details }, 'snapshot not delivered');
    }
    // Reported even when this link was closed meanwhile (peer removed or readdressed): Raft must
    // hear that the snapshot failed, or it would wait for it. The transport mutes it once stopping.
    this.options.onSnapshotStatus(result.ok);
  }

  /** A copy of the counters and state. */
  stats(): PeerStats {
    const connected = this.state.kind === 'open' && this.state.connected;
    return { peer: this.options.peer, address: this.options.address, connected, queueDepth: this.queue.length, ...this.counters, lastErrorCode: this.lastErrorCode };
  }

  /**
   * Half-closes the stream and waits up to `graceMs` for the peer to answer, then cancels it;
   * cancels a snapshot in flight (which then reports failure) and closes the channel.
   */
  async close(graceMs: number): Promise<void> {
    const state = this.state;
    this.state = { kind: 'closed' };
    this.queue = [];
    this.cancelSnapshot?.();
    if (state.kind === 'backoff') state.cancel();
    if (state.kind === 'open') await this.endCall(state.call, graceMs);
    this.client.close();
  }

  private endCall(call: grpc.ClientWritableStream<WireMessageBatch>, graceMs: number): Promise<void> {
    return new Promise((resolve) => {
      const cancelTimer = this.options.transport.clock.schedule(graceMs, () => call.cancel());
      call.once('status', () => {
        cancelTimer();
        resolve();
      });
      call.end();
    });
  }
}
