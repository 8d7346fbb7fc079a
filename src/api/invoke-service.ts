/**
 * The server side of remote invocation (`cutover.peer.v1.Invoke`): checks each call, hands it to
 * the node's local instances through an `InvokeHandler`, and answers errors as gRPC statuses with
 * the Cutover code in the `cutover-error-code` trailer (`toServiceError`), so that the caller's
 * `RemoteInvoker` rebuilds the same code.
 */
import type { Buffer } from 'node:buffer';
import * as grpc from '@grpc/grpc-js';
import { invokeService, type WireCallReply, type WireCallRequest, type WireMetricsWindow, type WirePushMetricsReply } from '../invoker/invoke-proto.ts';
import { decodeJsonPayload, encodeJsonPayload, PAYLOAD_OVERHEAD_BYTES_MAX } from '../invoker/json-payload.ts';
import type { RemoteCallRequest } from '../invoker/remote.ts';
import { epochMs } from '../platform/wall-clock.ts';
import { requireArtifactBase, requireSemVer } from '../slices/keys.ts';
import { CutoverError, InvalidArgumentError } from '../util/errors.ts';
import { toServiceError } from '../transport/grpc-errors.ts';

/** What the Invoke service needs from the node. */
export interface InvokeHandler {
  /** Runs a call on a local instance; rejects with CutoverError codes (INSTANCE_NOT_FOUND, UNKNOWN_METHOD, SLICE_ERROR, INVOKE_DEADLINE_EXCEEDED, ...). */
  invokeLocal(request: RemoteCallRequest, timeoutMs: number): Promise<unknown>;
  /** Takes a metrics window pushed by a node; throws NotLeaderError when this node is not the leader. */
  ingestMetrics(window: unknown): void;
}

export interface InvokeServiceOptions {
  /**
   * The longest a call may run: the deadline of a call that carries none, and the cap on one that
   * carries a later one. Default 60 s.
   */
  readonly callTimeoutMsMax?: number;
  /**
   * The largest request or reply payload, in bytes of JSON. Default: grpc-js's default message
   * limit (4 MiB) less `PAYLOAD_OVERHEAD_BYTES_MAX`. Keep it below the server's
   * grpc.max_receive_message_length and grpc.max_send_message_length.
   */
  readonly payloadBytesMax?: number;
}

export const INVOKE_SERVICE_DEFAULTS = {
  callTimeoutMsMax: 60_000,
  payloadBytesMax: 4 * 1024 * 1024 - PAYLOAD_OVERHEAD_BYTES_MAX,
} as const;

/** Longest method name and instance id accepted, in characters. */
export const METHOD_LENGTH_MAX = 128;
export const INSTANCE_ID_LENGTH_MAX = 128;

/**
 * Adds `cutover.peer.v1.Invoke` to `server`, served by `handler`. Returns a function that removes
 * it again. Throws INVALID_ARGUMENT naming a bad option.
 */
export function addInvokeService(server: grpc.Server, handler: InvokeHandler, options: InvokeServiceOptions = {}): () => void {
  const callTimeoutMsMax = options.callTimeoutMsMax ?? INVOKE_SERVICE_DEFAULTS.callTimeoutMsMax;
  const payloadBytesMax = options.payloadBytesMax ?? INVOKE_SERVICE_DEFAULTS.payloadBytesMax;
  positiveInteger('invoke.callTimeoutMsMax', callTimeoutMsMax);
  positiveInteger('invoke.payloadBytesMax', payloadBytesMax);
  const limits = { callTimeoutMsMax, payloadBytesMax };
  server.addService(invokeService, {
    Call: (call: grpc.ServerUnaryCall<WireCallRequest, WireCallReply>, callback: grpc.sendUnaryData<WireCallReply>) => {
      handleCall(handler, limits, call).then(
        (reply) => callback(null, reply),
        (error: unknown) => callback(toServiceError(error)),
      );
    },
    PushMetrics: (call: grpc.ServerUnaryCall<WireMetricsWindow, WirePushMetricsReply>, callback: grpc.sendUnaryData<WirePushMetricsReply>) => {
      try {
        const window = decodeJsonPayload(call.request.window, payloadBytesMax, 'window', 'INVALID_PAYLOAD');
        handler.ingestMetrics(window);
        callback(null, {});
      } catch (error) {
        callback(toServiceError(error));
      }
    },
  });
  return () => server.removeService(invokeService);
}

async function handleCall(handler: InvokeHandler, limits: { callTimeoutMsMax: number; payloadBytesMax: number }, call: grpc.ServerUnaryCall<WireCallRequest, WireCallReply>): Promise<WireCallReply> {
  const request = parseCallRequest(call.request, limits.payloadBytesMax);
  const timeoutMs = remainingMs(call.getDeadline(), limits.callTimeoutMsMax);
  if (timeoutMs <= 0) throw new CutoverError('INVOKE_DEADLINE_EXCEEDED', `the call's deadline had passed when it arrived (${request.base}:${request.version} ${request.method})`);
  let result: unknown;
  try {
    result = await handler.invokeLocal(request, timeoutMs);
  } catch (error) {
    throw asInvokeError(error);
  }
  let payload: Buffer;
  try {
    payload = encodeJsonPayload(result, limits.payloadBytesMax, `the result of ${request.method}`, 'SLICE_ERROR');
  } catch (error) {
    // The slice answered something we cannot carry: its fault, not the caller's.
    throw error instanceof CutoverError && error.code === 'PAYLOAD_TOO_LARGE' ? new CutoverError('SLICE_ERROR', error.message, { cause: error }) : error;
  }
  return { payload };
}

/** Checks a request and turns it into the handler's shape. Throws INVALID_ARGUMENT or INVALID_PAYLOAD. */
function parseCallRequest(wire: WireCallRequest, payloadBytesMax: number): RemoteCallRequest {
  const base = requireArtifactBase(wire.artifact, 'artifact');
  const version = requireSemVer(wire.version, 'version').text;
  requireName(wire.instance_id, 'instance_id', INSTANCE_ID_LENGTH_MAX);
  requireName(wire.method, 'method', METHOD_LENGTH_MAX);
  const payload = decodeJsonPayload(wire.payload, payloadBytesMax, 'payload', 'INVALID_PAYLOAD');
  return { base, version, instanceId: wire.instance_id, method: wire.method, payload };
}

function requireName(value: string, field: string, lengthMax: number): void {
  if (value.length === 0 || value.length > lengthMax) throw new InvalidArgumentError(field, `must be a non-empty string of at most ${lengthMax} characters`);
}

/**
 * Milliseconds left before the gRPC deadline (epoch ms, or Infinity when the caller set none),
 * capped at `capMs`.
 */
function remainingMs(deadline: grpc.Deadline, capMs: number): number {
  const at = deadline instanceof Date ? deadline.getTime() : deadline;
  if (!Number.isFinite(at)) return capMs;
  return Math.min(capMs, at - epochMs());
}

/**
 * A handler's failure as a coded error. Anything that is not a CutoverError escaped from slice
 * code (the handler should have wrapped it): it becomes SLICE_ERROR with the slice's message.
 */
function asInvokeError(error: unknown): CutoverError {
  if (error instanceof CutoverError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new CutoverError('SLICE_ERROR', message, { cause: error });
}

function positiveInteger(field: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 1) throw new InvalidArgumentError(field, `must be an integer >= 1, got ${String(value)}`);
}
