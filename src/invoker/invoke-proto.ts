/**
 * The peer Invoke service as loaded from `proto/cutover/peer/v1/invoke.proto`, and the shapes of
 * its messages as proto-loader hands them over (the transport's loader options: field names as in
 * the .proto file, bytes as Buffer, defaults filled in). Shared by the client (`remote.ts`) and
 * the server (`src/api/invoke-service.ts`).
 */
import type * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { RAFT_LOADER_OPTIONS } from '../transport/proto.ts';
import { assert } from '../util/assert.ts';

/** The service's file, relative to the proto root. */
export const INVOKE_PROTO_FILE = 'cutover/peer/v1/invoke.proto';
/** The fully qualified service name. */
export const INVOKE_SERVICE_NAME = 'cutover.peer.v1.Invoke';

/** `cutover.peer.v1.CallRequest`. */
export interface WireCallRequest {
  artifact: string;
  version: string;
  instance_id: string;
  method: string;
  /** JSON text, UTF-8. */
  payload: Uint8Array;
}

/** `cutover.peer.v1.CallReply`. */
export interface WireCallReply {
  /** JSON text, UTF-8. */
  payload: Uint8Array;
}

/** `cutover.peer.v1.MetricsWindowMessage`. */
export interface WireMetricsWindow {
  /** JSON text, UTF-8. */
  window: Uint8Array;
}

/** `cutover.peer.v1.PushMetricsReply` (empty). */
export type WirePushMetricsReply = Record<string, never>;

/** The two methods of `cutover.peer.v1.Invoke`, typed with the shapes above. */
export interface InvokeServiceDefinition extends grpc.ServiceDefinition {
  Call: grpc.MethodDefinition<WireCallRequest, WireCallReply>;
  PushMetrics: grpc.MethodDefinition<WireMetricsWindow, WirePushMetricsReply>;
}

/** Loads invoke.proto once and checks that both methods are unary. */
function loadInvokeService(): InvokeServiceDefinition {
  // The same options (and proto root) as every other service in the process.
  const definition = protoLoader.loadSync(INVOKE_PROTO_FILE, RAFT_LOADER_OPTIONS);
  const service = definition[INVOKE_SERVICE_NAME] as protoLoader.ServiceDefinition | undefined;
  const call = service?.['Call'];
  const pushMetrics = service?.['PushMetrics'];
  assert(call !== undefined && !call.requestStream && !call.responseStream, `${INVOKE_SERVICE_NAME}.Call must be unary`);
  assert(pushMetrics !== undefined && !pushMetrics.requestStream && !pushMetrics.responseStream, `${INVOKE_SERVICE_NAME}.PushMetrics must be unary`);
  // proto-loader types messages as `object`; the interfaces above describe what the loader
  // options produce for invoke.proto.
  return { Call: call, PushMetrics: pushMetrics } as unknown as InvokeServiceDefinition;
}

/** `cutover.peer.v1.Invoke`, ready for `server.addService` and `client.makeUnaryRequest`. */
export const invokeService: InvokeServiceDefinition = loadInvokeService();
