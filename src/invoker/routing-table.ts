/**
 * The routing table: which version and which instance serve the next call to an artifact.
 *
 * Every node (and every embedded client) derives its own table from KV watches on
 * `version-routing/` and `instance/` (DESIGN.md decision 5); nothing here reads leader memory, and
 * nothing here does I/O. The table is a function of the KV contents it was given, not of the
 * order they arrived in: a malformed value counts as absent (it is ignored and counted, never
 * thrown), so a node that loads the state after a restart routes like a node that watched every
 * event. Only the soft state differs: the selector's position, round-robin cursors and counters.
 */
import {
  INSTANCE_PREFIX,
  VERSION_ROUTING_PREFIX,
  parseInstanceKey,
  parseVersionRoutingKey,
  type ArtifactBase,
} from '../slices/keys.ts';
import type { KeyValue, WatchEvent } from '../kv/types.ts';
import type { NodeId } from '../util/ids.ts';
import { ArtifactRoutes, type ArtifactSnapshot } from './artifact-routes.ts';
import type { RouteDecision, RouteOk } from './decisions.ts';
import { parseInstanceRecord, parseRoutingRecord } from './records.ts';

/** The KV prefixes the table must be fed from (by `load` and then `applyEvent`). */
export const ROUTING_TABLE_PREFIXES = [VERSION_ROUTING_PREFIX, INSTANCE_PREFIX] as const;

export interface RoutingTableOptions {
  /** Most malformed keys listed by `snapshot()` (all are counted). Default 100. */
  readonly malformedListedMax?: number;
}

/** Status for debugging: see `RoutingTable.snapshot`. */
export interface RoutingTableSnapshot {
  /** Highest KV revision applied. */
  readonly revision: number;
  /** Malformed keys or values seen, counted once per stored revision of a key. */
  readonly malformedTotal: number;
  /** Keys whose current value is malformed (and therefore ignored). */
  readonly malformedCurrent: number;
  /** Up to `malformedListedMax` of them, sorted by key, with the reason. */
  readonly malformed: readonly { readonly key: string; readonly reason: string }[];
  /** Sorted by base. */
  readonly artifacts: readonly ArtifactSnapshot[];
}

interface Malformed {
  readonly reason: string;
  readonly modRevision: number;
}

export class RoutingTable {
  private readonly artifacts = new Map<ArtifactBase, ArtifactRoutes>();
  /** Keys whose current value is ignored. Bounded by the keys under the watched prefixes. */
  private readonly malformed = new Map<string, Malformed>();
  private malformedTotal = 0;
  private revision = 0;
  private readonly malformedListedMax: number;

  constructor(options: RoutingTableOptions = {}) {
    this.malformedListedMax = options.malformedListedMax ?? 100;
  }

  /**
   * Applies one watch event. It takes effect at the next `route` call. Keys outside
   * `ROUTING_TABLE_PREFIXES` are ignored; malformed keys and values are ignored and counted.
   */
  applyEvent(event: WatchEvent): void {
    if (event.type === 'put') this.put(event.kv);
    else this.delete(event.kv.key);
    this.revision = Math.max(this.revision, event.revision);
  }

  /** Applies watch events in order (a `WatchListener`). */
  applyEvents(events: readonly WatchEvent[]): void {
    for (const event of events) this.applyEvent(event);
  }

  /**
   * Makes the table match `kvs`, the full contents of the watched prefixes at `revision` (default:
   * the highest modRevision among them): used at start-up and to resynchronise after a watch was
   * compacted. Keys the table holds that are not in `kvs` are deleted. Routing records and
   * instances that did not change keep their selector position and cursors.
   */
  load(kvs: readonly KeyValue[], revision?: number): void {
    const present = new Set<string>();
    for (const kv of kvs) {
      present.add(kv.key);
      this.put(kv);
    }
    for (const key of this.storedKeys()) if (!present.has(key)) this.delete(key);
    const highest = kvs.reduce((max, kv) => Math.max(max, kv.modRevision), 0);
    this.revision = Math.max(this.revision, revision ?? highest);
  }

  /**
   * Picks the destination of one call to `base`, from the node `localNodeId` (`NONE` for an
   * embedded client that hosts no instance).
   *
   * 1. The version: smooth weighted round-robin over the routing record's new:old weights, so
   *    every window of (new + old) / gcd consecutive calls holds exactly the weighted share of
   *    each, whatever the instance counts. With no routing record, the one version with ACTIVE
   *    instances takes every call; if several have some, the highest SemVer does, and each such
   *    call is counted (`highestVersionChoices`).
   * 2. If the picked version has no ACTIVE instance anywhere, the call goes to the other version:
   *    the decision says `fallback: true` and the artifact's `fallbacks` counter grows. If neither
   *    has one: `NO_ACTIVE_INSTANCE`. An artifact the table does not know: `UNKNOWN_SLICE`.
   * 3. The instance: round-robin over the version's ACTIVE instances on `localNodeId` when it has
   *    any; only when it has none, round-robin over its ACTIVE instances on other nodes. Local
   *    instances therefore take all of this node's calls for that version, however many remote
   *    ones exist: spreading load across nodes is placement's job, and a local call costs no hop.
   *    STARTING, HEALTH_CHECKING, UNHEALTHY, DRAINING, STOPPED and FAILED instances are never picked.
   *
   * Allocates nothing once the artifact's view is built (the first call after a change rebuilds
   * it). The returned decision is shared: do not mutate it.
   */
  route(base: ArtifactBase, localNodeId: NodeId): RouteDecision {
    const artifact = this.artifacts.get(base);
    if (artifact === undefined) return { ok: false, code: 'UNKNOWN_SLICE', base, message: `no routing record and no instance of ${base}` };
    return artifact.route(localNodeId);
  }

  /**
   * Another ACTIVE instance of `previous.version`, never `previous.instance`: for the single retry
   * after a connection failure before the request was sent. Prefers the same side (local or remote)
   * as `route`, then the other side. Does not advance the weighted selector and counts nothing, so
   * the version split is unchanged by retries. `NO_ACTIVE_INSTANCE` when there is no other.
   */
  routeRetry(previous: RouteOk, localNodeId: NodeId): RouteDecision {
    const artifact = this.artifacts.get(previous.base);
    if (artifact === undefined) return { ok: false, code: 'UNKNOWN_SLICE', base: previous.base, message: `no routing record and no instance of ${previous.base}` };
    return artifact.routeRetry(previous, localNodeId);
  }

  /** Status for debugging and the status API. Allocates; not for the call path. */
  snapshot(): RoutingTableSnapshot {
    const malformed = [...this.malformed.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const artifacts = [...this.artifacts.values()].sort((a, b) => (a.base < b.base ? -1 : a.base > b.base ? 1 : 0));
    return {
      revision: this.revision,
      malformedTotal: this.malformedTotal,
      malformedCurrent: this.malformed.size,
      malformed: malformed.slice(0, this.malformedListedMax).map(([key, m]) => ({ key, reason: m.reason })),
      artifacts: artifacts.map((a) => a.snapshot()),
    };
  }

  private put(kv: KeyValue): void {
    if (kv.key.startsWith(VERSION_ROUTING_PREFIX)) this.putRouting(kv);
    else if (kv.key.startsWith(INSTANCE_PREFIX)) this.putInstance(kv);
  }

  private putRouting(kv: KeyValue): void {
    const base = parseVersionRoutingKey(kv.key);
    if (base === undefined) return this.markMalformed(kv, 'malformed version-routing key');
    const record = parseRoutingRecord(kv.value);
    if (!record.ok) {
      this.markMalformed(kv, record.reason);
      this.artifacts.get(base)?.setRouting(undefined);
      return this.dropIfEmpty(base);
    }
    this.malformed.delete(kv.key);
    this.artifact(base).setRouting(record.value);
  }

  private putInstance(kv: KeyValue): void {
    const parts = parseInstanceKey(kv.key);
    if (parts === undefined) return this.markMalformed(kv, 'malformed instance key');
    const record = parseInstanceRecord(kv.value, parts.nodeId);
    if (!record.ok) {
      this.markMalformed(kv, record.reason);
      this.artifacts.get(parts.base)?.deleteInstance(kv.key);
      return this.dropIfEmpty(parts.base);
    }
    this.malformed.delete(kv.key);
    const { state, nodeId, address } = record.value;
    const routed = { key: kv.key, instanceId: parts.instanceId, nodeId, address, version: parts.version.text };
    this.artifact(parts.base).putInstance({ semver: parts.version, state, routed });
  }

  private delete(key: string): void {
    this.malformed.delete(key);
    const base = parseVersionRoutingKey(key);
    if (base !== undefined) {
      this.artifacts.get(base)?.setRouting(undefined);
      this.dropIfEmpty(base);
    }
    const parts = parseInstanceKey(key);
    if (parts !== undefined) {
      this.artifacts.get(parts.base)?.deleteInstance(key);
      this.dropIfEmpty(parts.base);
    }
  }

  /** Records that `kv`'s value is ignored; counts it once per stored revision of the key. */
  private markMalformed(kv: KeyValue, reason: string): void {
    const known = this.malformed.get(kv.key);
    if (known !== undefined && known.modRevision === kv.modRevision) return;
    this.malformed.set(kv.key, { reason, modRevision: kv.modRevision });
    this.malformedTotal++;
  }

  private artifact(base: ArtifactBase): ArtifactRoutes {
    let artifact = this.artifacts.get(base);
    if (artifact === undefined) {
      const key = internalized(base);
      artifact = new ArtifactRoutes(key);
      this.artifacts.set(key, artifact);
    }
    return artifact;
  }

  /** Forgets an artifact with no routing record and no instance (its counters go with it). */
  private dropIfEmpty(base: ArtifactBase): void {
    if (this.artifacts.get(base)?.isEmpty() === true) this.artifacts.delete(base);
  }

  /** Every watched key the table holds: valid routing records, instances, malformed keys. */
  private storedKeys(): string[] {
    const keys = [...this.malformed.keys()];
    for (const artifact of this.artifacts.values()) {
      if (artifact.hasRouting()) keys.push(VERSION_ROUTING_PREFIX + artifact.base);
      keys.push(...artifact.instanceKeys());
    }
    return keys;
  }
}

/**
 * `base` as V8's one internalized copy of its text. A base parsed out of a KV key is a slice of
 * that key, and V8 compares a sliced string with an equal string from elsewhere (the caller's
 * artifact name) on a slow path: `route`'s map lookup took ~40 ns instead of ~5 (bench/invoker).
 * Called once per artifact, when the table first stores it.
 */
function internalized(base: ArtifactBase): ArtifactBase {
  return Object.keys({ [base]: 0 })[0] as ArtifactBase;
}
