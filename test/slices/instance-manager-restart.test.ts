import test from 'ava';
import { MemoryClusterPort } from '../../src/node/cluster-port.ts';
import { InstanceManager } from '../../src/slices/instance-manager.ts';
import { artifactBase, instanceKey } from '../../src/slices/keys.ts';
import { nodeId } from '../../src/util/ids.ts';
import { silentLogger } from '../../src/util/logger.ts';
import { ManualClock, flush } from '../helpers/manual-clock.ts';

// Found by the slices scenario of the simulator (cluster-sim/slices/, seeds 2, 3, 4, 14, 19 and 27
// of the first 30): a node stopped while the leader removed one of its assignments comes back with
// the instance still reported ACTIVE; its InstanceManager deletes the stale record at start, but a
// node that has just started knows no leader yet, so the delete failed once and was never retried,
// and every node kept routing calls to an instance nobody runs.

const BASE = artifactBase('org.example', 'greeter');
const STALE = instanceKey(nodeId(1), BASE, '1.0.0', 'i1');

function staleRecordOnAFollower(): MemoryClusterPort {
  const port = new MemoryClusterPort(1, false);
  const value = JSON.stringify({ state: 'ACTIVE', nodeId: 1, address: '127.0.0.1:7001', instanceId: 'i1', artifact: BASE, version: '1.0.0' });
  port.kv.apply({ clientId: 0, sequence: 0, command: { type: 'put', key: STALE, value } });
  return port;
}

function manager(port: MemoryClusterPort, clock: ManualClock): InstanceManager {
  const loader = { load: async () => ({ methods: [], health: false, factory: () => ({}) }) };
  return new InstanceManager({ port, loader, clock, logger: silentLogger, address: '127.0.0.1:7001' });
}

test('a stale instance record found at start is deleted once the node can write, however late', async (t) => {
  const port = staleRecordOnAFollower();
  const clock = new ManualClock();
  await manager(port, clock).start();
  await flush();
  t.not(port.kv.get(STALE), undefined, 'no leader yet: the delete failed');
  await clock.advance(20_000);
  t.not(port.kv.get(STALE), undefined, 'still no leader');
  port.setLeader(true);
  await clock.advance(2000);
  t.is(port.kv.get(STALE), undefined);
});

test('the delete is not retried once the manager stopped', async (t) => {
  const port = staleRecordOnAFollower();
  const clock = new ManualClock();
  const instances = manager(port, clock);
  await instances.start();
  await flush();
  await instances.stop();
  await clock.advance(5000);
  port.setLeader(true);
  await clock.advance(5000);
  t.not(port.kv.get(STALE), undefined);
});
