/** Shared set-up for the gRPC transport tests: real sockets on 127.0.0.1, ephemeral ports. */
import type { ExecutionContext } from 'ava';
import { realClock } from '../../src/platform/scheduler.ts';
import type { Message } from '../../src/raft/index.ts';
import { GrpcTransport } from '../../src/transport/grpc-transport.ts';
import type { GrpcTransportOptions, TransportLimits, TransportListen } from '../../src/transport/options.ts';
import type { TransportHandler } from '../../src/transport/transport.ts';
import { silentLogger } from '../../src/util/logger.ts';
import { SeededRandom } from '../../src/util/random.ts';

export const KIB = 1024;
export const MIB = 1024 * KIB;

/** Records everything the transport hands to its handler. */
export class Recorder implements TransportHandler {
  readonly messages: Message[] = [];
  readonly unreachable: number[] = [];
  readonly snapshotStatuses: Array<{ peer: number; ok: boolean }> = [];

  onMessage(message: Message): void {
    this.messages.push(message);
  }
  onUnreachable(peer: number): void {
    this.unreachable.push(peer);
  }
  onSnapshotStatus(peer: number, ok: boolean): void {
    this.snapshotStatuses.push({ peer, ok });
  }
}

export const testLimits: TransportLimits = {
  sendQueueMessagesMax: 4096,
  batchMessagesMax: 64,
  messageBytesMax: 4 * MIB,
  snapshotChunkBytes: 256 * KIB,
  snapshotBytesMax: 64 * MIB,
  inboundSnapshotsMax: 2,
};

/** Options with short reconnect delays, so that a test sees several attempts quickly. */
export function transportOptions(nodeId: number, overrides: { listen?: TransportListen; limits?: Partial<TransportLimits> } = {}): GrpcTransportOptions {
  return {
    nodeId,
    listen: overrides.listen ?? '127.0.0.1:0',
    clock: realClock,
    random: new SeededRandom(nodeId),
    logger: silentLogger,
    limits: { ...testLimits, ...overrides.limits },
    reconnect: { initialMs: 20, maxMs: 200 },
    timeouts: { snapshotSendMs: 20_000, stopGraceMs: 1_000, keepaliveIntervalMs: 10_000, keepaliveTimeoutMs: 5_000 },
  };
}

export interface Started {
  readonly transport: GrpcTransport;
  readonly recorder: Recorder;
  readonly address: string;
}

/** Builds and starts a transport with a recorder; stops it when the test ends. */
export async function startTransport(t: ExecutionContext, nodeId: number, overrides: Parameters<typeof transportOptions>[1] = {}): Promise<Started> {
  const transport = new GrpcTransport(transportOptions(nodeId, overrides));
  const recorder = new Recorder();
  transport.setHandler(recorder);
  await transport.start();
  t.teardown(() => transport.stop());
  return { transport, recorder, address: transport.boundAddress() ?? '' };
}

/** An address on which nothing listens (a port that was just bound and released). */
export async function deadAddress(t: ExecutionContext): Promise<string> {
  const probe = new GrpcTransport(transportOptions(99));
  probe.setHandler(new Recorder());
  await probe.start();
  const address = probe.boundAddress();
  await probe.stop();
  t.truthy(address);
  return address ?? '';
}

/** An `app` message with `entries` payload bytes (0 = none). */
export function appMessage(from: number, to: number, index: number, payloadBytes = 0): Message {
  const entries = payloadBytes === 0 ? [] : [{ term: 1, index: index + 1, type: 'normal' as const, data: new Uint8Array(payloadBytes).fill(index % 251) }];
  return { type: 'app', from, to, term: 1, logTerm: 1, index, entries, commit: 0, reject: false, rejectHint: 0 };
}

/** A `snap` message carrying `bytes` of seeded pseudo-random data. */
export function snapMessage(from: number, to: number, bytes: number, seed = 7): Message {
  const random = new SeededRandom(seed);
  const data = new Uint8Array(bytes);
  const words = new Uint32Array(data.buffer, 0, Math.floor(bytes / 4));
  for (let i = 0; i < words.length; i++) words[i] = random.nextUint32();
  const metadata = { index: 500, term: 3, confState: { voters: [1, 2, 3], learners: [4] } };
  return { type: 'snap', from, to, term: 3, logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0, snapshot: { metadata, data } };
}

/** The message indexes a recorder received, in order. */
export function indexes(recorder: Recorder): number[] {
  return recorder.messages.map((m) => m.index);
}
