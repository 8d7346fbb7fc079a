/**
 * Who is calling, for the audit trail: a management call's operator is taken from a request field
 * when the proto has one, else from the gRPC metadata `x-cutover-actor` (the CLI sends the OS
 * user), else `anonymous`. Names are 1-128 characters without control characters; a malformed one
 * is INVALID_ARGUMENT naming where it came from.
 */
import type { Metadata, ServerUnaryCall, sendUnaryData } from '@grpc/grpc-js';
import type { EventActor } from '../events/event.ts';
import { toServiceError } from '../transport/grpc-errors.ts';
import { InvalidArgumentError } from '../util/errors.ts';

export const ACTOR_METADATA_KEY = 'x-cutover-actor';
export const ANONYMOUS = 'anonymous';
const NAME_LENGTH_MAX = 128;

function checkedName(name: string, field: string): string {
  // eslint-disable-next-line no-control-regex
  if (name.length > NAME_LENGTH_MAX || /[\u0000-\u001f\u007f]/.test(name)) throw new InvalidArgumentError(field, `must be 1-${NAME_LENGTH_MAX} characters without control characters`);
  return name;
}

/** The operator of a call: `field` (a request field's value) when non-empty, else the metadata, else anonymous. */
export function requestActor(metadata: Metadata | undefined, field?: { readonly name: string; readonly value: string }): EventActor {
  if (field !== undefined && field.value !== '') return { kind: 'user', name: checkedName(field.value, field.name) };
  const value = metadata?.get(ACTOR_METADATA_KEY)[0];
  const text = typeof value === 'string' ? value : value === undefined ? '' : value.toString('utf8');
  return { kind: 'user', name: text === '' ? ANONYMOUS : checkedName(text, ACTOR_METADATA_KEY) };
}

/** `unary` (kv-service.ts) with the call's metadata handed to the handler. */
export function unaryWithMetadata<Req, Res>(handler: (request: Req, metadata: Metadata) => Promise<Res>) {
  return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>): void => {
    let pending: Promise<Res>;
    try {
      pending = handler(call.request, call.metadata);
    } catch (error) {
      callback(toServiceError(error));
      return;
    }
    pending.then(
      (response) => callback(null, response),
      (error: unknown) => callback(toServiceError(error)),
    );
  };
}
