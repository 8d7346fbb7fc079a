/**
 * Sends one snapshot on its own `SendSnapshot` stream: a header chunk, then the data in chunks of
 * at most `chunkBytes`, writing only as fast as the stream drains so that a large snapshot is never
 * buffered twice. The result says whether the receiver acknowledged the whole snapshot.
 */
import { crc32 } from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import type { Message } from '../raft/index.ts';
import { assert } from '../util/assert.ts';
import type { Clock } from '../util/clock.ts';
import { encodeMessage, snapshotHeaderBytesUpperBound } from './codec.ts';
import { raftService, SENDER_METADATA_KEY, type WireSnapshotAck, type WireSnapshotChunk } from './proto.ts';

/** How a snapshot send ended. `code` is a gRPC status name or a TRANSPORT_* code. */
export type SnapshotSendResult = { readonly ok: true; readonly chunks: number } | { readonly ok: false; readonly code: string; readonly details: string };

export interface SnapshotSendOptions {
  readonly client: grpc.Client;
  /** This node's id, sent in the request metadata. */
  readonly senderId: number;
  /** A `snap` message with its snapshot. */
  readonly message: Message;
  readonly chunkBytes: number;
  readonly messageBytesMax: number;
  readonly clock: Clock;
  /** The stream is cancelled if not acknowledged within this time. */
  readonly timeoutMs: number;
  /** Called once the stream exists, with a function that cancels it (used by `stop()`). */
  readonly onStarted: (cancel: () => void) => void;
}

/** Streams the snapshot of `options.message`; never rejects. */
export function sendSnapshot(options: SnapshotSendOptions): Promise<SnapshotSendResult> {
  const { message, messageBytesMax } = options;
  assert(message.type === 'snap' && message.snapshot !== undefined, 'sendSnapshot: not a snap message');
  const headerBytes = snapshotHeaderBytesUpperBound(message);
  if (headerBytes > messageBytesMax) {
    return Promise.resolve({ ok: false, code: 'TRANSPORT_MESSAGE_TOO_LARGE', details: `snapshot header needs up to ${headerBytes} bytes; limit is ${messageBytesMax}` });
  }
  return new Promise((resolve) => startStream(options, resolve));
}

function startStream(options: SnapshotSendOptions, resolve: (result: SnapshotSendResult) => void): void {
  const chunks = snapshotChunks(options.message, options.chunkBytes);
  let finished = false;
  let timedOut = false;
  let cancelTimer = (): void => {};
  const method = raftService.SendSnapshot;
  const metadata = new grpc.Metadata();
  metadata.set(SENDER_METADATA_KEY, String(options.senderId));
  const call = options.client.makeClientStreamRequest<WireSnapshotChunk, WireSnapshotAck>(method.path, method.requestSerialize, method.responseDeserialize, metadata, {}, (error) => {
    finished = true;
    cancelTimer();
    if (error === null) resolve({ ok: true, chunks: chunks.length });
    else if (timedOut) resolve({ ok: false, code: 'TRANSPORT_SNAPSHOT_TIMEOUT', details: `not acknowledged within ${options.timeoutMs} ms` });
    else resolve({ ok: false, code: grpc.status[error.code] ?? String(error.code), details: error.details });
  });
  // Failures arrive through the callback above; this keeps a stray stream error from being fatal.
  call.on('error', () => {});
  cancelTimer = options.clock.schedule(options.timeoutMs, () => {
    timedOut = true;
    call.cancel();
  });
  options.onStarted(() => call.cancel());
  pump(call, chunks, () => finished);
}

/** Writes `chunks` in order, pausing while the stream's buffer is full, then half-closes. */
function pump(call: grpc.ClientWritableStream<WireSnapshotChunk>, chunks: readonly WireSnapshotChunk[], isFinished: () => boolean): void {
  let next = 0;
  const resume = (): void => {
    while (!isFinished() && next < chunks.length) {
      const chunk = chunks[next++];
      assert(chunk !== undefined);
      if (!call.write(chunk)) {
        call.once('drain', resume);
        return;
      }
    }
    if (!isFinished()) call.end();
  };
  resume();
}

/** The header chunk, then views (not copies) of the data, `chunkBytes` at a time. */
function snapshotChunks(message: Message, chunkBytes: number): WireSnapshotChunk[] {
  assert(message.snapshot !== undefined && chunkBytes > 0);
  const data = message.snapshot.data;
  const chunks: WireSnapshotChunk[] = [{ header: { message: encodeMessage(message), total_bytes: data.byteLength, crc32: crc32(data) } }];
  for (let offset = 0; offset < data.byteLength; offset += chunkBytes) {
    chunks.push({ data: data.subarray(offset, Math.min(offset + chunkBytes, data.byteLength)) });
  }
  return chunks;
}
