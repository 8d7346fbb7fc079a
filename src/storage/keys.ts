/**
 * The LevelDB key layout of the Raft storage. Every key starts with `raft/`, so other local stores
 * can share the database under other prefixes. Numbers in keys are 8-byte (snapshot chunks:
 * 4-byte) big-endian so that LevelDB's bytewise order is numeric order:
 *
 * | key                                             | record                                   |
 * |-------------------------------------------------|------------------------------------------|
 * | `raft/entry/` + u64 index                       | one log entry                            |
 * | `raft/hard-state`                               | term, vote, commit                       |
 * | `raft/log-start`                                | index and term of the last compacted entry |
 * | `raft/snapshot`                                 | snapshot metadata (and conf state)       |
 * | `raft/snapshot-data/` + u64 index + u32 chunk   | one chunk of that snapshot's data        |
 */
import { writeU64 } from './bytes.ts';

const encoder = new TextEncoder();

const ENTRY_PREFIX = encoder.encode('raft/entry/');
const SNAPSHOT_DATA_PREFIX = encoder.encode('raft/snapshot-data/');

export const HARD_STATE_KEY = encoder.encode('raft/hard-state');
export const LOG_START_KEY = encoder.encode('raft/log-start');
export const SNAPSHOT_KEY = encoder.encode('raft/snapshot');

/** Bounds that contain every Raft storage key (`'0'` is the byte after `'/'`). */
export const RAFT_KEY_RANGE = Object.freeze({ gte: encoder.encode('raft/'), lt: encoder.encode('raft0') });

/** What a key holds, decoded from its bytes. */
export type ParsedKey =
  | { readonly kind: 'entry'; readonly index: number }
  | { readonly kind: 'hardState' }
  | { readonly kind: 'logStart' }
  | { readonly kind: 'snapshot' }
  | { readonly kind: 'snapshotData'; readonly snapshotIndex: number; readonly chunk: number }
  | { readonly kind: 'unknown' };

/** The key of the entry at `index`. */
export function entryKey(index: number): Uint8Array {
  const key = new Uint8Array(ENTRY_PREFIX.byteLength + 8);
  key.set(ENTRY_PREFIX);
  writeU64(new DataView(key.buffer), ENTRY_PREFIX.byteLength, index);
  return key;
}

/** The key of chunk `chunk` of the data of the snapshot at `snapshotIndex`. */
export function snapshotDataKey(snapshotIndex: number, chunk: number): Uint8Array {
  const key = new Uint8Array(SNAPSHOT_DATA_PREFIX.byteLength + 12);
  key.set(SNAPSHOT_DATA_PREFIX);
  const view = new DataView(key.buffer);
  writeU64(view, SNAPSHOT_DATA_PREFIX.byteLength, snapshotIndex);
  view.setUint32(SNAPSHOT_DATA_PREFIX.byteLength + 8, chunk);
  return key;
}

/** Decodes `key`; anything that is not exactly one of the layouts above is `unknown`. */
export function parseKey(key: Uint8Array): ParsedKey {
  if (bytesEqual(key, HARD_STATE_KEY)) return { kind: 'hardState' };
  if (bytesEqual(key, LOG_START_KEY)) return { kind: 'logStart' };
  if (bytesEqual(key, SNAPSHOT_KEY)) return { kind: 'snapshot' };
  const view = new DataView(key.buffer, key.byteOffset, key.byteLength);
  if (hasPrefix(key, ENTRY_PREFIX) && key.byteLength === ENTRY_PREFIX.byteLength + 8) {
    const index = readSafeU64(view, ENTRY_PREFIX.byteLength);
    return index === undefined ? { kind: 'unknown' } : { kind: 'entry', index };
  }
  if (hasPrefix(key, SNAPSHOT_DATA_PREFIX) && key.byteLength === SNAPSHOT_DATA_PREFIX.byteLength + 12) {
    const snapshotIndex = readSafeU64(view, SNAPSHOT_DATA_PREFIX.byteLength);
    const chunk = view.getUint32(SNAPSHOT_DATA_PREFIX.byteLength + 8);
    return snapshotIndex === undefined ? { kind: 'unknown' } : { kind: 'snapshotData', snapshotIndex, chunk };
  }
  return { kind: 'unknown' };
}

/**
 * A printable name for `key`, for error messages and logs: `raft/entry/42`,
 * `raft/snapshot-data/100/3`, `raft/hard-state`; other bytes as `\xNN` escapes.
 */
export function keyName(key: Uint8Array): string {
  const parsed = parseKey(key);
  if (parsed.kind === 'entry') return `raft/entry/${parsed.index}`;
  if (parsed.kind === 'snapshotData') return `raft/snapshot-data/${parsed.snapshotIndex}/${parsed.chunk}`;
  let name = '';
  for (const byte of key) {
    name += byte >= 0x20 && byte < 0x7f && byte !== 0x5c ? String.fromCharCode(byte) : `\\x${byte.toString(16).padStart(2, '0')}`;
  }
  return name;
}

/** The u64 at `offset`, or undefined when it is not a safe integer (then the key is `unknown`). */
function readSafeU64(view: DataView, offset: number): number | undefined {
  const value = view.getUint32(offset) * 2 ** 32 + view.getUint32(offset + 4);
  return Number.isSafeInteger(value) ? value : undefined;
}

function hasPrefix(key: Uint8Array, prefix: Uint8Array): boolean {
  if (key.byteLength < prefix.byteLength) return false;
  for (let i = 0; i < prefix.byteLength; i++) if (key[i] !== prefix[i]) return false;
  return true;
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && hasPrefix(a, b);
}
