import test from 'ava';
import { RoutingTable } from '../../src/invoker/routing-table.ts';
import { followRoutingTable } from '../../src/invoker/table-feed.ts';
import { nodeClusterPort } from '../../src/node/cluster-port.ts';
import { CutoverNode } from '../../src/node/node.ts';
import { realClock } from '../../src/platform/scheduler.ts';
import { waitFor } from '../../src/platform/wait.ts';
import { MemoryStorage } from '../../src/raft/index.ts';
import { versionRoutingKey } from '../../src/slices/keys.ts';
import { nodeId } from '../../src/util/ids.ts';
import { silentLogger } from '../../src/util/logger.ts';
import { SeededRandom } from '../../src/util/random.ts';
import { MemoryHub } from '../helpers/memory-transport.ts';
import { GREETER, NEW, OLD, instanceKeyOf, routingValue } from './fixtures.ts';

test('every node, not only the leader, routes by a routing change in the same watch event that applies it', async (t) => {
  const hub = new MemoryHub();
  const random = new SeededRandom(5);
  const ids = [1, 2, 3];
  const members = ids.map((id) => ({ id, address: `127.0.0.1:${7100 + id}` }));
  const nodes = ids.map((id) => new CutoverNode({ id, initialMembers: members, storage: MemoryStorage.bootstrap(ids), transport: hub.transport(id), clock: realClock, random: random.fork(), logger: silentLogger, settings: { tickMs: 10 } }));
  for (const node of nodes) await node.start();
  t.teardown(async () => {
    for (const node of nodes) await node.stop();
  });
  await waitFor('a leader', () => nodes.some((n) => n.isLeader()));
  const leader = nodes.find((n) => n.isLeader())!;
  const put = (key: string, value: unknown) => leader.propose({ type: 'put', key, value: JSON.stringify(value) });
  await put(instanceKeyOf(2, OLD, 'o1'), { state: 'ACTIVE', nodeId: 2, address: '127.0.0.1:7102' });
  await put(instanceKeyOf(3, NEW, 'n1'), { state: 'ACTIVE', nodeId: 3, address: '127.0.0.1:7103' });

  // Each node's table, and what it answered right inside the watch event that carried the change.
  const tables = new Map<number, RoutingTable>();
  const seenInEvent = new Map<number, string[]>();
  for (const node of nodes) {
    const table = new RoutingTable();
    tables.set(node.id, table);
    t.teardown(await followRoutingTable(nodeClusterPort(node), table));
    node.watch('version-routing/', node.kv.revision() + 1, () => {
      // Registered after the feed, so the feed has applied this event already.
      const picks = Array.from({ length: 4 }, () => {
        const decision = table.route(GREETER, nodeId(node.id));
        return decision.ok ? decision.version : decision.code;
      });
      seenInEvent.set(node.id, picks);
    });
  }
  await put(versionRoutingKey(GREETER), routingValue(1, 3));
  await waitFor('every node to apply the routing change', () => seenInEvent.size === nodes.length);
  for (const node of nodes) {
    const picks = seenInEvent.get(node.id)!;
    t.is(picks.filter((v) => v === NEW).length, 1, `node ${node.id} routed ${picks.join(' ')}`);
    t.is(picks.filter((v) => v === OLD).length, 3, `node ${node.id} routed ${picks.join(' ')}`);
  }
});
