/**
 * The safety checks of the updates scenario, fed by a watch on every incarnation of every node
 * (`NodeView`: a mirror of `rolling-update/`, `version-routing/`, `blueprint/` and `instance/`
 * kept from that node's applied entries, in order) and by every controller's committed steps.
 *
 * - History (`UpdateHistory`): every put of a record, by key and KV version, from all nodes: two
 *   nodes never see different values for one (key, version), and between two consecutive puts the
 *   state stays or moves along the transitions table, the plan step index stays or grows by one,
 *   the log only grows (entries kept are the old ones, in order, then new ones), and nothing
 *   changes after a terminal state.
 * - Steps: across every leader, a state transition (`X -> Y`) or routing step (`… (step k/n)`) of
 *   one update is committed at most once, and so logged at most once.
 * - Per applied entry on each node (`NodeView.apply`; skipped for a snapshot's net change):
 *   entering DEPLOYED or ROUTING needs the new version's asked instances ACTIVE in that node's
 *   state; a routing record of an update moves only the way its strategy allows (never towards
 *   the old version, except a rollback's 0:x; BLUE_GREEN only 0:1 or 1:0; MANUAL any way);
 *   entering ROLLING_BACK from a state with routing writes new weight 0 in the same entry; and
 *   a blueprint is deleted only when an earlier entry gave its version weight 0 (a rollback's 0:1
 *   before the new blueprint goes; a completion's 1:0 before the old one goes), by a COMPLETED or
 *   ROLLED_BACK step not before its grace deadline.
 */
import type { WatchEvent, KeyValue } from '../../src/kv/index.ts';
import { parseRoutingRecord } from '../../src/invoker/records.ts';
import { BLUEPRINT_PREFIX, INSTANCE_PREFIX, VERSION_ROUTING_PREFIX, parseBlueprintKey, versionRoutingKey } from '../../src/slices/keys.ts';
import { askedInstances } from '../../src/updates/decide.ts';
import { instanceFacts } from '../../src/updates/facts.ts';
import { UPDATE_PREFIX, isTerminal, parseUpdateRecord, type UpdateRecord } from '../../src/updates/record.ts';
import { canTransition } from '../../src/updates/transitions.ts';

export const WATCHED_PREFIXES = [UPDATE_PREFIX, VERSION_ROUTING_PREFIX, BLUEPRINT_PREFIX, INSTANCE_PREFIX] as const;

/** A step label that names something that may happen once per update. */
export function isOnceStep(step: string): boolean {
  return / -> [A-Z_]+$/.test(step) || /\(step \d+\/\d+\)$/.test(step);
}

function parse(value: string): UpdateRecord | undefined {
  const parsed = parseUpdateRecord(value);
  return parsed.ok ? parsed.value : undefined;
}

function share(newWeight: number, oldWeight: number): number {
  return newWeight / (newWeight + oldWeight);
}

/** What is wrong between two consecutive puts of one record (empty: nothing). */
export function pairProblems(prev: UpdateRecord, cur: UpdateRecord): string[] {
  const problems: string[] = [];
  const id = cur.id;
  if (isTerminal(prev.state)) problems.push(`${id}: changed after reaching ${prev.state}`);
  if (prev.state !== cur.state && !canTransition(prev.state, cur.state)) problems.push(`${id}: ${prev.state} -> ${cur.state} is not in the transitions table`);
  if (cur.stepIndex !== prev.stepIndex && cur.stepIndex !== prev.stepIndex + 1) problems.push(`${id}: step index ${prev.stepIndex} -> ${cur.stepIndex}`);
  const dropped = cur.logDropped - prev.logDropped;
  if (dropped < 0) problems.push(`${id}: logDropped went back`);
  else {
    const kept = prev.log.slice(dropped);
    const same = kept.every((entry, i) => JSON.stringify(entry) === JSON.stringify(cur.log[i]));
    if (!same || cur.log.length < kept.length) problems.push(`${id}: the log was rewritten between two commits`);
  }
  return problems;
}

/** Problems of one record on its own: each once-only step logged at most once. */
export function recordProblems(record: UpdateRecord): string[] {
  const seen = new Set<string>();
  const problems: string[] = [];
  for (const entry of record.log) {
    if (!isOnceStep(entry.step)) continue;
    if (seen.has(entry.step)) problems.push(`${record.id}: step "${entry.step}" logged twice`);
    seen.add(entry.step);
  }
  return problems;
}

/** Every record put seen by any node, by key and KV version. */
export class UpdateHistory {
  private readonly puts = new Map<string, Map<number, { readonly value: string; readonly record: UpdateRecord | undefined; readonly node: number }>>();
  private readonly committed = new Map<string, Map<string, number>>();
  puts_ = 0;

  constructor(private readonly report: (message: string) => void) {}

  put(node: number, kv: KeyValue): void {
    let versions = this.puts.get(kv.key);
    if (versions === undefined) {
      versions = new Map();
      this.puts.set(kv.key, versions);
    }
    const seen = versions.get(kv.version);
    if (seen !== undefined) {
      if (seen.value !== kv.value) this.report(`nodes ${seen.node} and ${node} saw different values for version ${kv.version} of ${kv.key}`);
      return;
    }
    const record = parse(kv.value);
    if (record === undefined) return this.report(`node ${node}: ${kv.key} version ${kv.version} is unreadable`);
    this.puts_++;
    versions.set(kv.version, { value: kv.value, record, node });
    const problems = recordProblems(record);
    const before = versions.get(kv.version - 1)?.record;
    if (before !== undefined) problems.push(...pairProblems(before, record));
    const after = versions.get(kv.version + 1)?.record;
    if (after !== undefined) problems.push(...pairProblems(record, after));
    if (problems.length > 0) this.report(`${kv.key} version ${kv.version} (node ${node}): ${problems.join('; ')}`);
  }

  /** A controller committed `step` of `updateId` at `revision`. */
  commit(node: number, updateId: string, step: string, revision: number): void {
    if (!isOnceStep(step)) return;
    let steps = this.committed.get(updateId);
    if (steps === undefined) {
      steps = new Map();
      this.committed.set(updateId, steps);
    }
    const earlier = steps.get(step);
    if (earlier !== undefined && earlier !== revision) this.report(`update ${updateId}: step "${step}" committed twice, at revisions ${earlier} and ${revision} (the second by node ${node})`);
    steps.set(step, revision);
  }

  /** The latest record of every update seen. */
  latest(): UpdateRecord[] {
    const out: UpdateRecord[] = [];
    for (const versions of this.puts.values()) {
      const newest = Math.max(...versions.keys());
      const record = versions.get(newest)?.record;
      if (record !== undefined) out.push(record);
    }
    return out;
  }
}

/** One incarnation's mirror of the watched prefixes, checked entry by entry. */
export class NodeView {
  readonly mirror = new Map<string, KeyValue>();
  checkedEntries = 0;

  constructor(
    readonly node: number,
    initial: readonly KeyValue[],
    private readonly history: UpdateHistory,
    private readonly report: (message: string) => void,
  ) {
    for (const kv of initial) {
      this.mirror.set(kv.key, kv);
      if (kv.key.startsWith(UPDATE_PREFIX)) history.put(node, kv);
    }
  }

  private record(key: string): UpdateRecord | undefined {
    const kv = this.mirror.get(key);
    return kv === undefined ? undefined : parse(kv.value);
  }

  private routing(base: string): { updateId: string; oldVersion: string; newVersion: string; newWeight: number; oldWeight: number; modRevision: number } | undefined {
    const kv = this.mirror.get(versionRoutingKey(base as Parameters<typeof versionRoutingKey>[0]));
    if (kv === undefined) return undefined;
    const parsed = parseRoutingRecord(kv.value);
    if (!parsed.ok) return undefined;
    const r = parsed.value;
    return { updateId: r.updateId, oldVersion: r.oldVersion.text, newVersion: r.newVersion.text, newWeight: r.newWeight, oldWeight: r.oldWeight, modRevision: kv.modRevision };
  }

  private byId(id: string): UpdateRecord | undefined {
    return this.record(`${UPDATE_PREFIX}${id}`);
  }

  /** One watch batch: a single applied entry (checked) or a snapshot's net change (only mirrored). */
  apply(events: readonly WatchEvent[]): void {
    const single = events.every((e) => e.revision === events[0]!.revision && (e.type === 'delete' || e.kv.modRevision === e.revision));
    if (!single) {
      for (const e of events) {
        if (e.type === 'put') {
          this.mirror.set(e.kv.key, e.kv);
          if (e.kv.key.startsWith(UPDATE_PREFIX)) this.history.put(this.node, e.kv);
        } else this.mirror.delete(e.kv.key);
      }
      return;
    }
    this.checkedEntries++;
    const revision = events[0]!.revision;
    const problems: string[] = [];
    const before = new Map<string, UpdateRecord | undefined>();
    for (const e of events) if (e.kv.key.startsWith(UPDATE_PREFIX)) before.set(e.kv.key, this.record(e.kv.key));
    const routingBefore = new Map<string, ReturnType<NodeView['routing']>>();
    for (const e of events) {
      if (e.kv.key.startsWith(VERSION_ROUTING_PREFIX)) routingBefore.set(e.kv.key, this.routing(e.kv.key.slice(VERSION_ROUTING_PREFIX.length)));
    }
    // Instances never change in the entry of an update step, so the state before is the state at it.
    const instances = [...this.mirror.values()].filter((kv) => kv.key.startsWith(INSTANCE_PREFIX));
    for (const e of events) {
      if (e.type === 'put') this.mirror.set(e.kv.key, e.kv);
      else this.mirror.delete(e.kv.key);
    }
    for (const e of events) {
      if (e.kv.key.startsWith(UPDATE_PREFIX) && e.type === 'put') {
        this.history.put(this.node, e.kv);
        const cur = parse(e.kv.value);
        const prev = before.get(e.kv.key);
        if (cur === undefined) continue;
        if (cur.state !== prev?.state && (cur.state === 'DEPLOYED' || cur.state === 'ROUTING')) {
          const asked = askedInstances(prev ?? cur);
          const active = instanceFacts(instances, cur.base, cur.newVersion).active;
          if (active < asked) problems.push(`${cur.id} entered ${cur.state} with ${active} of ${asked} new instances ACTIVE`);
        }
        if (cur.state === 'ROLLING_BACK' && prev !== undefined && prev.state !== 'ROLLING_BACK' && prev.routing !== null) {
          const routing = this.routing(cur.base);
          if (routing === undefined || routing.updateId !== cur.id || routing.newWeight !== 0 || routing.modRevision !== revision) problems.push(`${cur.id} entered ROLLING_BACK without writing routing 0:x in the same entry`);
        }
      }
    }
    for (const e of events) {
      if (e.kv.key.startsWith(VERSION_ROUTING_PREFIX) && e.type === 'put') {
        const base = e.kv.key.slice(VERSION_ROUTING_PREFIX.length);
        const now = this.routing(base);
        if (now === undefined) continue;
        const record = this.byId(now.updateId);
        if (record === undefined) continue;
        const was = routingBefore.get(e.kv.key);
        const rollingBack = record.state === 'ROLLING_BACK' || record.state === 'ROLLED_BACK';
        if (rollingBack) {
          if (now.newWeight !== 0) problems.push(`${record.id} is ${record.state} and routing was written ${now.newWeight}:${now.oldWeight}`);
        } else if (record.strategy.kind === 'BLUE_GREEN' && !((now.newWeight === 0 && now.oldWeight > 0) || (now.oldWeight === 0 && now.newWeight > 0))) {
          problems.push(`${record.id} (BLUE_GREEN) routed ${now.newWeight}:${now.oldWeight}`);
        } else if (record.strategy.kind !== 'MANUAL' && was !== undefined && was.updateId === now.updateId && share(now.newWeight, now.oldWeight) < share(was.newWeight, was.oldWeight)) {
          problems.push(`${record.id} (${record.strategy.kind}, ${record.state}) moved routing back from ${was.newWeight}:${was.oldWeight} to ${now.newWeight}:${now.oldWeight}`);
        }
      }
      if (e.kv.key.startsWith(BLUEPRINT_PREFIX) && e.type === 'delete') {
        const parts = parseBlueprintKey(e.kv.key);
        if (parts === undefined) continue;
        const version = parts.version.text;
        const routing = this.routing(parts.base);
        if (routing === undefined) continue;
        const weight = routing.newVersion === version ? routing.newWeight : routing.oldVersion === version ? routing.oldWeight : 0;
        if (weight !== 0 || ((routing.newVersion === version || routing.oldVersion === version) && routing.modRevision >= revision)) {
          problems.push(`blueprint ${parts.base}:${version} deleted at revision ${revision} while routing (revision ${routing.modRevision}) is ${routing.newVersion}:${routing.oldVersion} ${routing.newWeight}:${routing.oldWeight}`);
        }
        const record = this.byId(routing.updateId);
        if (record !== undefined && (routing.newVersion === version || routing.oldVersion === version)) {
          const written = events.some((x) => x.kv.key === `${UPDATE_PREFIX}${record.id}`);
          if (!written || (record.state !== 'COMPLETED' && record.state !== 'ROLLED_BACK')) problems.push(`blueprint ${parts.base}:${version} deleted at revision ${revision} outside a COMPLETED or ROLLED_BACK step of ${record.id} (${record.state})`);
          if (record.state === 'COMPLETED') {
            const prev = before.get(`${UPDATE_PREFIX}${record.id}`);
            const cleanupAt = prev?.deadlines.graceCleanupAt ?? null;
            const done = record.log[record.log.length - 1];
            if (cleanupAt === null || done === undefined || done.at < cleanupAt) problems.push(`${record.id} removed ${version} at ${done?.at ?? '?'}, before its cleanup deadline ${String(cleanupAt)} (${record.cleanup.policy})`);
          }
        }
      }
    }
    if (problems.length > 0) this.report(`node ${this.node} at revision ${revision}: ${problems.join('; ')}`);
  }
}
