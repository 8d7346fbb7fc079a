/**
 * The values under `blueprint/` (what an operator wants running) and `assignment/` (where the
 * leader placed each instance), as JSON records.
 *
 * As in `invoker/records.ts`, stored values are data another node or an older version wrote: the
 * `parse…` functions never throw, they return the value or the reason it was refused, and accept
 * unknown extra fields so that a newer writer can add some. User input goes through
 * `requireBlueprint`, which throws INVALID_ARGUMENT naming the field.
 */
import { parseJsonObject, refuse, type Parsed } from '../util/parsed.ts';
import { InvalidArgumentError } from '../util/errors.ts';
import { nodeId as toNodeId, type NodeId } from '../util/ids.ts';
import { COORDINATE_PART_LENGTH_MAX, parseArtifactBase, parseSemVer, type ArtifactBase } from './keys.ts';

export type { Parsed } from '../util/parsed.ts';

/** Most instances one blueprint may ask for. */
export const INSTANCES_MAX = 1000;

/** `blueprint/{groupId}:{artifactId}/{version}`: the desired instances of one version. */
export interface BlueprintRecord {
  /** Desired instance count, an integer in [0, INSTANCES_MAX]. */
  readonly instances: number;
  /** Most instances of this version on one node, an integer in [1, INSTANCES_MAX]; unset = no limit but the node's. */
  readonly perNodeMax?: number;
}

/**
 * `assignment/{nodeId}/{groupId}:{artifactId}:{version}/{instanceId}`: one instance placed by
 * the leader. The key already names node, version and instance; the value repeats them so that a
 * value read alone is self-describing, and a value that disagrees with its key is refused.
 */
export interface AssignmentRecord {
  readonly nodeId: NodeId;
  readonly base: ArtifactBase;
  /** Canonical SemVer text. */
  readonly version: string;
  readonly instanceId: string;
  /** The Raft term of the leader that placed it. */
  readonly term: number;
  /** The placing leader's clock when it placed it, in ms (monotonic, so only meaningful to that leader). */
  readonly placedAt: number;
}

const fail = refuse;
const parseObject = parseJsonObject;

function isIntegerIn(n: unknown, low: number, high: number): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= low && n <= high;
}

// ---------------------------------------------------------------------------------------------
// Blueprints

/** Why `fields` is not a blueprint, naming the field; `undefined` when it is one. */
function blueprintProblem(fields: Record<string, unknown>): { field: string; message: string } | undefined {
  if (!isIntegerIn(fields.instances, 0, INSTANCES_MAX)) return { field: 'instances', message: `must be an integer in [0, ${INSTANCES_MAX}]` };
  if (fields.perNodeMax !== undefined && !isIntegerIn(fields.perNodeMax, 1, INSTANCES_MAX)) return { field: 'perNodeMax', message: `must be an integer in [1, ${INSTANCES_MAX}] when set` };
  return undefined;
}

function blueprintOf(fields: Record<string, unknown>): BlueprintRecord {
  const instances = fields.instances as number;
  return fields.perNodeMax === undefined ? { instances } : { instances, perNodeMax: fields.perNodeMax as number };
}

/** The stored form of a blueprint. Throws INVALID_ARGUMENT (see `requireBlueprint`) when invalid. */
export function formatBlueprint(record: BlueprintRecord): string {
  const valid = requireBlueprint(record);
  return JSON.stringify(valid);
}

/** Parses a stored `blueprint/` value; never throws. */
export function parseBlueprint(value: string): Parsed<BlueprintRecord> {
  const parsed = parseObject(value);
  if (!parsed.ok) return parsed;
  const problem = blueprintProblem(parsed.value);
  if (problem !== undefined) return fail(`${problem.field} ${problem.message}`);
  return { ok: true, value: blueprintOf(parsed.value) };
}

/**
 * Checks a blueprint given by a user or an application (`{ instances, perNodeMax? }`) and
 * returns it without extra fields. Throws INVALID_ARGUMENT naming `blueprint`, `instances` or
 * `perNodeMax`.
 */
export function requireBlueprint(input: unknown): BlueprintRecord {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw new InvalidArgumentError('blueprint', 'must be an object like { "instances": 3 }');
  const fields = input as Record<string, unknown>;
  const problem = blueprintProblem(fields);
  if (problem !== undefined) throw new InvalidArgumentError(problem.field, `${problem.message}, got ${JSON.stringify(fields[problem.field])}`);
  return blueprintOf(fields);
}

// ---------------------------------------------------------------------------------------------
// Assignments

const INSTANCE_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/** Why `record` is not a valid assignment; `undefined` when it is one. */
function assignmentProblem(record: Record<string, unknown>): string | undefined {
  const { nodeId, base, version, instanceId, term, placedAt } = record;
  if (!isIntegerIn(nodeId, 1, Number.MAX_SAFE_INTEGER)) return 'nodeId must be a positive integer';
  if (typeof base !== 'string' || parseArtifactBase(base) === undefined) return 'base must be groupId:artifactId';
  if (typeof version !== 'string' || parseSemVer(version) === undefined) return 'version must be a semantic version';
  if (typeof instanceId !== 'string' || instanceId.length > COORDINATE_PART_LENGTH_MAX || !INSTANCE_ID.test(instanceId)) return 'instanceId must be letters, digits, ".", "_" and "-", starting with a letter or digit';
  if (!isIntegerIn(term, 0, Number.MAX_SAFE_INTEGER)) return 'term must be a non-negative integer';
  if (typeof placedAt !== 'number' || !Number.isFinite(placedAt)) return 'placedAt must be a finite number';
  return undefined;
}

/** The stored form of an assignment. Throws an `InvalidArgumentError` naming `assignment` when invalid. */
export function formatAssignment(record: AssignmentRecord): string {
  const problem = assignmentProblem(record as unknown as Record<string, unknown>);
  if (problem !== undefined) throw new InvalidArgumentError('assignment', problem);
  const { nodeId, base, version, instanceId, term, placedAt } = record;
  return JSON.stringify({ nodeId, base, version, instanceId, term, placedAt });
}

/** Parses a stored `assignment/` value; never throws. The caller checks it against its key. */
export function parseAssignment(value: string): Parsed<AssignmentRecord> {
  const parsed = parseObject(value);
  if (!parsed.ok) return parsed;
  const problem = assignmentProblem(parsed.value);
  if (problem !== undefined) return fail(problem);
  const { nodeId, base, version, instanceId, term, placedAt } = parsed.value as unknown as AssignmentRecord;
  return { ok: true, value: { nodeId: toNodeId(nodeId), base, version, instanceId, term, placedAt } };
}
