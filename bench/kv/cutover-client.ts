/**
 * The Cutover side of the load generator: the management API (cutover.v1.KV and .Cluster)
 * through @grpc/grpc-js, one channel per member, each request sent to a member drawn at random,
 * as the etcd3 client does with its hosts. A follower forwards writes to the leader and serves
 * linearizable reads through ReadIndex, so any member will do.
 */
import * as grpc from '@grpc/grpc-js';
import { loadManagementDefinition } from '../../src/api/protos.ts';
import { deadlineIn } from '../../src/platform/wall-clock.ts';
import type { Random } from '../../src/util/random.ts';
import type { KvClient } from './kv-client.ts';

type Callback = (error: grpc.ServiceError | null, response: Record<string, unknown>) => void;
type UnaryMethod = (request: object, options: grpc.CallOptions, callback: Callback) => void;
/** A generated client: grpc.Client plus one method per RPC. */
export type UnaryClient = grpc.Client & Record<string, UnaryMethod>;

/**
 * Channel options shared by both systems' clients: a member that restarts is reconnected within
 * a second rather than after gRPC's default back-off of up to two minutes.
 */
export const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  'grpc.initial_reconnect_backoff_ms': 100,
  'grpc.max_reconnect_backoff_ms': 1000,
  'grpc.max_receive_message_length': 16 * 1024 * 1024,
  'grpc.max_send_message_length': 16 * 1024 * 1024,
};

let constructors: Record<string, grpc.ServiceClientConstructor> | undefined;

/** A client of `service` at `address` (host:port), plain-text. */
export function cutoverServiceClient(service: 'KV' | 'Cluster', address: string): UnaryClient {
  if (constructors === undefined) {
    const loaded = grpc.loadPackageDefinition(loadManagementDefinition()) as unknown as { cutover: { v1: Record<string, grpc.ServiceClientConstructor> } };
    constructors = loaded.cutover.v1;
  }
  const Client = constructors[service];
  if (Client === undefined) throw new Error(`cutover.v1.${service} is not in the management API`);
  return new Client(address, grpc.credentials.createInsecure(), CHANNEL_OPTIONS) as unknown as UnaryClient;
}

/** One unary call with a deadline `timeoutMs` from now. */
export function unaryCall(client: UnaryClient, method: string, request: object, timeoutMs: number): Promise<Record<string, unknown>> {
  const rpc = client[method];
  if (rpc === undefined) return Promise.reject(new Error(`no method ${method}`));
  return new Promise((resolve, reject) => {
    rpc.call(client, request, { deadline: deadlineIn(timeoutMs) }, (error, response) => (error ? reject(error) : resolve(response)));
  });
}

/** A KvClient over the members at `addresses`. */
export class CutoverKvClient implements KvClient {
  private readonly clients: UnaryClient[];

  constructor(addresses: readonly string[], private readonly random: Random) {
    if (addresses.length === 0) throw new Error('CutoverKvClient: no addresses');
    this.clients = addresses.map((address) => cutoverServiceClient('KV', address));
  }

  async put(key: string, value: string, timeoutMs: number): Promise<void> {
    await unaryCall(this.pick(), 'Put', { key, value }, timeoutMs);
  }

  async get(key: string, timeoutMs: number): Promise<void> {
    await unaryCall(this.pick(), 'Get', { key, serializable: false }, timeoutMs);
  }

  close(): void {
    for (const client of this.clients) client.close();
  }

  private pick(): UnaryClient {
    return this.clients[this.random.nextInt(0, this.clients.length)]!;
  }
}
