/** The peer transport: its interface and the gRPC implementation. */
export type { PeerTransport, TransportHandler } from './transport.ts';
export { GrpcTransport, type TransportStats } from './grpc-transport.ts';
export type { PeerStats } from './peer-stream.ts';
export type { InboundStats } from './inbound.ts';
export {
  peerClientChannelOptions,
  peerServerChannelOptions,
  validateTransportOptions,
  type GrpcTransportOptions,
  type ReconnectPolicy,
  type TransportLimits,
  type TransportListen,
  type TransportTimeouts,
} from './options.ts';
export { MalformedMessageError } from './codec.ts';
export { SnapshotCorruptError, SnapshotTooLargeError } from './snapshot-assembly.ts';
export { PROTO_ROOT, RAFT_PROTO_FILE, RAFT_SERVICE_NAME, RAFT_LOADER_OPTIONS, raftService } from './proto.ts';
