/**
 * The placement planner: from the blueprints, the current assignments and the members' silences,
 * which assignments to write and delete so that every blueprint has its instance count on live
 * nodes. Pure (no clock, no I/O): the leader's `PlacementController` feeds it a consistent view
 * of the KV store and commits the plan as one compare-and-swap transaction.
 *
 * Rules, in the order they are applied:
 * 1. A member silent for longer than `nodeDownAfterMs`, or no longer a member, is down: its
 *    assignments are removed and its `instance/{node}/…` keys deleted (it cannot report or clean
 *    up for itself); the removed instances are placed again below.
 * 2. Assignments that cannot be read (malformed key or value, a value disagreeing with its key,
 *    an instance id used twice) and those of a deleted blueprint are removed. A blueprint whose
 *    value cannot be read keeps the assignments it has on live nodes: a bad write must not stop
 *    running instances.
 * 3. Above a blueprint's `perNodeMax` on a node, or above its count, instances are removed (the
 *    surplus from the node with the most of that version, then the most overall, then the
 *    highest id); above `nodeInstancesMax` on a node, from that node's largest version.
 * 4. Missing instances are placed one at a time, round-robin over the blueprints in key order, each
 *    on the live node with the fewest of that version, then the fewest overall, then the lowest
 *    id, never above `perNodeMax` or `nodeInstancesMax`. What fits nowhere is reported unplaced.
 *
 * A placement that already satisfies the rules yields an empty plan: healthy instances are never
 * moved to even out the spread.
 */
import { assert } from '../util/assert.ts';
import { nodeId as toNodeId, type NodeId } from '../util/ids.ts';
import { formatAssignment, parseAssignment, parseBlueprint, type AssignmentRecord, type BlueprintRecord } from './blueprints.ts';
import { assignmentKey, BLUEPRINT_PREFIX, blueprintKey, INSTANCE_PREFIX, parseAssignmentKey, parseBlueprintKey, parseInstanceKey, type ArtifactBase } from './keys.ts';

/** A key and value as stored (a `KeyValue` fits). */
export interface StoredEntry {
  readonly key: string;
  readonly value: string;
}

/** A cluster member and how long the leader has heard nothing from it (`ClusterPort.members()` fits). */
export interface PlacementMember {
  readonly id: number;
  readonly silentForMs: number;
}

/** What the planner reads: one consistent view of the store plus the leader's view of the members. */
export interface PlacementState {
  /** Every `blueprint/` entry. */
  readonly blueprints: readonly StoredEntry[];
  /** Every `assignment/` entry. */
  readonly assignments: readonly StoredEntry[];
  /** Every `instance/` key (the values are not needed). */
  readonly instanceKeys: readonly string[];
  readonly members: readonly PlacementMember[];
  /** A member silent for longer than this is down; a positive number. */
  readonly nodeDownAfterMs: number;
  /** Most instances (all versions) on one node; a positive integer. */
  readonly nodeInstancesMax: number;
}

/** What a plan needs besides the state: the stamps of new assignments and a budget. */
export interface PlacementInput extends PlacementState {
  /** The placing leader's term, written into new assignments. */
  readonly term: number;
  /** The placing leader's clock, written into new assignments as `placedAt`. */
  readonly nowMs: number;
  /**
   * New instance ids are `{instanceIdPrefix}-{n}` for n = 0, 1, …, skipping ids the state already
   * holds. The controller passes `i{revision}` with the KV revision the state was read at: a
   * committed plan moves the revision on, so no later plan reuses the prefix.
   */
  readonly instanceIdPrefix: string;
  /**
   * Most changes in one plan, counting each put and delete and each blueprint whose assignments
   * change (the controller guards each with a compare). Deletes come before puts, so any cut keeps
   * the limits; the rest waits for the next plan. Unset = no limit.
   */
  readonly changesMax?: number;
}

/** One assignment to write. */
export interface AssignmentPut {
  readonly key: string;
  readonly value: string;
  readonly record: AssignmentRecord;
}

/** Instances of one blueprint that fit on no live node. */
export interface UnplacedCount {
  readonly blueprint: string;
  readonly count: number;
}

/** A plan. Empty (`isEmptyPlan`) when the placement is already valid. */
export interface PlacementPlan {
  readonly put: readonly AssignmentPut[];
  /** `assignment/` keys to delete. */
  readonly remove: readonly string[];
  /** `instance/` keys of down nodes to delete. */
  readonly removeInstances: readonly string[];
  /** Per blueprint key, instances that fit nowhere (only blueprints with a shortfall). */
  readonly unplaced: readonly UnplacedCount[];
  /** One line per put and delete of an assignment, for the log. */
  readonly moves: readonly string[];
  /** Blueprint keys whose assignments this plan changes (the controller guards their revisions). */
  readonly blueprintsTouched: readonly string[];
  /** Stored values that could not be read, with why (malformed blueprints are left in place). */
  readonly invalid: readonly { readonly key: string; readonly reason: string }[];
  /** Whether `changesMax` cut the plan short: plan again once it is applied. */
  readonly truncated: boolean;
}

/** Whether a plan changes nothing. */
export function isEmptyPlan(plan: PlacementPlan): boolean {
  return plan.put.length === 0 && plan.remove.length === 0 && plan.removeInstances.length === 0;
}

// ---------------------------------------------------------------------------------------------
// The working layout

interface Placed {
  readonly key: string;
  readonly node: NodeId;
  readonly blueprint: string;
  readonly instanceId: string;
}

interface Blueprint {
  readonly key: string;
  readonly base: ArtifactBase;
  readonly version: string;
  readonly record: BlueprintRecord;
}

interface Change {
  readonly kind: 'remove' | 'put';
  readonly key: string;
  /** The blueprint whose assignments change; undefined for junk under `assignment/`. */
  readonly blueprint: string | undefined;
  readonly describe: string;
  readonly put?: AssignmentPut;
}

/** Live nodes and what runs on each, updated as the plan removes and places. */
class Layout {
  private readonly byNode = new Map<NodeId, Map<string, Placed[]>>();
  private readonly totals = new Map<NodeId, number>();

  constructor(readonly live: readonly NodeId[]) {
    for (const node of live) {
      this.byNode.set(node, new Map());
      this.totals.set(node, 0);
    }
  }

  isLive(node: NodeId): boolean {
    return this.byNode.has(node);
  }

  add(placed: Placed): void {
    const blueprints = this.byNode.get(placed.node);
    assert(blueprints !== undefined, `node ${placed.node} is not live`);
    const list = blueprints.get(placed.blueprint) ?? [];
    list.push(placed);
    blueprints.set(placed.blueprint, list);
    this.totals.set(placed.node, this.total(placed.node) + 1);
  }

  /** Removes and returns the last (by key) instance of `blueprint` on `node`. */
  removeLast(node: NodeId, blueprint: string): Placed {
    const list = this.byNode.get(node)?.get(blueprint);
    const last = list?.pop();
    assert(last !== undefined, `nothing of ${blueprint} on node ${node}`);
    this.totals.set(node, this.total(node) - 1);
    return last;
  }

  count(node: NodeId, blueprint: string): number {
    return this.byNode.get(node)?.get(blueprint)?.length ?? 0;
  }

  total(node: NodeId): number {
    return this.totals.get(node) ?? 0;
  }

  countOf(blueprint: string): number {
    let sum = 0;
    for (const node of this.live) sum += this.count(node, blueprint);
    return sum;
  }

  /** The blueprints on `node`, most instances first, then by key. */
  largestOn(node: NodeId): string | undefined {
    let best: string | undefined;
    let bestCount = 0;
    for (const [blueprint, list] of this.byNode.get(node) ?? []) {
      if (list.length > bestCount || (list.length === bestCount && best !== undefined && blueprint < best)) [best, bestCount] = [blueprint, list.length];
    }
    return best;
  }
}

// ---------------------------------------------------------------------------------------------
// Reading the state

interface Reading {
  readonly layout: Layout;
  readonly blueprints: Map<string, Blueprint>;
  readonly changes: Change[];
  readonly removeInstances: string[];
  readonly invalid: { key: string; reason: string }[];
  readonly usedIds: Set<string>;
}

function isDown(member: PlacementMember, nodeDownAfterMs: number): boolean {
  // `!(a <= b)` so that NaN counts as down.
  return !(member.silentForMs <= nodeDownAfterMs);
}

function readBlueprints(entries: readonly StoredEntry[], invalid: { key: string; reason: string }[]): { valid: Map<string, Blueprint>; unreadable: Set<string> } {
  const valid = new Map<string, Blueprint>();
  const unreadable = new Set<string>();
  for (const { key, value } of entries) {
    const parts = parseBlueprintKey(key);
    const parsed = parseBlueprint(value);
    if (parts === undefined) invalid.push({ key, reason: 'malformed blueprint key' });
    else if (!parsed.ok) {
      invalid.push({ key, reason: parsed.reason });
      unreadable.add(key);
    } else valid.set(key, { key, base: parts.base, version: parts.version.text, record: parsed.value });
  }
  return { valid, unreadable };
}

/** Why a stored assignment must go, or its placement when it may stay (given the node is live). */
function readAssignment(entry: StoredEntry): { placed: Placed } | { reason: string } {
  const parts = parseAssignmentKey(entry.key);
  if (parts === undefined) return { reason: 'malformed assignment key' };
  const parsed = parseAssignment(entry.value);
  if (!parsed.ok) return { reason: `malformed assignment value: ${parsed.reason}` };
  const record = parsed.value;
  if (record.nodeId !== parts.nodeId || record.base !== parts.base || record.version !== parts.version.text || record.instanceId !== parts.instanceId) {
    return { reason: 'assignment value disagrees with its key' };
  }
  return { placed: { key: entry.key, node: parts.nodeId, blueprint: blueprintKey(parts.base, parts.version.text), instanceId: parts.instanceId } };
}

function readState(state: PlacementState): Reading {
  const live = [...new Set(state.members.filter((m) => !isDown(m, state.nodeDownAfterMs)).map((m) => toNodeId(m.id)))].sort((a, b) => a - b);
  const layout = new Layout(live);
  const invalid: { key: string; reason: string }[] = [];
  const { valid, unreadable } = readBlueprints(state.blueprints, invalid);
  const changes: Change[] = [];
  const usedIds = new Set<string>();
  for (const entry of [...state.assignments].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))) {
    const read = readAssignment(entry);
    if ('reason' in read) {
      invalid.push({ key: entry.key, reason: read.reason });
      changes.push({ kind: 'remove', key: entry.key, blueprint: undefined, describe: `remove ${entry.key}: ${read.reason}` });
      continue;
    }
    const { placed } = read;
    const why = usedIds.has(placed.instanceId) ? `instance id ${placed.instanceId} is used twice` : !layout.isLive(placed.node) ? `node ${placed.node} is down` : !valid.has(placed.blueprint) && !unreadable.has(placed.blueprint) ? 'blueprint deleted' : undefined;
    usedIds.add(placed.instanceId);
    if (why === undefined) layout.add(placed);
    else changes.push(removal(placed, why));
  }
  const removeInstances: string[] = [];
  for (const key of [...state.instanceKeys].sort()) {
    const node = instanceKeyNode(key);
    if (node !== undefined && !layout.isLive(node)) removeInstances.push(key);
    const parts = parseInstanceKey(key);
    if (parts !== undefined) usedIds.add(parts.instanceId);
  }
  return { layout, blueprints: valid, changes, removeInstances, invalid, usedIds };
}

/** The node of an `instance/{node}/…` key, read leniently so that malformed reports of a down node go too. */
function instanceKeyNode(key: string): NodeId | undefined {
  if (!key.startsWith(INSTANCE_PREFIX)) return undefined;
  const text = key.slice(INSTANCE_PREFIX.length).split('/', 1)[0] ?? '';
  return /^[1-9][0-9]*$/.test(text) && Number.isSafeInteger(Number(text)) ? toNodeId(Number(text)) : undefined;
}

function removal(placed: Placed, why: string): Change {
  return { kind: 'remove', key: placed.key, blueprint: placed.blueprint, describe: `remove ${placed.blueprint.slice(BLUEPRINT_PREFIX.length)} ${placed.instanceId} from node ${placed.node}: ${why}` };
}

// ---------------------------------------------------------------------------------------------
// Planning

function trimBlueprint(layout: Layout, blueprint: Blueprint, changes: Change[]): void {
  const perNodeMax = blueprint.record.perNodeMax ?? Infinity;
  for (const node of layout.live) {
    while (layout.count(node, blueprint.key) > perNodeMax) changes.push(removal(layout.removeLast(node, blueprint.key), `above perNodeMax ${perNodeMax}`));
  }
  while (layout.countOf(blueprint.key) > blueprint.record.instances) {
    // The node with the most of this version, then the most overall, then the highest id.
    let from = layout.live[0]!;
    for (const node of layout.live) {
      const [count, best] = [layout.count(node, blueprint.key), layout.count(from, blueprint.key)];
      if (count > best || (count === best && layout.total(node) >= layout.total(from))) from = node;
    }
    changes.push(removal(layout.removeLast(from, blueprint.key), `surplus above ${blueprint.record.instances}`));
  }
}

function trimNodes(layout: Layout, nodeInstancesMax: number, changes: Change[]): void {
  for (const node of layout.live) {
    while (layout.total(node) > nodeInstancesMax) {
      const blueprint = layout.largestOn(node);
      assert(blueprint !== undefined, 'a node above its limit runs something');
      changes.push(removal(layout.removeLast(node, blueprint), `node above nodeInstancesMax ${nodeInstancesMax}`));
    }
  }
}

/** The live node for one more instance of `blueprint`, or undefined when none has room. */
function chooseNode(layout: Layout, blueprint: Blueprint, nodeInstancesMax: number): NodeId | undefined {
  const perNodeMax = blueprint.record.perNodeMax ?? Infinity;
  let best: NodeId | undefined;
  for (const node of layout.live) {
    if (layout.count(node, blueprint.key) >= perNodeMax || layout.total(node) >= nodeInstancesMax) continue;
    if (best === undefined) best = node;
    else {
      const [count, bestCount] = [layout.count(node, blueprint.key), layout.count(best, blueprint.key)];
      if (count < bestCount || (count === bestCount && layout.total(node) < layout.total(best))) best = node;
    }
  }
  return best;
}

interface Stamps {
  readonly term: number;
  readonly nowMs: number;
  readonly instanceIdPrefix: string;
}

/** Places missing instances round-robin over the blueprints; returns what fit nowhere. */
function placeMissing(reading: Reading, nodeInstancesMax: number, stamps: Stamps): UnplacedCount[] {
  const { layout, changes, usedIds } = reading;
  const blueprints = [...reading.blueprints.values()].sort((a, b) => (a.key < b.key ? -1 : 1));
  const missing = new Map(blueprints.map((b) => [b.key, b.record.instances - layout.countOf(b.key)]));
  let counter = 0;
  const nextId = (): string => {
    let id = `${stamps.instanceIdPrefix}-${counter++}`;
    while (usedIds.has(id)) id = `${stamps.instanceIdPrefix}-${counter++}`;
    usedIds.add(id);
    return id;
  };
  for (let progress = true; progress; ) {
    progress = false;
    for (const blueprint of blueprints) {
      if ((missing.get(blueprint.key) ?? 0) <= 0) continue;
      const node = chooseNode(layout, blueprint, nodeInstancesMax);
      if (node === undefined) continue;
      const instanceId = nextId();
      const key = assignmentKey(node, blueprint.base, blueprint.version, instanceId);
      const record: AssignmentRecord = { nodeId: node, base: blueprint.base, version: blueprint.version, instanceId, term: stamps.term, placedAt: stamps.nowMs };
      layout.add({ key, node, blueprint: blueprint.key, instanceId });
      changes.push({ kind: 'put', key, blueprint: blueprint.key, describe: `place ${blueprint.base}:${blueprint.version} ${instanceId} on node ${node}`, put: { key, value: formatAssignment(record), record } });
      missing.set(blueprint.key, (missing.get(blueprint.key) ?? 0) - 1);
      progress = true;
    }
  }
  return blueprints.filter((b) => (missing.get(b.key) ?? 0) > 0).map((b) => ({ blueprint: b.key, count: missing.get(b.key)! }));
}

function checkState(state: PlacementState): void {
  assert(state.nodeDownAfterMs > 0, 'nodeDownAfterMs must be positive');
  assert(Number.isSafeInteger(state.nodeInstancesMax) && state.nodeInstancesMax > 0, 'nodeInstancesMax must be a positive integer');
}

/** Reads the state and applies every rule; the full, uncut result. */
function computePlacement(state: PlacementState, stamps: Stamps): { reading: Reading; unplaced: UnplacedCount[] } {
  checkState(state);
  assert(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(stamps.instanceIdPrefix), 'instanceIdPrefix must start an instance id');
  const reading = readState(state);
  for (const blueprint of [...reading.blueprints.values()].sort((a, b) => (a.key < b.key ? -1 : 1))) trimBlueprint(reading.layout, blueprint, reading.changes);
  trimNodes(reading.layout, state.nodeInstancesMax, reading.changes);
  const unplaced = placeMissing(reading, state.nodeInstancesMax, stamps);
  return { reading, unplaced };
}

/** Plans the assignment changes for `input` (see the module comment for the rules). */
export function planPlacement(input: PlacementInput): PlacementPlan {
  const { reading, unplaced } = computePlacement(input, input);
  const changesMax = input.changesMax ?? Infinity;
  assert(changesMax >= 1, 'changesMax must be at least 1');
  // Deletes first, so that any prefix of the plan keeps every limit.
  const ordered = [...reading.changes.filter((c) => c.kind === 'remove'), ...reading.changes.filter((c) => c.kind === 'put')];
  let budget = changesMax;
  const removeInstances = reading.removeInstances.slice(0, Math.min(reading.removeInstances.length, budget));
  budget -= removeInstances.length;
  const kept: Change[] = [];
  const touched = new Set<string>();
  for (const change of ordered) {
    const cost = 1 + (change.blueprint !== undefined && !touched.has(change.blueprint) ? 1 : 0);
    if (cost > budget) break;
    budget -= cost;
    kept.push(change);
    if (change.blueprint !== undefined) touched.add(change.blueprint);
  }
  return {
    put: kept.flatMap((c) => (c.put === undefined ? [] : [c.put])),
    remove: kept.filter((c) => c.kind === 'remove').map((c) => c.key),
    removeInstances,
    unplaced,
    moves: kept.map((c) => c.describe),
    blueprintsTouched: [...touched].sort(),
    invalid: reading.invalid,
    truncated: kept.length < ordered.length || removeInstances.length < reading.removeInstances.length,
  };
}

/**
 * How many more instances of `base:version` could be placed once the current plan is applied
 * (down nodes' instances re-placed, every blueprint at its count where room allows): over the
 * live nodes, the room left under `perNodeMax` (the argument, else the version's blueprint's, else
 * none) and under `nodeInstancesMax`. The rolling-update validator asks it before deploying.
 */
export function placementCapacity(state: PlacementState, target: { readonly base: ArtifactBase; readonly version: string; readonly perNodeMax?: number }): number {
  const key = blueprintKey(target.base, target.version);
  const { reading } = computePlacement(state, { term: 0, nowMs: 0, instanceIdPrefix: 'capacity' });
  const perNodeMax = target.perNodeMax ?? reading.blueprints.get(key)?.record.perNodeMax ?? Infinity;
  let room = 0;
  for (const node of reading.layout.live) {
    room += Math.max(0, Math.min(perNodeMax - reading.layout.count(node, key), state.nodeInstancesMax - reading.layout.total(node)));
  }
  return room;
}
