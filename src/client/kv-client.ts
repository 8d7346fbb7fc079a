/**
 * The two calls of the management KV API (`cutover.v1.KV`) that an embedded client needs to follow
 * the cluster's routing state without being a member: `Range` (a linearizable read of a prefix)
 * and `Watch` (a stream of changes under a prefix from a revision). One instance talks to one
 * endpoint; `close()` drops its channel.
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { fromServiceError } from '../transport/grpc-errors.ts';
import type { KeyValue, WatchEvent } from '../kv/types.ts';
import { deadlineIn } from '../platform/wall-clock.ts';
import { RAFT_LOADER_OPTIONS } from '../transport/proto.ts';
import { assert } from '../util/assert.ts';
import { CutoverError } from '../util/errors.ts';

/** `cutover.v1.KeyValue` as proto-loader hands it over (int64 as number). */
interface WireKeyValue {
  key: string;
  value: string;
  create_revision: number;
  mod_revision: number;
  version: number;
}
interface WireRangeRequest {
  prefix: string;
  limit: number;
  serializable: boolean;
}
interface WireRangeResponse {
  kvs: WireKeyValue[];
  more: boolean;
  revision: number;
}
interface WireWatchRequest {
  prefix: string;
  start_revision: number;
}
interface WireEvent {
  type: 'PUT' | 'DELETE' | number;
  revision: number;
  kv: WireKeyValue | null;
  prev_kv: WireKeyValue | null;
}
interface WireWatchResponse {
  events: WireEvent[];
}

interface KvMethods {
  Range: grpc.MethodDefinition<WireRangeRequest, WireRangeResponse>;
  Watch: grpc.MethodDefinition<WireWatchRequest, WireWatchResponse>;
}

function loadKvMethods(): KvMethods {
  const definition = protoLoader.loadSync('cutover/v1/kv.proto', RAFT_LOADER_OPTIONS);
  const service = definition['cutover.v1.KV'] as protoLoader.ServiceDefinition | undefined;
  const range = service?.['Range'];
  const watch = service?.['Watch'];
  assert(range !== undefined && !range.requestStream && !range.responseStream, 'cutover.v1.KV.Range must be unary');
  assert(watch !== undefined && !watch.requestStream && watch.responseStream, 'cutover.v1.KV.Watch must be server-streaming');
  // proto-loader types messages as `object`; the interfaces above describe what the loader
  // options produce for kv.proto.
  return { Range: range, Watch: watch } as unknown as KvMethods;
}

const methods = loadKvMethods();

/** The contents of a prefix at one revision. */
export interface RangeResult {
  readonly kvs: readonly KeyValue[];
  readonly revision: number;
}

/** What a watch reports. `onEnd` is called once, with the reason the stream ended. */
export interface WatchHandlers {
  onEvents(events: readonly WatchEvent[]): void;
  onEnd(error: CutoverError): void;
}

/** Settings of the channel to one endpoint. */
export interface KvClientOptions {
  readonly messageBytesMax: number;
  readonly keepaliveIntervalMs: number;
  readonly keepaliveTimeoutMs: number;
}

/** See the module comment. */
export class KvClient {
  private readonly client: grpc.Client;
  private readonly calls = new Set<grpc.ClientReadableStream<WireWatchResponse>>();

  constructor(
    readonly endpoint: string,
    options: KvClientOptions,
  ) {
    // Insecure credentials, like the rest of the cluster for now.
    this.client = new grpc.Client(endpoint, grpc.credentials.createInsecure(), {
      'grpc.max_send_message_length': options.messageBytesMax,
      'grpc.max_receive_message_length': options.messageBytesMax,
      // A watch is long-lived and may be silent for hours: pings find a node that vanished.
      'grpc.keepalive_time_ms': options.keepaliveIntervalMs,
      'grpc.keepalive_timeout_ms': options.keepaliveTimeoutMs,
      'grpc.keepalive_permit_without_calls': 1,
      'grpc.enable_retries': 0,
      'grpc.service_config_disable_resolution': 1,
      // Closing this client drops its connection; the next client to the endpoint dials afresh.
      'grpc.use_local_subchannel_pool': 1,
    });
  }

  /**
   * Every key under `prefix` (linearizable: the endpoint confirms with the leader first) and the
   * revision they are current at. Rejects with the server's code, or UNAVAILABLE / TIMEOUT.
   */
  range(prefix: string, timeoutMs: number): Promise<RangeResult> {
    return new Promise((resolve, reject) => {
      const request: WireRangeRequest = { prefix, limit: 0, serializable: false };
      this.client.makeUnaryRequest(methods.Range.path, methods.Range.requestSerialize, methods.Range.responseDeserialize, request, new grpc.Metadata(), { deadline: deadlineIn(timeoutMs) }, (error, response) => {
        if (error !== null) return reject(fromServiceError(error));
        if (response === undefined) return reject(new CutoverError('RPC_FAILED', `empty Range reply from ${this.endpoint}`));
        // limit 0 asks for every key; a server that cut the list short would leave keys out.
        if (response.more) return reject(new CutoverError('RANGE_TRUNCATED', `${this.endpoint} returned part of ${prefix}`));
        resolve({ kvs: response.kvs.map(fromWireKeyValue), revision: response.revision });
      });
    });
  }

  /**
   * Streams the changes under `prefix` from `fromRevision` (> 0), in revision order, until the
   * stream fails or is cancelled. Returns a function that cancels it (no `onEnd` after that).
   * A compacted `fromRevision` ends the stream with WATCH_COMPACTED (status OUT_OF_RANGE).
   */
  watch(prefix: string, fromRevision: number, handlers: WatchHandlers): () => void {
    const call = this.client.makeServerStreamRequest(methods.Watch.path, methods.Watch.requestSerialize, methods.Watch.responseDeserialize, { prefix, start_revision: fromRevision }, new grpc.Metadata(), {});
    this.calls.add(call);
    let ended = false;
    const end = (error: CutoverError): void => {
      if (ended) return;
      ended = true;
      this.calls.delete(call);
      handlers.onEnd(error);
    };
    call.on('data', (response: WireWatchResponse) => {
      if (!ended) handlers.onEvents(response.events.map(fromWireEvent));
    });
    call.on('error', (error: grpc.ServiceError) => end(asWatchError(error)));
    // A stream the server ends without a status error is still a lost watch.
    call.on('end', () => end(new CutoverError('UNAVAILABLE', `${this.endpoint} ended the watch on ${prefix}`)));
    return () => {
      if (ended) return;
      ended = true;
      this.calls.delete(call);
      call.cancel();
    };
  }

  /** Cancels every watch (without `onEnd`) and closes the channel. */
  close(): void {
    for (const call of this.calls) call.cancel();
    this.calls.clear();
    this.client.close();
  }
}

/** OUT_OF_RANGE without our trailer is still a compacted watch (an older server). */
function asWatchError(error: grpc.ServiceError): CutoverError {
  const converted = fromServiceError(error);
  if (converted.code === 'RPC_FAILED' && error.code === grpc.status.OUT_OF_RANGE) return new CutoverError('WATCH_COMPACTED', converted.message, { cause: error });
  return converted;
}

function fromWireKeyValue(kv: WireKeyValue): KeyValue {
  return { key: kv.key, value: kv.value, createRevision: kv.create_revision, modRevision: kv.mod_revision, version: kv.version };
}

const EMPTY_KEY_VALUE: WireKeyValue = { key: '', value: '', create_revision: 0, mod_revision: 0, version: 0 };

function fromWireEvent(event: WireEvent): WatchEvent {
  const kv = fromWireKeyValue(event.kv ?? EMPTY_KEY_VALUE);
  return { type: event.type === 'DELETE' ? 'delete' : 'put', revision: event.revision, kv, prev: event.prev_kv === null ? undefined : fromWireKeyValue(event.prev_kv) };
}
