import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import { addManagementApi } from '../../src/api/server.ts';
import { loadManagementDefinition } from '../../src/api/protos.ts';
import { CutoverNode } from '../../src/node/node.ts';
import { realClock } from '../../src/platform/scheduler.ts';
import { MemoryStorage } from '../../src/raft/index.ts';
import { silentLogger } from '../../src/util/logger.ts';
import { SeededRandom } from '../../src/util/random.ts';
import { MemoryHub } from '../helpers/memory-transport.ts';
import { waitFor } from '../../src/platform/wait.ts';

type Unary = (request: object, callback: (error: grpc.ServiceError | null, response: Record<string, unknown>) => void) => void;
type Client = grpc.Client & Record<string, Unary>;

function call(client: Client, method: string, request: object): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => client[method]!(request, (error, response) => (error ? reject(error) : resolve(response))));
}

async function startCluster(t: { teardown: (fn: () => Promise<void>) => void }, size: number) {
  const hub = new MemoryHub();
  const random = new SeededRandom(7);
  const ids = Array.from({ length: size }, (_, i) => i + 1);
  const servers: { node: CutoverNode; server: grpc.Server; address: string }[] = [];
  for (let i = 0; i < size; i++) {
    const server = new grpc.Server();
    const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
    servers.push({ node: undefined as unknown as CutoverNode, server, address: `127.0.0.1:${port}` });
  }
  const members = ids.map((id, i) => ({ id, address: servers[i]!.address }));
  for (const [i, id] of ids.entries()) {
    const node = new CutoverNode({ id, initialMembers: members, storage: MemoryStorage.bootstrap(ids), transport: hub.transport(id), clock: realClock, random: random.fork(), logger: silentLogger, settings: { tickMs: 10 }, forwardProposals: false });
    servers[i]!.node = node;
    addManagementApi(servers[i]!.server, node, { watchBufferBytesMax: 1 << 20 });
    await node.start();
  }
  t.teardown(async () => {
    for (const s of servers) {
      await s.node.stop();
      s.server.forceShutdown();
    }
  });
  const definition = grpc.loadPackageDefinition(loadManagementDefinition()) as unknown as { cutover: { v1: Record<string, typeof grpc.Client> } };
  const client = (service: string, address: string) => new definition.cutover.v1[service]!(address, grpc.credentials.createInsecure()) as Client;
  await waitFor('a leader', () => (servers.some((s) => s.node.status().role === 'leader') ? true : undefined));
  return { servers, client };
}

test('KV Put through the leader, Get through another node; Status reports the leader', async (t) => {
  const { servers, client } = await startCluster(t, 3);
  const leader = servers.find((s) => s.node.status().role === 'leader')!;
  const other = servers.find((s) => s !== leader)!;
  const put = await call(client('KV', leader.address), 'Put', { key: 'greeting', value: 'hello' });
  t.is(put.revision, 1);
  const got = await call(client('KV', other.address), 'Get', { key: 'greeting' });
  t.like(got, { found: true, kv: { value: 'hello', version: 1 } });
  const status = await call(client('Cluster', other.address), 'Status', {});
  t.like(status, { leader_id: leader.node.id, leader_address: leader.address, role: 'follower' });
});

test('a write to a follower fails with FAILED_PRECONDITION and the leader hint in trailing metadata', async (t) => {
  const { servers, client } = await startCluster(t, 3);
  const leader = servers.find((s) => s.node.status().role === 'leader')!;
  const follower = servers.find((s) => s !== leader)!;
  const error = await t.throwsAsync<grpc.ServiceError>(call(client('KV', follower.address), 'Put', { key: 'k', value: 'v' }));
  t.is(error?.code, grpc.status.FAILED_PRECONDITION);
  t.is(error?.metadata.get('cutover-error-code')[0], 'NOT_LEADER');
  t.is(error?.metadata.get('cutover-leader-id')[0], String(leader.node.id));
  t.is(error?.metadata.get('cutover-leader-address')[0], leader.address);
});

test('invalid input gets INVALID_ARGUMENT with a message naming the field', async (t) => {
  const { servers, client } = await startCluster(t, 1);
  const error = await t.throwsAsync<grpc.ServiceError>(call(client('KV', servers[0]!.address), 'Put', { key: '', value: 'v' }));
  t.is(error?.code, grpc.status.INVALID_ARGUMENT);
  t.regex(error?.details ?? '', /^key: /);
  const txn = await t.throwsAsync<grpc.ServiceError>(call(client('KV', servers[0]!.address), 'Txn', { compare: [{ key: 'k', target: 'VALUE', operator: 'EQUAL' }] }));
  t.is(txn?.code, grpc.status.INVALID_ARGUMENT);
  t.regex(txn?.details ?? '', /compare\[0\]\.expected/);
});

test('Txn compare-and-set and Watch stream events with the previous value', async (t) => {
  const { servers, client } = await startCluster(t, 1);
  const kv = client('KV', servers[0]!.address);
  await call(kv, 'Put', { key: 'app/x', value: '1' });
  const events: Record<string, unknown>[] = [];
  const stream = (kv as unknown as { Watch: (r: object) => grpc.ClientReadableStream<{ events: Record<string, unknown>[] }> }).Watch({ prefix: 'app/', start_revision: 1 });
  stream.on('data', (msg) => events.push(...msg.events));
  stream.on('error', () => {});
  const txn = await call(kv, 'Txn', { compare: [{ key: 'app/x', target: 'VALUE', operator: 'EQUAL', value: '1' }], success: [{ put: { key: 'app/x', value: '2' } }], failure: [] });
  t.like(txn, { succeeded: true, revision: 2 });
  await waitFor('two watch events', () => (events.length >= 2 ? true : undefined));
  t.like(events[1], { type: 'PUT', revision: 2, kv: { value: '2' }, prev_kv: { value: '1' } });
  stream.cancel();
});

test('health is SERVING once a leader is known; reflection lists every service', async (t) => {
  const { servers } = await startCluster(t, 1);
  const definition = grpc.loadPackageDefinition(loadManagementDefinition()) as unknown as {
    grpc: { health: { v1: { Health: typeof grpc.Client } }; reflection: { v1: { ServerReflection: typeof grpc.Client } } };
  };
  const health = new definition.grpc.health.v1.Health(servers[0]!.address, grpc.credentials.createInsecure()) as Client;
  const checked = await waitFor('SERVING', async () => ((await call(health, 'Check', { service: '' })).status === 'SERVING' ? true : undefined));
  t.true(checked);
  const reflection = new definition.grpc.reflection.v1.ServerReflection(servers[0]!.address, grpc.credentials.createInsecure()) as unknown as {
    ServerReflectionInfo: () => grpc.ClientDuplexStream<object, { list_services_response?: { service: { name: string }[] } }>;
  };
  const stream = reflection.ServerReflectionInfo();
  const names = await new Promise<string[]>((resolve, reject) => {
    stream.on('data', (r) => resolve((r.list_services_response?.service ?? []).map((s: { name: string }) => s.name)));
    stream.on('error', reject);
    stream.write({ list_services: '' });
  });
  stream.end();
  for (const name of ['cutover.v1.KV', 'cutover.v1.Cluster', 'grpc.health.v1.Health', 'grpc.reflection.v1.ServerReflection']) t.true(names.includes(name), `${name} in ${names.join(', ')}`);
});
