import { status, type sendUnaryData, type ServerUnaryCall, type ServerWritableStream, type UntypedServiceImplementation } from '@grpc/grpc-js';
import type { CutoverNode } from '../node/node.ts';
import { InvalidArgumentError } from '../util/errors.ts';
import { expectResult, fromPbCompare, fromPbOperation, toIdentity, toPbEvent, toPbKeyValue, toPbOperationResult, type PbCompare, type PbOperation, type PbRequestId } from './convert.ts';
import { toServiceError } from '../transport/grpc-errors.ts';

/** Wraps an async handler as a grpc-js unary handler with our error mapping. */
export function unary<Req, Res>(handler: (request: Req) => Promise<Res>) {
  return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>): void => {
    handler(call.request).then(
      (response) => callback(null, response),
      (error: unknown) => callback(toServiceError(error)),
    );
  };
}

function requireKey(key: string, field = 'key'): void {
  if (key.length === 0) throw new InvalidArgumentError(field, 'must not be empty');
}

export interface KvServiceOptions {
  /** Bytes buffered for a slow watcher before its stream is ended with RESOURCE_EXHAUSTED. */
  readonly watchBufferBytesMax: number;
}

/** The cutover.v1.KV service over one node. */
export function kvService(node: CutoverNode, options: KvServiceOptions): UntypedServiceImplementation {
  return {
    Put: unary(async (req: { key: string; value: string; id: PbRequestId | null }) => {
      requireKey(req.key);
      const r = expectResult(await node.propose({ type: 'put', key: req.key, value: req.value }, toIdentity(req.id)), 'put');
      return { revision: r.revision, prev_kv: toPbKeyValue(r.prev) };
    }),
    Get: unary(async (req: { key: string; serializable: boolean }) => {
      requireKey(req.key);
      const { kv, revision } = await node.get(req.key, { serializable: req.serializable });
      return { found: kv !== undefined, kv: toPbKeyValue(kv), revision };
    }),
    Range: unary(async (req: { prefix: string; limit: number; serializable: boolean }) => {
      const { kvs, more, revision } = await node.range(req.prefix, req.limit, { serializable: req.serializable });
      return { kvs: kvs.map(toPbKeyValue), more, revision };
    }),
    Delete: unary(async (req: { key: string; prefix: boolean; id: PbRequestId | null }) => {
      requireKey(req.key);
      const command = req.prefix ? ({ type: 'deletePrefix', prefix: req.key } as const) : ({ type: 'delete', key: req.key } as const);
      const r = expectResult(await node.propose(command, toIdentity(req.id)), 'delete');
      return { revision: r.revision, deleted: r.deleted.map(toPbKeyValue) };
    }),
    Txn: unary(async (req: { compare: PbCompare[]; success: PbOperation[]; failure: PbOperation[]; id: PbRequestId | null }) => {
      const command = {
        type: 'txn',
        compare: req.compare.map((c, i) => fromPbCompare(c, `compare[${i}]`)),
        success: req.success.map((o, i) => fromPbOperation(o, `success[${i}]`)),
        failure: req.failure.map((o, i) => fromPbOperation(o, `failure[${i}]`)),
      } as const;
      const r = expectResult(await node.propose(command, toIdentity(req.id)), 'txn');
      return { succeeded: r.succeeded, revision: r.revision, results: r.results.map(toPbOperationResult) };
    }),
    Watch: (call: ServerWritableStream<{ prefix: string; start_revision: number }, unknown>) => watch(node, call, options),
  };
}

function watch(node: CutoverNode, call: ServerWritableStream<{ prefix: string; start_revision: number }, unknown>, options: KvServiceOptions): void {
  let cancel: (() => void) | undefined;
  const end = (): void => {
    cancel?.();
    cancel = undefined;
  };
  call.on('cancelled', end);
  call.on('close', end);
  try {
    cancel = node.watch(call.request.prefix, call.request.start_revision, (events) => {
      if (call.writableLength > options.watchBufferBytesMax) {
        end();
        endWithError(call, Object.assign(new Error(`watcher is more than ${options.watchBufferBytesMax} bytes behind; re-read and watch again`), { code: status.RESOURCE_EXHAUSTED }));
        return;
      }
      call.write({ events: events.map(toPbEvent) });
    });
  } catch (error) {
    endWithError(call, Object.assign(new Error(error instanceof Error ? error.message : String(error)), toServiceError(error)));
  }
}

/**
 * Ends a server stream with an error status (and its trailing metadata). grpc-js sends the status
 * from the stream's 'error' handler; `call.destroy(error)` would never send one, and the client
 * would wait on a dead stream until its deadline.
 */
function endWithError(call: ServerWritableStream<unknown, unknown>, error: Error): void {
  call.emit('error', error);
}
