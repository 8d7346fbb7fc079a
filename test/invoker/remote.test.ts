/**
 * RemoteInvoker against a real gRPC server on 127.0.0.1 serving `cutover.peer.v1.Invoke` through
 * `addInvokeService` with a fake handler: payloads both ways, every error code and its status, the
 * deadline, and the line between CONNECT_FAILED (certainly not sent) and everything else.
 */
import { Buffer } from 'node:buffer';
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import { addInvokeService, type InvokeHandler } from '../../src/api/invoke-service.ts';
import { loadManagementDefinition } from '../../src/api/protos.ts';
import { invokeService, type WireCallReply, type WireCallRequest } from '../../src/invoker/invoke-proto.ts';
import { RemoteInvoker, type RemoteCallRequest } from '../../src/invoker/remote.ts';
import { realClock } from '../../src/platform/scheduler.ts';
import { freePort, waitFor } from '../../src/platform/wait.ts';
import { deadlineIn } from '../../src/platform/wall-clock.ts';
import { CutoverError, NotLeaderError } from '../../src/util/errors.ts';
import { GrpcStatus, STATUS_BY_CODE } from '../../src/util/status-table.ts';

type Teardown = { teardown: (fn: () => void | Promise<void>) => void };

/** A handler whose behaviour each test sets; records what reached it. */
class FakeHandler implements InvokeHandler {
  calls: { request: RemoteCallRequest; timeoutMs: number }[] = [];
  windows: unknown[] = [];
  answer: (request: RemoteCallRequest, timeoutMs: number) => Promise<unknown> = async (request) => ({ echo: request.payload });
  ingest: (window: unknown) => void = (window) => void this.windows.push(window);

  invokeLocal(request: RemoteCallRequest, timeoutMs: number): Promise<unknown> {
    this.calls.push({ request, timeoutMs });
    return this.answer(request, timeoutMs);
  }

  ingestMetrics(window: unknown): void {
    this.ingest(window);
  }
}

async function startServer(t: Teardown, handler: InvokeHandler, port = 0): Promise<{ server: grpc.Server; address: string }> {
  const server = new grpc.Server();
  addInvokeService(server, handler);
  const bound = await new Promise<number>((resolve, reject) => server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  t.teardown(() => server.forceShutdown());
  return { server, address: `127.0.0.1:${bound}` };
}

function startInvoker(t: Teardown, options: Partial<ConstructorParameters<typeof RemoteInvoker>[0]> = {}): RemoteInvoker {
  const invoker = new RemoteInvoker({ clock: realClock, connectTimeoutMs: 2000, ...options });
  t.teardown(() => invoker.close());
  return invoker;
}

const REQUEST: RemoteCallRequest = { base: 'org.example:greeter', version: '1.2.0', instanceId: 'i-1', method: 'greet', payload: { name: 'Ada', tags: ['x', 1, null] } };

/** A raw call without RemoteInvoker, to see the status and trailers the server sends. */
function rawCall(t: Teardown, address: string, request: WireCallRequest): Promise<grpc.ServiceError> {
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  t.teardown(() => client.close());
  const method = invokeService.Call;
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest<WireCallRequest, WireCallReply>(method.path, method.requestSerialize, method.responseDeserialize, request, new grpc.Metadata(), { deadline: deadlineIn(5000) }, (error) =>
      error ? resolve(error) : reject(new Error('expected the call to fail')),
    );
  });
}

function wire(overrides: Partial<WireCallRequest> = {}): WireCallRequest {
  return { artifact: 'org.example:greeter', version: '1.2.0', instance_id: 'i-1', method: 'greet', payload: Buffer.from('{"a":1}'), ...overrides };
}

test('a call carries artifact, version, instance, method and JSON payload, and the reply comes back parsed', async (t) => {
  const handler = new FakeHandler();
  const { address } = await startServer(t, handler);
  const invoker = startInvoker(t);
  t.deepEqual(await invoker.call(address, REQUEST, 5000), { echo: REQUEST.payload });
  t.is(handler.calls.length, 1);
  const seen = handler.calls[0]!;
  t.deepEqual(seen.request, REQUEST);
  t.true(seen.timeoutMs > 0 && seen.timeoutMs <= 5000, `timeoutMs ${seen.timeoutMs}`);
  // The channel is reused.
  await invoker.call(address, REQUEST, 5000);
  t.like(invoker.stats(), { channels: 1, channelsOpened: 1, connectFailures: 0 });
});

test('undefined travels as null both ways; strings, numbers and arrays as themselves', async (t) => {
  const handler = new FakeHandler();
  const { address } = await startServer(t, handler);
  const invoker = startInvoker(t);
  handler.answer = async () => undefined;
  t.is(await invoker.call(address, { ...REQUEST, payload: undefined }, 5000), null);
  t.is(handler.calls[0]!.request.payload, null);
  handler.answer = async (request) => request.payload;
  for (const value of ['text ✓', 42, [1, 'two', { three: 3 }], false]) t.deepEqual(await invoker.call(address, { ...REQUEST, payload: value }, 5000), value);
});

const HANDLER_CODES = ['INSTANCE_NOT_FOUND', 'INSTANCE_NOT_ACTIVE', 'UNKNOWN_METHOD', 'SLICE_ERROR', 'INVOKE_DEADLINE_EXCEEDED'] as const;
const EXPECTED_STATUS = { INSTANCE_NOT_FOUND: GrpcStatus.NOT_FOUND, INSTANCE_NOT_ACTIVE: GrpcStatus.UNAVAILABLE, UNKNOWN_METHOD: GrpcStatus.UNIMPLEMENTED, SLICE_ERROR: GrpcStatus.UNKNOWN, INVOKE_DEADLINE_EXCEEDED: GrpcStatus.DEADLINE_EXCEEDED };

for (const code of HANDLER_CODES) {
  test(`handler error ${code}: status ${EXPECTED_STATUS[code]} with the code in the trailer; the caller gets ${code} back`, async (t) => {
    const handler = new FakeHandler();
    handler.answer = async () => {
      throw new CutoverError(code, `failed with ${code}`);
    };
    const { address } = await startServer(t, handler);
    const raw = await rawCall(t, address, wire());
    t.is(raw.code, EXPECTED_STATUS[code]);
    t.is(STATUS_BY_CODE[code], EXPECTED_STATUS[code]);
    t.is(raw.metadata.get('cutover-error-code')[0], code);
    const error = await t.throwsAsync(startInvoker(t).call(address, REQUEST, 5000), { instanceOf: CutoverError });
    t.is(error?.code, code);
    t.is(error?.message, `failed with ${code}`);
  });
}

test('an error thrown by slice code that the handler did not wrap becomes SLICE_ERROR with its message', async (t) => {
  const handler = new FakeHandler();
  handler.answer = () => {
    throw new TypeError('name.toUpperCase is not a function');
  };
  const { address } = await startServer(t, handler);
  const raw = await rawCall(t, address, wire());
  t.is(raw.code, GrpcStatus.UNKNOWN);
  const error = await t.throwsAsync(startInvoker(t).call(address, REQUEST, 5000), { instanceOf: CutoverError });
  t.is(error?.code, 'SLICE_ERROR');
  t.is(error?.message, 'name.toUpperCase is not a function');
});

test('a result that is not JSON-serialisable is SLICE_ERROR', async (t) => {
  const handler = new FakeHandler();
  handler.answer = async () => ({ big: 10n });
  const { address } = await startServer(t, handler);
  const error = await t.throwsAsync(startInvoker(t).call(address, REQUEST, 5000), { instanceOf: CutoverError });
  t.is(error?.code, 'SLICE_ERROR');
});

test('the server refuses a payload that is not JSON (INVALID_PAYLOAD), and bad artifact, version or method (INVALID_ARGUMENT)', async (t) => {
  const handler = new FakeHandler();
  const { address } = await startServer(t, handler);
  const cases: [Partial<WireCallRequest>, string, string][] = [
    [{ payload: Buffer.from('{"a":') }, 'INVALID_PAYLOAD', 'payload'],
    [{ payload: Buffer.alloc(0) }, 'INVALID_PAYLOAD', 'payload'],
    [{ payload: Buffer.from([0x22, 0xff, 0x22]) }, 'INVALID_PAYLOAD', 'payload'],
    [{ artifact: 'greeter' }, 'INVALID_ARGUMENT', 'artifact'],
    [{ version: 'v1.2' }, 'INVALID_ARGUMENT', 'version'],
    [{ method: '' }, 'INVALID_ARGUMENT', 'method'],
    [{ instance_id: '' }, 'INVALID_ARGUMENT', 'instance_id'],
  ];
  for (const [overrides, code, field] of cases) {
    const raw = await rawCall(t, address, wire(overrides));
    t.is(raw.code, GrpcStatus.INVALID_ARGUMENT, field);
    t.is(raw.metadata.get('cutover-error-code')[0], code, field);
    t.true(raw.details.includes(field), raw.details);
  }
  t.is(handler.calls.length, 0);
  const error = await t.throwsAsync(startInvoker(t).call(address, { ...REQUEST, version: 'latest' }, 5000), { instanceOf: CutoverError });
  t.is(error?.code, 'INVALID_ARGUMENT');
});

test('the client refuses a payload it cannot write as JSON, or one too large, without sending it', async (t) => {
  const handler = new FakeHandler();
  const { address } = await startServer(t, handler);
  const invoker = startInvoker(t, { messageBytesMax: 8192 });
  const cyclic: Record<string, unknown> = {};
  cyclic['self'] = cyclic;
  for (const payload of [10n, cyclic, () => 1]) {
    const error = await t.throwsAsync(invoker.call(address, { ...REQUEST, payload }, 5000), { instanceOf: CutoverError });
    t.is(error?.code, 'INVALID_PAYLOAD');
  }
  const large = await t.throwsAsync(invoker.call(address, { ...REQUEST, payload: 'x'.repeat(8192) }, 5000), { instanceOf: CutoverError });
  t.is(large?.code, 'PAYLOAD_TOO_LARGE');
  t.is(handler.calls.length, 0);
  t.is(invoker.stats().channelsOpened, 0);
});

test('a reply larger than the client accepts fails after sending, never as CONNECT_FAILED', async (t) => {
  const handler = new FakeHandler();
  handler.answer = async () => 'y'.repeat(20_000);
  const { address } = await startServer(t, handler);
  const error = await t.throwsAsync(startInvoker(t, { messageBytesMax: 8192 }).call(address, REQUEST, 5000), { instanceOf: CutoverError });
  t.is(error?.code, 'PAYLOAD_TOO_LARGE');
  t.is(handler.calls.length, 1);
});

test('the deadline: a handler slower than the call timeout gives INVOKE_DEADLINE_EXCEEDED, and the handler is told the time left', async (t) => {
  const handler = new FakeHandler();
  const { address } = await startServer(t, handler);
  const invoker = startInvoker(t);
  // Connected first, so that the whole 300 ms are the call's.
  await invoker.call(address, { ...REQUEST, method: 'warm-up' }, 5000);
  handler.calls = [];
  handler.answer = () => new Promise(() => {});
  const error = await t.throwsAsync(invoker.call(address, REQUEST, 300), { instanceOf: CutoverError });
  t.is(error?.code, 'INVOKE_DEADLINE_EXCEEDED');
  t.is(handler.calls.length, 1);
  t.true(handler.calls[0]!.timeoutMs <= 300 && handler.calls[0]!.timeoutMs > 0, `timeoutMs ${handler.calls[0]!.timeoutMs}`);
});

test('CONNECT_FAILED against a port where nothing listens; the channel is closed and a later server on that port is reached', async (t) => {
  const port = await freePort();
  const address = `127.0.0.1:${port}`;
  const invoker = startInvoker(t);
  const error = await t.throwsAsync(invoker.call(address, REQUEST, 5000), { instanceOf: CutoverError });
  t.is(error?.code, 'CONNECT_FAILED');
  t.like(invoker.stats(), { channels: 0, connectFailures: 1 });
  const push = await t.throwsAsync(invoker.pushMetrics(address, { window: 1 }, 5000), { instanceOf: CutoverError });
  t.is(push?.code, 'CONNECT_FAILED');
  // The node comes back on the same port: the next call dials afresh and gets through.
  const handler = new FakeHandler();
  await startServer(t, handler, port);
  t.deepEqual(await invoker.call(address, REQUEST, 5000), { echo: REQUEST.payload });
});

test('CONNECT_FAILED after the connect timeout when the address does not answer', async (t) => {
  // 192.0.2.0/24 (TEST-NET-1) is never routed: the connection attempt hangs or fails, never succeeds.
  const invoker = startInvoker(t, { connectTimeoutMs: 200 });
  const error = await t.throwsAsync(invoker.call('192.0.2.1:9', REQUEST, 5000), { instanceOf: CutoverError });
  t.is(error?.code, 'CONNECT_FAILED');
});

test('a server that dies mid-call is not CONNECT_FAILED: the request may have been sent', async (t) => {
  const handler = new FakeHandler();
  handler.answer = () => new Promise(() => {});
  const { server, address } = await startServer(t, handler);
  const invoker = startInvoker(t);
  const pending = invoker.call(address, REQUEST, 10_000);
  await waitFor('the call to reach the handler', () => (handler.calls.length > 0 ? true : undefined));
  server.forceShutdown();
  const error = await t.throwsAsync(pending, { instanceOf: CutoverError });
  t.not(error?.code, 'CONNECT_FAILED');
  t.is(error?.code, 'UNAVAILABLE_AFTER_SEND');
});

test('a metrics window reaches the handler as JSON; a follower answers NOT_LEADER with the leader hint', async (t) => {
  const handler = new FakeHandler();
  const { address } = await startServer(t, handler);
  const invoker = startInvoker(t);
  const window = { nodeId: 2, startMs: 1000, versions: [{ base: 'org.example:greeter', version: '1.2.0', count: 10, errors: 1, histogram: 'HISTFAAAA' }] };
  await invoker.pushMetrics(address, window, 5000);
  t.deepEqual(handler.windows, [window]);
  handler.ingest = () => {
    throw new NotLeaderError(3, undefined, '127.0.0.1:7003');
  };
  const error = await t.throwsAsync(invoker.pushMetrics(address, window, 5000), { instanceOf: NotLeaderError });
  t.is(error?.code, 'NOT_LEADER');
  t.is(error?.leaderId, 3);
  t.is(error?.leaderAddress, '127.0.0.1:7003');
});

test('at most channelsMax channels: the least recently used one is closed to make room', async (t) => {
  const handler = new FakeHandler();
  const servers = [await startServer(t, handler), await startServer(t, handler), await startServer(t, handler)];
  const invoker = startInvoker(t, { channelsMax: 2 });
  for (const { address } of [...servers, ...servers]) await invoker.call(address, REQUEST, 5000);
  t.like(invoker.stats(), { channels: 2, channelsOpened: 6, channelsEvicted: 4 });
});

test('after close() calls fail with INVOKER_CLOSED', async (t) => {
  const handler = new FakeHandler();
  const { address } = await startServer(t, handler);
  const invoker = startInvoker(t);
  await invoker.call(address, REQUEST, 5000);
  invoker.close();
  const error = await t.throwsAsync(invoker.call(address, REQUEST, 5000), { instanceOf: CutoverError });
  t.is(error?.code, 'INVOKER_CLOSED');
  t.is(invoker.stats().channels, 0);
});

test('server reflection lists cutover.peer.v1.Invoke with the management API', (t) => {
  const definition = loadManagementDefinition();
  t.truthy(definition['cutover.peer.v1.Invoke']);
  t.truthy(definition['cutover.peer.v1.CallRequest']);
});
