/**
 * Raft `Message` ⇄ `cutover.peer.v1.Message`, and upper bounds on encoded sizes so that a batch is
 * cut before it could exceed the gRPC message limit. Decoding checks what protobuf cannot: enum
 * values we know and integers that survived the uint64 → number conversion exactly.
 */
import { Buffer } from 'node:buffer';
import type { ConfState, Entry, EntryType, Message, MessageType, SnapshotMetadata } from '../raft/index.ts';
import { CutoverError } from '../util/errors.ts';
import type { WireConfState, WireEntry, WireEntryType, WireMessage, WireMessageType, WireSnapshotMetadata } from './proto.ts';

/**
 * Encoded bytes of a message besides its entries and context: 1 enum, 7 uint64 fields and a bool
 * (at most 11 bytes each with their tags), the context's tag and length, and the message's own tag
 * and length inside a batch (6). The bound is generous on purpose.
 */
export const MESSAGE_OVERHEAD_BYTES_MAX = 128;
/** Encoded bytes of an entry besides its data: 2 uint64, 1 enum, the data's tag and length, framing. */
export const ENTRY_OVERHEAD_BYTES_MAX = 48;
/** Encoded bytes of a data `SnapshotChunk` besides its data: oneof tag and length. */
export const SNAPSHOT_CHUNK_OVERHEAD_BYTES_MAX = 16;
/** Encoded bytes per voter or learner id in snapshot metadata (a uint64 varint). */
const MEMBER_BYTES_MAX = 10;
/** Snapshot metadata and header framing besides the member lists. */
const SNAPSHOT_HEADER_OVERHEAD_BYTES_MAX = 96;

/** A peer sent something that is valid protobuf but not a valid Raft message. */
export class MalformedMessageError extends CutoverError {
  override readonly name = 'MalformedMessageError';
  constructor(message: string) {
    super('TRANSPORT_MALFORMED_MESSAGE', message);
  }
}

const MESSAGE_TYPES: Readonly<Record<MessageType, WireMessageType>> = {
  preVote: 'MESSAGE_TYPE_PRE_VOTE',
  preVoteResp: 'MESSAGE_TYPE_PRE_VOTE_RESP',
  vote: 'MESSAGE_TYPE_VOTE',
  voteResp: 'MESSAGE_TYPE_VOTE_RESP',
  app: 'MESSAGE_TYPE_APP',
  appResp: 'MESSAGE_TYPE_APP_RESP',
  heartbeat: 'MESSAGE_TYPE_HEARTBEAT',
  heartbeatResp: 'MESSAGE_TYPE_HEARTBEAT_RESP',
  snap: 'MESSAGE_TYPE_SNAP',
  timeoutNow: 'MESSAGE_TYPE_TIMEOUT_NOW',
  readIndex: 'MESSAGE_TYPE_READ_INDEX',
  readIndexResp: 'MESSAGE_TYPE_READ_INDEX_RESP',
  transferLeader: 'MESSAGE_TYPE_TRANSFER_LEADER',
  prop: 'MESSAGE_TYPE_PROP',
};
const ENTRY_TYPES: Readonly<Record<EntryType, WireEntryType>> = { normal: 'ENTRY_TYPE_NORMAL', confChange: 'ENTRY_TYPE_CONF_CHANGE' };
const MESSAGE_TYPES_FROM_WIRE = invert(MESSAGE_TYPES);
const ENTRY_TYPES_FROM_WIRE = invert(ENTRY_TYPES);

function invert<K extends string, V extends string>(table: Readonly<Record<K, V>>): ReadonlyMap<unknown, K> {
  return new Map(Object.entries(table).map(([key, value]) => [value, key as K]));
}

/** A Raft message on the wire. A snapshot's metadata is included, never its data. */
export function encodeMessage(message: Message): WireMessage {
  const wire: WireMessage = {
    type: MESSAGE_TYPES[message.type],
    from: message.from,
    to: message.to,
    term: message.term,
    log_term: message.logTerm,
    index: message.index,
    entries: message.entries.map(encodeEntry),
    commit: message.commit,
    reject: message.reject,
    reject_hint: message.rejectHint,
    snapshot: message.snapshot === undefined ? null : encodeSnapshotMetadata(message.snapshot.metadata),
  };
  if (message.context !== undefined) wire.context = message.context;
  return wire;
}

function encodeEntry(entry: Entry): WireEntry {
  return { term: entry.term, index: entry.index, type: ENTRY_TYPES[entry.type], data: entry.data };
}

function encodeSnapshotMetadata(metadata: SnapshotMetadata): WireSnapshotMetadata {
  const { voters, learners } = metadata.confState;
  return { index: metadata.index, term: metadata.term, conf_state: { voters: [...voters], learners: [...learners] } };
}

/**
 * The Raft message a wire message stands for. `snapshotData` is the reassembled data of a `snap`
 * message (which needs it); other types ignore it. Throws `MalformedMessageError`.
 */
export function decodeMessage(wire: WireMessage, snapshotData?: Uint8Array): Message {
  const type = MESSAGE_TYPES_FROM_WIRE.get(wire.type);
  if (type === undefined) throw new MalformedMessageError(`unknown message type ${String(wire.type)}`);
  const message: Message = {
    type,
    from: integer('from', wire.from),
    to: integer('to', wire.to),
    term: integer('term', wire.term),
    logTerm: integer('log_term', wire.log_term),
    index: integer('index', wire.index),
    entries: wire.entries.map(decodeEntry),
    commit: integer('commit', wire.commit),
    reject: wire.reject,
    rejectHint: integer('reject_hint', wire.reject_hint),
    ...(wire.context === undefined ? {} : { context: wire.context }),
  };
  if (type !== 'snap') return message;
  if (wire.snapshot === null || snapshotData === undefined) throw new MalformedMessageError('a snap message needs snapshot metadata and data');
  return { ...message, snapshot: { metadata: decodeSnapshotMetadata(wire.snapshot), data: snapshotData } };
}

function decodeEntry(wire: WireEntry): Entry {
  const type = ENTRY_TYPES_FROM_WIRE.get(wire.type);
  if (type === undefined) throw new MalformedMessageError(`unknown entry type ${String(wire.type)}`);
  return { term: integer('entry.term', wire.term), index: integer('entry.index', wire.index), type, data: view(wire.data) };
}

function decodeSnapshotMetadata(wire: WireSnapshotMetadata): SnapshotMetadata {
  const confState = wire.conf_state ?? { voters: [], learners: [] };
  return { index: integer('snapshot.index', wire.index), term: integer('snapshot.term', wire.term), confState: decodeConfState(confState) };
}

function decodeConfState(wire: WireConfState): ConfState {
  return { voters: wire.voters.map((id) => integer('voters', id)), learners: wire.learners.map((id) => integer('learners', id)) };
}

/** uint64 arrives as a number (loader option longs: Number); past 2^53 it is no longer exact. */
function integer(field: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 0) throw new MalformedMessageError(`${field} is not an exact non-negative integer: ${String(value)}`);
  return value;
}

/** A plain Uint8Array view of decoded bytes (no copy): Raft data is never a Buffer. */
function view(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** An upper bound on the bytes `message` adds to a `MessageBatch` (snapshot data excluded). */
export function encodedBytesUpperBound(message: Message): number {
  let bytes = MESSAGE_OVERHEAD_BYTES_MAX;
  if (message.context !== undefined) bytes += Buffer.byteLength(message.context, 'utf8');
  for (const entry of message.entries) bytes += ENTRY_OVERHEAD_BYTES_MAX + entry.data.byteLength;
  return bytes;
}

/** An upper bound on the bytes of the `SnapshotHeader` chunk that carries `message`. */
export function snapshotHeaderBytesUpperBound(message: Message): number {
  const confState = message.snapshot?.metadata.confState;
  const members = confState === undefined ? 0 : confState.voters.length + confState.learners.length;
  return encodedBytesUpperBound(message) + SNAPSHOT_HEADER_OVERHEAD_BYTES_MAX + MEMBER_BYTES_MAX * members;
}
