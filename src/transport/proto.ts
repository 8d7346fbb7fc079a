/**
 * The peer Raft service as loaded from `proto/cutover/peer/v1/raft.proto`, and the shapes of its
 * messages as proto-loader hands them over (with the options below: field names as in the .proto
 * file, uint64 as number, enums as their names, bytes as Buffer, defaults filled in).
 */
import { Buffer } from 'node:buffer';
import { fileURLToPath } from 'node:url';
import type * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { assert } from '../util/assert.ts';

/** The repository's proto/ directory. */
export const PROTO_ROOT = fileURLToPath(new URL('../../proto/', import.meta.url));
/** The peer Raft service's file, relative to `PROTO_ROOT`. */
export const RAFT_PROTO_FILE = 'cutover/peer/v1/raft.proto';
/** The fully qualified service name. */
export const RAFT_SERVICE_NAME = 'cutover.peer.v1.Raft';

/** The request metadata key in which a sender names its node id (checked against each `from`). */
export const SENDER_METADATA_KEY = 'cutover-node-id';

/** Every option set explicitly: proto-loader's defaults are not ours to rely on. */
export const RAFT_LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: Number,
  enums: String,
  // Buffer is proto-loader's own default, stated: decoded bytes are views, not copies.
  bytes: Buffer,
  defaults: true,
  arrays: true,
  objects: false,
  oneofs: true,
  json: false,
  includeDirs: [PROTO_ROOT],
};

export type WireMessageType =
  | 'MESSAGE_TYPE_UNSPECIFIED'
  | 'MESSAGE_TYPE_PRE_VOTE'
  | 'MESSAGE_TYPE_PRE_VOTE_RESP'
  | 'MESSAGE_TYPE_VOTE'
  | 'MESSAGE_TYPE_VOTE_RESP'
  | 'MESSAGE_TYPE_APP'
  | 'MESSAGE_TYPE_APP_RESP'
  | 'MESSAGE_TYPE_HEARTBEAT'
  | 'MESSAGE_TYPE_HEARTBEAT_RESP'
  | 'MESSAGE_TYPE_SNAP'
  | 'MESSAGE_TYPE_TIMEOUT_NOW'
  | 'MESSAGE_TYPE_READ_INDEX'
  | 'MESSAGE_TYPE_READ_INDEX_RESP'
  | 'MESSAGE_TYPE_TRANSFER_LEADER'
  | 'MESSAGE_TYPE_PROP';

export type WireEntryType = 'ENTRY_TYPE_UNSPECIFIED' | 'ENTRY_TYPE_NORMAL' | 'ENTRY_TYPE_CONF_CHANGE';

/** `cutover.peer.v1.Entry`. */
export interface WireEntry {
  term: number;
  index: number;
  /** A name on the way out; on the way in, a number when the sender used a value we do not know. */
  type: WireEntryType | number;
  data: Uint8Array;
}

/** `cutover.peer.v1.ConfState`. */
export interface WireConfState {
  voters: number[];
  learners: number[];
}

/** `cutover.peer.v1.SnapshotMetadata`. */
export interface WireSnapshotMetadata {
  index: number;
  term: number;
  conf_state: WireConfState | null;
}

/** `cutover.peer.v1.Message`. Absent message fields decode as null; `context` as undefined. */
export interface WireMessage {
  type: WireMessageType | number;
  from: number;
  to: number;
  term: number;
  log_term: number;
  index: number;
  entries: WireEntry[];
  commit: number;
  reject: boolean;
  reject_hint: number;
  snapshot: WireSnapshotMetadata | null;
  context?: string;
}

/** `cutover.peer.v1.MessageBatch`. */
export interface WireMessageBatch {
  messages: WireMessage[];
}

/** `cutover.peer.v1.SendAck`. */
export interface WireSendAck {
  batches_received: number;
}

/** `cutover.peer.v1.SnapshotHeader`. */
export interface WireSnapshotHeader {
  message: WireMessage | null;
  total_bytes: number;
  crc32: number;
}

/** `cutover.peer.v1.SnapshotChunk`: `part` names the member that is set (oneofs: true). */
export type WireSnapshotChunk = { part?: 'header'; header: WireSnapshotHeader } | { part?: 'data'; data: Uint8Array };

/** `cutover.peer.v1.SnapshotAck`. */
export interface WireSnapshotAck {
  bytes_received: number;
}

/** The two methods of `cutover.peer.v1.Raft`, typed with the shapes above. */
export interface RaftServiceDefinition extends grpc.ServiceDefinition {
  Send: grpc.MethodDefinition<WireMessageBatch, WireSendAck>;
  SendSnapshot: grpc.MethodDefinition<WireSnapshotChunk, WireSnapshotAck>;
}

/** Loads raft.proto once and checks that each method has the streaming shape the code expects. */
function loadRaftService(): RaftServiceDefinition {
  const definition = protoLoader.loadSync(RAFT_PROTO_FILE, RAFT_LOADER_OPTIONS);
  const service = definition[RAFT_SERVICE_NAME] as protoLoader.ServiceDefinition | undefined;
  const send = service?.['Send'];
  const sendSnapshot = service?.['SendSnapshot'];
  assert(send?.requestStream === true && !send.responseStream, `${RAFT_SERVICE_NAME}.Send must be client-streaming`);
  assert(sendSnapshot?.requestStream === true && !sendSnapshot.responseStream, `${RAFT_SERVICE_NAME}.SendSnapshot must be client-streaming`);
  // The one unchecked step: proto-loader types messages as `object`; the interfaces above
  // describe what the loader options produce for raft.proto.
  return { Send: send, SendSnapshot: sendSnapshot } as unknown as RaftServiceDefinition;
}

/** `cutover.peer.v1.Raft`, ready for `server.addService` and `client.makeClientStreamRequest`. */
export const raftService: RaftServiceDefinition = loadRaftService();
