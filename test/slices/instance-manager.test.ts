import test from 'ava';
import { MemoryClusterPort } from '../../src/node/cluster-port.ts';
import { InstanceManager, type LoadedSlice, type SliceInstance } from '../../src/slices/instance-manager.ts';
import { artifactBase, assignmentKey, instanceKey } from '../../src/slices/keys.ts';
import { nodeId } from '../../src/util/ids.ts';
import { silentLogger } from '../../src/util/logger.ts';
import type { WatchEvent } from '../../src/kv/types.ts';
import { ManualClock, flush } from '../helpers/manual-clock.ts';

const BASE = artifactBase('org.example', 'greeter');
const NODE = nodeId(1);
const ASSIGNMENT = assignmentKey(NODE, BASE, '1.0.0', 'i1');
const INSTANCE = instanceKey(NODE, BASE, '1.0.0', 'i1');

interface Harness {
  port: MemoryClusterPort;
  clock: ManualClock;
  manager: InstanceManager;
  states: string[];
  hooks: string[];
}

/** A manager on node 1 whose slice is built by `make`; `states` lists the reported states in order. */
async function harness(make: (hooks: string[]) => SliceInstance, loaded: Partial<LoadedSlice> = {}, options: { drainTimeoutMs?: number } = {}): Promise<Harness> {
  const port = new MemoryClusterPort(1);
  const clock = new ManualClock();
  const hooks: string[] = [];
  const states: string[] = [];
  port.watch('instance/', 0, (events: readonly WatchEvent[]) => {
    for (const e of events) states.push(e.type === 'put' ? (JSON.parse(e.kv.value) as { state: string }).state : 'DELETED');
  });
  const loader = { load: async () => ({ methods: ['hello', 'slow'], health: true, factory: () => make(hooks), ...loaded }) };
  const manager = new InstanceManager({ port, loader, clock, logger: silentLogger, address: '127.0.0.1:7001', healthIntervalMs: 100, stoppedRetentionMs: 1000, ...options });
  await manager.start();
  return { port, clock, manager, states, hooks };
}

function greeter(hooks: string[], extra: Partial<SliceInstance> = {}): SliceInstance {
  return {
    start: () => hooks.push('start'),
    stop: () => hooks.push('stop'),
    health: () => ({ healthy: true }),
    hello: async ({ name }: { name: string }) => ({ message: `Hello, ${name}!` }),
    ...extra,
  };
}

async function assign(port: MemoryClusterPort, key = ASSIGNMENT): Promise<void> {
  await port.txn([], [{ type: 'put', key, value: JSON.stringify({ nodeId: 1 }) }]);
  await flush();
}

test('an assigned instance goes STARTING → HEALTH_CHECKING → ACTIVE and serves local calls', async (t) => {
  const h = await harness((hooks) => greeter(hooks));
  await assign(h.port);
  await h.manager.settled();
  t.deepEqual(h.states, ['STARTING', 'HEALTH_CHECKING', 'ACTIVE']);
  t.deepEqual(h.hooks, ['start']);
  const record = JSON.parse((await h.port.get(INSTANCE))!.value) as Record<string, unknown>;
  t.like(record, { state: 'ACTIVE', nodeId: 1, address: '127.0.0.1:7001', instanceId: 'i1', version: '1.0.0' });
  t.deepEqual(await h.manager.invoke(INSTANCE, 'hello', { name: 'Ada' }, 1000), { message: 'Hello, Ada!' });
});

test('a failing health check is retried, then the instance is FAILED with the reason', async (t) => {
  let checks = 0;
  const h = await harness((hooks) => greeter(hooks, { health: () => ({ healthy: ++checks > 5 }) }));
  await assign(h.port);
  await h.clock.advance(1000);
  await h.manager.settled();
  t.is(checks, 3);
  t.deepEqual(h.states, ['STARTING', 'HEALTH_CHECKING', 'FAILED']);
  const record = JSON.parse((await h.port.get(INSTANCE))!.value) as { reason: string };
  t.regex(record.reason, /health check failed 3 times/);
  t.deepEqual(h.hooks, ['start', 'stop'], 'a failed instance is stopped');
  await t.throwsAsync(h.manager.invoke(INSTANCE, 'hello', {}, 1000), { message: /does not run/ });
});

test('an instance whose start() throws is FAILED', async (t) => {
  const h = await harness((hooks) => greeter(hooks, { start: () => Promise.reject(new Error('no database')) }));
  await assign(h.port);
  await h.manager.settled();
  t.deepEqual(h.states, ['STARTING', 'FAILED']);
  t.regex((JSON.parse((await h.port.get(INSTANCE))!.value) as { reason: string }).reason, /no database/);
});

test('a start() that hangs is bounded by the start timeout', async (t) => {
  const h = await harness((hooks) => greeter(hooks, { start: () => new Promise(() => {}) }));
  await assign(h.port);
  await h.clock.advance(30_000);
  await h.manager.settled();
  t.deepEqual(h.states, ['STARTING', 'FAILED']);
});

test('draining waits for in-flight calls before stop(), then reports STOPPED and deletes the record later', async (t) => {
  let release!: () => void;
  const h = await harness((hooks) => greeter(hooks, { slow: () => new Promise<string>((resolve) => (release = () => resolve('done'))) }));
  await assign(h.port);
  await h.manager.settled();
  const inFlight = h.manager.invoke(INSTANCE, 'slow', {}, 60_000);
  await h.port.txn([], [{ type: 'delete', key: ASSIGNMENT }]);
  await flush();
  t.deepEqual(h.states, ['STARTING', 'HEALTH_CHECKING', 'ACTIVE', 'DRAINING']);
  await t.throwsAsync(h.manager.invoke(INSTANCE, 'hello', {}, 60_000), { any: true, message: /DRAINING/ }, 'a draining instance takes no new call');
  await h.clock.advance(5000);
  t.deepEqual(h.hooks, ['start'], 'not stopped while a call is in flight');
  release();
  t.is(await inFlight, 'done');
  await flush();
  t.deepEqual(h.hooks, ['start', 'stop']);
  t.deepEqual(h.states.slice(3), ['DRAINING', 'STOPPED']);
  await h.clock.advance(1000);
  await flush();
  t.is(await h.port.get(INSTANCE), undefined);
  t.is(h.states.at(-1), 'DELETED');
});

test('draining is bounded by the drain timeout', async (t) => {
  const h = await harness((hooks) => greeter(hooks, { slow: () => new Promise(() => {}) }), {}, { drainTimeoutMs: 2000 });
  await assign(h.port);
  await h.manager.settled();
  void h.manager.invoke(INSTANCE, 'slow', {}, 60_000).catch(() => {});
  await h.port.txn([], [{ type: 'delete', key: ASSIGNMENT }]);
  await h.clock.advance(1900);
  t.deepEqual(h.hooks, ['start'], 'still draining before the timeout');
  await h.clock.advance(200);
  t.deepEqual(h.hooks, ['start', 'stop']);
  t.is(h.states.at(-1), 'STOPPED');
});

test('local calls: unknown method, slice error, deadline and a missing instance have distinct codes', async (t) => {
  const h = await harness((hooks) => greeter(hooks, { broken: () => { throw new Error('boom'); }, never: () => new Promise(() => {}) }), { methods: ['hello', 'broken', 'never'] });
  await assign(h.port);
  await h.manager.settled();
  await t.throwsAsync(h.manager.invoke(INSTANCE, 'nope', {}, 1000), { any: true, code: 'UNKNOWN_METHOD' } as never);
  await t.throwsAsync(h.manager.invoke(INSTANCE, 'stop', {}, 1000), { any: true, code: 'UNKNOWN_METHOD' } as never, 'lifecycle hooks are not callable');
  await t.throwsAsync(h.manager.invoke(INSTANCE, 'broken', {}, 1000), { any: true, code: 'SLICE_ERROR', message: /boom/ } as never);
  await t.throwsAsync(h.manager.invoke(instanceKey(NODE, BASE, '1.0.0', 'other'), 'hello', {}, 1000), { any: true, code: 'INSTANCE_NOT_FOUND' } as never);
  const late = h.manager.invoke(INSTANCE, 'never', {}, h.clock.nowMs() + 50);
  await h.clock.advance(60);
  await t.throwsAsync(late, { any: true, code: 'INVOKE_DEADLINE_EXCEEDED' } as never);
});

test('on start, records of unassigned instances from an earlier run are deleted and assigned ones restarted', async (t) => {
  const port = new MemoryClusterPort(1);
  const stale = instanceKey(NODE, BASE, '1.0.0', 'gone');
  await port.txn([], [
    { type: 'put', key: stale, value: JSON.stringify({ state: 'ACTIVE', nodeId: 1, address: 'x:1' }) },
    { type: 'put', key: INSTANCE, value: JSON.stringify({ state: 'ACTIVE', nodeId: 1, address: 'x:1' }) },
    { type: 'put', key: ASSIGNMENT, value: '{}' },
  ]);
  const clock = new ManualClock();
  const manager = new InstanceManager({ port, clock, logger: silentLogger, address: '127.0.0.1:7001', loader: { load: async () => ({ methods: ['hello'], health: false, factory: () => greeter([]) }) } });
  await manager.start();
  await manager.settled();
  await flush();
  t.is(await port.get(stale), undefined);
  t.is((JSON.parse((await port.get(INSTANCE))!.value) as { state: string }).state, 'ACTIVE');
});

test('a node whose record the leader deleted does not recreate it while draining', async (t) => {
  const h = await harness((hooks) => greeter(hooks));
  await assign(h.port);
  await h.manager.settled();
  // The leader declared this node dead: it deletes the record and the assignment in one txn.
  await h.port.txn([], [{ type: 'delete', key: INSTANCE }, { type: 'delete', key: ASSIGNMENT }]);
  await flush();
  await h.manager.settled();
  await flush();
  t.is(await h.port.get(INSTANCE), undefined);
  t.deepEqual(h.hooks, ['start', 'stop']);
});

test('a version that fails to load is FAILED, and stop() stops every running instance', async (t) => {
  const port = new MemoryClusterPort(1);
  const clock = new ManualClock();
  const hooks: string[] = [];
  const manager = new InstanceManager({
    port,
    clock,
    logger: silentLogger,
    address: 'a:1',
    loader: { load: async (_base, version) => (version === '2.0.0' ? Promise.reject(new Error('sha256 mismatch')) : { methods: ['hello'], health: false, factory: () => greeter(hooks) }) },
  });
  await manager.start();
  await assign(port);
  await assign(port, assignmentKey(NODE, BASE, '2.0.0', 'i2'));
  await manager.settled();
  t.deepEqual(manager.status().map((s) => [s.instanceId, s.state]).sort(), [['i1', 'ACTIVE'], ['i2', 'FAILED']]);
  await manager.stop();
  t.deepEqual(hooks, ['start', 'stop']);
});

test('a state report is retried until it is written, however long the cluster refuses writes', async (t) => {
  const port = new MemoryClusterPort(1);
  let refusals = 30;
  const flaky = Object.assign(Object.create(port) as MemoryClusterPort, {
    txn: (...args: Parameters<MemoryClusterPort['txn']>) => (refusals-- > 0 ? Promise.reject(Object.assign(new Error('no leader'), { code: 'NOT_LEADER' })) : port.txn(...args)),
  });
  const clock = new ManualClock();
  const manager = new InstanceManager({ port: flaky, clock, logger: silentLogger, address: 'a:1', loader: { load: async () => ({ methods: ['hello'], health: false, factory: () => greeter([]) }) } });
  await manager.start();
  await port.txn([], [{ type: 'put', key: ASSIGNMENT, value: '{}' }]);
  await clock.advance(120_000);
  await manager.settled();
  t.true(refusals < 0);
  t.is((JSON.parse((await port.get(INSTANCE))!.value) as { state: string }).state, 'ACTIVE');
});
