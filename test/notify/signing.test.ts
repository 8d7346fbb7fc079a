/** HMAC-SHA256 webhook signatures: what `verifySignature` accepts and refuses. */
import { createHmac } from 'node:crypto';
import test from 'ava';
import { signatureHeader, verifySignature } from '../../src/notify/signing.ts';

const SECRET = 'a-webhook-secret-of-32-characters';
const BODY = '{"id":"1","action":"update.failed"}';

test('the signature is HMAC-SHA256 over "{timestamp}.{body}", hex, prefixed sha256=', (t) => {
  const expected = createHmac('sha256', SECRET).update(`1700000000.${BODY}`).digest('hex');
  t.is(signatureHeader(SECRET, '1700000000', BODY), `sha256=${expected}`);
  t.is(signatureHeader(SECRET, '1700000000', Buffer.from(BODY)), `sha256=${expected}`, 'bytes or text alike');
});

test('verifySignature accepts the signed body and refuses any change', (t) => {
  const header = signatureHeader(SECRET, '1700000000', BODY);
  t.true(verifySignature(SECRET, '1700000000', BODY, header));
  t.true(verifySignature(SECRET, '1700000000', BODY, header.toUpperCase().replace('SHA256=', 'sha256=')), 'hex case does not matter');
  t.false(verifySignature(SECRET, '1700000000', `${BODY} `, header), 'body');
  t.false(verifySignature(SECRET, '1700000001', BODY, header), 'timestamp');
  t.false(verifySignature(`${SECRET}x`, '1700000000', BODY, header), 'secret');
  t.false(verifySignature(SECRET, '1700000000', BODY, undefined), 'missing');
  t.false(verifySignature(SECRET, '1700000000', BODY, header.slice(7)), 'no prefix');
  t.false(verifySignature(SECRET, '1700000000', BODY, 'sha256=abc'), 'short');
  t.false(verifySignature(SECRET, '1700000000', BODY, `sha256=${'z'.repeat(64)}`), 'not hex');
});
