import test from 'ava';
import { Invoker, type LocalInstances } from '../../src/invoker/invoker.ts';
import type { RemoteCallRequest, RemoteCaller } from '../../src/invoker/remote.ts';
import { RoutingTable } from '../../src/invoker/routing-table.ts';
import { CutoverError } from '../../src/util/errors.ts';
import { ManualClock } from '../helpers/manual-clock.ts';
import { GREETER, NEW, OLD, instance, instanceKeyOf, routing } from './fixtures.ts';

interface Calls {
  remote: { address: string; request: RemoteCallRequest; timeoutMs: number }[];
  local: string[];
  recorded: [string, string, boolean][];
}

function setup(options: { remote?: (address: string, request: RemoteCallRequest) => Promise<unknown>; local?: (key: string) => Promise<unknown> } = {}) {
  const calls: Calls = { remote: [], local: [], recorded: [] };
  const table = new RoutingTable();
  const clock = new ManualClock();
  const remote: RemoteCaller = {
    call: (address, request, timeoutMs) => {
      calls.remote.push({ address, request, timeoutMs });
      return options.remote?.(address, request) ?? Promise.resolve({ from: address });
    },
  };
  const local: LocalInstances = {
    invoke: (key) => {
      calls.local.push(key);
      return options.local?.(key) ?? Promise.resolve({ from: 'local' });
    },
  };
  const metrics = { record: (base: string, version: string, _ms: number, ok: boolean) => void calls.recorded.push([base, version, ok]) };
  const invoker = new Invoker({ table, localNodeId: 1, remote, local, metrics, clock, defaultTimeoutMs: 5000 });
  return { table, invoker, calls, clock };
}

test('calls follow the weights: a 1:3 split sends exactly one call in four to the new version', async (t) => {
  const { table, invoker, calls } = setup();
  table.load([routing(1, 3), instance(2, NEW, 'n1'), instance(2, OLD, 'o1'), instance(3, OLD, 'o2')]);
  for (let i = 0; i < 40; i++) await invoker.invoke(GREETER, 'hello', { i });
  const versions = calls.remote.map((c) => c.request.version);
  for (let w = 0; w + 4 <= versions.length; w++) t.is(versions.slice(w, w + 4).filter((v) => v === NEW).length, 1, `window at ${w}`);
  t.is(calls.recorded.length, 40);
  t.true(calls.recorded.every(([base, , ok]) => base === GREETER && ok));
});

test('a local instance is called directly; a remote one over the remote caller with the remaining deadline', async (t) => {
  const { table, invoker, calls } = setup();
  table.load([instance(1, OLD, 'here')]);
  t.deepEqual(await invoker.invoke(GREETER, 'hello', {}), { from: 'local' });
  t.deepEqual(calls.local, [instanceKeyOf(1, OLD, 'here')]);
  table.load([instance(2, OLD, 'there')]);
  await invoker.invoke(GREETER, 'hello', { name: 'x' }, { timeoutMs: 1234 });
  t.like(calls.remote[0], { address: '10.0.0.2:7001', timeoutMs: 1234, request: { base: GREETER, version: OLD, instanceId: 'there', method: 'hello', payload: { name: 'x' } } });
});

test('a connection failure before sending is retried once on another instance of the same version', async (t) => {
  const { table, invoker, calls } = setup({
    remote: (address) => (address === '10.0.0.2:7001' ? Promise.reject(new CutoverError('CONNECT_FAILED', 'refused')) : Promise.resolve({ from: address })),
  });
  table.load([routing(1, 0), instance(2, NEW, 'n-dead'), instance(3, NEW, 'n-live'), instance(3, OLD, 'o1')]);
  const replies = [await invoker.invoke(GREETER, 'hello', {}), await invoker.invoke(GREETER, 'hello', {})];
  t.deepEqual(replies, [{ from: '10.0.0.3:7001' }, { from: '10.0.0.3:7001' }]);
  t.true(calls.remote.every((c) => c.request.version === NEW), 'the retry keeps the version');
  t.is(invoker.retryCount(), 1);
  t.is(calls.recorded.length, 2, 'one outcome per call, not per attempt');
});

test('only one retry, and nothing but a not-sent failure is retried', async (t) => {
  const refused = setup({ remote: () => Promise.reject(new CutoverError('CONNECT_FAILED', 'refused')) });
  refused.table.load([instance(2, OLD, 'a'), instance(3, OLD, 'b'), instance(4, OLD, 'c')]);
  await t.throwsAsync(refused.invoker.invoke(GREETER, 'hello', {}), { any: true, code: 'CONNECT_FAILED' } as never);
  t.is(refused.calls.remote.length, 2);
  t.deepEqual(refused.calls.recorded, [[GREETER, OLD, false]]);

  const failing = setup({ remote: () => Promise.reject(new CutoverError('UNAVAILABLE_AFTER_SEND', 'connection reset')) });
  failing.table.load([instance(2, OLD, 'a'), instance(3, OLD, 'b')]);
  await t.throwsAsync(failing.invoker.invoke(GREETER, 'hello', {}), { any: true, code: 'UNAVAILABLE_AFTER_SEND' } as never);
  t.is(failing.calls.remote.length, 1, 'a call that may have run is never repeated');

  const sliceError = setup({ remote: () => Promise.reject(new CutoverError('SLICE_ERROR', 'bad')) });
  sliceError.table.load([instance(2, OLD, 'a'), instance(3, OLD, 'b')]);
  await t.throwsAsync(sliceError.invoker.invoke(GREETER, 'hello', {}), { any: true, code: 'SLICE_ERROR' } as never);
  t.is(sliceError.calls.remote.length, 1);
});

test('a local instance that stopped between routing and the call is retried elsewhere', async (t) => {
  const { table, invoker, calls } = setup({ local: () => Promise.reject(new CutoverError('INSTANCE_NOT_ACTIVE', 'draining')) });
  table.load([instance(1, OLD, 'here'), instance(2, OLD, 'there')]);
  t.deepEqual(await invoker.invoke(GREETER, 'hello', {}), { from: '10.0.0.2:7001' });
  t.is(calls.local.length, 1);
});

test('routing failures and bad arguments have their own codes', async (t) => {
  const { table, invoker } = setup();
  await t.throwsAsync(invoker.invoke(GREETER, 'hello', {}), { any: true, code: 'UNKNOWN_SLICE' } as never);
  table.load([instance(2, OLD, 'a', 'STARTING')]);
  await t.throwsAsync(invoker.invoke(GREETER, 'hello', {}), { any: true, code: 'NO_ACTIVE_INSTANCE' } as never);
  await t.throwsAsync(invoker.invoke('greeter', 'hello', {}), { any: true, code: 'INVALID_ARGUMENT', message: /artifact/ } as never);
  await t.throwsAsync(invoker.invoke(GREETER, '', {}), { any: true, code: 'INVALID_ARGUMENT', message: /method/ } as never);
  await t.throwsAsync(invoker.invoke(GREETER, 'hello', {}, { timeoutMs: -1 }), { any: true, code: 'INVALID_ARGUMENT', message: /timeoutMs/ } as never);
});
