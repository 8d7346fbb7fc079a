/**
 * The cutover.v1.Events service in process: one node (in-memory Raft storage) serving the
 * management API with Slices and RollingUpdates, with a SliceHost and an UpdatesHost wired as
 * `cutover node` wires them, plus the Events service (added here; the lead wires it in server.ts).
 * Operators act through real gRPC calls, named by request fields or by the `x-cutover-actor`
 * metadata; the audit trail is then read with List (every filter) and followed with Watch.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { eventsService } from '../../src/api/events-service.ts';
import { addInvokeService } from '../../src/api/invoke-service.ts';
import { LOADER_OPTIONS, PROTO_ROOT, loadManagementDefinition } from '../../src/api/protos.ts';
import { addManagementApi } from '../../src/api/server.ts';
import { nodeClusterPort } from '../../src/node/cluster-port.ts';
import { CutoverNode } from '../../src/node/node.ts';
import { SliceHost } from '../../src/node/slice-host.ts';
import { UpdatesHost } from '../../src/node/updates-host.ts';
import { realClock } from '../../src/platform/scheduler.ts';
import { waitFor } from '../../src/platform/wait.ts';
import { epochMs } from '../../src/platform/wall-clock.ts';
import { MemoryStorage } from '../../src/raft/index.ts';
import { packArtifact } from '../../src/slices/artifact-package.ts';
import { silentLogger } from '../../src/util/logger.ts';
import { SeededRandom } from '../../src/util/random.ts';
import { MemoryHub } from '../helpers/memory-transport.ts';
import { EXAMPLES_DIR } from '../slices/artifact-fixtures.ts';

type Callback = (error: grpc.ServiceError | null, response: Record<string, unknown>) => void;
type Client = grpc.Client &
  Record<string, (request: object, metadata: grpc.Metadata, callback: Callback) => void> & {
    Publish: (metadata: grpc.Metadata, callback: Callback) => grpc.ClientWritableStream<{ chunk: Buffer }>;
    Watch: (request: object) => grpc.ClientReadableStream<PbEvent>;
  };

interface PbEvent {
  id: string;
  at_ms: number;
  actor: { kind: string; name: string };
  action: string;
  target: { artifact: string; update_id: string; version: string };
  reason: string;
  details_json: string;
  revision: number;
}

const GREETER = 'org.example:greeter';
const definition = grpc.loadPackageDefinition(loadManagementDefinition()) as unknown as { cutover: { v1: Record<string, typeof grpc.Client> } };
const eventsDefinition = grpc.loadPackageDefinition(protoLoader.loadSync(path.join(PROTO_ROOT, 'cutover/v1/events.proto'), LOADER_OPTIONS)) as unknown as {
  cutover: { v1: Record<string, typeof grpc.Client & { service: grpc.ServiceDefinition }> };
};

function as(name: string): grpc.Metadata {
  const metadata = new grpc.Metadata();
  if (name !== '') metadata.set('x-cutover-actor', name);
  return metadata;
}

function call(client: Client, method: string, request: object, metadata = new grpc.Metadata()): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => client[method]!(request, metadata, (error, response) => (error ? reject(error) : resolve(response))));
}

function publish(client: Client, bytes: Uint8Array, metadata: grpc.Metadata): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const stream = client.Publish(metadata, (error, response) => (error ? reject(error) : resolve(response)));
    stream.write({ chunk: Buffer.from(bytes) });
    stream.end();
  });
}

interface Setup {
  node: CutoverNode;
  updates: Client;
  slices: Client;
  events: Client;
}

async function startNode(t: ExecutionContext): Promise<Setup> {
  const artifactDir = await mkdtemp(path.join(tmpdir(), 'cutover-events-api-'));
  const server = new grpc.Server();
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  const address = `127.0.0.1:${port}`;
  const hub = new MemoryHub();
  const node = new CutoverNode({ id: 1, initialMembers: [{ id: 1, address }], storage: MemoryStorage.bootstrap([1]), transport: hub.transport(1), clock: realClock, random: new SeededRandom(7), logger: silentLogger, settings: { tickMs: 10 }, forwardProposals: false });
  const capacity = { nodeDownAfterMs: 15_000, nodeInstancesMax: 64 };
  const host = new SliceHost({
    port: nodeClusterPort(node),
    clock: realClock,
    wallClockMs: epochMs,
    logger: silentLogger,
    address,
    leader: () => node.leaderInfo(),
    settings: { artifactDir, ...capacity, invokeTimeoutMs: 5000, metricsIntervalMs: 200, instances: { drainTimeoutMs: 2000, stoppedRetentionMs: 200 } },
  });
  const updatesHost = new UpdatesHost({ port: nodeClusterPort(node), clock: realClock, wallClockMs: epochMs, logger: silentLogger, aggregator: host.aggregator, ...capacity });
  addManagementApi(server, node, {
    watchBufferBytesMax: 1 << 20,
    slices: { port: nodeClusterPort(node), invoker: host.invoker, artifactBytesMax: 1 << 20, wallClockMs: epochMs },
    updates: { port: nodeClusterPort(node), clock: realClock, wallClockMs: epochMs, health: host.aggregator, healthWindowMsMax: 60_000, leader: () => node.leaderInfo(), ...capacity },
  });
  server.addService(eventsDefinition.cutover.v1.Events!.service, eventsService({ port: nodeClusterPort(node), watchBufferBytesMax: 1 << 20 }));
  addInvokeService(server, host);
  await node.start();
  await host.start();
  updatesHost.start();
  const updates = new definition.cutover.v1.RollingUpdates!(address, grpc.credentials.createInsecure()) as Client;
  const slices = new definition.cutover.v1.Slices!(address, grpc.credentials.createInsecure()) as Client;
  const events = new eventsDefinition.cutover.v1.Events!(address, grpc.credentials.createInsecure()) as unknown as Client;
  t.teardown(async () => {
    for (const client of [updates, slices, events]) client.close();
    updatesHost.stop();
    await host.stop();
    await node.stop();
    server.forceShutdown();
    await rm(artifactDir, { recursive: true, force: true });
  });
  await waitFor('a leader', () => (node.isLeader() ? true : undefined));
  for (const version of ['1.0.0', '2.0.0', '2.1.0-bad']) await publish(slices, (await packArtifact(path.join(EXAMPLES_DIR, version))).bytes, as('carol'));
  await call(slices, 'Deploy', { artifact: GREETER, version: '1.0.0', instances: 2 }, as('carol'));
  await waitFor('2 ACTIVE instances of 1.0.0', async () => ((await call(slices, 'Instances', { artifact: GREETER })).instances as { state: string }[]).filter((i) => i.state === 'ACTIVE').length === 2, { attempts: 200 });
  return { node, updates, slices, events };
}

async function list(events: Client, request: object): Promise<{ events: PbEvent[]; more: boolean; revision: number }> {
  return (await call(events, 'List', request)) as unknown as { events: PbEvent[]; more: boolean; revision: number };
}

async function untilState(updates: Client, id: string, state: string): Promise<void> {
  await waitFor(`update ${id} ${state}`, async () => (((await call(updates, 'Get', { update_id: id })).update as { state: string }).state === state ? true : undefined), { attempts: 400, intervalMs: 50 });
}

async function refused(t: ExecutionContext, promise: Promise<unknown>, status: grpc.status, code: string, message?: RegExp): Promise<void> {
  const error = await t.throwsAsync<grpc.ServiceError>(promise);
  t.is(error?.code, status, `status of ${code}: ${error?.details}`);
  t.is(error?.metadata?.get('cutover-error-code')[0], code, error?.details);
  if (message !== undefined) t.regex(error?.details ?? '', message);
}

/** Collects a Watch stream's events until `done` holds (bounded by waitFor's attempts). */
function collect(stream: grpc.ClientReadableStream<PbEvent>): { readonly events: PbEvent[]; error: grpc.ServiceError | undefined } {
  const out = { events: [] as PbEvent[], error: undefined as grpc.ServiceError | undefined };
  stream.on('data', (event: PbEvent) => out.events.push(event));
  stream.on('error', (error: grpc.ServiceError) => {
    out.error = error;
  });
  return out;
}

test('an update\'s life is in the audit trail: who published, deployed, started, routed, completed, and what the controller did; List filters it, Watch follows it', async (t) => {
  const { updates, events } = await startNode(t);
  const before = await list(events, {});
  t.deepEqual(
    before.events.map((e) => `${e.action} ${e.actor.name}`),
    ['slice.published carol', 'slice.published carol', 'slice.published carol', 'slice.deployed carol'],
  );
  t.like(before.events[3], { target: { artifact: GREETER, version: '1.0.0' }, reason: 'deployed org.example:greeter:1.0.0 with 2 instance(s)' });
  const watched = collect(events.Watch({ from_revision: before.revision + 1, update_id: '' }));
  const watchedRouting = collect(events.Watch({ from_revision: before.revision + 1, action: 'update.routing' }));

  const started = (await call(updates, 'Start', { artifact: GREETER, version: '2.0.0', instances: 2, cleanup_policy: 'IMMEDIATE', initiated_by: 'alice' })).update as { id: string };
  await untilState(updates, started.id, 'ROUTING');
  await call(updates, 'SetRouting', { update_id: started.id, ratio: '1:1', actor: 'bob', reason: 'half' });
  await call(updates, 'SetRouting', { update_id: started.id, ratio: '1:0', actor: 'bob' });
  await call(updates, 'Complete', { update_id: started.id, actor: 'alice', reason: 'looks good' });
  await untilState(updates, started.id, 'COMPLETED');

  const life = await list(events, { update_id: started.id });
  t.deepEqual(
    life.events.map((e) => `${e.action} ${e.actor.name}`),
    [
      'update.started alice',
      'update.step controller',
      'update.step controller',
      'update.step controller',
      'update.step controller',
      'update.routing bob',
      'update.routing bob',
      'update.completing alice',
      'update.completed controller',
      'update.cleanup controller',
    ],
  );
  t.like(life.events[5], { reason: 'half', target: { artifact: GREETER, update_id: started.id, version: '2.0.0' } });
  t.like(JSON.parse(life.events[5]!.details_json) as object, { ratio: '1:1', newWeight: 1, oldWeight: 1 });
  t.true(life.events.every((e, i) => i === 0 || Number(e.revision) >= Number(life.events[i - 1]!.revision)), 'commit order');

  // Filters: actor, action, artifact, limit with more, newest first, a time window.
  t.deepEqual(
    (await list(events, { actor: 'bob' })).events.map((e) => e.action),
    ['update.routing', 'update.routing'],
  );
  t.deepEqual(
    (await list(events, { action: 'update.completed' })).events.map((e) => e.target.update_id),
    [started.id],
  );
  t.is((await list(events, { artifact: GREETER })).events.length, 14);
  t.is((await list(events, { artifact: 'org.example:other' })).events.length, 0);
  const limited = await list(events, { limit: 3, order: 'NEWEST_FIRST' });
  t.true(limited.more);
  t.deepEqual(
    limited.events.map((e) => e.action),
    ['update.cleanup', 'update.completed', 'update.completing'],
  );
  const routed = life.events[5]!;
  const window = await list(events, { since_ms: Number(routed.at_ms), until_ms: Number(routed.at_ms) + 1 });
  t.true(window.events.some((e) => e.id === routed.id));
  t.true(window.events.every((e) => Number(e.at_ms) === Number(routed.at_ms)));

  // The watches saw the same events, live.
  await waitFor('the watch caught up', () => (watched.events.length >= life.events.length ? true : undefined), { attempts: 200 });
  t.deepEqual(
    watched.events.map((e) => e.id),
    life.events.map((e) => e.id),
  );
  t.deepEqual(
    watchedRouting.events.map((e) => e.reason),
    ['half', 'routing set by an operator'],
  );
});

test('a manual rollback records who rolled back and why, then the controller finishing it', async (t) => {
  const { updates, events } = await startNode(t);
  const started = (await call(updates, 'Start', { artifact: GREETER, version: '2.1.0-bad', instances: 2, initiated_by: 'alice' })).update as { id: string };
  await untilState(updates, started.id, 'ROUTING');
  await call(updates, 'SetRouting', { update_id: started.id, ratio: '1:3', actor: 'alice' });
  await call(updates, 'Rollback', { update_id: started.id, actor: 'bob', reason: 'errors in the logs' });
  await untilState(updates, started.id, 'ROLLED_BACK');
  const trail = (await list(events, { update_id: started.id })).events;
  const rollback = trail.find((e) => e.action === 'update.rollback-started');
  t.like(rollback, { actor: { kind: 'user', name: 'bob' }, reason: 'errors in the logs' });
  t.like(JSON.parse(rollback?.details_json ?? '{}') as object, { from: 'ROUTING', to: 'ROLLING_BACK', automatic: false, routing: '0:1' });
  t.like(trail.at(-1), { action: 'update.rolled-back', actor: { name: 'controller' } });
});

test('Scale and Undeploy are recorded with the x-cutover-actor operator, anonymous without one', async (t) => {
  const { slices, events } = await startNode(t);
  await call(slices, 'Scale', { artifact: GREETER, version: '1.0.0', instances: 3 }, as('dave'));
  await call(slices, 'Undeploy', { artifact: GREETER, version: '' });
  const trail = (await list(events, { order: 'NEWEST_FIRST', limit: 2 })).events;
  t.like(trail[1], { action: 'slice.scaled', actor: { kind: 'user', name: 'dave' }, target: { artifact: GREETER, version: '1.0.0' } });
  t.like(JSON.parse(trail[1]!.details_json) as object, { from: 2, to: 3 });
  t.like(trail[0], { action: 'slice.undeployed', actor: { name: 'anonymous' } });
  t.like(JSON.parse(trail[0]!.details_json) as object, { versions: ['1.0.0'], routingRemoved: true });
  await refused(t, call(slices, 'Scale', { artifact: GREETER, version: '1.0.0', instances: 1 }, as('x'.repeat(200))), grpc.status.INVALID_ARGUMENT, 'INVALID_ARGUMENT', /x-cutover-actor/);
});

test('malformed filters are INVALID_ARGUMENT naming the field; a Watch from a compacted revision is OUT_OF_RANGE', async (t) => {
  const { node, events } = await startNode(t);
  await refused(t, list(events, { action: 'update.exploded' }), grpc.status.INVALID_ARGUMENT, 'INVALID_ARGUMENT', /^action: must be one of update.started/);
  await refused(t, list(events, { artifact: 'greeter' }), grpc.status.INVALID_ARGUMENT, 'INVALID_ARGUMENT', /^artifact:/);
  await refused(t, list(events, { update_id: 'no/such id' }), grpc.status.INVALID_ARGUMENT, 'INVALID_ARGUMENT', /^update_id:/);
  await refused(t, list(events, { order: 'SIDEWAYS' }), grpc.status.INVALID_ARGUMENT, 'INVALID_ARGUMENT', /^order:/);
  await refused(t, list(events, { limit: 5000 }), grpc.status.INVALID_ARGUMENT, 'INVALID_ARGUMENT', /^limit:/);
  await refused(t, list(events, { since_ms: 2000, until_ms: 1000 }), grpc.status.INVALID_ARGUMENT, 'INVALID_ARGUMENT', /^until:/);

  const bad = collect(events.Watch({ action: 'nope' }));
  await waitFor('the refusal', () => bad.error, { attempts: 100 });
  t.is(bad.error?.code, grpc.status.INVALID_ARGUMENT);
  t.is(bad.error?.metadata.get('cutover-error-code')[0], 'INVALID_ARGUMENT');

  await node.propose({ type: 'compact', revision: node.kv.revision() });
  const compacted = collect(events.Watch({ from_revision: 1 }));
  await waitFor('the refusal', () => compacted.error, { attempts: 100 });
  t.is(compacted.error?.code, grpc.status.OUT_OF_RANGE);
  t.is(compacted.error?.metadata.get('cutover-error-code')[0], 'WATCH_COMPACTED');
});

test('membership changes and leader transfers are recorded with their operator, after (or, for a transfer, before) the change', async (t) => {
  const hub = new MemoryHub();
  const random = new SeededRandom(5);
  const ids = [1, 2, 3];
  const servers: { node: CutoverNode; server: grpc.Server; address: string }[] = [];
  for (let i = 0; i < ids.length; i++) {
    const server = new grpc.Server();
    const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
    servers.push({ node: undefined as unknown as CutoverNode, server, address: `127.0.0.1:${port}` });
  }
  const members = ids.map((id, i) => ({ id, address: servers[i]!.address }));
  for (const [i, id] of ids.entries()) {
    const node = new CutoverNode({ id, initialMembers: members, storage: MemoryStorage.bootstrap(ids), transport: hub.transport(id), clock: realClock, random: random.fork(), logger: silentLogger, settings: { tickMs: 10 }, forwardProposals: false });
    servers[i]!.node = node;
    addManagementApi(servers[i]!.server, node, { watchBufferBytesMax: 1 << 20 });
    servers[i]!.server.addService(eventsDefinition.cutover.v1.Events!.service, eventsService({ port: nodeClusterPort(node) }));
    await node.start();
  }
  const clients: grpc.Client[] = [];
  const client = (service: string, address: string): Client => {
    const made = service === 'Events' ? new eventsDefinition.cutover.v1.Events!(address, grpc.credentials.createInsecure()) : new definition.cutover.v1[service]!(address, grpc.credentials.createInsecure());
    clients.push(made);
    return made as unknown as Client;
  };
  t.teardown(async () => {
    for (const c of clients) c.close();
    for (const s of servers) {
      await s.node.stop();
      s.server.forceShutdown();
    }
  });
  const leaderOf = (): (typeof servers)[number] | undefined => servers.find((s) => s.node.isLeader());
  const first = await waitFor('a leader', () => leaderOf(), { attempts: 400 });
  await call(client('Cluster', first.address), 'AddMember', { id: 4, address: '127.0.0.1:1' }, as('erin'));
  await call(client('Cluster', first.address), 'RemoveMember', { id: 4 }, as('erin'));
  const target = servers.find((s) => s !== first)!;
  await call(client('Cluster', first.address), 'TransferLeader', { target_id: target.node.id }, as('frank'));
  await waitFor('the transfer', () => (target.node.isLeader() ? true : undefined), { attempts: 400 });
  await refused(t, call(client('Cluster', target.address), 'TransferLeader', { target_id: 4 }), grpc.status.INVALID_ARGUMENT, 'INVALID_ARGUMENT', /^target_id: must be a voter/);

  const trail = (await list(client('Events', servers[2]!.address), {})).events;
  t.deepEqual(
    trail.map((e) => `${e.action} ${e.actor.name}`),
    ['member.added erin', 'member.removed erin', 'leader.transferred frank'],
  );
  t.like(trail[0], { target: { member_id: 4 }, reason: 'member 4 added as a learner at 127.0.0.1:1' });
  t.like(JSON.parse(trail[2]!.details_json) as object, { from: first.node.id, to: target.node.id });
});
