/**
 * The cost of one routing decision: `RoutingTable.route` on a table like a node's during a canary,
 * in ns/op. The table holds `org.example:greeter` with a 1:3 routing record (2.0.0 new, 1.0.0
 * old) and three ACTIVE instances of each version spread over nodes 1–3, plus a few other
 * artifacts and non-ACTIVE instances so that the lookups are not on a one-entry map. The table is
 * fed with KV entries as a watch would deliver them.
 *
 * Two viewpoints: node 1 (it hosts one instance of each version, so every call goes local) and an
 * embedded client (node 0: no local instance, round-robin over the remote ones).
 */
import type { KeyValue } from '../../src/kv/types.ts';
import { RoutingTable } from '../../src/invoker/routing-table.ts';
import { artifactBase, instanceKey, versionRoutingKey, type ArtifactBase } from '../../src/slices/keys.ts';
import { nodeId, type NodeId } from '../../src/util/ids.ts';
import { median } from './stats.ts';

export const GREETER = artifactBase('org.example', 'greeter');
const NEW = '2.0.0';
const OLD = '1.0.0';
const NEW_FIRST_CHAR = NEW.charCodeAt(0);

/** One viewpoint's figures. */
export interface RoutingResult {
  readonly viewpoint: string;
  readonly nsPerOpMedian: number;
  readonly nsPerOpMin: number;
  readonly nsPerOpMax: number;
  /** Median CPU ns per decision (this process): what other load on the machine distorts least. */
  readonly cpuNsPerOpMedian: number;
  /** Share of the measured decisions that went to the new version (0.25 for 1:3). */
  readonly newShare: number;
  /** Share of the measured decisions that went to a local instance. */
  readonly localShare: number;
}

let revision = 0;
function kv(key: string, value: object): KeyValue {
  revision++;
  return { key, value: JSON.stringify(value), createRevision: revision, modRevision: revision, version: 1 };
}

function instance(node: number, base: ArtifactBase, version: string, id: string, state = 'ACTIVE'): KeyValue {
  return kv(instanceKey(nodeId(node), base, version, id), { state, nodeId: node, address: `127.0.0.1:${7000 + node}`, instanceId: id, artifact: base, version });
}

/** The table described in the module comment. */
export function realisticTable(): RoutingTable {
  const kvs: KeyValue[] = [kv(versionRoutingKey(GREETER), { updateId: 'u-bench', newVersion: NEW, oldVersion: OLD, newWeight: 1, oldWeight: 3 })];
  for (const version of [NEW, OLD]) {
    for (let i = 0; i < 3; i++) kvs.push(instance(i + 1, GREETER, version, `${version.replaceAll('.', '-')}-${i}`));
    kvs.push(instance(2, GREETER, version, `${version.replaceAll('.', '-')}-draining`, 'DRAINING'));
  }
  for (const name of ['cart', 'search', 'auth', 'billing']) {
    const base = artifactBase('org.example', name);
    for (let i = 0; i < 3; i++) kvs.push(instance(i + 1, base, '1.4.0', `i-${i}`));
  }
  const table = new RoutingTable();
  table.load(kvs);
  return table;
}

/** Counters that the loop must produce, so the JIT cannot drop the calls. */
interface Tally {
  newPicks: number;
  localPicks: number;
}

function loop(table: RoutingTable, local: NodeId, operations: number, tally: Tally): bigint {
  const started = process.hrtime.bigint();
  for (let i = 0; i < operations; i++) {
    const decision = table.route(GREETER, local);
    if (decision.ok) {
      // A char code, not a string comparison, so the tally costs next to nothing.
      if (decision.version.charCodeAt(0) === NEW_FIRST_CHAR) tally.newPicks++;
      if (decision.local) tally.localPicks++;
    }
  }
  return process.hrtime.bigint() - started;
}

/** Measures both viewpoints: `runs` runs of `operations` decisions each, after a warm-up. */
export function measureRouting(operations: number, runs: number): RoutingResult[] {
  const results: RoutingResult[] = [];
  for (const [viewpoint, node] of [['node 1 (local instances)', nodeId(1)], ['embedded client (remote only)', nodeId(0)]] as const) {
    const table = realisticTable();
    const first = table.route(GREETER, node);
    if (!first.ok) throw new Error(`routing bench: the table does not route: ${first.code} ${first.message}`);
    loop(table, node, Math.min(operations, 2_000_000), { newPicks: 0, localPicks: 0 });
    const perOp: number[] = [];
    const cpuPerOp: number[] = [];
    const tally: Tally = { newPicks: 0, localPicks: 0 };
    for (let run = 0; run < runs; run++) {
      const cpu = process.cpuUsage();
      perOp.push(Number(loop(table, node, operations, tally)) / operations);
      const used = process.cpuUsage(cpu);
      cpuPerOp.push(((used.user + used.system) * 1000) / operations);
    }
    const total = operations * runs;
    results.push({
      viewpoint,
      nsPerOpMedian: median(perOp),
      nsPerOpMin: Math.min(...perOp),
      nsPerOpMax: Math.max(...perOp),
      cpuNsPerOpMedian: median(cpuPerOp),
      newShare: tally.newPicks / total,
      localShare: tally.localPicks / total,
    });
  }
  return results;
}
