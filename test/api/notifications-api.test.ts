/**
 * The cutover.v1.Notifications API in process: the service over a MemoryClusterPort on a real gRPC
 * server on 127.0.0.1, called by a client loaded from the .proto, as a client sees it (gRPC status,
 * our code in the cutover-error-code trailer). TestChannel posts to a real local receiver.
 */
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { notificationsService } from '../../src/api/notifications-service.ts';
import { LOADER_OPTIONS, PROTO_ROOT } from '../../src/api/protos.ts';
import { MemoryClusterPort } from '../../src/node/cluster-port.ts';
import { channelKey } from '../../src/notify/channel.ts';
import { SIGNATURE_HEADER, TIMESTAMP_HEADER, verifySignature } from '../../src/notify/signing.ts';
import { realClock } from '../../src/platform/scheduler.ts';
import { freePort } from '../../src/platform/wait.ts';
import { Receiver } from '../notify/receiver.ts';

type Callback = (error: grpc.ServiceError | null, response: Record<string, unknown>) => void;
type Client = grpc.Client & Record<string, (request: object, callback: Callback) => void>;

const SECRET = 'never-to-be-returned-0123456789';
const definition = grpc.loadPackageDefinition(protoLoader.loadSync(path.join(PROTO_ROOT, 'cutover/v1/notifications.proto'), LOADER_OPTIONS)) as unknown as { cutover: { v1: { Notifications: typeof grpc.Client & { service: grpc.ServiceDefinition } } } };

async function serve(t: ExecutionContext, channelsMax = 8): Promise<{ client: Client; port: MemoryClusterPort; responses: unknown[] }> {
  const port = new MemoryClusterPort();
  const server = new grpc.Server();
  server.addService(definition.cutover.v1.Notifications.service, notificationsService({ port, clock: realClock, wallClockMs: () => 1_700_000_000_000, channelsMax, requestTimeoutMs: 5000 }));
  const bound = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  const client = new definition.cutover.v1.Notifications(`127.0.0.1:${bound}`, grpc.credentials.createInsecure()) as unknown as Client;
  t.teardown(() => {
    client.close();
    server.forceShutdown();
  });
  return { client, port, responses: [] };
}

function call(client: Client, method: string, request: object, responses?: unknown[]): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) =>
    client[method]!(request, (error, response) => {
      if (error) reject(error);
      else {
        responses?.push(response);
        resolve(response);
      }
    }),
  );
}

async function refused(t: ExecutionContext, promise: Promise<unknown>, status: grpc.status, code: string, field?: string): Promise<void> {
  const error = await t.throwsAsync<grpc.ServiceError>(promise);
  t.is(error?.code, status, error?.details);
  t.is(error?.metadata?.get('cutover-error-code')[0], code, error?.details);
  if (field !== undefined) t.true(error?.details.startsWith(`${field}: `), `${error?.details} names ${field}`);
}

interface PbChannel {
  name: string;
  type: string;
  url: string;
  secret_set: boolean;
  artifact: string;
  events: string[];
  updated_by: string;
}

test('set, get, list and delete a channel; the secret goes in and never comes out', async (t) => {
  const { client, port, responses } = await serve(t);
  const created = await call(client, 'SetChannel', { name: 'ops', type: 'webhook', url: 'https://hooks.example.com/x', secret: SECRET, actor: 'ada', events: ['update.failed', 'update.started'] }, responses);
  t.true(created.created);
  t.like(created.channel as PbChannel, { name: 'ops', type: 'webhook', url: 'https://hooks.example.com/x', secret_set: true, artifact: '', events: ['update.started', 'update.failed'], updated_by: 'ada' });
  t.like((await call(client, 'GetChannel', { name: 'ops' }, responses)).channel as PbChannel, { secret_set: true });
  // Changing the filter without the secret keeps it; clearing removes it.
  const changed = await call(client, 'SetChannel', { name: 'ops', type: 'webhook', url: 'https://hooks.example.com/x', artifact: 'org.example:greeter', actor: 'bob' }, responses);
  t.false(changed.created);
  t.like(changed.channel as PbChannel, { secret_set: true, artifact: 'org.example:greeter', updated_by: 'bob' });
  t.true((await port.get(channelKey('ops')))!.value.includes(SECRET), 'kept in the store');
  await call(client, 'SetChannel', { name: 'slack', type: 'slack', url: 'https://hooks.slack.com/services/T0/B0/tokentoken' }, responses);
  await call(client, 'SetChannel', { name: 'other', type: 'discord', url: 'https://discord.com/api/webhooks/1/tok', artifact: 'org.example:other' }, responses);
  const listed = await call(client, 'ListChannels', {}, responses);
  t.deepEqual((listed.channels as PbChannel[]).map((c) => [c.name, c.url, c.secret_set]), [
    ['ops', 'https://hooks.example.com/x', true],
    ['other', 'https://discord.com/api/webhooks/1/****', false],
    ['slack', 'https://hooks.slack.com/services/T0/B0/****', false],
  ]);
  t.deepEqual(((await call(client, 'ListChannels', { artifact: 'org.example:greeter' }, responses)).channels as PbChannel[]).map((c) => c.name), ['ops', 'slack'], 'its own and the cluster-wide ones');
  for (const response of responses) {
    const text = JSON.stringify(response);
    t.false(text.includes(SECRET), 'no response carries the secret');
    t.false(text.includes('tokentoken'), 'nor a Slack token');
  }
  const cleared = await call(client, 'SetChannel', { name: 'ops', type: 'webhook', url: 'https://hooks.example.com/x', clear_secret: true });
  t.false((cleared.channel as PbChannel).secret_set);
  await call(client, 'DeleteChannel', { name: 'ops' });
  await refused(t, call(client, 'GetChannel', { name: 'ops' }), grpc.status.NOT_FOUND, 'CHANNEL_NOT_FOUND');
  await refused(t, call(client, 'DeleteChannel', { name: 'ops' }), grpc.status.NOT_FOUND, 'CHANNEL_NOT_FOUND');
});

test('validation errors are INVALID_ARGUMENT naming the field', async (t) => {
  const { client } = await serve(t);
  const good = { name: 'ops', type: 'webhook', url: 'https://hooks.example.com/x' };
  const cases: [object, string][] = [
    [{ name: 'Bad Name' }, 'name'],
    [{ type: 'pager' }, 'type'],
    [{ url: 'not a url' }, 'url'],
    [{ url: 'file:///etc/passwd' }, 'url'],
    [{ secret: 'short' }, 'secret'],
    [{ secret: '' }, 'secret'],
    [{ type: 'slack', secret: SECRET }, 'secret'],
    [{ secret: SECRET, clear_secret: true }, 'clear_secret'],
    [{ artifact: 'no-colon' }, 'artifact'],
    [{ events: ['update.routing'] }, 'events'],
  ];
  for (const [change, field] of cases) await refused(t, call(client, 'SetChannel', { ...good, ...change }), grpc.status.INVALID_ARGUMENT, 'INVALID_ARGUMENT', field);
  await refused(t, call(client, 'GetChannel', { name: '' }), grpc.status.INVALID_ARGUMENT, 'INVALID_ARGUMENT', 'name');
  await refused(t, call(client, 'ListChannels', { artifact: 'x' }), grpc.status.INVALID_ARGUMENT, 'INVALID_ARGUMENT', 'artifact');
});

test('the cluster keeps at most channelsMax channels', async (t) => {
  const { client } = await serve(t, 2);
  for (const name of ['a', 'b']) await call(client, 'SetChannel', { name, type: 'webhook', url: 'https://hooks.example.com/x' });
  await refused(t, call(client, 'SetChannel', { name: 'c', type: 'webhook', url: 'https://hooks.example.com/x' }), grpc.status.RESOURCE_EXHAUSTED, 'CHANNEL_LIMIT');
  await call(client, 'SetChannel', { name: 'a', type: 'slack', url: 'https://hooks.example.com/y' });
  t.pass('replacing an existing channel is not refused');
});

test('TestChannel sends a signed test notification and answers the outcome', async (t) => {
  const receiver = await Receiver.start({ status: 200 });
  t.teardown(() => receiver.close());
  const { client } = await serve(t);
  await call(client, 'SetChannel', { name: 'ops', type: 'webhook', url: receiver.url, secret: SECRET });
  const answer = await call(client, 'TestChannel', { name: 'ops', actor: 'ada' });
  t.like(answer, { delivered: true, status_code: 200, error: '' });
  t.is(receiver.requests.length, 1);
  const request = receiver.requests[0]!;
  t.true(verifySignature(SECRET, String(request.headers[TIMESTAMP_HEADER]), request.body, String(request.headers[SIGNATURE_HEADER])));
  t.like(JSON.parse(request.body), { action: 'notify.test', id: answer.event_id, actor: { kind: 'user', name: 'ada' } });

  receiver.behaviour = { status: 500, body: 'boom' };
  t.like(await call(client, 'TestChannel', { name: 'ops' }), { delivered: false, status_code: 500, error: 'status: HTTP 500: boom' });
  await call(client, 'SetChannel', { name: 'down', type: 'webhook', url: `http://127.0.0.1:${await freePort()}/x` });
  const down = await call(client, 'TestChannel', { name: 'down' });
  t.like(down, { delivered: false, status_code: 0 });
  t.regex(String(down.error), /^network: /);
  await refused(t, call(client, 'TestChannel', { name: 'nope' }), grpc.status.NOT_FOUND, 'CHANNEL_NOT_FOUND');
});

test('the operator comes from the request, else the x-cutover-actor metadata, else anonymous', async (t) => {
  const { client } = await serve(t);
  const withMetadata = (request: object, metadata: grpc.Metadata): Promise<Record<string, unknown>> =>
    new Promise((resolve, reject) =>
      (client.SetChannel as unknown as (r: object, m: grpc.Metadata, cb: Callback) => void)(request, metadata, (error, response) => (error ? reject(error) : resolve(response))),
    );
  const metadata = new grpc.Metadata();
  metadata.set('x-cutover-actor', 'carol');
  const base = { name: 'ops', type: 'webhook', url: 'https://hooks.example.com/x' };
  t.is(((await withMetadata(base, metadata)).channel as PbChannel).updated_by, 'carol');
  t.is(((await withMetadata({ ...base, actor: 'dave' }, metadata)).channel as PbChannel).updated_by, 'dave');
  t.is(((await call(client, 'SetChannel', base)).channel as PbChannel).updated_by, 'anonymous');
  await refused(t, call(client, 'SetChannel', { ...base, actor: 'bad\nname' }), grpc.status.INVALID_ARGUMENT, 'INVALID_ARGUMENT', 'actor');
});
