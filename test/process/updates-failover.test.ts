/**
 * Issue 5: a leader failover in the middle of a rolling update, on real node processes (3 nodes
 * on 127.0.0.1, LevelDB) under steady load from the embedded client. greeter 1.0.0 → 2.0.0 with
 * CANARY (short batch delays); once the update is ROUTING the leader is killed with SIGKILL and
 * restarted. The update must still complete under the new leader, every step must appear once in
 * the record's transition log, and no call may fail except those in flight on the killed node.
 */
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import * as grpc from '@grpc/grpc-js';
import { connect, type CutoverClient } from '../../src/index.ts';
import { loadManagementDefinition } from '../../src/api/protos.ts';
import type { RouteDecision } from '../../src/invoker/decisions.ts';
import { monotonicClock } from '../../src/platform/clock.ts';
import { sleep, waitFor } from '../../src/platform/wait.ts';
import { deadlineIn } from '../../src/platform/wall-clock.ts';
import { packArtifact } from '../../src/slices/artifact-package.ts';
import { CutoverError } from '../../src/util/errors.ts';
import { ProcessCluster } from './harness.ts';

const GREETER = 'org.example:greeter';
const EXAMPLES = fileURLToPath(new URL('../../examples/slices/greeter/', import.meta.url));
const definition = grpc.loadPackageDefinition(loadManagementDefinition()) as unknown as { cutover: { v1: Record<string, grpc.ServiceClientConstructor> } };

type Callback = (error: grpc.ServiceError | null, response: Record<string, unknown>) => void;
type Client = grpc.Client & Record<string, (request: object, options: grpc.CallOptions, callback: Callback) => void>;
type PublishClient = grpc.Client & { Publish: (options: grpc.CallOptions, callback: Callback) => grpc.ClientWritableStream<{ chunk: Buffer }> };

interface Update {
  id: string;
  state: string;
  transitions: { step: string; reason: string }[];
}

interface CallRecord {
  readonly startedAt: number;
  endedAt: number;
  version: string;
  nodeId: number;
  error: string | undefined;
}

const now = (): number => monotonicClock.nowMs();

/** A client of `service` on node `id`; nodes restart here, so reconnect quickly. */
function serviceClient(t: ExecutionContext, cluster: ProcessCluster, id: number, service: 'RollingUpdates' | 'Slices'): Client & PublishClient {
  const client = new definition.cutover.v1[service]!(cluster.node(id).address, grpc.credentials.createInsecure(), { 'grpc.initial_reconnect_backoff_ms': 100, 'grpc.max_reconnect_backoff_ms': 500 }) as unknown as Client & PublishClient;
  t.teardown(() => client.close());
  return client;
}

function unary(client: Client, method: string, request: object, timeoutMs = 3000): Promise<Record<string, unknown>> {
  const deadline = deadlineIn(timeoutMs);
  return new Promise((resolve, reject) =>
    client.waitForReady(deadline, (notReady) => {
      if (notReady) reject(notReady);
      else client[method]!(request, { deadline }, (error, response) => (error ? reject(error) : resolve(response)));
    }),
  );
}

/** `loops` closed-loop callers, each calling hello with `pauseMs` between calls, recording the node each call was routed to. */
function load(t: ExecutionContext, client: CutoverClient, loops: number, pauseMs: number): { readonly calls: CallRecord[]; stop(): Promise<CallRecord[]> } {
  const calls: CallRecord[] = [];
  let current: CallRecord | undefined;
  // Invoker.invoke calls route() synchronously once per call (bench/load/load.ts relies on it too).
  const route = client.table.route.bind(client.table);
  client.table.route = (base, localNodeId): RouteDecision => {
    const decision = route(base, localNodeId);
    if (current !== undefined && decision.ok) {
      current.version = decision.version;
      current.nodeId = Number(decision.instance.nodeId);
    }
    return decision;
  };
  let running = true;
  const workers = Array.from({ length: loops }, async (_, w) => {
    for (let i = 0; running; i++) {
      const record: CallRecord = { startedAt: now(), endedAt: 0, version: '', nodeId: 0, error: undefined };
      calls.push(record);
      current = record;
      const call = client.invoker.invoke(GREETER, 'hello', { name: `w${w}-${i}` }, { timeoutMs: 3000 });
      current = undefined;
      try {
        await call;
      } catch (error) {
        record.error = error instanceof CutoverError ? error.code : String(error);
      }
      record.endedAt = now();
      await sleep(pauseMs);
    }
  });
  const stop = async (): Promise<CallRecord[]> => {
    running = false;
    await Promise.all(workers);
    return calls;
  };
  t.teardown(stop);
  return { calls, stop };
}

/** Get on any running node until the update is in one of `states` (bounded by `timeoutMs`). */
async function untilState(cluster: ProcessCluster, clients: Map<number, Client>, id: string, states: readonly string[], timeoutMs: number): Promise<Update> {
  let last: Update | undefined;
  try {
    return await waitFor(`update ${id} in ${states.join(' or ')}`, async () => {
      for (const node of cluster.running()) {
        try {
          last = (await unary(clients.get(node.id)!, 'Get', { update_id: id }, 1000)).update as Update;
          return states.includes(last.state) ? last : undefined;
        } catch {
          /* that node is not answering: try the next */
        }
      }
      return undefined;
    }, { attempts: 10_000, intervalMs: 20, timeoutMs });
  } catch (error) {
    throw new Error(`${(error as Error).message}: it is ${last?.state}, log ${JSON.stringify(last?.transitions.slice(-3))}`, { cause: error });
  }
}

test('under steady load, greeter 1.0.0 → 2.0.0 CANARY survives a kill -9 of the leader during ROUTING: it completes, each step once, no failed call but those in flight on the killed node', async (t) => {
  const cluster = await ProcessCluster.start(3);
  t.teardown(() => cluster.destroy());
  const leader = await cluster.waitForLeader();
  const slices = serviceClient(t, cluster, leader, 'Slices');
  for (const version of ['1.0.0', '2.0.0']) {
    const packed = await packArtifact(path.join(EXAMPLES, version));
    const deadline = deadlineIn(10_000);
    await new Promise<void>((resolve, reject) => slices.waitForReady(deadline, (error) => (error ? reject(error) : resolve())));
    await new Promise((resolve, reject) => {
      const stream = slices.Publish({ deadline }, (error, response) => (error ? reject(error) : resolve(response)));
      stream.write({ chunk: Buffer.from(packed.bytes) });
      stream.end();
    });
  }
  await cluster.call(leader, 'Slices', 'Deploy', { artifact: GREETER, version: '1.0.0', instances: 3 });
  await waitFor('3 ACTIVE instances of 1.0.0', async () => {
    const reply = (await cluster.call(leader, 'Slices', 'Instances', { artifact: GREETER })) as { instances: { state: string }[] };
    return reply.instances.filter((i) => i.state === 'ACTIVE').length === 3;
  }, { attempts: 400, intervalMs: 100 });
  const updates = new Map([...cluster.nodes.keys()].map((id) => [id, serviceClient(t, cluster, id, 'RollingUpdates') as Client]));
  const client = await connect({ endpoints: [...cluster.nodes.values()].map((n) => n.address), invokeTimeoutMs: 3000 });
  t.teardown(() => client.close());

  const traffic = load(t, client, 4, 10);
  await sleep(500);
  const started = (await unary(updates.get(leader)!, 'Start', {
    artifact: GREETER,
    version: '2.0.0',
    strategy: 'CANARY',
    canary_percentage: 25,
    steps: [50],
    instances: 3,
    batch_delay_seconds: 1,
    monitoring_seconds: 2,
    health_evaluation_interval_seconds: 1,
    min_request_count: 5,
    cleanup_policy: 'IMMEDIATE',
    initiated_by: 'process-test',
  })).update as Update;

  await untilState(cluster, updates, started.id, ['ROUTING'], 20_000);
  const victim = await cluster.waitForLeader();
  const killAt = now();
  await cluster.kill(victim);
  const exitedAt = now();
  await sleep(500);
  cluster.launch(victim);
  const done = await untilState(cluster, updates, started.id, ['COMPLETED', 'ROLLED_BACK', 'FAILED'], 25_000);
  await sleep(500);
  const calls = await traffic.stop();

  t.is(done.state, 'COMPLETED', JSON.stringify(done.transitions.slice(-3)));
  const steps = done.transitions.map((e) => e.step);
  t.deepEqual(steps.filter((s, i) => steps.indexOf(s) !== i), [], `each step once: ${steps.join(' | ')}`);
  t.deepEqual(steps.filter((s) => s.startsWith('route')), ['route 1:3 (step 1/3)', 'route 1:1 (step 2/3)', 'route 1:0 (step 3/3)']);
  t.true(steps.includes('ROUTING -> COMPLETING') && steps.includes('COMPLETING -> COMPLETED'));

  // In flight on the killed node: routed there, started before its exit was seen, ended after the signal.
  const failed = calls.filter((c) => c.error !== undefined);
  const inFlightOnKilled = failed.filter((c) => c.nodeId === victim && c.startedAt <= exitedAt && c.endedAt >= killAt);
  const others = failed.filter((c) => !inFlightOnKilled.includes(c));
  t.log(`${calls.length} calls (${calls.filter((c) => c.version === '1.0.0' && c.error === undefined).length} on 1.0.0, ${calls.filter((c) => c.version === '2.0.0' && c.error === undefined).length} on 2.0.0); killed node ${victim}; failed in flight there: ${inFlightOnKilled.length}; other failures: ${others.length}`);
  t.deepEqual(
    others.map((c) => `${c.error} on ${c.version} node ${c.nodeId}, started ${(c.startedAt - killAt).toFixed(0)} ms after the kill, took ${(c.endedAt - c.startedAt).toFixed(0)} ms`),
    [],
    'no failed call apart from those in flight on the killed node',
  );
  t.true(calls.filter((c) => c.startedAt > exitedAt).length > 50, 'the load went on after the kill');
  t.true(calls.slice(-20).every((c) => c.version === '2.0.0' && c.error === undefined), 'everything on 2.0.0 at the end');
});
