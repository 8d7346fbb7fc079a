/** The bounded POST on its own: outcomes, the timeout on an injected clock, the response bound, names resolved through the lookup gate. */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import test from 'ava';
import { LOOKUPS_IN_FLIGHT_MAX, postJson, retryableStatus } from '../../src/notify/http-post.ts';
import { realClock } from '../../src/platform/scheduler.ts';
import { freePort, waitFor } from '../../src/platform/wait.ts';
import { ManualClock } from '../helpers/manual-clock.ts';
import { Receiver } from './receiver.ts';

const OPTIONS = { clock: realClock, timeoutMs: 10_000, responseBytesMax: 64 };

test('retryable statuses: 5xx, 408 and 429 yes; other 4xx no', (t) => {
  for (const status of [500, 502, 503, 504, 408, 429, 301]) t.true(retryableStatus(status), String(status));
  for (const status of [400, 401, 403, 404, 410, 422]) t.false(retryableStatus(status), String(status));
});

test('a 2xx is delivered; a non-2xx is a status failure with the start of the answer', async (t) => {
  const receiver = await Receiver.start({ status: 201 });
  t.teardown(() => receiver.close());
  t.like(await postJson(receiver.url, '{"a":1}', { 'x-test': 'yes' }, OPTIONS).outcome, { ok: true, status: 201 });
  t.is(receiver.requests[0]!.headers['x-test'], 'yes');
  t.is(receiver.requests[0]!.headers['content-type'], 'application/json');
  t.is(receiver.requests[0]!.body, '{"a":1}');
  receiver.behaviour = { status: 422, body: 'x'.repeat(1000) };
  const refused = await postJson(receiver.url, '{}', {}, OPTIONS).outcome;
  t.like(refused, { ok: false, kind: 'status', status: 422, retryable: false });
  t.true(!refused.ok && refused.message.length <= 'HTTP 422: '.length + 64, 'no more than responseBytesMax of the answer is kept');
});

test('a refused connection is a retryable network failure', async (t) => {
  const outcome = await postJson(`http://127.0.0.1:${await freePort()}/x`, '{}', {}, OPTIONS).outcome;
  t.like(outcome, { ok: false, kind: 'network', status: 0, retryable: true });
});

test('a receiver that never answers is cut at the timeout of the injected clock; abort ends a request at once', async (t) => {
  const receiver = await Receiver.start('hang');
  t.teardown(() => receiver.close());
  const clock = new ManualClock();
  const handle = postJson(receiver.url, '{}', {}, { clock, timeoutMs: 5000, responseBytesMax: 64 });
  await receiver.until(1);
  let settled = false;
  void handle.outcome.then(() => (settled = true));
  await clock.advance(4999);
  t.false(settled);
  await clock.advance(1);
  t.like(await handle.outcome, { ok: false, kind: 'timeout', retryable: true, durationMs: 5000 });
  await waitFor('the connection closed', () => receiver.aborted === 1, { attempts: 3000, intervalMs: 10, timeoutMs: 30_000 });
  const second = postJson(receiver.url, '{}', {}, { clock, timeoutMs: 5000, responseBytesMax: 64 });
  await receiver.until(2);
  second.abort();
  t.like(await second.outcome, { ok: false, kind: 'network', message: 'aborted' });
});

test('a receiver that streams an endless answer is read only up to the bound', async (t) => {
  const server = http.createServer((_request, response) => {
    response.writeHead(500);
    // Endless: refill whenever the socket drains, until the client goes away.
    const pump = (): void => {
      while (!response.destroyed && response.write('y'.repeat(1024)));
    };
    response.on('drain', pump);
    pump();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  const outcome = await postJson(url, '{}', {}, { clock: realClock, timeoutMs: 10_000, responseBytesMax: 100 }).outcome;
  t.like(outcome, { ok: false, kind: 'status', status: 500 });
  t.is(!outcome.ok && outcome.message, `HTTP 500: ${'y'.repeat(100)}`);
});

test('host names resolve through the lookup gate, many requests at once', async (t) => {
  const receiver = await Receiver.start({ status: 200 });
  t.teardown(() => receiver.close());
  const url = receiver.url.replace('127.0.0.1', 'localhost');
  const outcomes = await Promise.all(Array.from({ length: LOOKUPS_IN_FLIGHT_MAX * 4 }, () => postJson(url, '{}', {}, OPTIONS).outcome));
  t.true(outcomes.every((o) => o.ok), JSON.stringify(outcomes.filter((o) => !o.ok)));
});
