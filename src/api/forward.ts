import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import path from 'node:path';
import type { CommandResult, Request } from '../kv/index.ts';
import type { CutoverNode } from '../node/node.ts';
import { decodeRequest, encodeRequest } from '../node/codec.ts';
import { CutoverError, NotLeaderError } from '../util/errors.ts';
import { fromServiceError } from './errors.ts';
import { unary } from './kv-service.ts';
import { LOADER_OPTIONS, PROTO_ROOT } from './protos.ts';
import { deadlineIn } from '../platform/wall-clock.ts';

interface ForwardClient extends grpc.Client {
  Propose(request: { request: Buffer }, options: grpc.CallOptions, callback: (error: grpc.ServiceError | null, response: { result: Buffer }) => void): void;
}

const definition = grpc.loadPackageDefinition(protoLoader.loadSync(path.join(PROTO_ROOT, 'cutover/peer/v1/forward.proto'), LOADER_OPTIONS)) as unknown as {
  cutover: { peer: { v1: { Forward: grpc.ServiceClientConstructor } } };
};

/** The server side: proposes a forwarded request here, refusing a second hop. */
export function addForwardService(server: grpc.Server, node: CutoverNode): void {
  server.addService(definition.cutover.peer.v1.Forward.service, {
    Propose: unary(async (req: { request: Buffer }) => {
      const request = decodeRequest(req.request);
      const result = await node.propose(request.command, { clientId: request.clientId, sequence: request.sequence }, { forward: false });
      return { result: Buffer.from(JSON.stringify(result)) };
    }),
  });
}

/**
 * The client side: sends a write to the leader's node over one cached channel per address,
 * with a deadline. Errors come back as CutoverErrors with their original codes.
 */
export class Forwarder {
  private readonly clients = new Map<string, ForwardClient>();

  constructor(
    private readonly addressOf: (id: number) => string | undefined,
    private readonly deadlineMs: number,
  ) {}

  async forward(leader: number, request: Request): Promise<CommandResult> {
    const address = this.addressOf(leader);
    if (address === undefined) throw new NotLeaderError(leader, `not the leader; the address of leader ${leader} is unknown`);
    const client = this.client(address);
    const deadline = deadlineIn(this.deadlineMs);
    // Wait for the channel (bounded by the deadline) rather than fail fast while it connects.
    await new Promise<void>((resolve, reject) => client.waitForReady(deadline, (error) => (error ? reject(new CutoverError('UNAVAILABLE', `leader ${leader} at ${address} is unreachable: ${error.message}`)) : resolve())));
    return new Promise((resolve, reject) => {
      client.Propose({ request: Buffer.from(encodeRequest(request)) }, { deadline }, (error, response) => {
        if (error) reject(fromServiceError(error));
        else {
          try {
            resolve(JSON.parse(response.result.toString('utf8')) as CommandResult);
          } catch (cause) {
            reject(new CutoverError('RPC_FAILED', `leader ${leader} sent an unreadable result`, { cause }));
          }
        }
      });
    });
  }

  private client(address: string): ForwardClient {
    let client = this.clients.get(address);
    if (client === undefined) {
      // A leader that restarts must be reachable again within an election or two, not after gRPC's
      // default back-off of up to 120 s.
      client = new definition.cutover.peer.v1.Forward(address, grpc.credentials.createInsecure(), { 'grpc.initial_reconnect_backoff_ms': 100, 'grpc.max_reconnect_backoff_ms': 1000 }) as unknown as ForwardClient;
      this.clients.set(address, client);
    }
    return client;
  }

  close(): void {
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
  }
}
