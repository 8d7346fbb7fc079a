/**
 * The controller's facts about one update, computed from its mirror of the store (pure): the new
 * and old versions' instances from the `instance/` reports, the stored routing record, and the
 * health window. `nextStep` reads them (see `UpdateFacts` in decide.ts).
 *
 * An instance counts as ACTIVE when its node reports it ACTIVE; every reported instance, in any
 * state, is listed in `reported` (what a rollback stops). Unreadable keys and values are skipped:
 * they are other nodes' data, and the placement controller cleans up after dead nodes.
 */
import type { VersionHealth } from '../invoker/metrics-aggregator.ts';
import { parseInstanceRecord, parseRoutingRecord, type RoutingRecord } from '../invoker/records.ts';
import { parseInstanceKey, type ArtifactBase } from '../slices/keys.ts';
import type { InstanceFacts, UpdateFacts, ValidationOutcome } from './decide.ts';
import { MONITORED_STATES } from './decide.ts';
import type { UpdateRecord } from './record.ts';
import type { StoredEntry } from './release.ts';

/** Where the leader reads the cluster-wide health of a version (the `MetricsAggregator` fits). */
export interface HealthSource {
  snapshot(base: string, version: string, options: { readonly windowMs: number }): VersionHealth | undefined;
}

/**
 * Instances of `base:version` among `instances` (the `instance/` entries). An UNHEALTHY one (failing
 * its declared checks) is listed in `unhealthy` with its node's reason, which the health gate quotes.
 */
export function instanceFacts(instances: Iterable<StoredEntry>, base: ArtifactBase, version: string): InstanceFacts {
  let active = 0;
  const reported: string[] = [];
  const unhealthy: string[] = [];
  for (const entry of instances) {
    const parts = parseInstanceKey(entry.key);
    if (parts === undefined || parts.base !== base || parts.version.text !== version) continue;
    reported.push(parts.instanceId);
    const record = parseInstanceRecord(entry.value, parts.nodeId);
    if (!record.ok) continue;
    if (record.value.state === 'ACTIVE') active++;
    else if (record.value.state === 'UNHEALTHY') unhealthy.push(`instance ${parts.instanceId} on node ${parts.nodeId} of ${version}: ${unhealthyReason(entry.value)}`);
  }
  return { active, reported, unhealthy };
}

/** The reason an UNHEALTHY record gives (its failing checks), or a plain one. */
function unhealthyReason(value: string): string {
  const reason = (JSON.parse(value) as { reason?: unknown }).reason;
  return typeof reason === 'string' && reason.length > 0 ? reason : 'health checks failing';
}

/** The stored routing record, undefined when absent or unreadable. */
export function routingFact(value: string | undefined): RoutingRecord | undefined {
  if (value === undefined) return undefined;
  const parsed = parseRoutingRecord(value);
  return parsed.ok ? parsed.value : undefined;
}

/**
 * Added to the evaluation interval to make the window the gate reads. The aggregator's newest
 * bucket is the second still filling (nodes push once a second), so a window of exactly one
 * interval can hold less than an interval of calls, and nothing at all right after a second
 * starts: with a 1-second interval every evaluation could land on an empty bucket.
 */
export const HEALTH_WINDOW_SLACK_MS = 1000;

/** The window the gate judges: one evaluation interval plus the slack, at most `windowMsMax`. */
export function healthWindowMs(record: UpdateRecord, windowMsMax: number): number {
  return Math.min(record.healthGate.intervalMs + HEALTH_WINDOW_SLACK_MS, windowMsMax);
}

/**
 * The new version's health over `healthWindowMs`, only in the states where the gate runs;
 * undefined when the source has no calls or fails (an inconclusive evaluation, never a breach).
 */
export function healthFact(record: UpdateRecord, source: HealthSource, windowMsMax: number, onError: (error: unknown) => void = () => {}): VersionHealth | undefined {
  if (!MONITORED_STATES.includes(record.state)) return undefined;
  try {
    return source.snapshot(record.base, record.newVersion, { windowMs: healthWindowMs(record, windowMsMax) });
  } catch (error) {
    onError(error);
    return undefined;
  }
}

/** Everything `nextStep` reads besides the record, from the mirror's entries. */
export function updateFacts(
  record: UpdateRecord,
  mirror: { readonly instances: Iterable<StoredEntry>; readonly routingValue: string | undefined; readonly health: VersionHealth | undefined },
  validation: ValidationOutcome | undefined,
): UpdateFacts {
  const instances = [...mirror.instances];
  return {
    validation,
    newInstances: instanceFacts(instances, record.base, record.newVersion),
    oldInstances: instanceFacts(instances, record.base, record.oldVersion),
    health: mirror.health,
    routing: routingFact(mirror.routingValue),
  };
}
