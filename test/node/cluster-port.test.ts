import test from 'ava';
import { MemoryClusterPort } from '../../src/node/cluster-port.ts';
import type { WatchEvent } from '../../src/kv/index.ts';

test('MemoryClusterPort applies compare-and-swap transactions and feeds watches', async (t) => {
  const port = new MemoryClusterPort();
  const seen: WatchEvent[] = [];
  port.watch('rolling-update/', 0, (events) => seen.push(...events));
  const created = await port.txn([{ key: 'rolling-update/u1', target: 'exists', op: '=', value: false }], [{ type: 'put', key: 'rolling-update/u1', value: '{"state":"PENDING"}' }]);
  t.true(created.succeeded);
  const revision = (await port.get('rolling-update/u1'))!.modRevision;
  const stale = await port.txn([{ key: 'rolling-update/u1', target: 'modRevision', op: '=', value: revision - 1 }], [{ type: 'put', key: 'rolling-update/u1', value: 'x' }]);
  t.false(stale.succeeded, 'a step on an old revision does not apply');
  t.is(seen.length, 1);
  t.is((await port.range('rolling-update/')).kvs.length, 1);
});

test('MemoryClusterPort refuses writes when not leader and announces leadership changes', async (t) => {
  const port = new MemoryClusterPort(3, false);
  const changes: [number, number][] = [];
  port.onLeaderChange((leader, term) => changes.push([leader, term]));
  await t.throwsAsync(port.txn([], [{ type: 'put', key: 'k', value: 'v' }]), { any: true, instanceOf: Error, message: /leader/ });
  port.setLeader(true);
  t.true(port.isLeader());
  t.deepEqual(changes, [[3, 2]]);
  t.true((await port.txn([], [{ type: 'put', key: 'k', value: 'v' }])).succeeded);
});
