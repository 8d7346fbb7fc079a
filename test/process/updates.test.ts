/**
 * Issue 5's acceptance on real node processes (3 nodes on 127.0.0.1, LevelDB), under steady load
 * from the embedded client (which pushes its call metrics to the leader, so the health gate sees
 * them): greeter 1.0.0 → 2.0.0 with CANARY and back with BLUE_GREEN without one failed call, and
 * 1.0.0 → 2.1.0-bad (slow, every 5th call fails) rolled back by the health gate on its own, with
 * every call back on 1.0.0. Short batch delays and a 1-second evaluation interval keep it quick.
 */
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import * as grpc from '@grpc/grpc-js';
import { connect, type CutoverClient } from '../../src/index.ts';
import { loadManagementDefinition } from '../../src/api/protos.ts';
import { monotonicClock } from '../../src/platform/clock.ts';
import { sleep, waitFor } from '../../src/platform/wait.ts';
import { deadlineIn } from '../../src/platform/wall-clock.ts';
import { CutoverError } from '../../src/util/errors.ts';
import { ProcessCluster } from './harness.ts';

const GREETER = 'org.example:greeter';
const EXAMPLES = fileURLToPath(new URL('../../examples/slices/greeter/', import.meta.url));
const definition = grpc.loadPackageDefinition(loadManagementDefinition()) as unknown as { cutover: { v1: Record<string, grpc.ServiceClientConstructor> } };

type Callback = (error: grpc.ServiceError | null, response: Record<string, unknown>) => void;
type Client = grpc.Client & Record<string, (request: object, options: grpc.CallOptions, callback: Callback) => void>;

interface Update {
  id: string;
  state: string;
  routing: string;
  transitions: { step: string; reason: string }[];
  rollback: { reason: string; initiated_by: { kind: string; name: string } } | null;
}

interface CallRecord {
  readonly startedAt: number;
  readonly endedAt: number;
  readonly version?: string;
  readonly error?: string;
}

const now = (): number => monotonicClock.nowMs();

function rpc(t: ExecutionContext, cluster: ProcessCluster, id: number, service: 'RollingUpdates' | 'Slices') {
  const client = new definition.cutover.v1[service]!(cluster.node(id).address, grpc.credentials.createInsecure()) as unknown as Client;
  t.teardown(() => client.close());
  const call = (method: string, request: object, timeoutMs = 5000): Promise<Record<string, unknown>> => {
    const deadline = deadlineIn(timeoutMs);
    return new Promise((resolve, reject) =>
      client.waitForReady(deadline, (notReady) => {
        if (notReady) reject(notReady);
        else client[method]!(request, { deadline }, (error, response) => (error ? reject(error) : resolve(response)));
      }),
    );
  };
  return { client, call };
}

async function publishAll(cluster: ProcessCluster, id: number): Promise<void> {
  for (const version of ['1.0.0', '2.0.0', '2.1.0-bad']) await cluster.publish(id, path.join(EXAMPLES, version));
}

/** A cluster with greeter published and 1.0.0 running 3 instances, and an embedded client. */
async function setUp(t: ExecutionContext): Promise<{ cluster: ProcessCluster; leader: number; client: CutoverClient; updates: ReturnType<typeof rpc>['call'] }> {
  const cluster = await ProcessCluster.start(3);
  t.teardown(() => cluster.destroy());
  const leader = await cluster.waitForLeader();
  await publishAll(cluster, leader);
  await cluster.call(leader, 'Slices', 'Deploy', { artifact: GREETER, version: '1.0.0', instances: 3 });
  await waitFor('3 ACTIVE instances of 1.0.0', async () => {
    const reply = (await cluster.call(leader, 'Slices', 'Instances', { artifact: GREETER })) as { instances: { state: string }[] };
    return reply.instances.filter((i) => i.state === 'ACTIVE').length === 3;
  }, { attempts: 400, intervalMs: 100 });
  const client = await connect({ endpoints: [...cluster.nodes.values()].map((n) => n.address), invokeTimeoutMs: 3000 });
  t.teardown(() => client.close());
  return { cluster, leader, client, updates: rpc(t, cluster, leader, 'RollingUpdates').call };
}

/** `loops` callers, each calling hello back to back with `pauseMs` between calls, until stopped. */
function load(t: ExecutionContext, client: CutoverClient, loops: number, pauseMs: number): { readonly calls: CallRecord[]; stop(): Promise<CallRecord[]> } {
  const calls: CallRecord[] = [];
  let running = true;
  const workers = Array.from({ length: loops }, async (_, w) => {
    for (let i = 0; running; i++) {
      const startedAt = now();
      try {
        const reply = (await client.invoker.invoke(GREETER, 'hello', { name: `w${w}-${i}` }, { timeoutMs: 3000 })) as { version: string };
        calls.push({ startedAt, endedAt: now(), version: reply.version });
      } catch (error) {
        calls.push({ startedAt, endedAt: now(), error: error instanceof CutoverError ? error.code : String(error) });
      }
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

async function untilState(updates: ReturnType<typeof rpc>['call'], id: string, states: readonly string[], timeoutMs = 60_000): Promise<Update> {
  let last: Update | undefined;
  try {
    return await waitFor(`update ${id} in ${states.join(' or ')}`, async () => {
      last = (await updates('Get', { update_id: id })).update as Update;
      return states.includes(last.state) ? last : undefined;
    }, { attempts: 100_000, intervalMs: 100, timeoutMs });
  } catch (error) {
    const health = await updates('Health', { update_id: id }).catch((e: unknown) => String(e));
    throw new Error(`${(error as Error).message}: it is ${last?.state}, log ${JSON.stringify(last?.transitions.slice(-3))}, health ${JSON.stringify(health)}`, { cause: error });
  }
}

function summary(calls: readonly CallRecord[]): string {
  const byVersion = new Map<string, number>();
  for (const c of calls) byVersion.set(c.version ?? `error ${c.error}`, (byVersion.get(c.version ?? `error ${c.error}`) ?? 0) + 1);
  return [...byVersion].map(([k, v]) => `${k}: ${v}`).join(', ');
}

test.serial('under steady load: 1.0.0 → 2.0.0 with CANARY and back with BLUE_GREEN, without a failed call', async (t) => {
  const { client, updates } = await setUp(t);
  const traffic = load(t, client, 4, 10);
  await sleep(500);
  const quick = { instances: 3, batch_delay_seconds: 1, monitoring_seconds: 2, health_evaluation_interval_seconds: 1, min_request_count: 5, cleanup_policy: 'IMMEDIATE', initiated_by: 'process-test' };
  const canary = (await updates('Start', { artifact: GREETER, version: '2.0.0', strategy: 'CANARY', canary_percentage: 25, steps: [50], ...quick })).update as Update;
  const canaryDone = await untilState(updates, canary.id, ['COMPLETED', 'ROLLED_BACK', 'FAILED']);
  t.is(canaryDone.state, 'COMPLETED', JSON.stringify(canaryDone.transitions.at(-1)));
  t.deepEqual(
    canaryDone.transitions.map((e) => e.step).filter((s) => s.startsWith('route')),
    ['route 1:3 (step 1/3)', 'route 1:1 (step 2/3)', 'route 1:0 (step 3/3)'],
  );
  const afterCanary = traffic.calls.length;
  const green = (await updates('Start', { artifact: GREETER, version: '1.0.0', strategy: 'BLUE_GREEN', ...quick })).update as Update;
  const greenDone = await untilState(updates, green.id, ['COMPLETED', 'ROLLED_BACK', 'FAILED']);
  t.is(greenDone.state, 'COMPLETED', JSON.stringify(greenDone.transitions.at(-1)));
  await sleep(500);
  const calls = await traffic.stop();
  t.log(`CANARY: ${summary(calls.slice(0, afterCanary))}; BLUE_GREEN: ${summary(calls.slice(afterCanary))}`);
  t.deepEqual(calls.filter((c) => c.error !== undefined), [], 'no failed call');
  t.true(calls.slice(0, afterCanary).some((c) => c.version === '2.0.0') && calls.slice(afterCanary).some((c) => c.version === '1.0.0'));
  t.true(calls.slice(-20).every((c) => c.version === '1.0.0'), 'everything back on 1.0.0 at the end');
  const history = (await updates('History', { artifact: GREETER })).releases as { revision: number; status: string; version: string }[];
  t.like(history, [{ revision: 1, status: 'COMPLETED', version: '2.0.0' }, { revision: 2, status: 'COMPLETED', version: '1.0.0' }]);
});

test.serial('under steady load: 1.0.0 → 2.1.0-bad with CANARY is rolled back by the health gate; traffic goes back to 1.0.0', async (t) => {
  const { client, updates } = await setUp(t);
  const traffic = load(t, client, 8, 5);
  await sleep(500);
  const bad = (await updates('Start', {
    artifact: GREETER,
    version: '2.1.0-bad',
    strategy: 'CANARY',
    canary_percentage: 25,
    steps: [50],
    instances: 3,
    batch_delay_seconds: 30,
    monitoring_seconds: 30,
    health_evaluation_interval_seconds: 1,
    min_request_count: 5,
    failure_threshold: 3,
    initiated_by: 'process-test',
  })).update as Update;
  const rolling = await untilState(updates, bad.id, ['ROLLING_BACK', 'ROLLED_BACK', 'COMPLETED', 'FAILED']);
  const decidedAt = now();
  t.true(['ROLLING_BACK', 'ROLLED_BACK'].includes(rolling.state), rolling.state);
  t.like(rolling.rollback, { initiated_by: { kind: 'system', name: 'health-gate' } });
  t.regex(rolling.rollback?.reason ?? '', /automatic rollback after 3\/3 consecutive breaches: error rate/);
  const done = await untilState(updates, bad.id, ['ROLLED_BACK', 'FAILED']);
  t.is(done.state, 'ROLLED_BACK');
  t.is(done.routing, '0:1');
  await sleep(3000);
  const calls = await traffic.stop();
  // The client sees the 0:1 routing within its watch's propagation; allow a second for it.
  const after = calls.filter((c) => c.startedAt > decidedAt + 1000);
  const perSecond = (from: number): number => calls.filter((c) => c.startedAt >= from && c.startedAt < from + 1000).length;
  t.log(`calls per second: before the update ${perSecond(calls[0]!.startedAt)}, at the decision ${perSecond(decidedAt - 500)}, after ${perSecond(decidedAt + 1500)}`);
  t.log(`${summary(calls)}; after the rollback decision (+1 s): ${summary(after)}; reason: ${rolling.rollback?.reason}`);
  t.true(calls.some((c) => c.version === '2.1.0-bad'), 'the canary got calls');
  t.true(after.length > 20, `${after.length} calls after the rollback`);
  t.true(after.every((c) => c.version === '1.0.0'), 'every call after the rollback on 1.0.0, none failed');
  const history = (await updates('History', { artifact: GREETER })).releases as { status: string; version: string }[];
  t.like(history, [{ status: 'ROLLED_BACK', version: '2.1.0-bad' }]);
});
