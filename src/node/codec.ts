import { CutoverError } from '../util/errors.ts';
import type { Request } from '../kv/index.ts';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Encodes a KV request as the data of a normal log entry. */
export function encodeRequest(request: Request): Uint8Array {
  return encoder.encode(JSON.stringify(request));
}

/** Decodes an entry written by `encodeRequest`; throws ENTRY_CORRUPT on anything else. */
export function decodeRequest(data: Uint8Array): Request {
  let parsed: unknown;
  try {
    parsed = JSON.parse(decoder.decode(data));
  } catch (cause) {
    throw new CutoverError('ENTRY_CORRUPT', 'log entry is not valid JSON', { cause });
  }
  const r = parsed as Partial<Request> | null;
  if (r === null || typeof r !== 'object' || typeof r.clientId !== 'number' || typeof r.sequence !== 'number' || typeof r.command !== 'object' || r.command === null) {
    throw new CutoverError('ENTRY_CORRUPT', 'log entry is not a KV request');
  }
  return r as Request;
}
