/**
 * Payloads of remote invocations: JSON text in UTF-8 bytes, both ways. Shared by the client
 * (`remote.ts`) and the server (`src/api/invoke-service.ts`) so that both read and write the same
 * thing and refuse the same things.
 *
 * JSON has no `undefined`: a call without an argument and a method that returns nothing both travel
 * as `null`, so the other side sees `null`, never `undefined`.
 */
import { Buffer } from 'node:buffer';
import { CutoverError } from '../util/errors.ts';

/**
 * Room left in a gRPC message for everything but the payload (artifact, version, instance id,
 * method, protobuf framing): each of those is at most 128 characters, 512 bytes in UTF-8.
 */
export const PAYLOAD_OVERHEAD_BYTES_MAX = 4096;

// fatal: invalid UTF-8 is refused rather than replaced with U+FFFD.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

/**
 * `value` as JSON bytes. Throws `code` (INVALID_PAYLOAD for a caller's argument, SLICE_ERROR for a
 * slice's result) when it cannot be written as JSON (a BigInt, a cycle, a function), and
 * PAYLOAD_TOO_LARGE when the bytes exceed `bytesMax`. `what` names the value in the message.
 */
export function encodeJsonPayload(value: unknown, bytesMax: number, what: string, code: string): Buffer {
  let text: string | undefined;
  try {
    text = JSON.stringify(value === undefined ? null : value);
  } catch (error) {
    throw new CutoverError(code, `${what} cannot be written as JSON: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  // JSON.stringify answers undefined, without throwing, for a function or a symbol.
  if (text === undefined) throw new CutoverError(code, `${what} cannot be written as JSON (${typeof value})`);
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length > bytesMax) throw new CutoverError('PAYLOAD_TOO_LARGE', `${what} is ${bytes.length} bytes of JSON, more than the ${bytesMax} allowed`);
  return bytes;
}

/**
 * The value in JSON bytes. Throws `code` when they are not UTF-8 or not JSON (an empty payload is
 * not JSON either), PAYLOAD_TOO_LARGE when longer than `bytesMax`.
 */
export function decodeJsonPayload(bytes: Uint8Array, bytesMax: number, what: string, code: string): unknown {
  if (bytes.length > bytesMax) throw new CutoverError('PAYLOAD_TOO_LARGE', `${what} is ${bytes.length} bytes, more than the ${bytesMax} allowed`);
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch (error) {
    throw new CutoverError(code, `${what} is not UTF-8`, { cause: error });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new CutoverError(code, `${what} is not JSON: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
}
