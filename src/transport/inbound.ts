/**
 * The server side of `cutover.peer.v1.Raft`: takes batches and snapshots from peers, checks that
 * each message is for this node and from the peer that opened the stream, and hands the rest to
 * `deliver` in the order they arrived.
 */
import * as grpc from '@grpc/grpc-js';
import type { Message } from '../raft/index.ts';
import { CutoverError } from '../util/errors.ts';
import type { Logger } from '../util/logger.ts';
import { decodeMessage, MalformedMessageError } from './codec.ts';
import { statusOfCode } from '../util/status-table.ts';
import { isLogWorthy } from './log-limit.ts';
import type { TransportLimits } from './options.ts';
import { SENDER_METADATA_KEY, type WireMessage, type WireMessageBatch, type WireSendAck, type WireSnapshotAck, type WireSnapshotChunk } from './proto.ts';
import { SnapshotAssembly } from './snapshot-assembly.ts';

/** How an inbound stream is answered when it fails (grpc-js's ServerStatusResponse, not exported). */
type StreamStatus = Partial<grpc.StatusObject>;

/** Counters of inbound traffic, for metrics and tests. */
export interface InboundStats {
  /** Inbound `Send` and `SendSnapshot` streams currently open. */
  streamsOpen: number;
  batchesReceived: number;
  messagesReceived: number;
  /** Dropped: `to` is not this node, or `from` is not the node that opened the stream. */
  messagesMisaddressed: number;
  /** Dropped: valid protobuf but not a valid Raft message. */
  messagesMalformed: number;
  snapshotsReceived: number;
  snapshotChunksReceived: number;
  /** Snapshot streams answered with an error status. */
  snapshotsRefused: number;
}

export interface InboundOptions {
  readonly nodeId: number;
  readonly limits: TransportLimits;
  readonly logger: Logger;
  /** Receives every accepted message, in arrival order per stream. */
  readonly deliver: (message: Message) => void;
}


/** Implements the Raft service for one node; `close()` ends every open stream. */
export class InboundService {
  readonly stats: InboundStats = { streamsOpen: 0, batchesReceived: 0, messagesReceived: 0, messagesMisaddressed: 0, messagesMalformed: 0, snapshotsReceived: 0, snapshotChunksReceived: 0, snapshotsRefused: 0 };
  private readonly closers = new Set<(status: StreamStatus) => void>();
  private snapshotsInFlight = 0;
  private closed = false;

  constructor(private readonly options: InboundOptions) {}

  /** The handlers to register with `server.addService(raftService, …)`. */
  implementation(): grpc.UntypedServiceImplementation {
    return {
      Send: (call: grpc.ServerReadableStream<WireMessageBatch, WireSendAck>, callback: grpc.sendUnaryData<WireSendAck>) => this.handleSend(call, callback),
      SendSnapshot: (call: grpc.ServerReadableStream<WireSnapshotChunk, WireSnapshotAck>, callback: grpc.sendUnaryData<WireSnapshotAck>) => this.handleSendSnapshot(call, callback),
    };
  }

  /** Refuses new streams and ends open ones with UNAVAILABLE, so that a server shuts down promptly. */
  close(): void {
    this.closed = true;
    for (const close of [...this.closers]) close({ code: grpc.status.UNAVAILABLE, details: 'peer transport stopping' });
  }

  private handleSend(call: grpc.ServerReadableStream<WireMessageBatch, WireSendAck>, callback: grpc.sendUnaryData<WireSendAck>): void {
    if (this.closed) return callback({ code: grpc.status.UNAVAILABLE, details: 'peer transport stopping' });
    const sender = senderOf(call.metadata);
    let batches = 0;
    const stream = this.track(call, (status) => (status === null ? callback(null, { batches_received: batches }) : callback(status)));
    // Headers now, not with the answer: the sender takes them as "connected".
    call.sendMetadata(new grpc.Metadata());
    call.on('data', (batch: WireMessageBatch) => {
      if (stream.isDone()) return;
      batches++;
      this.receiveBatch(batch, sender);
    });
    call.on('end', () => stream.finish(null));
  }

  private receiveBatch(batch: WireMessageBatch, sender: number | undefined): void {
    this.stats.batchesReceived++;
    for (const wire of batch.messages) {
      const message = this.accept(wire, sender);
      if (message !== undefined) this.options.deliver(message);
    }
  }

  /** The decoded message if it is well-formed and addressed to us, else undefined (logged). */
  private accept(wire: WireMessage, sender: number | undefined): Message | undefined {
    let message: Message;
    try {
      message = decodeMessage(wire);
    } catch (error) {
      if (!(error instanceof MalformedMessageError)) throw error;
      this.stats.messagesMalformed++;
      if (isLogWorthy(this.stats.messagesMalformed)) this.options.logger.warn({ code: error.code, sender, err: error.message, count: this.stats.messagesMalformed }, 'dropped a malformed message');
      return undefined;
    }
    const problem = this.addressProblem(message, sender);
    if (problem !== undefined) {
      this.stats.messagesMisaddressed++;
      if (isLogWorthy(this.stats.messagesMisaddressed)) this.options.logger.warn({ code: 'TRANSPORT_MISADDRESSED', from: message.from, to: message.to, sender, problem, count: this.stats.messagesMisaddressed }, 'dropped a misaddressed message');
      return undefined;
    }
    this.stats.messagesReceived++;
    return message;
  }

  private addressProblem(message: Message, sender: number | undefined): string | undefined {
    if (message.to !== this.options.nodeId) return `addressed to node ${message.to}, this is node ${this.options.nodeId}`;
    if (message.from === 0 || message.from === this.options.nodeId) return `invalid sender id ${message.from}`;
    if (sender !== undefined && message.from !== sender) return `from ${message.from} on a stream opened by node ${sender}`;
    return undefined;
  }

  private handleSendSnapshot(call: grpc.ServerReadableStream<WireSnapshotChunk, WireSnapshotAck>, callback: grpc.sendUnaryData<WireSnapshotAck>): void {
    if (this.closed) return callback({ code: grpc.status.UNAVAILABLE, details: 'peer transport stopping' });
    if (this.snapshotsInFlight >= this.options.limits.inboundSnapshotsMax) {
      this.stats.snapshotsRefused++;
      return callback({ code: grpc.status.RESOURCE_EXHAUSTED, details: `already receiving ${this.snapshotsInFlight} snapshots (limits.inboundSnapshotsMax)` });
    }
    this.snapshotsInFlight++;
    const assembly = new SnapshotAssembly(this.options.limits.snapshotBytesMax);
    const sender = senderOf(call.metadata);
    let bytes = 0;
    const stream = this.track(call, (status) => {
      this.snapshotsInFlight--;
      if (status === null) callback(null, { bytes_received: bytes });
      else callback(status);
    });
    call.on('data', (chunk: WireSnapshotChunk) => this.guard(stream, () => {
      assembly.accept(chunk);
      this.stats.snapshotChunksReceived++;
      if (chunk.part === 'data') bytes += chunk.data.byteLength;
    }));
    call.on('end', () => this.guard(stream, () => {
      this.deliverSnapshot(assembly.finish(), sender);
      stream.finish(null);
    }));
  }

  private deliverSnapshot(message: Message, sender: number | undefined): void {
    const problem = this.addressProblem(message, sender);
    if (problem !== undefined) throw new CutoverError('TRANSPORT_MISADDRESSED', problem);
    this.stats.snapshotsReceived++;
    this.options.logger.info({ from: message.from, index: message.snapshot?.metadata.index, bytes: message.snapshot?.data.byteLength }, 'snapshot received');
    this.options.deliver(message);
  }

  /** Runs `step` unless the stream is already answered; a CutoverError from it ends the stream with the matching status. */
  private guard(stream: TrackedStream, step: () => void): void {
    if (stream.isDone()) return;
    try {
      step();
    } catch (error) {
      if (!(error instanceof CutoverError)) throw error;
      const status = statusOfCode(error.code) as grpc.status;
      this.stats.snapshotsRefused++;
      this.options.logger.warn({ code: error.code, err: error.message }, 'refused a snapshot');
      stream.finish({ code: status, details: `${error.code}: ${error.message}` });
    }
  }

  /**
   * Registers an open stream; its `finish` answers it exactly once (null = OK), whether it ends
   * normally, fails, or `close()` ends it first.
   */
  private track<Req, Res>(call: grpc.ServerReadableStream<Req, Res>, answer: (status: StreamStatus | null) => void): TrackedStream {
    let done = false;
    this.stats.streamsOpen++;
    const finish = (status: StreamStatus | null): void => {
      if (done) return;
      done = true;
      this.stats.streamsOpen--;
      this.closers.delete(finish);
      answer(status);
    };
    this.closers.add(finish);
    const forget = (): void => finish({ code: grpc.status.CANCELLED, details: 'stream ended by the sender' });
    call.on('cancelled', forget);
    call.on('error', forget);
    return { finish, isDone: () => done };
  }
}

/** An open inbound stream: answer it once with `finish`; `isDone` once it is answered. */
interface TrackedStream {
  readonly finish: (status: StreamStatus | null) => void;
  readonly isDone: () => boolean;
}

/** The node id a sender declared in its metadata, if it declared a valid one. */
function senderOf(metadata: grpc.Metadata): number | undefined {
  const value = metadata.get(SENDER_METADATA_KEY)[0];
  const id = typeof value === 'string' ? Number(value) : Number.NaN;
  return Number.isSafeInteger(id) && id > 0 ? id : undefined;
}
