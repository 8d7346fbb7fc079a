/**
 * gRPC servers with fixed answers, for golden tests of the CLI's tables: the management API's
 * real .proto files and real server reflection, but handlers that return the same data every run
 * (the real cluster's revisions, indexes, instance ids and times change from run to run).
 */
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { LOADER_OPTIONS, PROTO_ROOT } from '../../src/api/protos.ts';
import { freePort } from '../../src/platform/wait.ts';

/** "Now" for the CLI under test (CUTOVER_NOW_MS): 2025-06-15 15:06:40 UTC. */
export const FIXED_NOW_MS = 1_750_000_000_000;

type Handler = (request: Record<string, unknown>) => Record<string, unknown>;

function unaryHandlers(handlers: Record<string, Handler>): grpc.UntypedServiceImplementation {
  return Object.fromEntries(
    Object.entries(handlers).map(([name, handler]) => [name, (call: grpc.ServerUnaryCall<Record<string, unknown>, unknown>, callback: grpc.sendUnaryData<unknown>) => callback(null, handler(call.request))]),
  );
}

interface ServiceHolder {
  service: grpc.ServiceDefinition;
}

/** Three fixture nodes: 1 (leader) and 2 answer; 3 is listed as a member but nothing listens. */
export class FixtureCluster {
  private constructor(
    private readonly servers: grpc.Server[],
    readonly addresses: readonly string[],
  ) {}

  static async start(): Promise<FixtureCluster> {
    const addresses = [`127.0.0.1:${await freePort()}`, `127.0.0.1:${await freePort()}`, `127.0.0.1:${await freePort()}`];
    const definition = protoLoader.loadSync(['cutover/v1/kv.proto', 'cutover/v1/cluster.proto', 'cutover/v1/slices.proto'].map((f) => path.join(PROTO_ROOT, f)), LOADER_OPTIONS);
    const loaded = grpc.loadPackageDefinition(definition) as unknown as { cutover: { v1: Record<'KV' | 'Cluster' | 'Slices', ServiceHolder> } };
    const servers: grpc.Server[] = [];
    for (const id of [1, 2]) {
      const server = new grpc.Server();
      server.addService(loaded.cutover.v1.Cluster.service, unaryHandlers(clusterHandlers(id, addresses)));
      server.addService(loaded.cutover.v1.KV.service, unaryHandlers(kvHandlers));
      server.addService(loaded.cutover.v1.Slices.service, unaryHandlers(slicesHandlers));
      new ReflectionService(definition).addToServer(server);
      await new Promise<void>((resolve, reject) => server.bindAsync(addresses[id - 1]!, grpc.ServerCredentials.createInsecure(), (error) => (error ? reject(error) : resolve())));
      servers.push(server);
    }
    return new FixtureCluster(servers, addresses);
  }

  get endpoints(): string {
    return this.addresses.slice(0, 2).join(',');
  }

  stop(): void {
    for (const server of this.servers) server.forceShutdown();
  }
}

function clusterHandlers(id: number, addresses: readonly string[]): Record<string, Handler> {
  const members = [
    { id: 1, address: addresses[0], learner: false },
    { id: 2, address: addresses[1], learner: false },
    { id: 3, address: addresses[2], learner: false },
  ];
  const leader = id === 1;
  return {
    Status: () => ({
      id,
      role: leader ? 'leader' : 'follower',
      term: 7,
      leader_id: 1,
      leader_address: addresses[0],
      commit_index: 1234,
      applied_index: leader ? 1234 : 1230,
      last_index: 1235,
      snapshot_index: 1000,
      revision: leader ? 987 : 985,
      members,
      progress: leader ? [{ id: 1, match: 1235 }, { id: 2, match: 1231 }, { id: 3, match: 900 }] : [],
    }),
    ListMembers: () => ({ members: [...members, { id: 4, address: '127.0.0.1:7004', learner: true }] }),
  };
}

const kvHandlers: Record<string, Handler> = {
  Get: (request) => ({ found: true, kv: { key: String(request.key), value: 'world', create_revision: 40, mod_revision: 42, version: 3 }, revision: 50 }),
  Range: () => ({
    kvs: [
      { key: 'blueprint/org.example:greeter/1.0.0', value: '{"instances":3}', create_revision: 4, mod_revision: 4, version: 1 },
      { key: 'instance/1/org.example:greeter:1.0.0/i4-0', value: '{"state":"ACTIVE","nodeId":1,"address":"127.0.0.1:7001","since":1749999700000}', create_revision: 6, mod_revision: 10, version: 3 },
      { key: 'hello', value: 'world', create_revision: 40, mod_revision: 42, version: 3 },
    ],
    more: true,
    revision: 50,
  }),
};

const slicesHandlers: Record<string, Handler> = {
  List: () => ({
    versions: [
      { artifact: 'org.example:greeter', version: '1.0.0', sha256: 'ab'.repeat(32), size: 812, methods: ['hello'], min_compatible_version: '', published_at_ms: FIXED_NOW_MS - 3 * 86_400_000, desired_instances: 3, deployed: true },
      { artifact: 'org.example:greeter', version: '2.0.0', sha256: 'cd'.repeat(32), size: 830, methods: ['hello', 'goodbye'], min_compatible_version: '1.0.0', published_at_ms: FIXED_NOW_MS - 5 * 60_000, desired_instances: 0, deployed: false },
      { artifact: 'com.example.payments:ledger-service', version: '12.4.1-rc.2', sha256: 'ef'.repeat(32), size: 1_500_000, methods: ['post', 'balance', 'history', 'reconcile'], min_compatible_version: '', published_at_ms: FIXED_NOW_MS - 42_000, desired_instances: 12, deployed: true },
    ],
  }),
  Instances: () => ({
    instances: [
      { artifact: 'org.example:greeter', version: '1.0.0', instance_id: 'i4-0', node_id: 1, address: '127.0.0.1:7001', state: 'ACTIVE', reason: '', assigned: true },
      { artifact: 'org.example:greeter', version: '1.0.0', instance_id: 'i4-1', node_id: 2, address: '127.0.0.1:7002', state: 'DRAINING', reason: 'undeployed', assigned: false },
      { artifact: 'org.example:greeter', version: '1.0.0', instance_id: 'i4-2', node_id: 3, address: '127.0.0.1:7003', state: 'FAILED', reason: 'health check failed 3 times: TypeError: cannot read properties of undefined', assigned: true },
    ],
    pending: [{ artifact: 'org.example:greeter', version: '1.0.0', instance_id: 'i9-0', node_id: 2, address: '', state: '', reason: '', assigned: true }],
    revision: 77,
  }),
};
