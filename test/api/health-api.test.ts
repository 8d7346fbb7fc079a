/**
 * `cutover.v1.Health` over real gRPC on 127.0.0.1: two members, each with its own local results
 * store, answer for the whole cluster; a member that does not answer is named, not waited for.
 */
import test, { type ExecutionContext } from 'ava';
import * as grpc from '@grpc/grpc-js';
import { healthService } from '../../src/api/health-service.ts';
import { loadManagementDefinition } from '../../src/api/protos.ts';
import { MemoryHealthResultsStore } from '../../src/health/results.ts';
import type { CheckResult, InstanceRef } from '../../src/health/types.ts';
import type { MemberActivity } from '../../src/node/cluster-port.ts';
import { freePort } from '../../src/platform/wait.ts';
import { deadlineIn } from '../../src/platform/wall-clock.ts';

const NOW = 1_700_000_000_000;
const GREETER = 'org.example:greeter';
const definition = grpc.loadPackageDefinition(loadManagementDefinition()) as unknown as { cutover: { v1: Record<string, grpc.ServiceClientConstructor> } };
type Client = grpc.Client & Record<string, (request: object, options: grpc.CallOptions, callback: (error: grpc.ServiceError | null, response: Record<string, unknown>) => void) => void>;

function result(check: string, status: CheckResult['status'], at: number, detail: string = status): CheckResult {
  return { check, type: 'http', status, at, durationMs: 4, attempts: 1, detail };
}

async function serve(t: ExecutionContext, nodeId: number, members: () => MemberActivity[], store: MemoryHealthResultsStore): Promise<string> {
  const server = new grpc.Server();
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  const service = healthService({ nodeId, store, members, wallClockMs: () => NOW, peerTimeoutMs: 1000 });
  const holder = (definition.cutover.v1['Health'] as unknown as { service: grpc.ServiceDefinition }).service;
  server.addService(holder, service.implementation);
  t.teardown(() => {
    service.close();
    server.forceShutdown();
  });
  return `127.0.0.1:${port}`;
}

function call(t: ExecutionContext, address: string, method: string, request: object): Promise<Record<string, unknown>> {
  const client = new definition.cutover.v1['Health']!(address, grpc.credentials.createInsecure()) as unknown as Client;
  t.teardown(() => client.close());
  return new Promise((resolve, reject) => client[method]!(request, { deadline: deadlineIn(10_000) }, (error, response) => (error ? reject(error) : resolve(response))));
}

async function cluster(t: ExecutionContext, options: { thirdDown?: boolean } = {}) {
  const stores = [1, 2].map(() => new MemoryHealthResultsStore({ wallClockMs: () => NOW }));
  const members: MemberActivity[] = [];
  const list = () => members;
  const a = await serve(t, 1, list, stores[0]!);
  const b = await serve(t, 2, list, stores[1]!);
  members.push({ id: 1, address: a, voter: true, silentForMs: 0 }, { id: 2, address: b, voter: true, silentForMs: 0 });
  if (options.thirdDown === true) members.push({ id: 3, address: `127.0.0.1:${await freePort()}`, voter: true, silentForMs: 0 });
  const ref = (nodeId: number, version: string, instanceId: string): InstanceRef => ({ base: GREETER, version, instanceId, nodeId });
  await stores[0]!.append(ref(1, '2.0.0', 'i1'), [result('healthz', 'success', NOW - 30_000)]);
  await stores[0]!.append(ref(1, '2.0.0', 'i1'), [result('healthz', 'failure', NOW - 10_000, 'HTTP 503 in 2 ms')]);
  await stores[1]!.append(ref(2, '2.0.0', 'i2'), [result('healthz', 'success', NOW - 20_000)]);
  await stores[1]!.append(ref(2, '1.0.0', 'i3'), [result('healthz', 'timeout', NOW - 5_000, 'no answer within 1000 ms')]);
  return { a, b };
}

test('Results: any node answers with every member\'s results, newest first, filtered', async (t) => {
  const { a, b } = await cluster(t);
  const all = await call(t, b, 'Results', {});
  const rows = all.results as { instance_id: string; node_id: number; status: string; at_ms: number; detail: string }[];
  t.deepEqual(
    rows.map((r) => [r.instance_id, r.node_id, r.status]),
    [
      ['i3', 2, 'timeout'],
      ['i1', 1, 'failure'],
      ['i2', 2, 'success'],
      ['i1', 1, 'success'],
    ],
  );
  t.deepEqual(all.unreachable, []);
  const v2 = (await call(t, a, 'Results', { artifact: GREETER, version: '2.0.0', limit: 2 })).results as { instance_id: string }[];
  t.deepEqual(
    v2.map((r) => r.instance_id),
    ['i1', 'i2'],
  );
  const local = (await call(t, a, 'Results', { local_only: true })).results as { node_id: number }[];
  t.true(local.every((r) => r.node_id === 1));
  const since = (await call(t, a, 'Results', { since_ms: NOW - 15_000 })).results as unknown[];
  t.is(since.length, 2);
});

test('Results: a member that does not answer is named, and the others still answer', async (t) => {
  const { a } = await cluster(t, { thirdDown: true });
  const answer = await call(t, a, 'Results', {});
  t.is((answer.results as unknown[]).length, 4);
  t.like((answer.unreachable as unknown[])[0], { node_id: 3 });
});

test('Summary: a per-version trend with each instance\'s latest result', async (t) => {
  const { a } = await cluster(t);
  const answer = await call(t, a, 'Summary', { artifact: GREETER, bucket_seconds: 60, buckets: 2 });
  const versions = answer.versions as { version: string; buckets: { success: number; failure: number; timeout: number }[]; instances: { instance_id: string; status: string }[] }[];
  const byVersion = Object.fromEntries(versions.map((v) => [v.version, v]));
  t.deepEqual(Object.keys(byVersion).sort(), ['1.0.0', '2.0.0']);
  const two = byVersion['2.0.0']!;
  t.is(two.buckets.length, 2);
  t.is(two.buckets.reduce((sum, b) => sum + b.success, 0), 2);
  t.is(two.buckets.reduce((sum, b) => sum + b.failure, 0), 1);
  t.deepEqual(
    two.instances.map((i) => [i.instance_id, i.status]),
    [
      ['i1', 'failure'],
      ['i2', 'success'],
    ],
  );
});

test('bad requests are INVALID_ARGUMENT naming the field', async (t) => {
  const { a } = await cluster(t);
  for (const [method, request, field] of [
    ['Results', { artifact: 'no-colon' }, 'artifact'],
    ['Results', { version: 'v2' }, 'version'],
    ['Results', { limit: 10_001 }, 'limit'],
    ['Summary', {}, 'artifact'],
    ['Summary', { artifact: GREETER, buckets: 5000 }, 'buckets'],
  ] as const) {
    const error = await t.throwsAsync(call(t, a, method, request));
    t.is((error as grpc.ServiceError).code, grpc.status.INVALID_ARGUMENT, `${method} ${JSON.stringify(request)}`);
    t.regex(error!.message, new RegExp(field));
  }
});
