/**
 * Issue 4's acceptance on real node processes (127.0.0.1, LevelDB, kill -9): artifacts are
 * published through cutover.v1.Slices/Publish with a real gRPC client, deployed, placed over the
 * nodes and called across them; a killed node's instances are re-placed while calls go on; a
 * draining instance finishes its calls before it stops; the embedded client routes by exact
 * weights and survives the loss of its endpoint.
 */
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import type * as grpc from '@grpc/grpc-js';
import { connect, type CutoverClient } from '../../src/index.ts';
import { monotonicClock } from '../../src/platform/clock.ts';
import { sleep, waitFor } from '../../src/platform/wait.ts';
import { deadlineIn } from '../../src/platform/wall-clock.ts';
import { packArtifact } from '../../src/slices/artifact-package.ts';
import { CutoverError } from '../../src/util/errors.ts';
import { ProcessCluster } from './harness.ts';

const GREETER = 'org.example:greeter';
const PROBE = 'org.test:probe';
const EXAMPLES = fileURLToPath(new URL('../../examples/slices/greeter/', import.meta.url));
/** How long the probe's slow method takes. */
const SLOW_MS = 1500;

interface Instance {
  artifact: string;
  version: string;
  instance_id: string;
  node_id: number;
  state: string;
  assigned: boolean;
}

type Callback = (error: grpc.ServiceError | null, response: Record<string, unknown>) => void;
type PublishClient = grpc.Client & { Publish: (options: grpc.CallOptions, callback: Callback) => grpc.ClientWritableStream<{ chunk: Buffer; expected_sha256?: string }> };

const now = (): number => monotonicClock.nowMs();
/** Marks a failed call in a sequence of versions. */
const FAILED = 'FAILED';

/** Streams a packed artifact to Slices/Publish on node `id` in 1 KiB chunks, with its hash. */
async function publish(cluster: ProcessCluster, id: number, dir: string): Promise<Record<string, unknown>> {
  const packed = await packArtifact(dir);
  const client = cluster.client('Slices', cluster.node(id).address) as unknown as PublishClient;
  const deadline = deadlineIn(10_000);
  await new Promise<void>((resolve, reject) => client.waitForReady(deadline, (error) => (error ? reject(error) : resolve())));
  return new Promise((resolve, reject) => {
    const stream = client.Publish({ deadline }, (error, response) => (error ? reject(error) : resolve(response)));
    for (let offset = 0; offset < packed.bytes.byteLength; offset += 1024) {
      const chunk = Buffer.from(packed.bytes.subarray(offset, offset + 1024));
      stream.write(offset === 0 ? { chunk, expected_sha256: packed.sha256 } : { chunk });
    }
    stream.end();
  });
}

/**
 * A test-only slice: `who` says where it runs; `slow` answers after `ms` (default SLOW_MS), and
 * fails if `stop()` ran meanwhile, so a call that outlives its instance cannot pass unnoticed.
 */
async function writeProbe(t: ExecutionContext): Promise<string> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'cutover-probe-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const dir = path.join(root, 'probe');
  await mkdir(dir);
  await writeFile(path.join(dir, 'slice.json'), JSON.stringify({ groupId: 'org.test', artifactId: 'probe', version: '1.0.0', entry: 'index.js', methods: ['who', 'slow'], health: true }));
  await writeFile(
    path.join(dir, 'index.js'),
    `export default function create(context) {
  let stopped = false;
  const where = () => ({ nodeId: context.nodeId, instanceId: context.instanceId, version: context.version });
  return {
    async health() { return true; },
    async stop() { stopped = true; },
    async who() { return where(); },
    async slow(request) {
      const ms = typeof request?.ms === 'number' ? request.ms : ${SLOW_MS};
      await new Promise((resolve) => setTimeout(resolve, ms));
      if (stopped) throw new Error('the instance stopped before this call finished');
      return { ...where(), sleptMs: ms };
    },
  };
}
`,
  );
  return dir;
}

async function instances(cluster: ProcessCluster, id: number, artifact: string): Promise<{ instances: Instance[]; pending: Instance[] }> {
  const reply = await cluster.call(id, 'Slices', 'Instances', { artifact }, 2000);
  return reply as unknown as { instances: Instance[]; pending: Instance[] };
}

/** Waits (bounded) until `count` assigned ACTIVE instances of each version run, none pending and none elsewhere. */
async function waitActive(cluster: ProcessCluster, via: number, artifact: string, counts: Record<string, number>, accept: (active: Instance[], all: { instances: Instance[]; pending: Instance[] }) => boolean = () => true, timeoutMs = 20_000): Promise<Instance[]> {
  return waitFor(`${artifact}: ${JSON.stringify(counts)} ACTIVE`, async () => {
    const all = await instances(cluster, via, artifact);
    const active = all.instances.filter((i) => i.state === 'ACTIVE' && i.assigned);
    for (const [version, count] of Object.entries(counts)) if (active.filter((i) => i.version === version).length !== count) return undefined;
    if (active.length !== all.instances.length || all.pending.length > 0) return undefined;
    return accept(active, all) ? active : undefined;
  }, { attempts: 1000, intervalMs: 100, timeoutMs });
}

async function invoke(cluster: ProcessCluster, id: number, artifact: string, method: string, payload: unknown, timeoutMs = 5000): Promise<Record<string, unknown>> {
  const reply = await cluster.call(id, 'Slices', 'Invoke', { artifact, method, payload_json: JSON.stringify(payload), timeout_ms: timeoutMs }, timeoutMs + 1000);
  return JSON.parse(reply.payload_json as string) as Record<string, unknown>;
}

/** A KV write through any live node, retried (bounded) while a leader is being elected. */
function put(cluster: ProcessCluster, ids: readonly number[], key: string, value: unknown): Promise<true> {
  let next = 0;
  return waitFor(`put ${key}`, async () => {
    const id = ids[next++ % ids.length]!;
    await cluster.call(id, 'KV', 'Put', { key, value: JSON.stringify(value) }, 1000);
    return true as const;
  }, { attempts: 100, intervalMs: 50 });
}

async function leaderAndFollowers(cluster: ProcessCluster): Promise<{ leader: number; followers: number[] }> {
  const leader = await cluster.waitForLeader();
  return { leader, followers: [...cluster.nodes.keys()].filter((id) => id !== leader) };
}

/** Versions of `calls` sequential greeter calls from `client`. */
async function versionsOf(client: CutoverClient, calls: number): Promise<string[]> {
  const versions: string[] = [];
  for (let i = 0; i < calls; i++) versions.push(((await client.invoker.invoke(GREETER, 'hello', { name: `c${i}` }, { timeoutMs: 3000 })) as { version: string }).version);
  return versions;
}

/**
 * Every `period` consecutive versions hold exactly `expected` of `version`. A `FAILED` entry (a
 * call lost in flight: it took a pick but has no answer) splits the sequence; windows are checked
 * on each side of it.
 */
function windowsExact(t: ExecutionContext, versions: readonly string[], version: string, expected: number, period: number, label: string): void {
  t.true(versions.filter((v) => v !== FAILED).length >= period * 4, `${label}: enough calls`);
  const bad: number[] = [];
  for (let i = 0; i + period <= versions.length; i++) {
    const window = versions.slice(i, i + period);
    if (!window.includes(FAILED) && window.filter((v) => v === version).length !== expected) bad.push(i);
  }
  t.deepEqual(bad, [], `${label}: windows of ${period} with other than ${expected} × ${version}: ${versions.join(' ')}`);
}

// Real processes share two cores: run these one at a time.
test.serial('publish and deploy through the API: instances spread over the nodes; a call is served on another node; a draining instance finishes its calls first', async (t) => {
  const cluster = await ProcessCluster.start(3);
  t.teardown(() => cluster.destroy());
  const { leader, followers } = await leaderAndFollowers(cluster);

  // Publish greeter 1.0.0 through a follower (forwarded to the leader), deploy 3 instances.
  const published = await publish(cluster, followers[0]!, path.join(EXAMPLES, '1.0.0'));
  t.like(published, { created: true, artifact: { artifact: GREETER, version: '1.0.0', methods: ['hello'] } });
  t.like(await cluster.call(leader, 'Slices', 'Deploy', { artifact: GREETER, version: '1.0.0', instances: 3 }), { blueprint: { instances: 3 } });
  const spread = await waitActive(cluster, followers[1]!, GREETER, { '1.0.0': 3 });
  t.deepEqual(spread.map((i) => Number(i.node_id)).sort(), [1, 2, 3], 'one instance per node');
  for (const id of [1, 2, 3]) t.like(await invoke(cluster, id, GREETER, 'hello', { name: `n${id}` }), { message: `Hello, n${id}!`, version: '1.0.0' });

  // One probe instance: a call through a node that does not host it is served on its host.
  await publish(cluster, leader, await writeProbe(t));
  await cluster.call(followers[0]!, 'Slices', 'Deploy', { artifact: PROBE, version: '1.0.0', instances: 1 });
  const [probe] = await waitActive(cluster, leader, PROBE, { '1.0.0': 1 });
  const host = Number(probe!.node_id);
  const caller = [1, 2, 3].find((id) => id !== host)!;
  t.deepEqual(await invoke(cluster, caller, PROBE, 'who', {}), { nodeId: host, instanceId: probe!.instance_id, version: '1.0.0' });

  // Drain: slow calls in flight, then scale to 0. They all succeed (the probe fails a call that
  // outlives stop()), the instance reports DRAINING meanwhile, and STOPPED or goes only after.
  const startedAt: number[] = [];
  const slow = Array.from({ length: 4 }, (_, i) => {
    startedAt.push(now());
    return invoke(cluster, i % 2 === 0 ? caller : host, PROBE, 'slow', {}, 10_000).then((reply) => ({ reply, endedAt: now() }));
  });
  await sleep(300);
  await cluster.call(leader, 'Slices', 'Scale', { artifact: PROBE, version: '1.0.0', instances: 0 });
  const seen: { state: string; at: number }[] = [];
  const gone = await waitFor('the probe to stop', async () => {
    const all = await instances(cluster, caller, PROBE);
    const record = all.instances.find((i) => i.instance_id === probe!.instance_id);
    const state = record?.state ?? 'GONE';
    if (seen.at(-1)?.state !== state) seen.push({ state, at: now() });
    return state === 'STOPPED' || state === 'GONE' ? now() : undefined;
  }, { attempts: 400, intervalMs: 25, timeoutMs: 15_000 });
  const results = await Promise.all(slow);
  for (const { reply } of results) t.like(reply, { nodeId: host, instanceId: probe!.instance_id, sleptMs: SLOW_MS });
  t.log(`probe states: ${seen.map((s) => `${s.state}@+${(s.at - startedAt[0]!).toFixed(0)}ms`).join(' ')}; calls ended at +${results.map((r) => (r.endedAt - startedAt[0]!).toFixed(0)).join(', ')} ms`);
  t.true(seen.some((s) => s.state === 'DRAINING'), 'reported DRAINING while calls were in flight');
  // The last call cannot have finished on the instance before it was sent plus SLOW_MS.
  t.true(gone >= Math.max(...startedAt) + SLOW_MS, 'stopped only after the slow calls could finish');
  t.true(seen.filter((s) => s.state === 'ACTIVE').every((s) => s.at < gone), 'no ACTIVE report after it stopped');
  // Nothing serves the probe any more.
  const refusal = await waitFor('calls to the probe to be refused', async () => {
    try {
      await invoke(cluster, caller, PROBE, 'who', {});
      return undefined;
    } catch (error) {
      return (error as grpc.ServiceError).metadata?.get('cutover-error-code')[0];
    }
  }, { attempts: 100, intervalMs: 20 });
  t.is(refusal, 'NO_ACTIVE_INSTANCE');
});

/** Kills the follower or the leader, which hosts one of three greeter instances, while calls go on. */
async function killHostWhileCalling(t: ExecutionContext, role: 'follower' | 'leader'): Promise<void> {
  const cluster = await ProcessCluster.start(3, {}, { nodeDownAfterMs: 2000 });
  t.teardown(() => cluster.destroy());
  const { leader, followers } = await leaderAndFollowers(cluster);
  await publish(cluster, leader, path.join(EXAMPLES, '1.0.0'));
  await cluster.call(leader, 'Slices', 'Deploy', { artifact: GREETER, version: '1.0.0', instances: 3 });
  const before = await waitActive(cluster, leader, GREETER, { '1.0.0': 3 });
  t.deepEqual(before.map((i) => Number(i.node_id)).sort(), [1, 2, 3]);
  const victim = role === 'leader' ? leader : followers[0]!;
  const survivors = [1, 2, 3].filter((id) => id !== victim);

  // The embedded client spreads calls over all three instances (it hosts none, so none is local).
  const client = await connect({ endpoints: survivors.map((id) => cluster.node(id).address), invokeTimeoutMs: 3000 });
  t.teardown(() => client.close());
  const calls: { startedAt: number; endedAt: number; error?: string }[] = [];
  let driving = true;
  const LOOPS = 3;
  const loops = Array.from({ length: LOOPS }, async (_, loop) => {
    for (let i = 0; driving && i < 20_000; i++) {
      const startedAt = now();
      try {
        const reply = (await client.invoker.invoke(GREETER, 'hello', { name: `l${loop}` })) as { message: string };
        if (reply.message !== `Hello, l${loop}!`) throw new Error(`unexpected reply ${JSON.stringify(reply)}`);
        calls.push({ startedAt, endedAt: now() });
      } catch (error) {
        calls.push({ startedAt, endedAt: now(), error: error instanceof CutoverError ? error.code : String(error) });
      }
      await sleep(5);
    }
  });

  await sleep(700);
  const killStart = now();
  await cluster.kill(victim);
  const killedAt = now();
  const after = await waitActive(cluster, survivors[0]!, GREETER, { '1.0.0': 3 }, (_active, all) => [...all.instances, ...all.pending].every((i) => Number(i.node_id) !== victim));
  const replacedAt = now();
  t.deepEqual(new Set(after.map((i) => Number(i.node_id))), new Set(survivors), 'the re-placed instance runs on a live node');
  t.true(replacedAt - killedAt >= 2000 - 200, `re-placed after nodeDownAfterMs (${(replacedAt - killedAt).toFixed(0)} ms)`);
  await sleep(1000);
  driving = false;
  await Promise.all(loops);

  const failures = calls.filter((c) => c.error !== undefined);
  const afterReplace = calls.filter((c) => c.startedAt >= replacedAt);
  t.log(`killed node ${victim} (${role}): ${calls.length} calls, ${failures.length} failed (${failures.map((f) => f.error).join(', ')}); re-placed ${(replacedAt - killedAt).toFixed(0)} ms after the kill; ${client.status().retries} retried on another instance`);
  t.true(calls.filter((c) => c.endedAt < killStart && c.error === undefined).length > 20, 'calls succeeded before the kill');
  t.true(failures.length <= LOOPS, 'at most one call per caller was in flight on the killed node');
  for (const f of failures) {
    t.true(f.startedAt <= killedAt && f.endedAt >= killStart, `a failure (${f.error}) outside the kill: started ${(f.startedAt - killStart).toFixed(0)} ms, ended ${(f.endedAt - killStart).toFixed(0)} ms after it`);
    t.is(f.error, 'UNAVAILABLE_AFTER_SEND');
  }
  t.true(calls.filter((c) => c.startedAt > killedAt && c.startedAt < replacedAt && c.error === undefined).length > 20, 'calls succeeded while the node was down');
  t.true(afterReplace.length > 20 && afterReplace.every((c) => c.error === undefined), 'every call after re-placement succeeded');
}

test.serial('kill -9 of a follower hosting an instance: it is re-placed on the live nodes; calls only fail in flight on the killed node', (t) => killHostWhileCalling(t, 'follower'));

test.serial('kill -9 of the leader hosting an instance: the new leader re-places it; calls only fail in flight on the killed node', (t) => killHostWhileCalling(t, 'leader'));

test.serial('the embedded client routes by exact weights and survives the loss of its endpoint', async (t) => {
  const cluster = await ProcessCluster.start(3, {}, { nodeDownAfterMs: 2000 });
  t.teardown(() => cluster.destroy());
  const { leader, followers } = await leaderAndFollowers(cluster);
  await publish(cluster, followers[0]!, path.join(EXAMPLES, '1.0.0'));
  await publish(cluster, followers[0]!, path.join(EXAMPLES, '2.0.0'));
  await cluster.call(leader, 'Slices', 'Deploy', { artifact: GREETER, version: '1.0.0', instances: 2 });
  // Deploy refuses a second version; the rolling-update controller writes its blueprint directly.
  await put(cluster, [leader], `blueprint/${GREETER}/2.0.0`, { instances: 2 });
  await waitActive(cluster, leader, GREETER, { '1.0.0': 2, '2.0.0': 2 });
  await put(cluster, [leader], `version-routing/${GREETER}`, { updateId: 'u1', oldVersion: '1.0.0', newVersion: '2.0.0', newWeight: 1, oldWeight: 3 });

  // The leader is the client's first endpoint: losing it loses the endpoint and the leader.
  const endpoint = leader;
  const client = await connect({ endpoints: [endpoint, ...followers].map((id) => cluster.node(id).address), invokeTimeoutMs: 3000, reconnect: { initialMs: 50, maxMs: 500 } });
  t.teardown(() => client.close());
  t.is(client.status().feed.endpoint, cluster.node(endpoint).address);
  const routing = (): { newWeight: number; oldWeight: number } | undefined => client.table.snapshot().artifacts.find((a) => a.base === GREETER)?.routing;
  t.like(routing(), { newWeight: 1, oldWeight: 3 });
  windowsExact(t, await versionsOf(client, 40), '2.0.0', 1, 4, '1:3 before the kill');

  // Kill the endpoint while calling: every call still succeeds (a call to the dead node's
  // instance fails to connect and is retried on another instance of the same version), and the
  // split stays exact, since the retry keeps the version.
  const during: string[] = [];
  const failed: { code: string; startedAt: number }[] = [];
  const caller = (async () => {
    for (let i = 0; i < 60; i++) {
      const startedAt = now();
      try {
        during.push(((await client.invoker.invoke(GREETER, 'hello', { name: 'k' }, { timeoutMs: 3000 })) as { version: string }).version);
      } catch (error) {
        during.push(FAILED);
        failed.push({ code: error instanceof CutoverError ? error.code : String(error), startedAt });
      }
      await sleep(10);
    }
  })();
  await sleep(150);
  await cluster.kill(endpoint);
  const killedAt = now();
  await caller;
  t.log(`across the kill of node ${endpoint} (the endpoint and leader): ${during.length - failed.length} calls succeeded, ${failed.length} failed; ${client.status().retries} retried on another instance`);
  // Calls are sequential: at most one can be in flight when the node dies.
  t.true(failed.length <= 1, `only a call in flight at the kill may fail: ${JSON.stringify(failed)}`);
  for (const f of failed) t.true(f.code === 'UNAVAILABLE_AFTER_SEND' && f.startedAt <= killedAt, `a failure outside the kill: ${JSON.stringify(f)}`);
  windowsExact(t, during, '2.0.0', 1, 4, '1:3 across the kill');

  // The client follows another endpoint, and a later routing change (written there) reaches it.
  await waitFor('the client to follow another endpoint', () => (client.status().feed.watching && client.status().feed.endpoint !== cluster.node(endpoint).address ? true : undefined), { attempts: 200, intervalMs: 50 });
  await put(cluster, followers, `version-routing/${GREETER}`, { updateId: 'u1', oldVersion: '1.0.0', newVersion: '2.0.0', newWeight: 3, oldWeight: 1 });
  await waitFor('the client to see 3:1', () => (routing()?.newWeight === 3 ? true : undefined), { attempts: 200, intervalMs: 25 });
  windowsExact(t, await versionsOf(client, 40), '2.0.0', 3, 4, '3:1 after the kill');

  // The dead node's instances are re-placed and the split still holds.
  await waitActive(cluster, followers[0]!, GREETER, { '1.0.0': 2, '2.0.0': 2 }, (active) => active.every((i) => Number(i.node_id) !== endpoint));
  await put(cluster, followers, `version-routing/${GREETER}`, { updateId: 'u1', oldVersion: '1.0.0', newVersion: '2.0.0', newWeight: 1, oldWeight: 0 });
  await waitFor('the client to see 1:0', () => (routing()?.oldWeight === 0 ? true : undefined), { attempts: 200, intervalMs: 25 });
  t.deepEqual(new Set(await versionsOf(client, 20)), new Set(['2.0.0']), '1:0 sends everything to 2.0.0');
});
