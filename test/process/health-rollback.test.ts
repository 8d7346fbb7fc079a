/**
 * Issue 7's acceptance on real node processes (3 nodes on 127.0.0.1, LevelDB): greeter 2.2.0-sick
 * answers its calls well, but the HTTP /healthz it declares in slice.json starts failing 8 s after
 * an instance starts. Under steady load, a CANARY update to it is rolled back by the health gate on
 * its own; a local webhook receiver gets the signed notifications in commit order; the audit trail
 * says who did what and why (the operator started it, each node marked its instances unhealthy
 * with the failing check, the health gate rolled back with the reasons).
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import test from 'ava';
import { connect } from '../../src/index.ts';
import { SIGNATURE_HEADER, TIMESTAMP_HEADER, verifySignature } from '../../src/notify/signing.ts';
import { monotonicClock } from '../../src/platform/clock.ts';
import { sleep, waitFor } from '../../src/platform/wait.ts';
import { CutoverError } from '../../src/util/errors.ts';
import { ProcessCluster } from './harness.ts';

const GREETER = 'org.example:greeter';
const EXAMPLES = fileURLToPath(new URL('../../examples/slices/greeter/', import.meta.url));
const SECRET = 'process-test-webhook-secret';

interface Delivery {
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  readonly verified: boolean;
  readonly document: { id: string; revision: number; action: string; actor: { kind: string; name: string }; target: { updateId?: string; instanceId?: string }; reason: string };
}

interface StoredEvent {
  id: string;
  action: string;
  actor: { kind: string; name: string };
  target: { update_id: string; instance_id: string; node_id: number; version: string };
  reason: string;
  details_json: string;
  revision: number;
}

/** A webhook receiver on 127.0.0.1 that checks every signature. */
async function receiver(): Promise<{ url: string; deliveries: Delivery[]; close(): Promise<void> }> {
  const deliveries: Delivery[] = [];
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const timestamp = String(request.headers[TIMESTAMP_HEADER] ?? '');
      const signature = request.headers[SIGNATURE_HEADER];
      deliveries.push({ headers: request.headers, body, verified: verifySignature(SECRET, timestamp, body, typeof signature === 'string' ? signature : undefined), document: JSON.parse(body) as Delivery['document'] });
      response.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/hooks/cutover`,
    deliveries,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

test('a version whose HTTP check starts failing after deploy is rolled back on its own; the webhook gets the signed events in order; the audit trail says who did what and why', async (t) => {
  const cluster = await ProcessCluster.start(3);
  t.teardown(() => cluster.destroy());
  const hook = await receiver();
  t.teardown(() => hook.close());
  const leader = await cluster.waitForLeader();
  for (const version of ['1.0.0', '2.2.0-sick']) await cluster.publish(leader, path.join(EXAMPLES, version));
  await cluster.call(leader, 'Slices', 'Deploy', { artifact: GREETER, version: '1.0.0', instances: 3 });
  await waitFor('3 ACTIVE instances of 1.0.0', async () => {
    const reply = (await cluster.call(leader, 'Slices', 'Instances', { artifact: GREETER })) as { instances: { state: string }[] };
    return reply.instances.filter((i) => i.state === 'ACTIVE').length === 3;
  }, { attempts: 400, intervalMs: 100 });
  await cluster.call(leader, 'Notifications', 'SetChannel', { name: 'ops', type: 'webhook', url: hook.url, secret: SECRET, actor: 'alice' });

  // Steady load through the embedded client.
  const client = await connect({ endpoints: [...cluster.nodes.values()].map((n) => n.address), invokeTimeoutMs: 3000 });
  t.teardown(() => client.close());
  const calls: { startedAt: number; version?: string; error?: string }[] = [];
  let running = true;
  const workers = Array.from({ length: 4 }, async (_, w) => {
    for (let i = 0; running; i++) {
      const startedAt = monotonicClock.nowMs();
      try {
        const reply = (await client.invoker.invoke(GREETER, 'hello', { name: `w${w}-${i}` }, { timeoutMs: 3000 })) as { version: string };
        calls.push({ startedAt, version: reply.version });
      } catch (error) {
        calls.push({ startedAt, error: error instanceof CutoverError ? error.code : String(error) });
      }
      await sleep(10);
    }
  });
  t.teardown(async () => {
    running = false;
    await Promise.all(workers);
  });

  const started = (await cluster.call(leader, 'RollingUpdates', 'Start', {
    artifact: GREETER,
    version: '2.2.0-sick',
    strategy: 'CANARY',
    canary_percentage: 25,
    steps: [50],
    instances: 3,
    batch_delay_seconds: 60,
    health_evaluation_interval_seconds: 1,
    failure_threshold: 3,
    cleanup_policy: 'IMMEDIATE',
    initiated_by: 'alice',
  })) as { update: { id: string } };
  const id = started.update.id;
  type Update = { state: string; routing: string; rollback: { reason: string; initiated_by: { kind: string; name: string } } | null };
  const done = await waitFor(`update ${id} finished`, async () => {
    const update = ((await cluster.call(leader, 'RollingUpdates', 'Get', { update_id: id })) as { update: Update }).update;
    return ['ROLLED_BACK', 'COMPLETED', 'FAILED'].includes(update.state) ? update : undefined;
  }, { attempts: 100_000, intervalMs: 200, timeoutMs: 120_000 });
  const decidedAt = monotonicClock.nowMs();
  t.is(done.state, 'ROLLED_BACK');
  t.is(done.routing, '0:1');
  t.like(done.rollback, { initiated_by: { kind: 'system', name: 'health-gate' } });
  t.regex(done.rollback?.reason ?? '', /automatic rollback after 3\/3 consecutive breaches: .*healthz failure \(expected status 200, got 503/);

  // Traffic is back on 1.0.0 and no call failed on the way.
  await sleep(2000);
  running = false;
  await Promise.all(workers);
  t.true(calls.some((c) => c.version === '2.2.0-sick'), 'the canary got calls');
  t.deepEqual(calls.filter((c) => c.error !== undefined), [], 'no failed call');
  const after = calls.filter((c) => c.startedAt > decidedAt + 1000);
  t.true(after.length > 20 && after.every((c) => c.version === '1.0.0'), `${after.length} calls after the rollback, all on 1.0.0`);

  // The webhook: signed, in commit order, from start to the end of the rollback.
  await waitFor('the rolled-back notification', () => hook.deliveries.some((d) => d.document.action === 'update.rolled-back'), { attempts: 200, intervalMs: 100 });
  t.true(hook.deliveries.every((d) => d.verified), 'every delivery carries a valid signature');
  // Delivery is at least once (a retry after a lost answer, a resend after a leader change):
  // receivers de-duplicate by event id, and the first deliveries come in commit order.
  const firsts: Delivery[] = [];
  const seen = new Set<string>();
  for (const delivery of hook.deliveries) {
    if (seen.has(delivery.document.id)) continue;
    seen.add(delivery.document.id);
    firsts.push(delivery);
  }
  if (firsts.length < hook.deliveries.length) t.log(`${hook.deliveries.length - firsts.length} repeated deliveries (at least once)`);
  const revisions = firsts.map((d) => d.document.revision);
  t.deepEqual(revisions, [...revisions].sort((a, b) => a - b), 'first deliveries in commit order');
  const forUpdate = firsts.filter((d) => d.document.target.updateId === id).map((d) => `${d.document.action} by ${d.document.actor.name}`);
  t.deepEqual(forUpdate, ['update.started by alice', 'update.paused by health-gate', 'update.rollback-started by health-gate', 'update.rolled-back by controller']);
  const unhealthy = firsts.filter((d) => d.document.action === 'instance.unhealthy');
  t.is(unhealthy.length, 3, 'one per new instance');

  // The audit trail.
  const trail = ((await cluster.call(leader, 'Events', 'List', { update_id: id, limit: 100 })) as { events: StoredEvent[] }).events;
  const actions = trail.map((e) => `${e.action} by ${e.actor.kind}:${e.actor.name}`);
  t.is(actions[0], 'update.started by user:alice');
  t.true(actions.includes('update.rollback-started by system:health-gate'), actions.join(', '));
  t.is(actions.at(-1), 'update.rolled-back by system:controller');
  const rollback = trail.find((e) => e.action === 'update.rollback-started')!;
  t.regex(rollback.reason, /healthz failure/);
  const sick = ((await cluster.call(leader, 'Events', 'List', { artifact: GREETER, action: 'instance.unhealthy' })) as { events: StoredEvent[] }).events;
  t.is(sick.length, 3);
  for (const event of sick) {
    t.is(event.actor.kind, 'system');
    t.is(event.actor.name, `node-${event.target.node_id}`);
    t.is(event.target.version, '2.2.0-sick');
    t.regex(event.reason, /healthz failure \(expected status 200, got 503/);
  }
  // Raw results stayed on the nodes, and any node answers for all of them.
  const results = ((await cluster.call(leader, 'Health', 'Results', { artifact: GREETER, version: '2.2.0-sick', limit: 1000 })) as { results: { node_id: number; status: string }[]; unreachable: unknown[] });
  t.deepEqual(results.unreachable, []);
  t.deepEqual([...new Set(results.results.map((r) => r.node_id))].sort(), [1, 2, 3]);
  t.true(results.results.some((r) => r.status === 'failure') && results.results.some((r) => r.status === 'success'));
});
