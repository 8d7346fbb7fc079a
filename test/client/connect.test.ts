/**
 * The embedded client against real nodes in this process: each node serves the management API
 * and `cutover.peer.v1.Invoke` (with a fake handler that says who answered) on its own gRPC port
 * on 127.0.0.1; Raft between the nodes runs over the in-memory hub. Routing and instance records
 * are written through the KV API, as the update controller and the nodes would.
 */
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import { connect, type CutoverClient } from '../../src/index.ts';
import { addInvokeService, type InvokeHandler } from '../../src/api/invoke-service.ts';
import { loadManagementDefinition } from '../../src/api/protos.ts';
import { addManagementApi } from '../../src/api/server.ts';
import type { RemoteCallRequest } from '../../src/invoker/remote.ts';
import { CutoverNode } from '../../src/node/node.ts';
import { realClock } from '../../src/platform/scheduler.ts';
import { freePort, waitFor } from '../../src/platform/wait.ts';
import { deadlineIn } from '../../src/platform/wall-clock.ts';
import { MemoryStorage } from '../../src/raft/index.ts';
import { artifactBase, instanceKey, versionRoutingKey } from '../../src/slices/keys.ts';
import { CutoverError, NotLeaderError } from '../../src/util/errors.ts';
import type { MetricsWindow } from '../../src/invoker/metrics.ts';
import { nodeId } from '../../src/util/ids.ts';
import { silentLogger } from '../../src/util/logger.ts';
import { SeededRandom } from '../../src/util/random.ts';
import { MemoryHub } from '../helpers/memory-transport.ts';

type Teardown = { teardown: (fn: () => void | Promise<void>) => void };

const GREETER = artifactBase('org.example', 'greeter');
const OLD = '1.0.0';
const NEW = '2.0.0';

/** Answers every call with who ran it; keeps the metrics windows pushed to it while it leads. */
class NodeHandler implements InvokeHandler {
  calls = 0;
  readonly windows: MetricsWindow[] = [];
  node: CutoverNode | undefined;
  constructor(private readonly id: number) {}
  async invokeLocal(request: RemoteCallRequest): Promise<unknown> {
    this.calls++;
    return { node: this.id, version: request.version, instanceId: request.instanceId, payload: request.payload };
  }
  ingestMetrics(window: unknown): void {
    const leader = this.node!.leaderInfo();
    if (leader.id !== this.id) throw new NotLeaderError(leader.id, 'not the leader', leader.address);
    this.windows.push(window as MetricsWindow);
  }
}

interface TestNode {
  readonly id: number;
  readonly port: number;
  readonly address: string;
  readonly node: CutoverNode;
  readonly handler: NodeHandler;
  server: grpc.Server | undefined;
  detachHealth: (() => void) | undefined;
}

/** (Re)starts the node's gRPC server on its port: management API and Invoke. */
async function serve(n: TestNode): Promise<void> {
  const server = new grpc.Server();
  n.detachHealth = addManagementApi(server, n.node, { watchBufferBytesMax: 1 << 20 });
  addInvokeService(server, n.handler);
  await new Promise<number>((resolve, reject) => server.bindAsync(n.address, grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  n.server = server;
}

/** The node's gRPC server goes away (the node itself keeps running in the Raft group). */
function unserve(n: TestNode): void {
  n.detachHealth?.();
  n.server?.forceShutdown();
  n.server = undefined;
}

async function startCluster(t: Teardown, size: number, historyEventsMax = 10_000): Promise<TestNode[]> {
  const hub = new MemoryHub();
  const random = new SeededRandom(11);
  const ids = Array.from({ length: size }, (_, i) => i + 1);
  const ports: number[] = [];
  for (let i = 0; i < size; i++) ports.push(await freePort());
  const members = ids.map((id, i) => ({ id, address: `127.0.0.1:${ports[i]!}` }));
  const nodes: TestNode[] = [];
  for (const [i, id] of ids.entries()) {
    const node = new CutoverNode({ id, initialMembers: members, storage: MemoryStorage.bootstrap(ids), transport: hub.transport(id), clock: realClock, random: random.fork(), logger: silentLogger, settings: { tickMs: 10 }, kv: { historyEventsMax } });
    const n: TestNode = { id, port: ports[i]!, address: members[i]!.address, node, handler: new NodeHandler(id), server: undefined, detachHealth: undefined };
    n.handler.node = node;
    nodes.push(n);
    await serve(n);
    await node.start();
  }
  t.teardown(async () => {
    for (const n of nodes) {
      unserve(n);
      await n.node.stop();
    }
  });
  await waitFor('a leader', () => (nodes.some((n) => n.node.status().role === 'leader') ? true : undefined));
  return nodes;
}

type Unary = (request: object, options: grpc.CallOptions, callback: (error: grpc.ServiceError | null, response: Record<string, unknown>) => void) => void;
const definition = grpc.loadPackageDefinition(loadManagementDefinition()) as unknown as { cutover: { v1: { KV: typeof grpc.Client } } };

/** A Put through the KV API of a node that is serving; resolves with the revision. */
async function put(t: Teardown, nodes: TestNode[], key: string, value: unknown): Promise<number> {
  const target = nodes.find((n) => n.server !== undefined && n.node.status().role === 'leader') ?? nodes.find((n) => n.server !== undefined)!;
  const client = new definition.cutover.v1.KV(target.address, grpc.credentials.createInsecure()) as grpc.Client & Record<string, Unary>;
  t.teardown(() => client.close());
  const response = await new Promise<Record<string, unknown>>((resolve, reject) =>
    client['Put']!({ key, value: JSON.stringify(value) }, { deadline: deadlineIn(5000) }, (error, r) => (error ? reject(error) : resolve(r))),
  );
  return Number(response['revision']);
}

function routing(newWeight: number, oldWeight: number): object {
  return { updateId: 'u-1', oldVersion: OLD, newVersion: NEW, newWeight, oldWeight };
}

/** Old version on node 2, new version on node 3; all traffic to the old one. */
async function seed(t: Teardown, nodes: TestNode[]): Promise<number> {
  const [, n2, n3] = nodes as [TestNode, TestNode, TestNode];
  await put(t, nodes, instanceKey(nodeId(2), GREETER, OLD, 'old-a'), { state: 'ACTIVE', nodeId: 2, address: n2.address });
  await put(t, nodes, instanceKey(nodeId(3), GREETER, NEW, 'new-a'), { state: 'ACTIVE', nodeId: 3, address: n3.address });
  return put(t, nodes, versionRoutingKey(GREETER), routing(0, 1));
}

async function versionsOf(client: CutoverClient, calls: number): Promise<string[]> {
  const versions: string[] = [];
  for (let i = 0; i < calls; i++) versions.push(((await client.invoker.invoke(GREETER, 'greet', { i }, { timeoutMs: 5000 })) as { version: string }).version);
  return versions;
}

/** Waits until the client's table has applied `revision` under `prefix`. */
function caughtUp(client: CutoverClient, prefix: string, revision: number): Promise<true> {
  return waitFor(`the client to apply revision ${revision} of ${prefix}`, () => ((client.status().feed.revisions[prefix] ?? 0) >= revision ? true : undefined), { attempts: 200 });
}

test('routing follows a version-routing change, and calls go straight to the instance node', async (t) => {
  const nodes = await startCluster(t, 3);
  await seed(t, nodes);
  const client = await connect({ endpoints: [nodes[0]!.address], timeoutMs: 5000 });
  t.teardown(() => client.close());
  const first = (await client.invoker.invoke(GREETER, 'greet', { name: 'Ada' })) as Record<string, unknown>;
  t.deepEqual(first, { node: 2, version: OLD, instanceId: 'old-a', payload: { name: 'Ada' } });
  t.deepEqual(await versionsOf(client, 3), [OLD, OLD, OLD]);

  const quarter = await put(t, nodes, versionRoutingKey(GREETER), routing(1, 3));
  await caughtUp(client, 'version-routing/', quarter);
  // Smooth weighted round-robin: every window of 4 calls holds exactly one call to the new version.
  const versions = await versionsOf(client, 8);
  t.is(versions.filter((v) => v === NEW).length, 2, versions.join(' '));
  t.is(versions.slice(0, 4).filter((v) => v === NEW).length, 1, versions.join(' '));

  const all = await put(t, nodes, versionRoutingKey(GREETER), routing(1, 0));
  await caughtUp(client, 'version-routing/', all);
  t.deepEqual(await versionsOf(client, 3), [NEW, NEW, NEW]);
  // No proxy hop: the endpoint the client watches never served a call.
  t.is(nodes[0]!.handler.calls, 0);
  t.is(nodes[1]!.handler.calls + nodes[2]!.handler.calls, 1 + 3 + 8 + 3);
});

test('the client survives the loss of its endpoint and resumes the watch from its last revision', async (t) => {
  const nodes = await startCluster(t, 3);
  await seed(t, nodes);
  const [n1] = nodes as [TestNode];
  const client = await connect({ endpoints: nodes.map((n) => n.address), timeoutMs: 5000, reconnect: { initialMs: 20, maxMs: 200 } });
  t.teardown(() => client.close());
  t.is(client.status().feed.endpoint, n1.address);
  t.deepEqual(await versionsOf(client, 2), [OLD, OLD]);

  unserve(n1);
  // Written while the client has no watch, or is moving to another endpoint.
  const instance = await put(t, nodes, instanceKey(nodeId(2), GREETER, NEW, 'new-b'), { state: 'ACTIVE', nodeId: 2, address: nodes[1]!.address });
  const all = await put(t, nodes, versionRoutingKey(GREETER), routing(1, 0));
  await caughtUp(client, 'version-routing/', all);
  await caughtUp(client, 'instance/', instance);

  const status = client.status().feed;
  t.not(status.endpoint, n1.address);
  t.true(status.watching);
  t.true(status.failures >= 1);
  // Resumed, not reloaded: the one full read is the first one.
  t.is(status.loads, 1);
  t.is(status.compactedReloads, 0);
  const answers = [];
  for (let i = 0; i < 4; i++) answers.push((await client.invoker.invoke(GREETER, 'greet', null)) as { version: string; instanceId: string });
  t.true(answers.every((a) => a.version === NEW));
  t.deepEqual([...new Set(answers.map((a) => a.instanceId))].sort(), ['new-a', 'new-b']);
});

test('a resume from a compacted revision reloads the routing state with Range', async (t) => {
  const nodes = await startCluster(t, 3, 4);
  await seed(t, nodes);
  const [n1] = nodes as [TestNode];
  const client = await connect({ endpoints: [n1.address], timeoutMs: 5000, reconnect: { initialMs: 20, maxMs: 100 } });
  t.teardown(() => client.close());
  t.deepEqual(await versionsOf(client, 1), [OLD]);

  // The only endpoint goes away; while it is gone, more changes than its history keeps.
  unserve(n1);
  await waitFor('the client to notice', () => (client.status().feed.watching ? undefined : true));
  let last = 0;
  for (let i = 0; i < 8; i++) last = await put(t, nodes, `filler/${i}`, i);
  const all = await put(t, nodes, versionRoutingKey(GREETER), routing(1, 0));
  t.true(all > last);
  await waitFor('node 1 to apply the writes', () => (n1.node.kv.revision() >= all ? true : undefined));
  await serve(n1);

  await caughtUp(client, 'version-routing/', all).catch((e: Error) => {
    throw new Error(`${e.message}: ${JSON.stringify(client.status())}`);
  });
  const status = client.status().feed;
  t.true(status.compactedReloads >= 1, JSON.stringify(status));
  t.true(status.loads >= 2);
  t.deepEqual(await versionsOf(client, 2), [NEW, NEW]);
});

test('connect fails with UNAVAILABLE when no endpoint answers in time, and refuses bad endpoints', async (t) => {
  const port = await freePort();
  const error = await t.throwsAsync(connect({ endpoints: [`127.0.0.1:${port}`], timeoutMs: 300, reconnect: { initialMs: 20, maxMs: 50 } }), { instanceOf: CutoverError });
  t.is(error?.code, 'UNAVAILABLE');
  const bad = await t.throwsAsync(connect({ endpoints: ['no-port'] }), { instanceOf: CutoverError });
  t.is(bad?.code, 'INVALID_ARGUMENT');
  const none = await t.throwsAsync(connect({ endpoints: [] }), { instanceOf: CutoverError });
  t.is(none?.code, 'INVALID_ARGUMENT');
});

test('an artifact the cluster does not know is UNKNOWN_SLICE; a dead instance node is retried on another instance', async (t) => {
  const nodes = await startCluster(t, 3);
  await seed(t, nodes);
  const [n1, n2] = nodes as [TestNode, TestNode];
  // A second old instance, on node 1; then node 1 stops serving invokes.
  const revision = await put(t, nodes, instanceKey(nodeId(1), GREETER, OLD, 'old-b'), { state: 'ACTIVE', nodeId: 1, address: n1.address });
  const client = await connect({ endpoints: [n2.address], timeoutMs: 5000 });
  t.teardown(() => client.close());
  await caughtUp(client, 'instance/', revision);
  const unknown = await t.throwsAsync(client.invoker.invoke('org.example:nobody', 'greet', null), { instanceOf: CutoverError });
  t.is(unknown?.code, 'UNKNOWN_SLICE');
  unserve(n1);
  // Round robin over old-a (node 2) and old-b (node 1): every call still succeeds on node 2.
  for (let i = 0; i < 4; i++) t.like(await client.invoker.invoke(GREETER, 'greet', null), { node: 2, version: OLD });
  t.true(client.status().retries >= 1);
});

test('the client pushes its call metrics to the leader, following NOT_LEADER hints', async (t) => {
  const nodes = await startCluster(t, 3);
  await seed(t, nodes);
  const leader = nodes.find((n) => n.node.isLeader())!;
  const follower = nodes.find((n) => n !== leader)!;
  const client = await connect({ endpoints: [follower.address], timeoutMs: 5000, metricsIntervalMs: 50 });
  t.teardown(() => client.close());
  for (let i = 0; i < 5; i++) await client.invoker.invoke(GREETER, 'greet', {});
  const counted = () => leader.handler.windows.flatMap((w) => w.versions).reduce((sum, v) => sum + v.count, 0);
  await waitFor('the leader to receive the client windows', async () => counted() >= 5, { attempts: 100, intervalMs: 50 });
  t.is(counted(), 5);
  t.true(leader.handler.windows.every((w) => w.nodeId >= 2 ** 40), 'a client id never collides with a node id');
  t.is(follower.handler.windows.length, 0);
});
