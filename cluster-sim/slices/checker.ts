/**
 * What the slices scenario checks, as pure functions of routing tables, KV states and instance
 * managers:
 * - always (every live node, sampled): the node's routing table, fed by `followRoutingTable`
 *   from its watches, equals a table built afresh with `RoutingTable.load` from that node's own
 *   applied state under `version-routing/` and `instance/`. Compared: routing records (and the
 *   selector period they give), versions and their weights, every instance with its node,
 *   address and state, and the malformed keys with their reasons; not the soft counters
 *   (revision, malformed total, fallbacks, highest-version choices). A watch event the feed
 *   missed or misapplied, across snapshot installs too, shows up here;
 * - once converged after the heal: every live member's table equals the one built from the
 *   leader's state; every assignment has its instance reported ACTIVE and running ACTIVE in its
 *   node's InstanceManager, which hosts nothing else; no ACTIVE report lacks its assignment;
 * - then, on each live member, `route()` over `routePeriods` whole weight periods of consecutive
 *   calls picks the new version exactly its share of times (k of 4k for 1:3), never falling back.
 */
import type { KeyValue } from '../../src/kv/index.ts';
import type { RouteDecision } from '../../src/invoker/decisions.ts';
import { RoutingTable } from '../../src/invoker/routing-table.ts';
import { parseInstanceRecord } from '../../src/invoker/records.ts';
import { reduceWeights } from '../../src/invoker/weighted.ts';
import type { HostedInstanceStatus } from '../../src/slices/instance-manager.ts';
import { ASSIGNMENT_PREFIX, INSTANCE_PREFIX, VERSION_ROUTING_PREFIX, instanceKeyOfAssignment, parseAssignmentKey, parseInstanceKey, type ArtifactBase } from '../../src/slices/keys.ts';
import { nodeId as toNodeId } from '../../src/util/ids.ts';
import type { KvView } from '../placement/checker.ts';

/** The routing content of a table without its soft counters, as comparable JSON per artifact. */
export interface RoutingView {
  /** `malformed` keys with their reasons, as JSON. */
  readonly malformed: string;
  /** Per artifact base, its routing record, versions, weights and instances, as JSON. */
  readonly artifacts: ReadonlyMap<string, string>;
}

/** The table's content, minus the soft counters. */
export function routingView(table: RoutingTable): RoutingView {
  const snapshot = table.snapshot();
  const artifacts = new Map<string, string>();
  for (const a of snapshot.artifacts) {
    const versions = a.versions.map((v) => ({ version: v.version, weight: v.weight, instances: v.instances }));
    artifacts.set(a.base, JSON.stringify({ routing: a.routing, versions }));
  }
  return { malformed: JSON.stringify(snapshot.malformed), artifacts };
}

/** A table loaded from `kv`'s routing prefixes, as a node that just started would build it. */
export function freshTable(kv: KvView): RoutingTable {
  const table = new RoutingTable();
  const kvs: KeyValue[] = [...kv.range(VERSION_ROUTING_PREFIX, 0).kvs, ...kv.range(INSTANCE_PREFIX, 0).kvs];
  table.load(kvs);
  return table;
}

/** Where two views differ, one line per artifact (empty when equal). */
export function viewDifferences(actual: RoutingView, expected: RoutingView, what: string): string[] {
  const problems: string[] = [];
  if (actual.malformed !== expected.malformed) problems.push(`${what}: malformed keys ${actual.malformed}, expected ${expected.malformed}`);
  for (const base of new Set([...actual.artifacts.keys(), ...expected.artifacts.keys()])) {
    const [a, e] = [actual.artifacts.get(base), expected.artifacts.get(base)];
    if (a !== e) problems.push(`${what}: ${base} is ${a ?? 'absent'}, expected ${e ?? 'absent'}`);
  }
  return problems;
}

/** The always-check: `table` holds exactly what `kv` (the same node's applied state) says. */
export function tableProblems(table: RoutingTable, kv: KvView, what: string): string[] {
  return viewDifferences(routingView(table), routingView(freshTable(kv)), what);
}

/** One live member as the convergence check sees it. */
export interface MemberSlices {
  readonly id: number;
  readonly table: RoutingTable;
  /** The node's InstanceManager.status(). */
  readonly hosted: readonly HostedInstanceStatus[];
}

/**
 * Instances and tables once converged, judged on the leader's state `kv` (its placement
 * convergence is checked apart): see the module comment.
 */
export function instancesConvergedProblems(kv: KvView, members: readonly MemberSlices[]): string[] {
  const problems: string[] = [];
  const expected = routingView(freshTable(kv));
  for (const m of members) problems.push(...viewDifferences(routingView(m.table), expected, `node ${m.id}'s table`));
  const assigned = new Map<string, number>();
  for (const entry of kv.range(ASSIGNMENT_PREFIX, 0).kvs) {
    const parts = parseAssignmentKey(entry.key);
    if (parts !== undefined) assigned.set(instanceKeyOfAssignment(entry.key), parts.nodeId);
  }
  const reports = new Map(kv.range(INSTANCE_PREFIX, 0).kvs.map((entry) => [entry.key, entry]));
  const byMember = new Map(members.map((m) => [m.id, m]));
  for (const [key, node] of assigned) {
    const state = reportedState(reports.get(key));
    if (state !== 'ACTIVE') problems.push(`${key} is assigned but reported ${state}`);
    const hosted = byMember.get(node)?.hosted.find((h) => h.key === key);
    if (byMember.has(node) && hosted?.state !== 'ACTIVE') problems.push(`${key} is assigned but node ${node}'s InstanceManager ${hosted === undefined ? 'does not host it' : `has it ${hosted.state}`}`);
  }
  for (const [key, entry] of reports) if (!assigned.has(key) && reportedState(entry) === 'ACTIVE') problems.push(`${key} is reported ACTIVE without an assignment`);
  for (const m of members) for (const h of m.hosted) if (!assigned.has(h.key)) problems.push(`node ${m.id}'s InstanceManager still hosts ${h.key} (${h.state}), which is not assigned`);
  return problems;
}

/** The keys of the ACTIVE reports among `entries` (`instance/` entries). */
export function activeReports(entries: readonly KeyValue[]): string[] {
  return entries.filter((entry) => reportedState(entry) === 'ACTIVE').map((entry) => entry.key);
}

function reportedState(entry: KeyValue | undefined): string {
  if (entry === undefined) return 'nothing';
  const parts = parseInstanceKey(entry.key);
  if (parts === undefined) return 'under a malformed key';
  const record = parseInstanceRecord(entry.value, parts.nodeId);
  return record.ok ? record.value.state : `malformed (${record.reason})`;
}

/** What one route check did. */
export interface RouteCheck {
  /** False when the check did not apply: no valid routing record, or a version without ACTIVE instances. */
  readonly ran: boolean;
  readonly calls: number;
  readonly problems: readonly string[];
}

/**
 * Routes `periods` whole weight periods of consecutive calls to `base` from node `local` and
 * checks the split: with new:old weights n:o (reduced), exactly `periods * n` calls pick the new
 * version, none falls back, and each lands on an ACTIVE instance of the version it names.
 */
export function checkRouting(table: RoutingTable, base: ArtifactBase, local: number, periods: number): RouteCheck {
  const artifact = table.snapshot().artifacts.find((a) => a.base === base);
  const routing = artifact?.routing;
  if (artifact === undefined || routing === undefined) return { ran: false, calls: 0, problems: [] };
  const active = (version: string): number => artifact.versions.find((v) => v.version === version)?.counts.ACTIVE ?? 0;
  if (active(routing.newVersion) === 0 || active(routing.oldVersion) === 0) return { ran: false, calls: 0, problems: [] };
  const [newShare, oldShare] = reduceWeights([routing.newWeight, routing.oldWeight]) as [number, number];
  const calls = periods * (newShare + oldShare);
  const activeKeys = new Set(artifact.versions.flatMap((v) => v.instances.filter((i) => i.state === 'ACTIVE').map((i) => i.key)));
  const problems: string[] = [];
  let newPicks = 0;
  for (let call = 0; call < calls; call++) {
    const decision: RouteDecision = table.route(base, toNodeId(local));
    if (!decision.ok) {
      problems.push(`call ${call} to ${base} on node ${local} failed: ${decision.code} ${decision.message}`);
      break;
    }
    if (decision.fallback) problems.push(`call ${call} to ${base} on node ${local} fell back to ${decision.version} although both versions have ACTIVE instances`);
    if (decision.instance.version !== decision.version) problems.push(`call ${call} to ${base} on node ${local} picked ${decision.version} but an instance of ${decision.instance.version}`);
    if (!activeKeys.has(decision.instance.key)) problems.push(`call ${call} to ${base} on node ${local} went to ${decision.instance.key}, which is not ACTIVE`);
    if (decision.version === routing.newVersion) newPicks++;
    else if (decision.version !== routing.oldVersion) problems.push(`call ${call} to ${base} on node ${local} picked ${decision.version}, neither ${routing.newVersion} nor ${routing.oldVersion}`);
    if (problems.length > 0) break;
  }
  if (problems.length === 0 && newPicks !== periods * newShare) problems.push(`${calls} consecutive calls to ${base} on node ${local} picked ${routing.newVersion} ${newPicks} times; ${routing.newWeight}:${routing.oldWeight} (new:old) wants exactly ${periods * newShare}`);
  return { ran: true, calls, problems };
}
