/**
 * Routing state of one artifact (`groupId:artifactId`): its routing record, its instances, the
 * weighted selector, and a view of them from one node that `route` reads without allocating.
 *
 * The view is soft state derived from the rest: any change drops it, and the next call rebuilds it
 * (O(instances of the artifact)). Decisions are built with the view, one per instance and
 * selection, and handed out by reference.
 */
import { compareSemVer, type ArtifactBase, type SemVer } from '../slices/keys.ts';
import { assert } from '../util/assert.ts';
import type { NodeId } from '../util/ids.ts';
import type { RouteDecision, RouteFailure, RouteOk, RoutedInstance, Selection } from './decisions.ts';
import { INSTANCE_STATES, type InstanceState, type RoutingRecord } from './records.ts';
import { SmoothWeightedRoundRobin, reduceWeights } from './weighted.ts';

/** An instance as stored: its version, its state, and what decisions point at. */
export interface StoredInstance {
  readonly semver: SemVer;
  readonly state: InstanceState;
  readonly routed: RoutedInstance;
}

/** One ACTIVE instance with its decisions, as the view of one node sees it. */
interface Candidate {
  readonly primary: RouteOk;
  /** The decision when this instance serves a call the weights meant for the other version. */
  readonly fallback: RouteOk | undefined;
}

/** One version's ACTIVE instances, seen from one node. Lists are sorted by instance key. */
interface Lane {
  readonly version: string;
  readonly local: readonly Candidate[];
  readonly remote: readonly Candidate[];
  /** `local` when it is non-empty, else `remote`: where this version's calls go. */
  readonly preferred: readonly Candidate[];
  /** Next index into `preferred`. Invariant: 0 <= cursor < max(1, preferred.length). */
  cursor: number;
}

interface View {
  readonly localNodeId: NodeId;
  /** With a routing record: [new, old], indexed like the selector's weights. Without: the one
   * version that takes all calls, or none. */
  readonly lanes: readonly Lane[];
  /** Several versions have ACTIVE instances and there is no routing record. */
  readonly ambiguous: boolean;
  readonly noActive: RouteFailure;
}

/** Per-version status for `snapshot()`. */
export interface VersionSnapshot {
  readonly version: string;
  /** Its weight in the routing record, or undefined when the record does not name it. */
  readonly weight: number | undefined;
  readonly counts: Readonly<Record<InstanceState, number>>;
  readonly instances: readonly { readonly key: string; readonly instanceId: string; readonly nodeId: NodeId; readonly address: string; readonly state: InstanceState }[];
}

/** Per-artifact status for `snapshot()`. */
export interface ArtifactSnapshot {
  readonly base: ArtifactBase;
  readonly routing: { readonly updateId: string; readonly newVersion: string; readonly oldVersion: string; readonly newWeight: number; readonly oldWeight: number; readonly period: number } | undefined;
  /** Sorted by SemVer precedence, highest first. */
  readonly versions: readonly VersionSnapshot[];
  /** Calls sent to the other version because the picked one had no ACTIVE instance. */
  readonly fallbacks: number;
  /** Calls routed by the highest-version rule while several versions had ACTIVE instances. */
  readonly highestVersionChoices: number;
}

const byKey = (a: StoredInstance, b: StoredInstance): number => (a.routed.key < b.routed.key ? -1 : a.routed.key > b.routed.key ? 1 : 0);
const byVersionDescending = (a: SemVer, b: SemVer): number => compareSemVer(b, a) || (a.text < b.text ? 1 : a.text > b.text ? -1 : 0);

/** Hands out the candidate at the cursor and moves the cursor on. Requires a non-empty lane. */
function take(lane: Lane): Candidate {
  const index = lane.cursor;
  lane.cursor = index + 1 === lane.preferred.length ? 0 : index + 1;
  return lane.preferred[index]!;
}

/**
 * One artifact's routing state, owned by a `RoutingTable`, which validates everything it passes in.
 * `route` and `routeRetry` are documented on `RoutingTable`.
 */
export class ArtifactRoutes {
  readonly base: ArtifactBase;
  private routing: RoutingRecord | undefined;
  /** Versions and reduced weights of `routing`; the selector is reset only when it changes. */
  private routingSignature = '';
  private selector: SmoothWeightedRoundRobin | undefined;
  private readonly instances = new Map<string, StoredInstance>();
  private view: View | undefined;
  /** Set by every change: the next call rebuilds the view (keeping its cursors). */
  private viewStale = true;
  private fallbacks = 0;
  private highestVersionChoices = 0;

  constructor(base: ArtifactBase) {
    this.base = base;
  }

  /** True when the artifact has neither a routing record nor an instance: the table drops it. */
  isEmpty(): boolean {
    return this.routing === undefined && this.instances.size === 0;
  }

  /** The `instance/…` keys stored. */
  instanceKeys(): IterableIterator<string> {
    return this.instances.keys();
  }

  /** True when a valid routing record is stored. */
  hasRouting(): boolean {
    return this.routing !== undefined;
  }

  /**
   * Sets or clears the routing record. The selector restarts from a fresh period when the versions
   * or the reduced weights change, so that windows under the new weights are exact from the first
   * call after the change (carrying the old `current` values over would skew the first window by
   * up to one pick). A record that changes only its updateId or scales its weights (2:6 after 1:3)
   * keeps the selector running.
   */
  setRouting(record: RoutingRecord | undefined): void {
    const signature = record === undefined ? '' : `${record.newVersion.text} ${record.oldVersion.text} ${reduceWeights([record.newWeight, record.oldWeight]).join(':')}`;
    if (signature !== this.routingSignature) {
      this.selector = record === undefined ? undefined : new SmoothWeightedRoundRobin([record.newWeight, record.oldWeight]);
      this.routingSignature = signature;
    }
    this.routing = record;
    this.viewStale = true;
  }

  /** Stores or replaces the instance at `instance.routed.key`. */
  putInstance(instance: StoredInstance): void {
    this.instances.set(instance.routed.key, instance);
    this.viewStale = true;
  }

  /** Forgets the instance at `key`, if stored. */
  deleteInstance(key: string): void {
    if (this.instances.delete(key)) this.viewStale = true;
  }

  /** See `RoutingTable.route`. */
  route(localNodeId: NodeId): RouteDecision {
    const view = this.viewFor(localNodeId);
    if (this.selector === undefined) return this.routeUnweighted(view);
    const index = this.selector.next();
    const chosen = view.lanes[index]!;
    if (chosen.preferred.length > 0) return take(chosen).primary;
    const other = view.lanes[1 - index]!;
    if (other.preferred.length === 0) return view.noActive;
    this.fallbacks++;
    return take(other).fallback!;
  }

  private routeUnweighted(view: View): RouteDecision {
    const lane = view.lanes[0];
    if (lane === undefined) return view.noActive;
    if (view.ambiguous) this.highestVersionChoices++;
    return take(lane).primary;
  }

  /** See `RoutingTable.routeRetry`. */
  routeRetry(previous: RouteOk, localNodeId: NodeId): RouteDecision {
    const view = this.viewFor(localNodeId);
    const lane = view.lanes.find((l) => l.version === previous.version);
    const excluded = previous.instance.key;
    const candidate = lane === undefined ? undefined : (firstOther(lane.preferred, lane.cursor, excluded) ?? firstOther(lane.preferred === lane.local ? lane.remote : lane.local, 0, excluded));
    if (candidate === undefined) return { ok: false, code: 'NO_ACTIVE_INSTANCE', base: this.base, message: `no other ACTIVE instance of ${this.base} ${previous.version}` };
    return previous.fallback && candidate.fallback !== undefined ? candidate.fallback : candidate.primary;
  }

  private viewFor(localNodeId: NodeId): View {
    const view = this.view;
    if (view !== undefined && !this.viewStale && view.localNodeId === localNodeId) return view;
    // buildView reads the old view's cursors before it is replaced.
    this.view = this.buildView(localNodeId);
    this.viewStale = false;
    return this.view;
  }

  private buildView(localNodeId: NodeId): View {
    const active = this.activeByVersion();
    const routing = this.routing;
    if (routing !== undefined) {
      const versions = [routing.newVersion.text, routing.oldVersion.text] as const;
      const lanes = versions.map((version, i) => this.buildLane(version, active.get(version) ?? [], localNodeId, 'weighted', versions[1 - i]!));
      return { localNodeId, lanes, ambiguous: false, noActive: this.noActive(`versions ${versions[0]} and ${versions[1]}`) };
    }
    const highest = [...active.values()].map((list) => list[0]!.semver).sort(byVersionDescending)[0];
    const ambiguous = active.size > 1;
    const lanes = highest === undefined ? [] : [this.buildLane(highest.text, active.get(highest.text)!, localNodeId, ambiguous ? 'highest-version' : 'only-version', undefined)];
    return { localNodeId, lanes, ambiguous, noActive: this.noActive('any version') };
  }

  /** ACTIVE instances grouped by version, each list sorted by key. */
  private activeByVersion(): Map<string, StoredInstance[]> {
    const active = new Map<string, StoredInstance[]>();
    for (const instance of this.instances.values()) {
      if (instance.state !== 'ACTIVE') continue;
      const list = active.get(instance.semver.text);
      if (list === undefined) active.set(instance.semver.text, [instance]);
      else list.push(instance);
    }
    for (const list of active.values()) list.sort(byKey);
    return active;
  }

  private buildLane(version: string, active: readonly StoredInstance[], localNodeId: NodeId, selection: Selection, otherVersion: string | undefined): Lane {
    const candidates = active.map((instance) => this.buildCandidate(instance, localNodeId, selection, otherVersion));
    const local = candidates.filter((c) => c.primary.local);
    const remote = candidates.filter((c) => !c.primary.local);
    const preferred = local.length > 0 ? local : remote;
    // Carry the round-robin position over a rebuild so that instance churn does not send the
    // next calls back to the first instance.
    const previous = this.view?.lanes.find((l) => l.version === version)?.cursor ?? 0;
    const cursor = preferred.length === 0 ? 0 : previous % preferred.length;
    assert(cursor >= 0 && cursor < Math.max(1, preferred.length), 'lane cursor out of range');
    return { version, local, remote, preferred, cursor };
  }

  private buildCandidate(instance: StoredInstance, localNodeId: NodeId, selection: Selection, otherVersion: string | undefined): Candidate {
    const routed = instance.routed;
    const primary: RouteOk = { ok: true, base: this.base, version: routed.version, intendedVersion: routed.version, selection, fallback: false, local: routed.nodeId === localNodeId, instance: routed };
    const fallback: RouteOk | undefined = otherVersion === undefined ? undefined : { ...primary, intendedVersion: otherVersion, selection: 'fallback', fallback: true };
    return { primary, fallback };
  }

  private noActive(what: string): RouteFailure {
    return { ok: false, code: 'NO_ACTIVE_INSTANCE', base: this.base, message: `no ACTIVE instance of ${this.base} (${what})` };
  }

  /** Status for debugging: see `ArtifactSnapshot`. */
  snapshot(): ArtifactSnapshot {
    const routing = this.routing;
    const versions = new Map<string, SemVer>();
    if (routing !== undefined) for (const v of [routing.newVersion, routing.oldVersion]) versions.set(v.text, v);
    for (const instance of this.instances.values()) versions.set(instance.semver.text, instance.semver);
    const sorted = [...versions.values()].sort(byVersionDescending);
    return {
      base: this.base,
      routing: routing === undefined ? undefined : { updateId: routing.updateId, newVersion: routing.newVersion.text, oldVersion: routing.oldVersion.text, newWeight: routing.newWeight, oldWeight: routing.oldWeight, period: this.selector?.period ?? 0 },
      versions: sorted.map((v) => this.versionSnapshot(v.text)),
      fallbacks: this.fallbacks,
      highestVersionChoices: this.highestVersionChoices,
    };
  }

  private versionSnapshot(version: string): VersionSnapshot {
    const routing = this.routing;
    const weight = routing === undefined ? undefined : routing.newVersion.text === version ? routing.newWeight : routing.oldVersion.text === version ? routing.oldWeight : undefined;
    const counts = Object.fromEntries(INSTANCE_STATES.map((s) => [s, 0])) as Record<InstanceState, number>;
    const instances = [...this.instances.values()].filter((i) => i.semver.text === version).sort(byKey);
    for (const instance of instances) counts[instance.state]++;
    const list = instances.map(({ routed, state }) => ({ key: routed.key, instanceId: routed.instanceId, nodeId: routed.nodeId, address: routed.address, state }));
    return { version, weight, counts, instances: list };
  }
}

function firstOther(list: readonly Candidate[], start: number, excludedKey: string): Candidate | undefined {
  for (let i = 0; i < list.length; i++) {
    const candidate = list[(start + i) % list.length]!;
    if (candidate.primary.instance.key !== excludedKey) return candidate;
  }
  return undefined;
}
