/**
 * Record framing and payload codecs. Every value stored under a `raft/` key is
 *
 *     u8 format version | u32 payload length | u32 CRC-32 | payload
 *
 * with the CRC-32 (node:zlib) taken over the key, then the version and length bytes, then the
 * payload. Covering the key catches a valid record copied under another key; the length catches a
 * torn (truncated) value with a clearer message than the checksum alone.
 */
import { crc32 } from 'node:zlib';
import { assert } from '../util/assert.ts';
import { ByteReader, ByteWriter, PayloadDecodeError } from './bytes.ts';
import type { ConfState, Entry, EntryType, HardState, SnapshotMetadata } from '../raft/types.ts';

/** The only record format this code writes and reads. */
export const RECORD_FORMAT_VERSION = 1;
const HEADER_BYTES = 9;
/** Header bytes covered by the checksum: the version and the length. */
const CHECKED_HEADER_BYTES = 5;

/** The index and term of the last compacted entry: entries start right after it. */
export interface LogStart {
  readonly index: number;
  readonly term: number;
}

/** The stored form of snapshot metadata: where the data's chunks are and how big it is. */
export interface StoredSnapshotMetadata extends SnapshotMetadata {
  readonly dataBytes: number;
  readonly chunkCount: number;
}

/** Frames `payload` for storage under `key`: header with length and checksum, then the payload. */
export function frameRecord(key: Uint8Array, payload: Uint8Array): Uint8Array {
  const value = new Uint8Array(HEADER_BYTES + payload.byteLength);
  const view = new DataView(value.buffer);
  view.setUint8(0, RECORD_FORMAT_VERSION);
  view.setUint32(1, payload.byteLength);
  value.set(payload, HEADER_BYTES);
  view.setUint32(CHECKED_HEADER_BYTES, recordChecksum(key, value));
  return value;
}

/**
 * The payload of `value` stored under `key` (a view into `value`'s memory). Throws `PayloadDecodeError`
 * naming what is wrong if the value is short, torn, of another format or fails its checksum.
 */
export function unframeRecord(key: Uint8Array, value: Uint8Array): Uint8Array {
  if (value.byteLength < HEADER_BYTES) {
    throw new PayloadDecodeError(`torn record: ${value.byteLength} bytes, shorter than the ${HEADER_BYTES}-byte header`);
  }
  const view = new DataView(value.buffer, value.byteOffset, value.byteLength);
  const version = view.getUint8(0);
  if (version !== RECORD_FORMAT_VERSION) throw new PayloadDecodeError(`unknown record format version ${version}`);
  const payloadBytes = view.getUint32(1);
  if (value.byteLength !== HEADER_BYTES + payloadBytes) {
    throw new PayloadDecodeError(`torn record: header says ${payloadBytes} payload bytes, found ${value.byteLength - HEADER_BYTES}`);
  }
  const stored = view.getUint32(CHECKED_HEADER_BYTES);
  const computed = recordChecksum(key, value);
  if (stored !== computed) throw new PayloadDecodeError(`checksum mismatch: stored ${hex32(stored)}, computed ${hex32(computed)}`);
  // A plain Uint8Array view (LevelDB hands out Buffers): callers compare and copy it as the
  // Uint8Array the Raft types promise, with no Buffer-only behaviour leaking in.
  return new Uint8Array(value.buffer, value.byteOffset + HEADER_BYTES, payloadBytes);
}

/** CRC-32 of key, checked header bytes and payload of the framed `value`. */
function recordChecksum(key: Uint8Array, value: Uint8Array): number {
  const header = value.subarray(0, CHECKED_HEADER_BYTES);
  return crc32(value.subarray(HEADER_BYTES), crc32(header, crc32(key)));
}

function hex32(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}

const ENTRY_TYPES: readonly EntryType[] = ['normal', 'confChange'];

/** Entry payload: u64 term | u8 type | data. The index is the key's. */
export function encodeEntry(entry: Entry): Uint8Array {
  const typeCode = ENTRY_TYPES.indexOf(entry.type);
  assert(typeCode >= 0, `encodeEntry: unknown entry type ${entry.type}`);
  return new ByteWriter(9 + entry.data.byteLength).u64(entry.term).u8(typeCode).raw(entry.data).finish();
}

/** Decodes an entry payload stored under the key of `index`; throws `PayloadDecodeError` if malformed. */
export function decodeEntry(index: number, payload: Uint8Array): Entry {
  const reader = new ByteReader(payload);
  const term = reader.u64();
  const typeCode = reader.u8();
  const type = ENTRY_TYPES[typeCode];
  if (type === undefined) throw new PayloadDecodeError(`unknown entry type ${typeCode}`);
  return { term, index, type, data: reader.rest() };
}

/** Hard state payload: u64 term | u64 vote | u64 commit. */
export function encodeHardState(hardState: HardState): Uint8Array {
  return new ByteWriter(24).u64(hardState.term).u64(hardState.vote).u64(hardState.commit).finish();
}

/** Decodes a hard state payload; throws `PayloadDecodeError` unless it is exactly 24 bytes. */
export function decodeHardState(payload: Uint8Array): HardState {
  const reader = new ByteReader(payload);
  const hardState: HardState = { term: reader.u64(), vote: reader.u64(), commit: reader.u64() };
  reader.end();
  return hardState;
}

/** Log start payload: u64 index | u64 term. */
export function encodeLogStart(logStart: LogStart): Uint8Array {
  return new ByteWriter(16).u64(logStart.index).u64(logStart.term).finish();
}

/** Decodes a log start payload; throws `PayloadDecodeError` unless it is exactly 16 bytes. */
export function decodeLogStart(payload: Uint8Array): LogStart {
  const reader = new ByteReader(payload);
  const logStart: LogStart = { index: reader.u64(), term: reader.u64() };
  reader.end();
  return logStart;
}

/**
 * Snapshot metadata payload: u64 index | u64 term | u64 data bytes | u32 chunk count |
 * u32 voter count | u64 voters... | u32 learner count | u64 learners...
 */
export function encodeSnapshotMetadata(metadata: StoredSnapshotMetadata): Uint8Array {
  const { voters, learners } = metadata.confState;
  const writer = new ByteWriter(36 + 8 * (voters.length + learners.length));
  writer.u64(metadata.index).u64(metadata.term).u64(metadata.dataBytes).u32(metadata.chunkCount);
  writeIds(writer, voters);
  writeIds(writer, learners);
  return writer.finish();
}

/** Decodes snapshot metadata; throws `PayloadDecodeError` if it is short or has trailing bytes. */
export function decodeSnapshotMetadata(payload: Uint8Array): StoredSnapshotMetadata {
  const reader = new ByteReader(payload);
  const index = reader.u64();
  const term = reader.u64();
  const dataBytes = reader.u64();
  const chunkCount = reader.u32();
  const confState: ConfState = { voters: readIds(reader), learners: readIds(reader) };
  reader.end();
  return { index, term, confState, dataBytes, chunkCount };
}

function writeIds(writer: ByteWriter, ids: readonly number[]): void {
  writer.u32(ids.length);
  for (const id of ids) writer.u64(id);
}

function readIds(reader: ByteReader): number[] {
  const count = reader.u32();
  const ids: number[] = [];
  // Each id reads 8 bytes, so a corrupt count fails on the first missing id, not on allocation.
  for (let i = 0; i < count; i++) ids.push(reader.u64());
  return ids;
}
