/**
 * The cutover.v1.Slices management API in process: one node (in-memory Raft storage) serves the
 * management API with the Slices service and the peer Invoke service on 127.0.0.1, with a
 * SliceHost wired as `cutover node` wires it (src/cli/node-command.ts). Every call goes through a
 * real gRPC client, so status codes and the `cutover-error-code` trailer are checked as a client
 * sees them.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import * as grpc from '@grpc/grpc-js';
import { addInvokeService } from '../../src/api/invoke-service.ts';
import { loadManagementDefinition } from '../../src/api/protos.ts';
import { addManagementApi } from '../../src/api/server.ts';
import { nodeClusterPort } from '../../src/node/cluster-port.ts';
import { CutoverNode } from '../../src/node/node.ts';
import { SliceHost } from '../../src/node/slice-host.ts';
import { realClock } from '../../src/platform/scheduler.ts';
import { waitFor } from '../../src/platform/wait.ts';
import { epochMs } from '../../src/platform/wall-clock.ts';
import { MemoryStorage } from '../../src/raft/index.ts';
import { packArtifact, sha256Hex, type PackedArtifact } from '../../src/slices/artifact-package.ts';
import { silentLogger } from '../../src/util/logger.ts';
import { SeededRandom } from '../../src/util/random.ts';
import { MemoryHub } from '../helpers/memory-transport.ts';
import { EXAMPLES_DIR, noise, rawTgz, manifestText, validEntries, writeSliceDir } from '../slices/artifact-fixtures.ts';

type Callback = (error: grpc.ServiceError | null, response: Record<string, unknown>) => void;
type SlicesClient = grpc.Client &
  Record<string, (request: object, callback: Callback) => void> & {
    Publish: (callback: Callback) => grpc.ClientWritableStream<{ chunk: Buffer; expected_sha256?: string }>;
  };

interface Instance {
  artifact: string;
  version: string;
  instance_id: string;
  node_id: string | number;
  state: string;
  assigned: boolean;
}

const ARTIFACT_BYTES_MAX = 64 * 1024;
const GREETER = 'org.example:greeter';

const definition = grpc.loadPackageDefinition(loadManagementDefinition()) as unknown as { cutover: { v1: Record<string, typeof grpc.Client> } };

/** One node with the management API (KV, Cluster, Slices) and Invoke, and a Slices client. */
async function startNode(t: ExecutionContext): Promise<{ slices: SlicesClient; kv: SlicesClient; host: SliceHost }> {
  const artifactDir = await mkdtemp(path.join(tmpdir(), 'cutover-slices-api-'));
  const server = new grpc.Server();
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  const address = `127.0.0.1:${port}`;
  const hub = new MemoryHub();
  const node = new CutoverNode({ id: 1, initialMembers: [{ id: 1, address }], storage: MemoryStorage.bootstrap([1]), transport: hub.transport(1), clock: realClock, random: new SeededRandom(5), logger: silentLogger, settings: { tickMs: 10 }, forwardProposals: false });
  const host = new SliceHost({
    port: nodeClusterPort(node),
    clock: realClock,
    wallClockMs: epochMs,
    logger: silentLogger,
    address,
    leader: () => node.leaderInfo(),
    settings: { artifactDir, nodeDownAfterMs: 15_000, nodeInstancesMax: 64, invokeTimeoutMs: 5000, metricsIntervalMs: 1000, instances: { drainTimeoutMs: 5000, stoppedRetentionMs: 200 } },
  });
  addManagementApi(server, node, { watchBufferBytesMax: 1 << 20, slices: { port: nodeClusterPort(node), invoker: host.invoker, artifactBytesMax: ARTIFACT_BYTES_MAX, wallClockMs: () => 1_700_000_000_000 } });
  addInvokeService(server, host);
  await node.start();
  await host.start();
  const slices = new definition.cutover.v1.Slices!(address, grpc.credentials.createInsecure()) as SlicesClient;
  const kv = new definition.cutover.v1.KV!(address, grpc.credentials.createInsecure()) as SlicesClient;
  t.teardown(async () => {
    slices.close();
    kv.close();
    await host.stop();
    await node.stop();
    server.forceShutdown();
    await rm(artifactDir, { recursive: true, force: true });
  });
  await waitFor('a leader', () => (node.isLeader() ? true : undefined));
  return { slices, kv, host };
}

function call(client: SlicesClient, method: string, request: object): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => client[method]!(request, (error, response) => (error ? reject(error) : resolve(response))));
}

/** Streams `bytes` to Publish in `chunkBytes` pieces; the first message may carry the hash. */
function publish(client: SlicesClient, bytes: Uint8Array, options: { expectedSha256?: string; chunkBytes?: number } = {}): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const stream = client.Publish((error, response) => (error ? reject(error) : resolve(response)));
    // The server may refuse mid-stream (too large); later writes then fail, which is expected.
    stream.on('error', () => {});
    const chunkBytes = options.chunkBytes ?? 16 * 1024;
    for (let offset = 0, first = true; offset < bytes.byteLength || first; offset += chunkBytes, first = false) {
      const chunk = Buffer.from(bytes.subarray(offset, Math.min(bytes.byteLength, offset + chunkBytes)));
      stream.write(first && options.expectedSha256 !== undefined ? { chunk, expected_sha256: options.expectedSha256 } : { chunk });
    }
    stream.end();
  });
}

/** Asserts a refusal: the gRPC status and our code in the `cutover-error-code` trailer. */
async function refused(t: ExecutionContext, promise: Promise<unknown>, status: grpc.status, code: string, message?: RegExp): Promise<void> {
  const error = await t.throwsAsync<grpc.ServiceError>(promise);
  t.is(error?.code, status, `status of ${code}: ${error?.details}`);
  t.is(error?.metadata?.get('cutover-error-code')[0], code, error?.details);
  if (message !== undefined) t.regex(error?.details ?? '', message);
}

async function instances(client: SlicesClient, artifact = ''): Promise<{ instances: Instance[]; pending: Instance[] }> {
  return (await call(client, 'Instances', { artifact })) as unknown as { instances: Instance[]; pending: Instance[] };
}

function greeter(version: string): Promise<PackedArtifact> {
  return packArtifact(path.join(EXAMPLES_DIR, version));
}

test('Publish refuses too large, bad, mismatched and conflicting artifacts; a republish of the same bytes is idempotent', async (t) => {
  const { slices } = await startNode(t);
  const dir = await mkdtemp(path.join(tmpdir(), 'cutover-slices-api-src-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));

  // Too large: incompressible bytes past the node's limit, refused while streaming.
  const big = await packArtifact(await writeSliceDir(dir, { version: '9.0.0', files: { 'data.bin': noise(ARTIFACT_BYTES_MAX + 1024) } }));
  t.true(big.bytes.byteLength > ARTIFACT_BYTES_MAX);
  await refused(t, publish(slices, big.bytes), grpc.status.RESOURCE_EXHAUSTED, 'ARTIFACT_TOO_LARGE');

  // A bad manifest (no methods) and a package that is not gzip.
  const badManifest = rawTgz([{ path: 'slice.json', data: manifestText({ methods: [] }) }, validEntries()[1]!]);
  await refused(t, publish(slices, badManifest), grpc.status.INVALID_ARGUMENT, 'INVALID_MANIFEST', /methods/);
  await refused(t, publish(slices, new TextEncoder().encode('not a package')), grpc.status.INVALID_ARGUMENT, 'INVALID_ARTIFACT');
  // An empty stream is an empty artifact: refused, not a crash.
  await refused(t, publish(slices, new Uint8Array(0)), grpc.status.INVALID_ARGUMENT, 'INVALID_ARTIFACT');

  // Hash mismatch: the expected sha256 of other bytes.
  const v1 = await greeter('1.0.0');
  await refused(t, publish(slices, v1.bytes, { expectedSha256: sha256Hex(new Uint8Array([1, 2, 3])) }), grpc.status.INVALID_ARGUMENT, 'ARTIFACT_HASH_MISMATCH');

  // Nothing of the refused publishes was stored.
  t.deepEqual((await call(slices, 'List', {})).versions, []);

  // Published in several small chunks with the right hash: created.
  const first = await publish(slices, v1.bytes, { expectedSha256: v1.sha256, chunkBytes: 100 });
  t.true(first.created);
  t.like(first.artifact, { artifact: GREETER, version: '1.0.0', sha256: v1.sha256, methods: ['hello'], deployed: false, desired_instances: 0 });
  t.is(Number((first.artifact as { size: unknown }).size), v1.bytes.byteLength);
  t.is(Number((first.artifact as { published_at_ms: unknown }).published_at_ms), 1_700_000_000_000);

  // The same bytes again: an idempotent retry.
  const again = await publish(slices, v1.bytes);
  t.false(again.created);
  t.like(again.artifact, { version: '1.0.0', sha256: v1.sha256 });

  // Other bytes under the same version: versions are immutable.
  const other = await packArtifact(await writeSliceDir(dir, { version: '1.0.0' }));
  t.not(other.sha256, v1.sha256);
  await refused(t, publish(slices, other.bytes), grpc.status.ALREADY_EXISTS, 'ARTIFACT_EXISTS');
});

test('List, Deploy, Scale, Instances, Invoke and Undeploy: answers and refusals', async (t) => {
  const { slices, kv } = await startNode(t);
  for (const version of ['1.0.0', '2.0.0']) await publish(slices, (await greeter(version)).bytes);

  // List: every version, then a filter; nothing deployed yet.
  const listed = (await call(slices, 'List', {})).versions as { artifact: string; version: string; deployed: boolean; min_compatible_version: string }[];
  t.deepEqual(listed.map((v) => `${v.artifact}:${v.version}:${String(v.deployed)}`), [`${GREETER}:1.0.0:false`, `${GREETER}:2.0.0:false`]);
  t.is(listed[1]!.min_compatible_version, '1.0.0');
  t.deepEqual((await call(slices, 'List', { artifact: 'org.example:other' })).versions, []);
  await refused(t, call(slices, 'List', { artifact: 'no-colon' }), grpc.status.INVALID_ARGUMENT, 'INVALID_ARGUMENT', /^artifact: /);

  // Deploy refusals before anything runs.
  await refused(t, call(slices, 'Deploy', { artifact: GREETER, version: '3.0.0', instances: 1 }), grpc.status.NOT_FOUND, 'ARTIFACT_NOT_FOUND');
  await refused(t, call(slices, 'Deploy', { artifact: GREETER, version: '1.0.0', instances: 0 }), grpc.status.INVALID_ARGUMENT, 'INVALID_ARGUMENT', /^instances: /);
  await refused(t, call(slices, 'Deploy', { artifact: GREETER, version: 'v1', instances: 1 }), grpc.status.INVALID_ARGUMENT, 'INVALID_ARGUMENT', /^version: /);
  await refused(t, call(slices, 'Scale', { artifact: GREETER, version: '1.0.0', instances: 2 }), grpc.status.NOT_FOUND, 'NOT_DEPLOYED');

  // Deploy 1.0.0.
  const deployed = await call(slices, 'Deploy', { artifact: GREETER, version: '1.0.0', instances: 1 });
  t.like(deployed, { blueprint: { artifact: GREETER, version: '1.0.0', instances: 1, per_node_max: 0 } });
  t.true(Number(deployed.revision) > 0);
  await refused(t, call(slices, 'Deploy', { artifact: GREETER, version: '1.0.0', instances: 1 }), grpc.status.ALREADY_EXISTS, 'ALREADY_DEPLOYED');
  await refused(t, call(slices, 'Deploy', { artifact: GREETER, version: '2.0.0', instances: 1 }), grpc.status.FAILED_PRECONDITION, 'VERSION_RUNNING', /rolling update/);
  t.like(((await call(slices, 'List', { artifact: GREETER })).versions as unknown[])[0], { version: '1.0.0', deployed: true, desired_instances: 1 });

  // Instances: one ACTIVE instance of 1.0.0 on node 1, assigned.
  const active = await waitFor('1 ACTIVE instance', async () => {
    const all = (await instances(slices, GREETER)).instances.filter((i) => i.state === 'ACTIVE');
    return all.length === 1 ? all : undefined;
  }, { attempts: 200 });
  t.like(active[0], { artifact: GREETER, version: '1.0.0', state: 'ACTIVE', assigned: true });
  t.is(Number(active[0]!.node_id), 1);
  t.deepEqual((await instances(slices, 'org.example:other')).instances, []);

  // Invoke: a reply, then the refusals.
  const reply = await call(slices, 'Invoke', { artifact: GREETER, method: 'hello', payload_json: JSON.stringify({ name: 'api' }) });
  t.deepEqual(JSON.parse(reply.payload_json as string), { message: 'Hello, api!', version: '1.0.0' });
  // An empty payload is `{}`.
  t.deepEqual(JSON.parse((await call(slices, 'Invoke', { artifact: GREETER, method: 'hello' })).payload_json as string), { message: 'Hello, world!', version: '1.0.0' });
  await refused(t, call(slices, 'Invoke', { artifact: GREETER, method: 'hello', payload_json: '{not json' }), grpc.status.INVALID_ARGUMENT, 'INVALID_PAYLOAD');
  await refused(t, call(slices, 'Invoke', { artifact: 'org.example:nobody', method: 'hello', payload_json: '{}' }), grpc.status.NOT_FOUND, 'UNKNOWN_SLICE');
  await refused(t, call(slices, 'Invoke', { artifact: GREETER, method: 'goodbye', payload_json: '{}' }), grpc.status.UNIMPLEMENTED, 'UNKNOWN_METHOD');
  await refused(t, call(slices, 'Invoke', { artifact: GREETER, method: 'hello', payload_json: '{"name": 5}' }), grpc.status.UNKNOWN, 'SLICE_ERROR', /name must be a string/);
  await refused(t, call(slices, 'Invoke', { artifact: 'bad', method: 'hello', payload_json: '{}' }), grpc.status.INVALID_ARGUMENT, 'INVALID_ARGUMENT');

  // Scale to 3: three ACTIVE instances.
  t.like(await call(slices, 'Scale', { artifact: GREETER, version: '1.0.0', instances: 3 }), { blueprint: { instances: 3 } });
  await waitFor('3 ACTIVE instances', async () => ((await instances(slices, GREETER)).instances.filter((i) => i.state === 'ACTIVE').length === 3 ? true : undefined), { attempts: 200 });
  await refused(t, call(slices, 'Scale', { artifact: GREETER, version: '2.0.0', instances: 1 }), grpc.status.NOT_FOUND, 'NOT_DEPLOYED');

  // Undeploy: the blueprint goes, with the routing record; the instances drain and disappear.
  await call(kv, 'Put', { key: `version-routing/${GREETER}`, value: JSON.stringify({ updateId: 'u1', oldVersion: '1.0.0', newVersion: '2.0.0', newWeight: 0, oldWeight: 1 }) });
  const undeployed = await call(slices, 'Undeploy', { artifact: GREETER, version: '' });
  t.like(undeployed, { removed: [{ artifact: GREETER, version: '1.0.0', instances: 3 }] });
  t.false((await call(kv, 'Get', { key: `version-routing/${GREETER}` })).found);
  await refused(t, call(slices, 'Undeploy', { artifact: GREETER, version: '' }), grpc.status.NOT_FOUND, 'NOT_DEPLOYED');
  await refused(t, call(slices, 'Undeploy', { artifact: GREETER, version: '2.0.0' }), grpc.status.NOT_FOUND, 'NOT_DEPLOYED');
  await waitFor('the instances to go', async () => {
    const now = await instances(slices, GREETER);
    return now.instances.length === 0 && now.pending.length === 0 ? true : undefined;
  }, { attempts: 200 });
  t.like(((await call(slices, 'List', { artifact: GREETER })).versions as unknown[])[0], { version: '1.0.0', deployed: false, desired_instances: 0 });
  const gone = await t.throwsAsync<grpc.ServiceError>(call(slices, 'Invoke', { artifact: GREETER, method: 'hello', payload_json: '{}' }));
  t.true(gone?.code === grpc.status.NOT_FOUND || gone?.code === grpc.status.UNAVAILABLE, gone?.details);

  // With nothing running, another version may be deployed.
  t.like(await call(slices, 'Deploy', { artifact: GREETER, version: '2.0.0', instances: 1, per_node_max: 1 }), { blueprint: { version: '2.0.0', instances: 1, per_node_max: 1 } });
});

test('Undeploy of one version leaves the others; an unknown artifact is NOT_DEPLOYED', async (t) => {
  const { slices, kv } = await startNode(t);
  for (const version of ['1.0.0', '2.0.0']) await publish(slices, (await greeter(version)).bytes);
  await call(slices, 'Deploy', { artifact: GREETER, version: '1.0.0', instances: 1 });
  // A second version's blueprint, as the rolling-update controller writes it.
  await call(kv, 'Put', { key: `blueprint/${GREETER}/2.0.0`, value: JSON.stringify({ instances: 1 }) });
  const removed = await call(slices, 'Undeploy', { artifact: GREETER, version: '1.0.0' });
  t.like(removed, { removed: [{ version: '1.0.0' }] });
  t.is((removed.removed as unknown[]).length, 1);
  const listed = (await call(slices, 'List', { artifact: GREETER })).versions as { version: string; deployed: boolean }[];
  t.deepEqual(listed.map((v) => [v.version, v.deployed]), [['1.0.0', false], ['2.0.0', true]]);
  await refused(t, call(slices, 'Undeploy', { artifact: 'org.example:nobody', version: '' }), grpc.status.NOT_FOUND, 'NOT_DEPLOYED');
});

test('Instances lists malformed instance records as MALFORMED with the reason instead of failing', async (t) => {
  const { slices, kv } = await startNode(t);
  const good = { state: 'ACTIVE', nodeId: 1, address: '127.0.0.1:1', instanceId: 'i-good', artifact: GREETER, version: '1.0.0' };
  // Records are data other nodes wrote: a newer or broken writer must not break the listing.
  // They sit under node 1, the live member: placement deletes the records of nodes that are not.
  await call(kv, 'Put', { key: `instance/1/${GREETER}:1.0.0/i-good`, value: JSON.stringify(good) });
  await call(kv, 'Put', { key: `instance/1/${GREETER}:1.0.0/i-failed`, value: JSON.stringify({ ...good, state: 'FAILED', reason: 'start() threw' }) });
  await call(kv, 'Put', { key: `instance/1/${GREETER}:1.0.0/i-text`, value: 'not json' });
  await call(kv, 'Put', { key: `instance/1/${GREETER}:1.0.0/i-null`, value: 'null' });
  await call(kv, 'Put', { key: `instance/1/${GREETER}:1.0.0/i-node`, value: JSON.stringify({ ...good, nodeId: 3, reason: 'copied' }) });
  const listed = (await instances(slices, GREETER)).instances;
  const byId = new Map(listed.map((i) => [i.instance_id, i as Instance & { reason: string }]));
  t.deepEqual([...byId.keys()].sort(), ['i-failed', 'i-good', 'i-node', 'i-null', 'i-text']);
  t.like(byId.get('i-good'), { state: 'ACTIVE', reason: '', assigned: false });
  t.like(byId.get('i-failed'), { state: 'FAILED', reason: 'start() threw' });
  t.like(byId.get('i-text'), { state: 'MALFORMED', reason: 'value is not JSON' });
  t.like(byId.get('i-null'), { state: 'MALFORMED', reason: 'value is not a JSON object' });
  // For a malformed record the reason says why it is malformed, not what the record claims.
  t.like(byId.get('i-node'), { state: 'MALFORMED', reason: 'nodeId must equal the node of the key (1)' });
});
