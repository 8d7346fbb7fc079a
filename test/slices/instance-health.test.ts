/**
 * The instance lifecycle with declared health checks (issue 7 item 3): an instance becomes ACTIVE
 * only after its checks pass; an ACTIVE one failing its policy is reported UNHEALTHY (out of
 * routing) with an `instance.unhealthy` event in the same transaction, and comes back when they
 * pass again. The checks themselves are scripted here (the monitor and runners have their tests).
 */
import test from 'ava';
import { EVENT_PREFIX, parseEvent } from '../../src/events/event.ts';
import type { HealthSpec, RoundResult } from '../../src/health/types.ts';
import { MemoryClusterPort } from '../../src/node/cluster-port.ts';
import { InstanceManager, type InstanceHealthChecks } from '../../src/slices/instance-manager.ts';
import { artifactBase, assignmentKey, instanceKey } from '../../src/slices/keys.ts';
import { nodeId } from '../../src/util/ids.ts';
import { silentLogger } from '../../src/util/logger.ts';
import { ManualClock, flush } from '../helpers/manual-clock.ts';

const BASE = artifactBase('org.example', 'greeter');
const ASSIGNMENT = assignmentKey(nodeId(1), BASE, '1.0.0', 'i1');
const INSTANCE = instanceKey(nodeId(1), BASE, '1.0.0', 'i1');
const SPEC: HealthSpec = {
  mode: 'ALL',
  checks: [{ type: 'http', name: 'ready', method: 'GET', host: '127.0.0.1', path: '/healthz', expectedStatus: [200], timeoutMs: 1000, headers: {} }],
  policy: { successThreshold: 1, failureThreshold: 3, intervalMs: 10_000, initialDelayMs: 0, monitoringDurationMs: 300_000 },
};

function round(pass: boolean, detail: string): RoundResult {
  return { pass, results: [{ check: 'ready', type: 'http', status: pass ? 'success' : 'failure', at: 1, durationMs: 3, attempts: 1, detail }] };
}

/** Scripted checks: the test decides the first verdict and fires changes. */
class ScriptedChecks implements InstanceHealthChecks {
  verdict: { state: 'healthy' | 'unhealthy'; reason: string } = { state: 'healthy', reason: 'passed' };
  onChange: ((change: { state: 'healthy' | 'unhealthy'; round: RoundResult }) => void) | undefined;
  watched: { httpPort?: number | undefined; cwd?: string | undefined; spec: HealthSpec } | undefined;
  stops = 0;
  watch(options: Parameters<InstanceHealthChecks['watch']>[0]): ReturnType<InstanceHealthChecks['watch']> {
    this.onChange = options.onChange;
    this.watched = { httpPort: options.target.httpPort, cwd: options.target.cwd, spec: options.spec };
    return { firstVerdict: async () => this.verdict, stop: () => this.stops++ };
  }
}

async function harness(checks: ScriptedChecks, override?: HealthSpec) {
  const port = new MemoryClusterPort(1);
  const clock = new ManualClock();
  const states: string[] = [];
  port.watch('instance/', 0, (events) => {
    for (const e of events) states.push(e.type === 'put' ? (JSON.parse(e.kv.value) as { state: string }).state : 'DELETED');
  });
  const loader = { load: async () => ({ methods: ['hello'], health: false, healthChecks: SPEC, dir: '/artifact/files', factory: () => ({ httpPort: 8123, hello: () => 'hi' }) }) };
  const manager = new InstanceManager({
    port,
    loader,
    clock,
    logger: silentLogger,
    address: '127.0.0.1:7001',
    healthChecks: checks,
    wallClockMs: () => 1_700_000_000_000,
    ...(override === undefined ? {} : { healthSpecOf: async () => override }),
  });
  await manager.start();
  await port.txn([], [{ type: 'put', key: ASSIGNMENT, value: JSON.stringify({ nodeId: 1 }) }]);
  await flush();
  await manager.settled();
  return { port, manager, states };
}

async function events(port: MemoryClusterPort) {
  const { kvs } = await port.range(EVENT_PREFIX);
  return kvs.map((kv) => {
    const parsed = parseEvent(kv.key, kv.value, kv.modRevision);
    if (!parsed.ok) throw new Error(parsed.reason);
    return parsed.value;
  });
}

test('an instance becomes ACTIVE only after its declared checks pass, checked against its own HTTP port and directory', async (t) => {
  const checks = new ScriptedChecks();
  const { states } = await harness(checks);
  t.deepEqual(states, ['STARTING', 'HEALTH_CHECKING', 'ACTIVE']);
  t.deepEqual(checks.watched, { httpPort: 8123, cwd: '/artifact/files', spec: SPEC });
});

test('failing the checks at start fails the instance with the reason, and stops its checks', async (t) => {
  const checks = new ScriptedChecks();
  checks.verdict = { state: 'unhealthy', reason: 'ready failure (HTTP 503 in 2 ms)' };
  const { port, states } = await harness(checks);
  t.deepEqual(states, ['STARTING', 'HEALTH_CHECKING', 'FAILED']);
  const record = JSON.parse((await port.get(INSTANCE))!.value) as { reason: string };
  t.regex(record.reason, /health checks failed: ready failure \(HTTP 503/);
  t.is(checks.stops, 1);
});

test('an ACTIVE instance failing its policy goes UNHEALTHY (out of routing, still answering stale routes) with its audit event, and back to ACTIVE when it passes', async (t) => {
  const checks = new ScriptedChecks();
  const { port, manager, states } = await harness(checks);
  checks.onChange!({ state: 'unhealthy', round: round(false, 'HTTP 500 in 4 ms') });
  await manager.settled();
  await flush();
  t.deepEqual(states, ['STARTING', 'HEALTH_CHECKING', 'ACTIVE', 'UNHEALTHY']);
  const record = JSON.parse((await port.get(INSTANCE))!.value) as { state: string; reason: string };
  t.regex(record.reason, /ready failure \(HTTP 500 in 4 ms\)/);
  t.is(await manager.invoke(INSTANCE, 'hello', {}, Number.MAX_SAFE_INTEGER), 'hi', 'a call on a stale route is still served');
  let recorded = await events(port);
  t.is(recorded.length, 1);
  t.like(recorded[0], { action: 'instance.unhealthy', actor: { kind: 'system', name: 'node-1' }, target: { artifact: BASE, version: '1.0.0', instanceId: 'i1', nodeId: 1 }, at: 1_700_000_000_000 });
  t.is(recorded[0]!.revision, (await port.get(INSTANCE))!.modRevision, 'written in the same transaction as the state');

  checks.onChange!({ state: 'healthy', round: round(true, 'HTTP 200 in 2 ms') });
  await manager.settled();
  await flush();
  t.deepEqual(states.slice(-1), ['ACTIVE']);
  t.is(await manager.invoke(INSTANCE, 'hello', {}, Number.MAX_SAFE_INTEGER), 'hi');
  recorded = await events(port);
  t.deepEqual(
    recorded.map((e) => e.action),
    ['instance.unhealthy', 'instance.healthy'],
  );
  t.not(recorded[0]!.id, recorded[1]!.id);
});

test("an update's override of the checks wins over the manifest's", async (t) => {
  const checks = new ScriptedChecks();
  const override: HealthSpec = { ...SPEC, mode: 'ANY' };
  await harness(checks, override);
  t.is(checks.watched?.spec, override);
});

test('unassigning an instance stops its checks before it drains', async (t) => {
  const checks = new ScriptedChecks();
  const { port, manager, states } = await harness(checks);
  await port.txn([], [{ type: 'delete', key: ASSIGNMENT }]);
  await flush();
  await manager.settled();
  t.is(checks.stops, 1);
  // A late change from the stopped checks writes nothing.
  checks.onChange!({ state: 'unhealthy', round: round(false, 'late') });
  await manager.settled();
  t.deepEqual(states, ['STARTING', 'HEALTH_CHECKING', 'ACTIVE', 'DRAINING', 'STOPPED']);
});
