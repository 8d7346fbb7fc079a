/**
 * Feeds a routing table from a node's own applied KV state: the current contents of the routing
 * prefixes, then every change by watch. Each node derives its table this way (DESIGN.md
 * decision 5), so a routing change reaches every node's invoker in the same apply that makes it
 * visible to that node's reads.
 */
import type { ClusterPort } from '../node/cluster-port.ts';
import { ROUTING_TABLE_PREFIXES, type RoutingTable } from './routing-table.ts';

/** Loads `table` from the node's applied state and keeps it current; returns a stop function. */
export async function followRoutingTable(port: ClusterPort, table: RoutingTable): Promise<() => void> {
  const cancels: (() => void)[] = [];
  for (const prefix of ROUTING_TABLE_PREFIXES) {
    const { kvs, revision } = await port.range(prefix, { serializable: true });
    // Load only this prefix's keys: `load` forgets keys it is not given, so merge with the rest.
    table.applyEvents(kvs.map((kv) => ({ type: 'put' as const, revision: kv.modRevision, kv, prev: undefined })));
    cancels.push(port.watch(prefix, revision + 1, (events) => table.applyEvents(events)));
  }
  return () => {
    for (const cancel of cancels) cancel();
  };
}
