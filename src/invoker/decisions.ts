/**
 * What a routing decision looks like to the caller. Successful decisions are built once per
 * instance when the routing table's view of an artifact changes and then handed out by reference,
 * so that routing a call allocates nothing; treat them as immutable.
 */
import type { ArtifactBase } from '../slices/keys.ts';
import type { NodeId } from '../util/ids.ts';

/**
 * Why a version was chosen:
 * - `weighted`: smooth weighted round-robin over the routing record picked it;
 * - `fallback`: the weights picked the other version, which had no ACTIVE instance;
 * - `only-version`: no routing record, and this is the only version with an ACTIVE instance;
 * - `highest-version`: no routing record and several versions have ACTIVE instances, so the
 *   highest by SemVer precedence serves (an anomaly: counted, see the table's snapshot).
 */
export type Selection = 'weighted' | 'fallback' | 'only-version' | 'highest-version';

/** An ACTIVE instance as routing sees it. */
export interface RoutedInstance {
  /** Its `instance/…` key: unique in the cluster. */
  readonly key: string;
  readonly instanceId: string;
  readonly nodeId: NodeId;
  /** Where its node serves remote invokes. */
  readonly address: string;
  readonly version: string;
}

/** A call's destination. */
export interface RouteOk {
  readonly ok: true;
  readonly base: ArtifactBase;
  /** The version that serves the call (`instance.version`). */
  readonly version: string;
  /** The version the weights picked; differs from `version` only when `fallback`. */
  readonly intendedVersion: string;
  readonly selection: Selection;
  /** True when the weights picked a version without an ACTIVE instance; the caller records it. */
  readonly fallback: boolean;
  /** True when the instance runs on the node that asked (a direct function call). */
  readonly local: boolean;
  readonly instance: RoutedInstance;
}

/**
 * - `UNKNOWN_SLICE`: the table knows no routing record and no instance of the artifact;
 * - `NO_ACTIVE_INSTANCE`: it does, but no version it may route to has an ACTIVE instance.
 */
export type RouteFailureCode = 'UNKNOWN_SLICE' | 'NO_ACTIVE_INSTANCE';

/** No destination. Never thrown: routing is on every call, and the caller decides what to do. */
export interface RouteFailure {
  readonly ok: false;
  readonly code: RouteFailureCode;
  readonly base: ArtifactBase;
  readonly message: string;
}

export type RouteDecision = RouteOk | RouteFailure;
