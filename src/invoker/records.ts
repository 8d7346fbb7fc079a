/**
 * The values under `version-routing/` and `instance/` as the invoker reads them. Both are written
 * by other nodes (the leader's update controller, each node's instance lifecycle), so a bad value
 * is data, not a bug here: the parsers return a reason instead of throwing, and the routing table
 * ignores and counts the value. Unknown extra fields are accepted, so that a newer writer can add
 * fields without older readers dropping its records.
 */
import { parseSemVer, type SemVer } from '../slices/keys.ts';
import type { NodeId } from '../util/ids.ts';
import { parseJsonObject, refuse, type Parsed } from '../util/parsed.ts';
import { WEIGHT_MAX } from './weighted.ts';

export type { Parsed } from '../util/parsed.ts';

/** `version-routing/{groupId}:{artifactId}`: how an artifact's calls split between two versions. */
export interface RoutingRecord {
  readonly updateId: string;
  readonly oldVersion: SemVer;
  readonly newVersion: SemVer;
  /** Integer in [0, WEIGHT_MAX]; with `oldWeight`, at least one is positive. */
  readonly newWeight: number;
  readonly oldWeight: number;
}

/**
 * The lifecycle states an instance reports (issue 4, item 2). Only ACTIVE serves calls. UNHEALTHY
 * is an instance that was ACTIVE and now fails its declared health checks (issue 7): it is still
 * placed, but out of routing until its checks pass again.
 */
export const INSTANCE_STATES = ['STARTING', 'HEALTH_CHECKING', 'ACTIVE', 'UNHEALTHY', 'DRAINING', 'STOPPED', 'FAILED'] as const;
export type InstanceState = (typeof INSTANCE_STATES)[number];

/** Longest address accepted in an instance record, in characters. */
export const ADDRESS_LENGTH_MAX = 512;

/** The fields of an `instance/…` value that routing needs. */
export interface InstanceRecord {
  readonly state: InstanceState;
  readonly nodeId: NodeId;
  /** Where the hosting node serves remote invokes (`host:port`). */
  readonly address: string;
}

const fail = refuse;
const parseObject = parseJsonObject;

function isWeight(weight: unknown): weight is number {
  return typeof weight === 'number' && Number.isSafeInteger(weight) && weight >= 0 && weight <= WEIGHT_MAX;
}

function parseVersionField(json: Record<string, unknown>, field: string): SemVer | undefined {
  const text = json[field];
  return typeof text === 'string' ? parseSemVer(text) : undefined;
}

/** Parses a `version-routing/` value: `{ updateId, oldVersion, newVersion, newWeight, oldWeight }`. */
export function parseRoutingRecord(value: string): Parsed<RoutingRecord> {
  const parsed = parseObject(value);
  if (!parsed.ok) return parsed;
  const json = parsed.value;
  const { updateId, newWeight, oldWeight } = json;
  if (typeof updateId !== 'string' || updateId.length === 0) return fail('updateId must be a non-empty string');
  const newVersion = parseVersionField(json, 'newVersion');
  const oldVersion = parseVersionField(json, 'oldVersion');
  if (newVersion === undefined) return fail('newVersion must be a semantic version');
  if (oldVersion === undefined) return fail('oldVersion must be a semantic version');
  if (!isWeight(newWeight)) return fail(`newWeight must be an integer in [0, ${WEIGHT_MAX}]`);
  if (!isWeight(oldWeight)) return fail(`oldWeight must be an integer in [0, ${WEIGHT_MAX}]`);
  if (newWeight + oldWeight === 0) return fail('newWeight and oldWeight must not both be 0');
  return { ok: true, value: { updateId, oldVersion, newVersion, newWeight, oldWeight } };
}

/**
 * Parses an `instance/{nodeId}/…` value: `{ state, nodeId, address, … }`. `keyNodeId` is the node
 * named in the key; a value naming another node is refused, since one of the two is wrong and
 * routing to either could reach the wrong host.
 */
export function parseInstanceRecord(value: string, keyNodeId: NodeId): Parsed<InstanceRecord> {
  const parsed = parseObject(value);
  if (!parsed.ok) return parsed;
  const { state, nodeId, address } = parsed.value;
  if (typeof state !== 'string' || !(INSTANCE_STATES as readonly string[]).includes(state)) return fail(`state must be one of ${INSTANCE_STATES.join(', ')}`);
  if (nodeId !== keyNodeId) return fail(`nodeId must equal the node of the key (${keyNodeId})`);
  if (typeof address !== 'string' || address.length === 0 || address.length > ADDRESS_LENGTH_MAX) return fail(`address must be a non-empty string of at most ${ADDRESS_LENGTH_MAX} characters`);
  return { ok: true, value: { state: state as InstanceState, nodeId: keyNodeId, address } };
}
