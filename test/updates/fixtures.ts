/**
 * Test fixtures for the rolling-update domain: records in any state, synthetic health, and a tiny
 * fake cluster — a KV map with revisions that applies `commitTxn` transactions with their
 * compare, and instances that follow the blueprints (each version's ACTIVE count is its blueprint
 * count, capped by what the test lets start) — so `nextStep` can be walked end to end.
 */
import type { VersionHealth } from '../../src/invoker/metrics-aggregator.ts';
import { parseRoutingRecord } from '../../src/invoker/records.ts';
import { parseBlueprint } from '../../src/slices/blueprints.ts';
import { blueprintKey, versionRoutingKey } from '../../src/slices/keys.ts';
import { commitTxn, type Commit, type UpdateFacts, type ValidationOutcome } from '../../src/updates/decide.ts';
import { createUpdateRecord, parseUpdateRecord, updateKey, type UpdateRecord, type UpdateState } from '../../src/updates/record.ts';
import { parseStartRequest } from '../../src/updates/request.ts';

export const BASE = 'org.example:greeter';
export const T0 = 1_700_000_000_000;

/** A PENDING record from a start request with `fields` (artifact and version filled in). */
export function pendingRecord(fields: Record<string, unknown> = {}, id = 'u1'): UpdateRecord {
  const request = parseStartRequest({ artifactBase: BASE, version: '2.0.0', initiatedBy: 'alice', ...fields });
  return createUpdateRecord(request, { id, oldVersion: '1.0.0', nowMs: T0 });
}

/** A valid record in `state` (deployed fields set where the state needs them). */
export function recordIn(state: UpdateState, fields: Record<string, unknown> = {}): UpdateRecord {
  const pending = pendingRecord(fields);
  const deployed = !['PENDING', 'VALIDATING', 'CANCELLED'].includes(state);
  const rollback = state === 'ROLLING_BACK' || state === 'ROLLED_BACK' ? { reason: 'test', initiatedAt: T0, initiatedBy: { kind: 'user' as const, name: 'alice' }, currentFailures: 0, rolledBackInstances: [], rolledBackCount: 0 } : null;
  return {
    ...pending,
    state,
    routing: deployed ? { newWeight: 0, oldWeight: 1 } : null,
    instances: deployed ? { requested: null, target: 4, old: { instances: 4 } } : pending.instances,
    rollback,
  };
}

/** The new version's health over a window. */
export function health(requestCount: number, errorRate: number, p99LatencyMs: number): VersionHealth {
  return { base: BASE, version: '2.0.0', requestCount, errorCount: Math.round(requestCount * errorRate), errorRate, avgLatencyMs: p99LatencyMs / 2, p99LatencyMs, nodes: 3, collectedAt: 0, windowMs: 10_000 };
}

export const HEALTHY = health(1000, 0, 50);

interface Stored {
  value: string;
  modRevision: number;
}

/** A KV map with revisions, and instances that follow the blueprints. */
export class FakeCluster {
  readonly kv = new Map<string, Stored>();
  revision = 1;
  /** Most new-version instances that manage to become ACTIVE. */
  newCap = Number.POSITIVE_INFINITY;
  /** Most old-version instances that manage to become ACTIVE. */
  oldCap = Number.POSITIVE_INFINITY;
  health: VersionHealth | undefined = HEALTHY;
  validation: ValidationOutcome | undefined = { ok: true, oldBlueprint: { instances: 4 } };
  /** Every committed step, in order. */
  readonly steps: string[] = [];

  constructor(record: UpdateRecord, oldInstances = 4) {
    this.put(updateKey(record.id), JSON.stringify(record));
    this.put(blueprintKey(record.base, record.oldVersion), JSON.stringify({ instances: oldInstances }));
    this.validation = { ok: true, oldBlueprint: { instances: oldInstances } };
  }

  put(key: string, value: string): void {
    this.kv.set(key, { value, modRevision: ++this.revision });
  }

  get(key: string): string | undefined {
    return this.kv.get(key)?.value;
  }

  record(id = 'u1'): { record: UpdateRecord; modRevision: number } {
    const stored = this.kv.get(updateKey(id));
    if (stored === undefined) throw new Error(`no record ${id}`);
    const parsed = parseUpdateRecord(stored.value);
    if (!parsed.ok) throw new Error(`stored record unreadable: ${parsed.reason}`);
    return { record: parsed.value, modRevision: stored.modRevision };
  }

  blueprintCount(base: string, version: string): number | undefined {
    const value = this.get(blueprintKey(base as never, version));
    if (value === undefined) return undefined;
    const parsed = parseBlueprint(value);
    if (!parsed.ok) throw new Error(parsed.reason);
    return parsed.value.instances;
  }

  routing(base = BASE): { newWeight: number; oldWeight: number } | undefined {
    const value = this.get(versionRoutingKey(base as never));
    if (value === undefined) return undefined;
    const parsed = parseRoutingRecord(value);
    if (!parsed.ok) throw new Error(parsed.reason);
    return { newWeight: parsed.value.newWeight, oldWeight: parsed.value.oldWeight };
  }

  /** Applies a commit as `commitTxn` would run in the store; false when the compare fails. */
  apply(commit: Commit, modRevision: number): boolean {
    const txn = commitTxn(commit, modRevision);
    for (const compare of txn.compare) {
      const current = this.kv.get(compare.key)?.modRevision ?? 0;
      if (compare.target !== 'modRevision' || compare.op !== '=' || current !== compare.value) return false;
    }
    this.revision++;
    for (const op of txn.success) {
      if (op.type === 'put') this.kv.set(op.key, { value: op.value, modRevision: this.revision });
      else if (op.type === 'delete') this.kv.delete(op.key);
      else throw new Error(`unexpected operation ${op.type}`);
    }
    this.steps.push(commit.step);
    return true;
  }

  /** What the controller would observe now, for `record`. */
  facts(record: UpdateRecord): UpdateFacts {
    const newCount = Math.min(this.blueprintCount(record.base, record.newVersion) ?? 0, this.newCap);
    const oldCount = Math.min(this.blueprintCount(record.base, record.oldVersion) ?? 0, this.oldCap);
    const routingValue = this.get(versionRoutingKey(record.base));
    const routing = routingValue === undefined ? undefined : parseRoutingRecord(routingValue);
    return {
      validation: record.state === 'VALIDATING' ? this.validation : undefined,
      newInstances: { active: newCount, reported: Array.from({ length: newCount }, (_, i) => `n${i}`) },
      oldInstances: { active: oldCount, reported: Array.from({ length: oldCount }, (_, i) => `o${i}`) },
      health: this.health,
      routing: routing?.ok === true ? routing.value : undefined,
    };
  }
}
