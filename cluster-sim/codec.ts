/**
 * The simulated disk's record formats: a storage update (one write) or a storage image (a
 * checkpoint) serialised to bytes, and the CRC-32 that guards them on disk.
 */
import { Buffer } from 'node:buffer';
import { crc32 as zlibCrc32 } from 'node:zlib';
import type { ConfState, Entry, HardState, Snapshot } from '../src/raft/types.ts';
import type { StorageUpdate } from '../src/raft/storage.ts';

type EncodedEntry = [term: number, index: number, type: 0 | 1, data: string];
interface EncodedSnapshot {
  index: number;
  term: number;
  voters: readonly number[];
  learners: readonly number[];
  data: string;
}
interface EncodedUpdate {
  h?: [term: number, vote: number, commit: number];
  e: EncodedEntry[];
  s?: EncodedSnapshot;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Serialises one storage update (a Ready's durable part, or a checkpoint image). */
export function encodeUpdate(update: StorageUpdate): Uint8Array {
  return encoder.encode(JSON.stringify(encodeUpdateFields(update)));
}

/** The inverse of `encodeUpdate`. Throws on bytes that are not an encoded update. */
export function decodeUpdate(bytes: Uint8Array): StorageUpdate {
  return decodeUpdateFields(JSON.parse(decoder.decode(bytes)) as EncodedUpdate);
}

function encodeUpdateFields(update: StorageUpdate): EncodedUpdate {
  const encoded: EncodedUpdate = { e: update.entries.map(encodeEntry) };
  if (update.hardState !== undefined) encoded.h = [update.hardState.term, update.hardState.vote, update.hardState.commit];
  if (update.snapshot !== undefined) encoded.s = encodeSnapshot(update.snapshot);
  return encoded;
}

function decodeUpdateFields(encoded: EncodedUpdate): StorageUpdate {
  const entries = encoded.e.map(decodeEntry);
  const hardState: HardState | undefined = encoded.h === undefined ? undefined : { term: encoded.h[0], vote: encoded.h[1], commit: encoded.h[2] };
  const snapshot = encoded.s === undefined ? undefined : decodeSnapshot(encoded.s);
  return { entries, ...(hardState === undefined ? {} : { hardState }), ...(snapshot === undefined ? {} : { snapshot }) };
}

/**
 * A whole storage image: `base` rebuilds the log (its snapshot is the log's base: the snapshot,
 * or the compaction point when a snapshot was taken but the log not yet compacted up to it), and
 * `snapshot`, when set, is that later snapshot.
 */
export interface StorageImage {
  readonly base: StorageUpdate;
  readonly snapshot?: Snapshot;
}

interface EncodedImage {
  b: EncodedUpdate;
  s?: EncodedSnapshot;
}

/** Serialises a storage image (a checkpoint). */
export function encodeImage(image: StorageImage): Uint8Array {
  const encoded: EncodedImage = { b: encodeUpdateFields(image.base) };
  if (image.snapshot !== undefined) encoded.s = encodeSnapshot(image.snapshot);
  return encoder.encode(JSON.stringify(encoded));
}

/** The inverse of `encodeImage`. */
export function decodeImage(bytes: Uint8Array): StorageImage {
  const encoded = JSON.parse(decoder.decode(bytes)) as EncodedImage;
  const base = decodeUpdateFields(encoded.b);
  return encoded.s === undefined ? { base } : { base, snapshot: decodeSnapshot(encoded.s) };
}

function encodeEntry(entry: Entry): EncodedEntry {
  return [entry.term, entry.index, entry.type === 'normal' ? 0 : 1, base64(entry.data)];
}

function decodeEntry(encoded: EncodedEntry): Entry {
  return { term: encoded[0], index: encoded[1], type: encoded[2] === 0 ? 'normal' : 'confChange', data: fromBase64(encoded[3]) };
}

function encodeSnapshot(snapshot: Snapshot): EncodedSnapshot {
  const { index, term, confState } = snapshot.metadata;
  return { index, term, voters: confState.voters, learners: confState.learners, data: base64(snapshot.data) };
}

function decodeSnapshot(encoded: EncodedSnapshot): Snapshot {
  const confState: ConfState = { voters: encoded.voters, learners: encoded.learners };
  return { metadata: { index: encoded.index, term: encoded.term, confState }, data: fromBase64(encoded.data) };
}

function base64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

function fromBase64(text: string): Uint8Array {
  // Copy out of Buffer's shared pool so the entry owns its bytes.
  return new Uint8Array(Buffer.from(text, 'base64'));
}

/**
 * CRC-32 (IEEE 802.3, as in zlib) of `bytes`: zlib's native one (a table loop in JS took 4% of an
 * updates seed, which checksums every simulated disk record).
 */
export function crc32(bytes: Uint8Array): number {
  return zlibCrc32(bytes) >>> 0;
}

/** FNV-1a (32-bit) of `bytes`: a cheap fingerprint for comparing entries across nodes. */
export function fnv1a(bytes: Uint8Array): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) hash = Math.imul(hash ^ bytes[i]!, 0x01000193);
  return hash >>> 0;
}
