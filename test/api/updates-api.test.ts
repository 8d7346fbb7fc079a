/**
 * The cutover.v1.RollingUpdates management API in process: one node (in-memory Raft storage)
 * serves the management API with Slices and RollingUpdates and the peer Invoke service, with a
 * SliceHost and an UpdatesHost wired as `cutover node` wires them (src/cli/node-command.ts). The
 * greeter example is published and deployed, then moved to 2.0.0 by a MANUAL update through real
 * gRPC calls (real instances, the real invoker and the real controller), and refusals are checked
 * as a client sees them: the gRPC status and our code in the `cutover-error-code` trailer.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import * as grpc from '@grpc/grpc-js';
import { addInvokeService } from '../../src/api/invoke-service.ts';
import { loadManagementDefinition } from '../../src/api/protos.ts';
import { addManagementApi } from '../../src/api/server.ts';
import { MemoryClusterPort, nodeClusterPort } from '../../src/node/cluster-port.ts';
import { updatesService } from '../../src/api/updates-service.ts';
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
  Record<string, (request: object, callback: Callback) => void> & {
    Publish: (callback: Callback) => grpc.ClientWritableStream<{ chunk: Buffer }>;
    Watch: (request: object) => grpc.ClientReadableStream<Record<string, unknown>>;
  };

interface PbUpdate {
  id: string;
  state: string;
  routing: string;
  paused: boolean;
  revision: number | string;
  transitions: { step: string }[];
  rollback: { reason: string; initiated_by: { kind: string; name: string } } | null;
}

const GREETER = 'org.example:greeter';
const definition = grpc.loadPackageDefinition(loadManagementDefinition()) as unknown as { cutover: { v1: Record<string, typeof grpc.Client> } };

async function startNode(t: ExecutionContext): Promise<{ updates: Client; slices: Client }> {
  const artifactDir = await mkdtemp(path.join(tmpdir(), 'cutover-updates-api-'));
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
  addInvokeService(server, host);
  await node.start();
  await host.start();
  updatesHost.start();
  const updates = new definition.cutover.v1.RollingUpdates!(address, grpc.credentials.createInsecure()) as Client;
  const slices = new definition.cutover.v1.Slices!(address, grpc.credentials.createInsecure()) as Client;
  t.teardown(async () => {
    updates.close();
    slices.close();
    updatesHost.stop();
    await host.stop();
    await node.stop();
    server.forceShutdown();
    await rm(artifactDir, { recursive: true, force: true });
  });
  await waitFor('a leader', () => (node.isLeader() ? true : undefined));
  for (const version of ['1.0.0', '2.0.0', '2.1.0-bad']) await publish(slices, (await packArtifact(path.join(EXAMPLES_DIR, version))).bytes);
  await call(slices, 'Deploy', { artifact: GREETER, version: '1.0.0', instances: 2 });
  await waitFor('2 ACTIVE instances of 1.0.0', async () => ((await call(slices, 'Instances', { artifact: GREETER })).instances as { state: string }[]).filter((i) => i.state === 'ACTIVE').length === 2, { attempts: 200 });
  return { updates, slices };
}

function call(client: Client, method: string, request: object): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => client[method]!(request, (error, response) => (error ? reject(error) : resolve(response))));
}

function publish(client: Client, bytes: Uint8Array): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const stream = client.Publish((error, response) => (error ? reject(error) : resolve(response)));
    stream.write({ chunk: Buffer.from(bytes) });
    stream.end();
  });
}

async function refused(t: ExecutionContext, promise: Promise<unknown>, status: grpc.status, code: string, message?: RegExp): Promise<void> {
  const error = await t.throwsAsync<grpc.ServiceError>(promise);
  t.is(error?.code, status, `status of ${code}: ${error?.details}`);
  t.is(error?.metadata?.get('cutover-error-code')[0], code, error?.details);
  if (message !== undefined) t.regex(error?.details ?? '', message);
}

async function update(client: Client, id: string): Promise<PbUpdate> {
  return (await call(client, 'Get', { update_id: id })).update as PbUpdate;
}

async function untilState(client: Client, id: string, state: string): Promise<PbUpdate> {
  let last: PbUpdate | undefined;
  try {
    return await waitFor(`update ${id} ${state}`, async () => {
      last = await update(client, id);
      return last.state === state ? last : undefined;
    }, { attempts: 400, intervalMs: 50 });
  } catch (error) {
    throw new Error(`${(error as Error).message}; it is ${last?.state}, last step ${JSON.stringify(last?.transitions.at(-1))}`, { cause: error });
  }
}

async function hello(slices: Client): Promise<string> {
  const reply = await call(slices, 'Invoke', { artifact: GREETER, method: 'hello', payload_json: '{"name":"api"}' });
  return (JSON.parse(reply.payload_json as string) as { version: string }).version;
}

test('Start → Get → SetRouting → Complete moves greeter 1.0.0 to 2.0.0: routing, calls, cleanup, history, statistics, health and the watch stream', async (t) => {
  const { updates, slices } = await startNode(t);
  const started = (await call(updates, 'Start', { artifact: GREETER, version: '2.0.0', instances: 2, cleanup_policy: 'IMMEDIATE', initiated_by: 'alice' })).update as PbUpdate;
  t.like(started, { state: 'PENDING', routing: '', paused: false });
  t.regex(started.id, /^greeter-2\.0\.0-r\d+$/);
  const events: Record<string, unknown>[] = [];
  const stream = updates.Watch({ from_revision: Number(started.revision), update_id: '', artifact: GREETER });
  stream.on('data', (event: Record<string, unknown>) => events.push(event));
  stream.on('error', () => {});
  t.teardown(() => stream.cancel());

  await refused(t, call(updates, 'Start', { artifact: GREETER, version: '2.0.0' }), grpc.status.ALREADY_EXISTS, 'UPDATE_ACTIVE', new RegExp(`update ${started.id} of ${GREETER}`));

  const deployed = await untilState(updates, started.id, 'ROUTING');
  t.is(deployed.routing, '0:1', 'new instances ACTIVE at 0%, waiting for the operator');
  t.deepEqual(deployed.transitions.map((e) => e.step), ['start', 'PENDING -> VALIDATING', 'VALIDATING -> DEPLOYING', 'DEPLOYING -> DEPLOYED', 'DEPLOYED -> ROUTING']);
  for (let i = 0; i < 4; i++) t.is(await hello(slices), '1.0.0');
  await refused(t, call(updates, 'Complete', { update_id: started.id }), grpc.status.FAILED_PRECONDITION, 'ROUTING_INCOMPLETE', /it is 0:1/);

  const half = await call(updates, 'SetRouting', { update_id: started.id, ratio: '1:1', actor: 'alice', reason: 'half' });
  t.like(half, { changed: true, update: { state: 'ROUTING', routing: '1:1' } });
  const versions = [];
  for (let i = 0; i < 8; i++) versions.push(await hello(slices));
  t.is(versions.filter((v) => v === '2.0.0').length, 4, `exact 1:1 split: ${versions.join(' ')}`);
  t.like(await call(updates, 'SetRouting', { update_id: started.id, ratio: '1:1' }), { changed: false });
  await refused(t, call(updates, 'Complete', { update_id: started.id }), grpc.status.FAILED_PRECONDITION, 'ROUTING_INCOMPLETE', /complete needs routing 1:0, it is 1:1/);

  // Health (this node leads): per version, from the leader's aggregated windows.
  const health = await waitFor('calls of 2.0.0 in the health window', async () => {
    const h = await call(updates, 'Health', { update_id: started.id });
    return Number((h.new_version as { request_count: unknown }).request_count) > 0 ? h : undefined;
  }, { attempts: 100 });
  t.like(health, { update_id: started.id, window_ms: 11_000, verdict: 'inconclusive' });
  t.like(health.new_version, { version: '2.0.0', error_rate: 0 });
  t.like(health.old_version, { version: '1.0.0' });
  t.true(Number((health.new_version as { collected_at_ms: unknown }).collected_at_ms) > 1_600_000_000_000, 'collectedAt is wall-clock time');

  await call(updates, 'SetRouting', { update_id: started.id, ratio: '1:0' });
  for (let i = 0; i < 3; i++) t.is(await hello(slices), '2.0.0');
  t.like(await call(updates, 'Complete', { update_id: started.id, actor: 'alice' }), { changed: true, update: { state: 'COMPLETING', routing: '1:0' } });
  const done = await untilState(updates, started.id, 'COMPLETED');
  t.is(done.transitions.at(-1)?.step, 'COMPLETING -> COMPLETED');
  await waitFor('1.0.0 removed', async () => ((await call(slices, 'List', { artifact: GREETER })).versions as { version: string; deployed: boolean }[]).find((v) => v.version === '1.0.0')?.deployed === false);

  const history = (await call(updates, 'History', { artifact: GREETER })).releases as Record<string, unknown>[];
  t.is(history.length, 1);
  t.like(history[0], { revision: 1, artifact: GREETER, version: '2.0.0', previous_version: '1.0.0', status: 'COMPLETED', update_id: started.id, strategy: 'MANUAL', initiated_by: 'alice', rollback_of_revision: 0 });
  t.like(JSON.parse(history[0]!.settings_json as string), { strategy: 'MANUAL', instances: 2, cleanupPolicy: 'IMMEDIATE' });
  t.like(await call(updates, 'Statistics', { artifact: GREETER }), { artifact: GREETER, total: 1, successful: 1, failed: 0, success_rate: 100 });

  const listed = await call(updates, 'List', { artifact: '', state: '', all: false });
  t.deepEqual(listed.updates, [], 'no active update');
  t.is(((await call(updates, 'List', { artifact: GREETER, state: '', all: true })).updates as unknown[]).length, 1);
  t.is(((await call(updates, 'List', { artifact: '', state: 'COMPLETED', all: false })).updates as unknown[]).length, 1);

  // The watch saw every transition once and every routing change, in order.
  await waitFor('the last event', () => events.some((e) => (e.transition as { step?: string } | null)?.step === 'COMPLETING -> COMPLETED'));
  const seen = events.map((e) => (e.kind === 'ROUTING' ? `routing ${(e.routing as { ratio: string }).ratio}` : (e.transition as { step: string }).step));
  t.deepEqual(seen, [
    'start',
    'PENDING -> VALIDATING',
    'VALIDATING -> DEPLOYING',
    'routing 0:1',
    'DEPLOYING -> DEPLOYED',
    'DEPLOYED -> ROUTING',
    'route 1:1',
    'routing 1:1',
    'route 1:0',
    'routing 1:0',
    'ROUTING -> COMPLETING',
    'COMPLETING -> COMPLETED',
  ]);
});

test('Rollback commits routing 0:1 with the acknowledgement; RollbackTo, Cancel and bad input answer with their codes', async (t) => {
  const { updates, slices } = await startNode(t);
  const id = ((await call(updates, 'Start', { artifact: GREETER, version: '2.1.0-bad', instances: 1, initiated_by: 'bob' })).update as PbUpdate).id;
  await untilState(updates, id, 'ROUTING');
  await call(updates, 'SetRouting', { update_id: id, ratio: '1:1' });
  await refused(t, call(updates, 'Cancel', { update_id: id }), grpc.status.FAILED_PRECONDITION, 'INVALID_TRANSITION', /ROUTING to CANCELLED/);
  await refused(t, call(updates, 'Promote', { update_id: id }), grpc.status.FAILED_PRECONDITION, 'STRATEGY_MISMATCH');
  await refused(t, call(updates, 'Approve', { update_id: id }), grpc.status.FAILED_PRECONDITION, 'NOTHING_TO_APPROVE');
  const paused = await call(updates, 'Pause', { update_id: id, actor: 'bob', reason: 'checking' });
  t.like(paused, { changed: true, update: { paused: true } });
  const rolled = await call(updates, 'Rollback', { update_id: id, actor: 'bob', reason: 'too slow' });
  t.like(rolled, { changed: true, update: { state: 'ROLLING_BACK', routing: '0:1', paused: false, rollback: { reason: 'too slow', initiated_by: { kind: 'user', name: 'bob' } } } });
  for (let i = 0; i < 4; i++) t.is(await hello(slices), '1.0.0', 'no call reaches the new version once Rollback is acknowledged');
  await untilState(updates, id, 'ROLLED_BACK');
  t.like((await call(updates, 'History', { artifact: GREETER })).releases, [{ revision: 1, status: 'ROLLED_BACK', version: '2.1.0-bad' }]);
  t.like(await call(updates, 'Statistics', { artifact: GREETER }), { total: 1, successful: 0, failed: 1, success_rate: 0 });

  await refused(t, call(updates, 'RollbackTo', { artifact: GREETER, last_successful: true }), grpc.status.FAILED_PRECONDITION, 'NO_SUCCESSFUL_RELEASE');
  await refused(t, call(updates, 'RollbackTo', { artifact: GREETER, revision: 9 }), grpc.status.NOT_FOUND, 'RELEASE_NOT_FOUND');
  await refused(t, call(updates, 'RollbackTo', { artifact: GREETER }), grpc.status.INVALID_ARGUMENT, 'INVALID_ARGUMENT', /^target: /);
  // Revision 1 rolled out 2.1.0-bad (and was rolled back): naming it starts that update again.
  const again = await call(updates, 'RollbackTo', { artifact: GREETER, revision: 1, initiated_by: 'carol' });
  t.like(again, { update: { state: 'PENDING' }, detail: 'rolling back to revision 1 (2.1.0-bad)' });
  const againId = (again.update as PbUpdate).id;
  // Cancel while nothing is deployed; once the controller has deployed, Rollback instead.
  await call(updates, 'Cancel', { update_id: againId, actor: 'carol' }).catch(() => call(updates, 'Rollback', { update_id: againId, actor: 'carol' }));
  await waitFor('the second update finished', async () => ['CANCELLED', 'ROLLED_BACK'].includes((await update(updates, againId)).state), { attempts: 400 });
  const second = ((await call(updates, 'History', { artifact: GREETER })).releases as Record<string, unknown>[])[1];
  t.like(second, { revision: 2, version: '2.1.0-bad', update_id: againId, rollback_of_revision: 1, initiated_by: 'carol' });

  // Bad input and unknown ids.
  await refused(t, call(updates, 'Start', { artifact: 'no-colon', version: '2.0.0' }), grpc.status.INVALID_ARGUMENT, 'INVALID_ARGUMENT', /^artifactBase: /);
  await refused(t, call(updates, 'Start', { artifact: GREETER, version: 'v2' }), grpc.status.INVALID_ARGUMENT, 'INVALID_ARGUMENT', /^version: /);
  await refused(t, call(updates, 'Start', { artifact: GREETER, version: '2.0.0', strategy: 'SIDEWAYS' }), grpc.status.INVALID_ARGUMENT, 'INVALID_ARGUMENT', /^strategy: must be one of MANUAL/);
  await refused(t, call(updates, 'Start', { artifact: GREETER, version: '2.0.0', max_error_rate: 3 }), grpc.status.INVALID_ARGUMENT, 'INVALID_ARGUMENT', /^maxErrorRate: /);
  await refused(t, call(updates, 'Start', { artifact: GREETER, version: '9.0.0' }), grpc.status.NOT_FOUND, 'ARTIFACT_NOT_FOUND');
  await refused(t, call(updates, 'Start', { artifact: GREETER, version: '1.0.0' }), grpc.status.FAILED_PRECONDITION, 'SAME_VERSION');
  await refused(t, call(updates, 'Start', { artifact: 'org.example:nobody', version: '1.0.0' }), grpc.status.NOT_FOUND, 'NOT_DEPLOYED');
  await refused(t, call(updates, 'Get', { update_id: 'nope' }), grpc.status.NOT_FOUND, 'UPDATE_NOT_FOUND');
  await refused(t, call(updates, 'Get', { update_id: 'not an id' }), grpc.status.INVALID_ARGUMENT, 'INVALID_ARGUMENT', /^updateId: /);
  await refused(t, call(updates, 'SetRouting', { update_id: id, ratio: '1/3' }), grpc.status.INVALID_ARGUMENT, 'INVALID_ARGUMENT', /new:old/);
  await refused(t, call(updates, 'SetRouting', { update_id: 'nope', ratio: '1:3' }), grpc.status.NOT_FOUND, 'UPDATE_NOT_FOUND');
  await refused(t, call(updates, 'SetRouting', { update_id: id, ratio: '1:3' }), grpc.status.FAILED_PRECONDITION, 'UPDATE_NOT_ROUTING');
  await refused(t, call(updates, 'Resume', { update_id: id }), grpc.status.FAILED_PRECONDITION, 'INVALID_TRANSITION');
  await refused(t, call(updates, 'List', { artifact: '', state: 'NOPE', all: false }), grpc.status.INVALID_ARGUMENT, 'INVALID_ARGUMENT', /^state: /);
  await refused(t, call(updates, 'History', { artifact: '' }), grpc.status.INVALID_ARGUMENT, 'INVALID_ARGUMENT', /^artifact: /);
  await refused(t, call(updates, 'Health', { update_id: 'nope' }), grpc.status.NOT_FOUND, 'UPDATE_NOT_FOUND');
  const watch = updates.Watch({ from_revision: 1, update_id: '', artifact: 'bad' });
  const error = await new Promise<grpc.ServiceError>((resolve) => {
    watch.on('error', resolve);
    watch.on('data', () => {});
  });
  t.is(error.code, grpc.status.INVALID_ARGUMENT);
});

test('Health on a follower answers NOT_LEADER with the leader id and address to follow', async (t) => {
  const port = new MemoryClusterPort(2, false);
  const service = updatesService({
    port,
    clock: realClock,
    wallClockMs: epochMs,
    health: { snapshot: () => undefined },
    healthWindowMsMax: 60_000,
    leader: () => ({ id: 1, address: '127.0.0.1:7001' }),
    nodeDownAfterMs: 15_000,
    nodeInstancesMax: 64,
  }) as Record<string, (call: { request: object }, callback: (error: Partial<grpc.ServiceError> | null) => void) => void>;
  const error = await new Promise<Partial<grpc.ServiceError> | null>((resolve) => service.Health!({ request: { update_id: 'u1' } }, resolve));
  t.is(error?.code, grpc.status.FAILED_PRECONDITION);
  t.is(error?.metadata?.get('cutover-error-code')[0], 'NOT_LEADER');
  t.is(error?.metadata?.get('cutover-leader-id')[0], '1');
  t.is(error?.metadata?.get('cutover-leader-address')[0], '127.0.0.1:7001');
});
