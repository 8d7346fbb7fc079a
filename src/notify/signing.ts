/**
 * Webhook signatures: HMAC-SHA256 with the channel's secret over `{timestamp}.{body}`, sent as
 * `X-Cutover-Signature: sha256=<hex>` beside `X-Cutover-Timestamp` (epoch seconds). Signing the
 * timestamp with the body lets a receiver refuse replays older than it tolerates.
 *
 * A receiver checks a request with `verifySignature(secret, timestamp, rawBody, signatureHeader)`
 * over the raw body bytes as received (not a re-serialised parse), then de-duplicates by
 * `X-Cutover-Event-Id` (delivery is at least once).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_HEADER = 'x-cutover-signature';
export const TIMESTAMP_HEADER = 'x-cutover-timestamp';
export const EVENT_ID_HEADER = 'x-cutover-event-id';
export const DELIVERY_HEADER = 'x-cutover-delivery';

const SIGNATURE_PREFIX = 'sha256=';

function mac(secret: string, timestamp: string, body: string | Uint8Array): Buffer {
  const hmac = createHmac('sha256', secret);
  hmac.update(`${timestamp}.`);
  hmac.update(body);
  return hmac.digest();
}

/** The `X-Cutover-Signature` value for a body sent at `timestamp` (epoch seconds, as sent). */
export function signatureHeader(secret: string, timestamp: string, body: string | Uint8Array): string {
  return `${SIGNATURE_PREFIX}${mac(secret, timestamp, body).toString('hex')}`;
}

/**
 * Whether `header` is the signature of `body` sent at `timestamp` with `secret`. Compares in
 * constant time; a malformed or missing header is simply false.
 */
export function verifySignature(secret: string, timestamp: string, body: string | Uint8Array, header: string | undefined): boolean {
  if (header === undefined || !header.startsWith(SIGNATURE_PREFIX)) return false;
  const hex = header.slice(SIGNATURE_PREFIX.length);
  if (!/^[0-9a-f]{64}$/i.test(hex)) return false;
  const given = Buffer.from(hex, 'hex');
  const expected = mac(secret, timestamp, body);
  return given.length === expected.length && timingSafeEqual(given, expected);
}
