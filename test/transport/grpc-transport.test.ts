/**
 * The gRPC peer transport over real sockets (127.0.0.1, ephemeral ports). Every wait is a bounded
 * poll on the real clock (test/helpers/wait.ts); nothing sleeps for a fixed time and hopes.
 */
import { Buffer } from 'node:buffer';
import test, { type ExecutionContext } from 'ava';
import * as grpc from '@grpc/grpc-js';
import { realClock } from '../../src/platform/scheduler.ts';
import { GrpcTransport } from '../../src/transport/grpc-transport.ts';
import { peerServerChannelOptions } from '../../src/transport/options.ts';
import { raftService } from '../../src/transport/proto.ts';
import { CutoverError } from '../../src/util/errors.ts';
import { waitFor } from '../../src/platform/wait.ts';
import { appMessage, deadAddress, indexes, KIB, MIB, Recorder, snapMessage, startTransport, testLimits, transportOptions } from './helpers.ts';

/** Resolves once `recorder` holds `count` messages. */
function received(recorder: Recorder, count: number, attempts = 200): Promise<true> {
  return waitFor(`${count} messages (have ${recorder.messages.length})`, () => (recorder.messages.length >= count ? true : undefined), { attempts, intervalMs: 25 });
}

/** The stats of the link from `transport` to `peer`. */
function peerStats(transport: GrpcTransport, peer: number) {
  const stats = transport.stats().peers.find((p) => p.peer === peer);
  if (stats === undefined) throw new Error(`no stats for peer ${peer}`);
  return stats;
}

test('messages arrive in order, in both directions', async (t) => {
  const a = await startTransport(t, 1);
  const b = await startTransport(t, 2);
  a.transport.addPeer(2, b.address);
  b.transport.addPeer(1, a.address);
  for (let turn = 0; turn < 10; turn++) {
    a.transport.send(Array.from({ length: 100 }, (_, i) => appMessage(1, 2, turn * 100 + i + 1, 64)));
    b.transport.send([appMessage(2, 1, turn + 1)]);
    await Promise.resolve();
  }
  await received(b.recorder, 1000);
  await received(a.recorder, 10);
  t.deepEqual(indexes(b.recorder), Array.from({ length: 1000 }, (_, i) => i + 1));
  t.deepEqual(indexes(a.recorder), Array.from({ length: 10 }, (_, i) => i + 1));
  t.deepEqual(b.recorder.messages[41], appMessage(1, 2, 42, 64), 'a message survives the wire unchanged');
  t.is(peerStats(a.transport, 2).messagesDropped, 0);
  t.true(peerStats(a.transport, 2).connected);
  t.deepEqual(a.recorder.unreachable, []);
});

test('many sends share few stream writes (batchMessagesMax and messageBytesMax)', async (t) => {
  const a = await startTransport(t, 1, { limits: { batchMessagesMax: 50, messageBytesMax: 64 * KIB, snapshotChunkBytes: 32 * KIB } });
  const b = await startTransport(t, 2);
  a.transport.addPeer(2, b.address);
  for (let i = 1; i <= 400; i++) a.transport.send([appMessage(1, 2, i)]);
  await received(b.recorder, 400);
  t.is(peerStats(a.transport, 2).batchesWritten, 8, '400 sends in one turn → 8 batches of 50');
  t.is(b.transport.stats().inbound.batchesReceived, 8);
  // Bytes cut batches too: 10 KiB entries, 64 KiB per message → at most 6 per batch.
  for (let i = 401; i <= 430; i++) a.transport.send([appMessage(1, 2, i, 10 * KIB)]);
  await received(b.recorder, 430);
  t.is(peerStats(a.transport, 2).batchesWritten, 8 + 5);
  t.deepEqual(indexes(b.recorder).slice(400), Array.from({ length: 30 }, (_, i) => 401 + i));
});

test('a full queue drops the excess and reports the peer unreachable', async (t) => {
  const a = await startTransport(t, 1, { limits: { sendQueueMessagesMax: 8 } });
  const b = await startTransport(t, 2);
  a.transport.addPeer(2, b.address);
  a.transport.send(Array.from({ length: 20 }, (_, i) => appMessage(1, 2, i + 1)));
  t.deepEqual(a.recorder.unreachable, [], 'never reported from inside send()');
  t.is(peerStats(a.transport, 2).queueDepth, 8);
  t.is(peerStats(a.transport, 2).messagesDropped, 12);
  await received(b.recorder, 8);
  t.deepEqual(indexes(b.recorder), [1, 2, 3, 4, 5, 6, 7, 8]);
  t.deepEqual(a.recorder.unreachable, [2], 'one report per peer per turn');
});

test('a peer that is down is reported unreachable; once up it receives later messages', async (t) => {
  const address = await deadAddress(t);
  const a = await startTransport(t, 1);
  a.transport.addPeer(2, address);
  a.transport.send([appMessage(1, 2, 1)]);
  await waitFor('unreachable report', () => (a.recorder.unreachable.includes(2) ? true : undefined));
  t.is(peerStats(a.transport, 2).lastErrorCode, 'UNAVAILABLE');
  t.false(peerStats(a.transport, 2).connected);

  const b = await startTransport(t, 2, { listen: address });
  let next = 2;
  await waitFor('delivery after the peer came up', () => {
    a.transport.send([appMessage(1, 2, next++)]);
    return b.recorder.messages.length > 0 ? true : undefined;
  }, { attempts: 200, intervalMs: 25 });
  // The sender learns the stream is up from the peer's answer, which can trail the first delivery.
  await waitFor('the sender to see the stream up', () => peerStats(a.transport, 2).connected);
  t.true(peerStats(a.transport, 2).streamFailures >= 1);
  const first = indexes(b.recorder)[0] ?? 0;
  t.true(first > 1, 'the message sent while the peer was down is not delivered late');
  a.transport.send([appMessage(1, 2, 1000), appMessage(1, 2, 1001)]);
  await waitFor('later messages', () => (indexes(b.recorder).includes(1001) ? true : undefined));
  const got = indexes(b.recorder);
  t.deepEqual(got, [...got].sort((x, y) => x - y), 'still in order');
});

test('a snapshot of several MiB is delivered in chunks, intact', async (t) => {
  const a = await startTransport(t, 1, { limits: { messageBytesMax: 1 * MIB, snapshotChunkBytes: 256 * KIB } });
  const b = await startTransport(t, 2);
  a.transport.addPeer(2, b.address);
  const snap = snapMessage(1, 2, 6 * MIB + 123);
  a.transport.send([snap]);
  await waitFor('snapshot status', () => (a.recorder.snapshotStatuses.length > 0 ? true : undefined), { attempts: 400, intervalMs: 25 });
  t.deepEqual(a.recorder.snapshotStatuses, [{ peer: 2, ok: true }]);
  const delivered = b.recorder.messages[0];
  t.is(b.recorder.messages.length, 1);
  t.is(delivered?.type, 'snap');
  t.deepEqual(delivered?.snapshot?.metadata, snap.snapshot?.metadata);
  t.true(Buffer.from(delivered?.snapshot?.data ?? []).equals(Buffer.from(snap.snapshot?.data ?? [1])), 'data intact');
  t.is(b.transport.stats().inbound.snapshotChunksReceived, 1 + Math.ceil((6 * MIB + 123) / (256 * KIB)), 'header + data chunks');
  t.is(peerStats(a.transport, 2).snapshotsSent, 1);
});

test('a snapshot to a dead peer reports failure', async (t) => {
  const a = await startTransport(t, 1);
  a.transport.addPeer(2, await deadAddress(t));
  a.transport.send([snapMessage(1, 2, 64 * KIB)]);
  await waitFor('snapshot status', () => (a.recorder.snapshotStatuses.length > 0 ? true : undefined));
  t.deepEqual(a.recorder.snapshotStatuses, [{ peer: 2, ok: false }]);
  t.is(peerStats(a.transport, 2).lastErrorCode, 'UNAVAILABLE');
  t.is(peerStats(a.transport, 2).snapshotsFailed, 1);
});

test('a snapshot larger than the receiver accepts is refused with RESOURCE_EXHAUSTED', async (t) => {
  const a = await startTransport(t, 1);
  const b = await startTransport(t, 2, { limits: { snapshotBytesMax: 1 * MIB } });
  a.transport.addPeer(2, b.address);
  a.transport.send([snapMessage(1, 2, 2 * MIB)]);
  await waitFor('snapshot status', () => (a.recorder.snapshotStatuses.length > 0 ? true : undefined));
  t.deepEqual(a.recorder.snapshotStatuses, [{ peer: 2, ok: false }]);
  t.is(peerStats(a.transport, 2).lastErrorCode, 'RESOURCE_EXHAUSTED');
  t.is(b.transport.stats().inbound.snapshotsRefused, 1);
  t.deepEqual(b.recorder.messages, []);
});

test('a message addressed to another node id is dropped', async (t) => {
  const a = await startTransport(t, 1);
  const b = await startTransport(t, 3);
  // A stale address book: a believes node 2 lives where node 3 now does.
  a.transport.addPeer(2, b.address);
  a.transport.addPeer(3, b.address);
  a.transport.send([appMessage(1, 2, 1), appMessage(1, 3, 2)]);
  await received(b.recorder, 1);
  await waitFor('misaddressed count', () => (b.transport.stats().inbound.messagesMisaddressed === 1 ? true : undefined));
  t.deepEqual(indexes(b.recorder), [2]);
  t.is(b.transport.stats().inbound.messagesReceived, 1);
});

test('an oversize message is refused by the sender with a code', async (t) => {
  const a = await startTransport(t, 1, { limits: { messageBytesMax: 64 * KIB, snapshotChunkBytes: 32 * KIB } });
  const b = await startTransport(t, 2);
  a.transport.addPeer(2, b.address);
  a.transport.send([appMessage(1, 2, 1, 100 * KIB), appMessage(1, 2, 2)]);
  await received(b.recorder, 1);
  t.deepEqual(indexes(b.recorder), [2]);
  t.is(peerStats(a.transport, 2).lastErrorCode, 'TRANSPORT_MESSAGE_TOO_LARGE');
  t.is(peerStats(a.transport, 2).messagesDropped, 1);
  t.is(peerStats(a.transport, 2).messagesTooLarge, 1);
  t.deepEqual(a.recorder.unreachable, [2]);
});

test('an oversize message is refused by the receiver with RESOURCE_EXHAUSTED, and the link recovers', async (t) => {
  const a = await startTransport(t, 1);
  const b = await startTransport(t, 2, { limits: { messageBytesMax: 64 * KIB, snapshotChunkBytes: 32 * KIB } });
  a.transport.addPeer(2, b.address);
  a.transport.send([appMessage(1, 2, 1, 200 * KIB)]);
  await waitFor('stream failure', () => (peerStats(a.transport, 2).streamFailures > 0 ? true : undefined));
  t.is(peerStats(a.transport, 2).lastErrorCode, 'RESOURCE_EXHAUSTED');
  t.true(a.recorder.unreachable.includes(2));
  let next = 2;
  await waitFor('delivery after the refusal', () => {
    a.transport.send([appMessage(1, 2, next++)]);
    return b.recorder.messages.length > 0 ? true : undefined;
  }, { attempts: 200, intervalMs: 25 });
  t.false(indexes(b.recorder).includes(1));
});

test('the Raft service can share a server that someone else owns', async (t) => {
  const server = new grpc.Server({ ...peerServerChannelOptions({ limits: testLimits, timeouts: transportOptions(2).timeouts }) });
  t.teardown(() => server.forceShutdown());
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) => (error === null ? resolve(bound) : reject(error))));
  const shared = new GrpcTransport(transportOptions(2, { listen: { server } }));
  const recorder = new Recorder();
  shared.setHandler(recorder);
  await shared.start();
  t.is(shared.boundAddress(), undefined);
  const a = await startTransport(t, 1);
  a.transport.addPeer(2, `127.0.0.1:${port}`);
  a.transport.send([appMessage(1, 2, 1)]);
  await received(recorder, 1);
  await shared.stop();
  a.transport.send([appMessage(1, 2, 2)]);
  await waitFor('stream failure', () => (peerStats(a.transport, 2).streamFailures > 0 ? true : undefined));
  t.deepEqual(indexes(recorder), [1], 'nothing is delivered after stop()');
});

test('stop() ends the peers’ streams and resolves; a second stop() is a no-op', async (t) => {
  const a = await startTransport(t, 1);
  const b = await startTransport(t, 2);
  a.transport.addPeer(2, b.address);
  b.transport.addPeer(1, a.address);
  b.transport.send([appMessage(2, 1, 1)]);
  await received(a.recorder, 1);
  await a.transport.stop();
  await a.transport.stop();
  await waitFor('b sees its stream end', () => (peerStats(b.transport, 1).streamFailures > 0 ? true : undefined));
  t.is(peerStats(b.transport, 1).lastErrorCode, 'UNAVAILABLE');
  t.deepEqual(a.transport.stats().peers, []);
});

/** A peer that accepts streams and then ignores them, even their end; returns its address. */
async function silentPeer(t: ExecutionContext): Promise<string> {
  const server = new grpc.Server(peerServerChannelOptions({ limits: testLimits, timeouts: transportOptions(2).timeouts }));
  t.teardown(() => server.forceShutdown());
  server.addService(raftService, {
    Send: (call: grpc.ServerReadableStream<unknown, unknown>) => call.sendMetadata(new grpc.Metadata()),
    SendSnapshot: () => {},
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) => (error === null ? resolve(bound) : reject(error))));
  return `127.0.0.1:${port}`;
}

test('stop() is bounded by stopGraceMs when a peer never answers', async (t) => {
  const a = await startTransport(t, 1);
  a.transport.addPeer(2, await silentPeer(t));
  a.transport.send([appMessage(1, 2, 1), snapMessage(1, 2, 1 * KIB)]);
  await waitFor('connected', () => (peerStats(a.transport, 2).connected ? true : undefined));
  const startedMs = realClock.nowMs();
  await a.transport.stop();
  const elapsedMs = realClock.nowMs() - startedMs;
  const graceMs = transportOptions(1).timeouts.stopGraceMs;
  t.true(elapsedMs >= graceMs * 0.9 && elapsedMs < graceMs * 3, `stop took ${Math.round(elapsedMs)} ms`);
  t.deepEqual(a.recorder.snapshotStatuses, [], 'no handler call once stop() has begun');
});

test('one snapshot in flight per peer; readdressing the peer fails it and moves the stream', async (t) => {
  const a = await startTransport(t, 1);
  const b = await startTransport(t, 2);
  a.transport.addPeer(2, await silentPeer(t));
  a.transport.send([snapMessage(1, 2, 1 * KIB), snapMessage(1, 2, 1 * KIB)]);
  await waitFor('the second snapshot refused', () => (a.recorder.snapshotStatuses.length > 0 ? true : undefined));
  t.deepEqual(a.recorder.snapshotStatuses, [{ peer: 2, ok: false }]);
  t.is(peerStats(a.transport, 2).lastErrorCode, 'TRANSPORT_SNAPSHOT_BUSY');
  a.transport.addPeer(2, b.address);
  await waitFor('the first snapshot failed', () => (a.recorder.snapshotStatuses.length > 1 ? true : undefined));
  t.deepEqual(a.recorder.snapshotStatuses, [{ peer: 2, ok: false }, { peer: 2, ok: false }]);
  a.transport.send([appMessage(1, 2, 7)]);
  await received(b.recorder, 1);
  t.is(a.transport.address(2), b.address);
  t.is(peerStats(a.transport, 2).address, b.address);
});

test('a port in use is refused with TRANSPORT_LISTEN_FAILED', async (t) => {
  const a = await startTransport(t, 1);
  const clash = new GrpcTransport(transportOptions(2, { listen: a.address }));
  clash.setHandler(new Recorder());
  const error = await t.throwsAsync(clash.start(), { instanceOf: CutoverError });
  t.is(error?.code, 'TRANSPORT_LISTEN_FAILED');
  await clash.stop();
});

test('bad settings are refused with the setting named', (t) => {
  const options = transportOptions(1, { limits: { messageBytesMax: 64 * KIB, snapshotChunkBytes: 64 * KIB } });
  const error = t.throws(() => new GrpcTransport(options), { instanceOf: CutoverError });
  t.is(error?.code, 'INVALID_ARGUMENT');
  t.regex(error?.message ?? '', /transport\.limits\.snapshotChunkBytes/);
  const listen = t.throws(() => new GrpcTransport(transportOptions(1, { listen: 'no-port' })), { instanceOf: CutoverError });
  t.regex(listen?.message ?? '', /transport\.listen/);
  const queue = t.throws(() => new GrpcTransport(transportOptions(1, { limits: { sendQueueMessagesMax: 0 } })), { instanceOf: CutoverError });
  t.regex(queue?.message ?? '', /transport\.limits\.sendQueueMessagesMax/);
});
