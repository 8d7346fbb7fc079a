/**
 * What the placement scenario checks, as pure functions of one node's KV state:
 * - always (every applied state of every node, sampled): no two assignments share an instance id,
 *   and no node holds more than `nodeInstancesMax` assignments. Both hold in every committed
 *   state because a plan only commits against the exact assignments it was computed from;
 * - once converged after the heal (judged on the leader's state): every blueprint has exactly its
 *   count of assignments, or fewer only when no live member has room left for it; every
 *   assignment is on a live member and belongs to a blueprint; every limit holds; and a node down
 *   for longer than the timeout has no assignment and no instance key left.
 */
import type { KeyValue } from '../../src/kv/index.ts';
import { parseAssignment, parseBlueprint, type BlueprintRecord } from '../../src/slices/blueprints.ts';
import { ASSIGNMENT_PREFIX, BLUEPRINT_PREFIX, INSTANCE_PREFIX, blueprintKey, parseAssignmentKey, parseBlueprintKey } from '../../src/slices/keys.ts';

/** The part of a KV store the checks read (a `KvStore` fits). */
export interface KvView {
  range(prefix: string, limit?: number): { kvs: KeyValue[] };
}

interface Placed {
  readonly key: string;
  readonly node: number;
  readonly blueprint: string;
  readonly instanceId: string;
}

function assignments(kv: KvView, problems: string[]): Placed[] {
  const placed: Placed[] = [];
  for (const entry of kv.range(ASSIGNMENT_PREFIX).kvs) {
    const parts = parseAssignmentKey(entry.key);
    const value = parseAssignment(entry.value);
    if (parts === undefined || !value.ok) {
      problems.push(`unreadable assignment ${entry.key}`);
      continue;
    }
    placed.push({ key: entry.key, node: parts.nodeId, blueprint: blueprintKey(parts.base, parts.version.text), instanceId: parts.instanceId });
  }
  return placed;
}

function countBy<T>(items: readonly T[], keyOf: (item: T) => string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const item of items) counts.set(keyOf(item), (counts.get(keyOf(item)) ?? 0) + 1);
  return counts;
}

/** Unique instance ids and the per-node limit: must hold in every applied state. */
export function alwaysProblems(kv: KvView, nodeInstancesMax: number): string[] {
  const problems: string[] = [];
  const placed = assignments(kv, problems);
  for (const [id, count] of countBy(placed, (p) => p.instanceId)) if (count > 1) problems.push(`instance id ${id} is assigned ${count} times`);
  for (const [node, count] of countBy(placed, (p) => String(p.node))) if (count > nodeInstancesMax) problems.push(`node ${node} holds ${count} assignments, above nodeInstancesMax ${nodeInstancesMax}`);
  return problems;
}

/** Who counts as what when judging convergence. */
export interface Liveness {
  /** Members (voters and learners, per the leader) that are running. */
  readonly liveMembers: ReadonlySet<number>;
  /** Nodes down for longer than the controller's timeout. */
  readonly goneNodes: ReadonlySet<number>;
  readonly nodeInstancesMax: number;
}

function readBlueprints(kv: KvView, problems: string[]): Map<string, BlueprintRecord> {
  const blueprints = new Map<string, BlueprintRecord>();
  for (const entry of kv.range(BLUEPRINT_PREFIX).kvs) {
    const parsed = parseBlueprint(entry.value);
    if (parseBlueprintKey(entry.key) === undefined || !parsed.ok) problems.push(`unreadable blueprint ${entry.key}`);
    else blueprints.set(entry.key, parsed.value);
  }
  return blueprints;
}

/** Everything that must hold once placement has converged; empty when it has. */
export function convergedProblems(kv: KvView, liveness: Liveness): string[] {
  const problems = alwaysProblems(kv, liveness.nodeInstancesMax);
  const placed = assignments(kv, []);
  const blueprints = readBlueprints(kv, problems);
  const perNode = countBy(placed, (p) => String(p.node));
  const perNodeAndBlueprint = countBy(placed, (p) => `${p.node} ${p.blueprint}`);
  for (const p of placed) {
    if (!liveness.liveMembers.has(p.node)) problems.push(`${p.key} is on node ${p.node}, not a live member`);
    if (!blueprints.has(p.blueprint)) problems.push(`${p.key} belongs to no blueprint`);
  }
  for (const [key, record] of blueprints) {
    const count = placed.filter((p) => p.blueprint === key).length;
    const perNodeMax = record.perNodeMax ?? Infinity;
    for (const node of liveness.liveMembers) {
      const here = perNodeAndBlueprint.get(`${node} ${key}`) ?? 0;
      if (here > perNodeMax) problems.push(`node ${node} holds ${here} of ${key}, above perNodeMax ${perNodeMax}`);
    }
    if (count > record.instances) problems.push(`${key} has ${count} assignments for ${record.instances} instances`);
    if (count >= record.instances) continue;
    const room = [...liveness.liveMembers].filter((node) => (perNodeAndBlueprint.get(`${node} ${key}`) ?? 0) < perNodeMax && (perNode.get(String(node)) ?? 0) < liveness.nodeInstancesMax);
    if (room.length > 0) problems.push(`${key} has ${count} assignments for ${record.instances} instances, and nodes ${room.join(',')} have room`);
  }
  for (const node of liveness.goneNodes) {
    const left = [...kv.range(`${ASSIGNMENT_PREFIX}${node}/`).kvs, ...kv.range(`${INSTANCE_PREFIX}${node}/`).kvs];
    if (left.length > 0) problems.push(`node ${node} has been down past the timeout and still has ${left.map((kv) => kv.key).join(', ')}`);
  }
  return problems;
}
