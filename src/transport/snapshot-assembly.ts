/**
 * Reassembles one inbound snapshot from its chunks, refusing anything that is out of order, larger
 * than announced or allowed, or whose CRC-32 does not match: a snapshot reaches Raft whole or not
 * at all.
 */
import { crc32 } from 'node:zlib';
import type { Message } from '../raft/index.ts';
import { CutoverError } from '../util/errors.ts';
import { decodeMessage, MalformedMessageError } from './codec.ts';
import type { WireSnapshotChunk, WireSnapshotHeader } from './proto.ts';

/** The announced snapshot is larger than `limits.snapshotBytesMax`. */
export class SnapshotTooLargeError extends CutoverError {
  override readonly name = 'SnapshotTooLargeError';
  constructor(message: string) {
    super('TRANSPORT_SNAPSHOT_TOO_LARGE', message);
  }
}

/** The reassembled data does not match its announced length or CRC-32. */
export class SnapshotCorruptError extends CutoverError {
  override readonly name = 'SnapshotCorruptError';
  constructor(message: string) {
    super('TRANSPORT_SNAPSHOT_CORRUPT', message);
  }
}

/** Collects the chunks of one `SendSnapshot` stream. Not reusable. */
export class SnapshotAssembly {
  private header: WireSnapshotHeader | undefined;
  private data = new Uint8Array(0);
  private receivedBytes = 0;

  /** `snapshotBytesMax` bounds the memory one assembly may claim. */
  constructor(private readonly snapshotBytesMax: number) {}

  /** Takes the next chunk. Throws `MalformedMessageError` or `SnapshotTooLargeError`. */
  accept(chunk: WireSnapshotChunk): void {
    if (chunk.part === 'header') this.acceptHeader(chunk.header);
    else if (chunk.part === 'data') this.acceptData(chunk.data);
    else throw new MalformedMessageError('snapshot chunk with neither header nor data');
  }

  private acceptHeader(header: WireSnapshotHeader): void {
    if (this.header !== undefined) throw new MalformedMessageError('second snapshot header in one stream');
    if (header.message === null) throw new MalformedMessageError('snapshot header without a message');
    if (!Number.isSafeInteger(header.total_bytes)) throw new MalformedMessageError(`snapshot total_bytes is not exact: ${header.total_bytes}`);
    if (header.total_bytes > this.snapshotBytesMax) {
      throw new SnapshotTooLargeError(`snapshot of ${header.total_bytes} bytes exceeds the limit of ${this.snapshotBytesMax}`);
    }
    this.header = header;
    this.data = new Uint8Array(header.total_bytes);
  }

  private acceptData(bytes: Uint8Array): void {
    if (this.header === undefined) throw new MalformedMessageError('snapshot data before the header');
    if (this.receivedBytes + bytes.byteLength > this.data.byteLength) {
      throw new SnapshotCorruptError(`snapshot data exceeds the announced ${this.data.byteLength} bytes`);
    }
    this.data.set(bytes, this.receivedBytes);
    this.receivedBytes += bytes.byteLength;
  }

  /** The complete `snap` message, once every byte has arrived and the CRC-32 matches. */
  finish(): Message {
    const header = this.header;
    if (header?.message === null || header === undefined) throw new MalformedMessageError('snapshot stream ended without a header');
    if (this.receivedBytes !== this.data.byteLength) {
      throw new SnapshotCorruptError(`snapshot stream ended after ${this.receivedBytes} of ${this.data.byteLength} bytes`);
    }
    const checksum = crc32(this.data);
    if (checksum !== header.crc32) throw new SnapshotCorruptError(`snapshot CRC-32 ${checksum} does not match the announced ${header.crc32}`);
    const message = decodeMessage(header.message, this.data);
    if (message.type !== 'snap') throw new MalformedMessageError(`snapshot stream carries a ${message.type} message`);
    return message;
  }
}
