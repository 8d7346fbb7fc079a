/**
 * The KV key layout of slices (DESIGN.md "KV layout") and the artifact coordinates it is built
 * from, as pure functions: each `…Key` formatter validates its parts, each `parse…Key` reads a key
 * back or returns `undefined`.
 *
 * Two kinds of input, two kinds of answer:
 * - keys read from the replicated store (`parse…`) are data another node wrote; a malformed one
 *   returns `undefined` so that the caller can ignore and count it, never crash the node;
 * - coordinates typed by a user or passed by an application (`require…`, the formatters) throw
 *   `InvalidArgumentError` (code INVALID_ARGUMENT) naming the offending field.
 *
 * Semantic versions are parsed here by a small strict SemVer 2.0.0 parser rather than the `semver`
 * package: that package is only a transitive dev dependency, the layout needs no ranges, and a
 * strict parser (no leading "v", no loose forms) keeps keys canonical: one version, one key.
 */
import { InvalidArgumentError } from '../util/errors.ts';
import { nodeId as toNodeId, type NodeId } from '../util/ids.ts';

declare const artifactBaseBrand: unique symbol;

/**
 * `{groupId}:{artifactId}`, validated. Only `artifactBase`, `parseArtifactBase` and
 * `requireArtifactBase` make one, so holding an `ArtifactBase` means the text is well formed.
 */
export type ArtifactBase = string & { readonly [artifactBaseBrand]: 'ArtifactBase' };

/** Longest groupId, artifactId, version and instanceId accepted, in characters. */
export const COORDINATE_PART_LENGTH_MAX = 128;

export const VERSION_ROUTING_PREFIX = 'version-routing/';
export const INSTANCE_PREFIX = 'instance/';
export const BLUEPRINT_PREFIX = 'blueprint/';

// Dotted segments, like a Java package: `org.example`, `com.acme-corp.billing`.
const GROUP_ID = /^[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*$/;
// Starts with a letter or digit; never contains ':' or '/', which delimit keys.
const ARTIFACT_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const INSTANCE_ID = ARTIFACT_ID;
const NODE_ID = /^[1-9][0-9]*$/;
// The regular expression of semver.org (SemVer 2.0.0), numbered groups.
const SEMVER =
  /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$/;

// ---------------------------------------------------------------------------------------------
// Semantic versions

/** A parsed SemVer 2.0.0 version. `text` is the exact input, which is already canonical. */
export interface SemVer {
  readonly text: string;
  readonly major: number;
  readonly minor: number;
  readonly patch: number;
  /** Pre-release identifiers; numeric ones as numbers. Empty for a release. */
  readonly prerelease: readonly (string | number)[];
  /** Build metadata identifiers; ignored by precedence. */
  readonly build: readonly string[];
}

/**
 * Parses a strict SemVer 2.0.0 version (`1.2.3`, `2.1.0-bad`, `1.0.0-rc.1+build.5`). Returns
 * `undefined` for anything else, including a leading `v`, leading zeros, numbers beyond 2^53 - 1
 * and text longer than `COORDINATE_PART_LENGTH_MAX`.
 */
export function parseSemVer(text: string): SemVer | undefined {
  if (text.length > COORDINATE_PART_LENGTH_MAX) return undefined;
  const match = SEMVER.exec(text);
  if (match === null) return undefined;
  const [major, minor, patch] = [Number(match[1]), Number(match[2]), Number(match[3])];
  if (!Number.isSafeInteger(major) || !Number.isSafeInteger(minor) || !Number.isSafeInteger(patch)) return undefined;
  const prerelease = match[4] === undefined ? [] : match[4].split('.').map(prereleaseIdentifier);
  if (prerelease.some((id) => typeof id === 'number' && !Number.isSafeInteger(id))) return undefined;
  const build = match[5] === undefined ? [] : match[5].split('.');
  return { text, major, minor, patch, prerelease, build };
}

function prereleaseIdentifier(id: string): string | number {
  return /^[0-9]+$/.test(id) ? Number(id) : id;
}

/** Like `parseSemVer`, for user input: throws INVALID_ARGUMENT naming `field` when malformed. */
export function requireSemVer(text: unknown, field = 'version'): SemVer {
  const parsed = typeof text === 'string' ? parseSemVer(text) : undefined;
  if (parsed === undefined) throw new InvalidArgumentError(field, `must be a semantic version like 1.2.3 or 2.0.0-rc.1, got ${JSON.stringify(text)}`);
  return parsed;
}

/**
 * SemVer 2.0.0 precedence (§11): negative when `a` < `b`, 0 when equal, positive when greater.
 * Build metadata is ignored, so `1.0.0+a` and `1.0.0+b` compare equal; a caller that needs a total
 * order breaks the tie on `text`.
 */
export function compareSemVer(a: SemVer, b: SemVer): number {
  if (a.major !== b.major) return a.major < b.major ? -1 : 1;
  if (a.minor !== b.minor) return a.minor < b.minor ? -1 : 1;
  if (a.patch !== b.patch) return a.patch < b.patch ? -1 : 1;
  return comparePrerelease(a.prerelease, b.prerelease);
}

function comparePrerelease(a: readonly (string | number)[], b: readonly (string | number)[]): number {
  // A release ranks above any of its pre-releases.
  if (a.length === 0 || b.length === 0) return b.length - a.length;
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const order = compareIdentifier(a[i]!, b[i]!);
    if (order !== 0) return order;
  }
  return a.length - b.length;
}

function compareIdentifier(a: string | number, b: string | number): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  // Numeric identifiers rank below alphanumeric ones.
  if (typeof a === 'number') return -1;
  if (typeof b === 'number') return 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------
// Artifact coordinates

/** `groupId:artifactId:version`, parsed. */
export interface ArtifactCoordinates {
  readonly groupId: string;
  readonly artifactId: string;
  readonly version: SemVer;
  readonly base: ArtifactBase;
}

function isPart(text: string, pattern: RegExp): boolean {
  return text.length <= COORDINATE_PART_LENGTH_MAX && pattern.test(text);
}

/** Makes `groupId:artifactId`; throws INVALID_ARGUMENT naming `groupId` or `artifactId`. */
export function artifactBase(groupId: string, artifactId: string): ArtifactBase {
  if (!isPart(groupId, GROUP_ID)) throw new InvalidArgumentError('groupId', `must be dotted segments of letters, digits, '_' and '-' (at most ${COORDINATE_PART_LENGTH_MAX} characters), got ${JSON.stringify(groupId)}`);
  if (!isPart(artifactId, ARTIFACT_ID)) throw new InvalidArgumentError('artifactId', `must be letters, digits, '.', '_' and '-', starting with a letter or digit (at most ${COORDINATE_PART_LENGTH_MAX} characters), got ${JSON.stringify(artifactId)}`);
  return `${groupId}:${artifactId}` as ArtifactBase;
}

/** Reads `groupId:artifactId`; `undefined` when malformed. */
export function parseArtifactBase(text: string): ArtifactBase | undefined {
  const colon = text.indexOf(':');
  if (colon < 0) return undefined;
  const groupId = text.slice(0, colon);
  const artifactId = text.slice(colon + 1);
  return isPart(groupId, GROUP_ID) && isPart(artifactId, ARTIFACT_ID) ? (text as ArtifactBase) : undefined;
}

/** Like `parseArtifactBase`, for user input: throws INVALID_ARGUMENT naming `field`. */
export function requireArtifactBase(text: unknown, field = 'artifact'): ArtifactBase {
  const base = typeof text === 'string' ? parseArtifactBase(text) : undefined;
  if (base === undefined) throw new InvalidArgumentError(field, `must be groupId:artifactId like org.example:greeter, got ${JSON.stringify(text)}`);
  return base;
}

/** The two halves of a base. */
export function splitArtifactBase(base: ArtifactBase): { readonly groupId: string; readonly artifactId: string } {
  const colon = base.indexOf(':');
  return { groupId: base.slice(0, colon), artifactId: base.slice(colon + 1) };
}

/** Reads `groupId:artifactId:version`; `undefined` when malformed. */
export function parseCoordinates(text: string): ArtifactCoordinates | undefined {
  const first = text.indexOf(':');
  const second = first < 0 ? -1 : text.indexOf(':', first + 1);
  if (second < 0) return undefined;
  const base = parseArtifactBase(text.slice(0, second));
  const version = parseSemVer(text.slice(second + 1));
  if (base === undefined || version === undefined) return undefined;
  return { ...splitArtifactBase(base), version, base };
}

/** Like `parseCoordinates`, for user input: throws INVALID_ARGUMENT naming `field`. */
export function requireCoordinates(text: unknown, field = 'coordinates'): ArtifactCoordinates {
  const parsed = typeof text === 'string' ? parseCoordinates(text) : undefined;
  if (parsed === undefined) throw new InvalidArgumentError(field, `must be groupId:artifactId:version like org.example:greeter:1.0.0, got ${JSON.stringify(text)}`);
  return parsed;
}

/** `groupId:artifactId:version`; throws INVALID_ARGUMENT naming `version` when it is not SemVer. */
export function formatCoordinates(base: ArtifactBase, version: string): string {
  return `${base}:${requireSemVer(version).text}`;
}

// ---------------------------------------------------------------------------------------------
// Keys

/** `version-routing/{groupId}:{artifactId}`: the weights between an artifact's versions. */
export function versionRoutingKey(base: ArtifactBase): string {
  return VERSION_ROUTING_PREFIX + base;
}

/** The base of a `version-routing/` key; `undefined` when the key is not one. */
export function parseVersionRoutingKey(key: string): ArtifactBase | undefined {
  if (!key.startsWith(VERSION_ROUTING_PREFIX)) return undefined;
  return parseArtifactBase(key.slice(VERSION_ROUTING_PREFIX.length));
}

/** `blueprint/{groupId}:{artifactId}/{version}`; throws INVALID_ARGUMENT naming `version`. */
export function blueprintKey(base: ArtifactBase, version: string): string {
  return `${BLUEPRINT_PREFIX}${base}/${requireSemVer(version).text}`;
}

/** The parts of a `blueprint/` key; `undefined` when the key is not one. */
export function parseBlueprintKey(key: string): { readonly base: ArtifactBase; readonly version: SemVer } | undefined {
  if (!key.startsWith(BLUEPRINT_PREFIX)) return undefined;
  return parseBaseSlashVersion(key.slice(BLUEPRINT_PREFIX.length));
}

/** The parts of an `instance/` key. */
export interface InstanceKeyParts {
  readonly nodeId: NodeId;
  readonly base: ArtifactBase;
  readonly version: SemVer;
  readonly instanceId: string;
}

/** `instance/{nodeId}/`: every instance that node reports. Throws INVALID_ARGUMENT naming `nodeId`. */
export function instanceNodePrefix(node: NodeId): string {
  if (!Number.isSafeInteger(node) || node <= 0) throw new InvalidArgumentError('nodeId', `must be a positive integer, got ${String(node)}`);
  return `${INSTANCE_PREFIX}${node}/`;
}

/**
 * `instance/{nodeId}/{groupId}:{artifactId}:{version}/{instanceId}`. Throws INVALID_ARGUMENT
 * naming `nodeId`, `version` or `instanceId` when one is malformed.
 */
export function instanceKey(node: NodeId, base: ArtifactBase, version: string, instanceId: string): string {
  const prefix = instanceNodePrefix(node);
  const semver = requireSemVer(version);
  if (!isPart(instanceId, INSTANCE_ID)) throw new InvalidArgumentError('instanceId', `must be letters, digits, '.', '_' and '-', starting with a letter or digit (at most ${COORDINATE_PART_LENGTH_MAX} characters), got ${JSON.stringify(instanceId)}`);
  return `${prefix}${base}:${semver.text}/${instanceId}`;
}

/** The parts of an `instance/` key; `undefined` when the key is not one. */
export function parseInstanceKey(key: string): InstanceKeyParts | undefined {
  if (!key.startsWith(INSTANCE_PREFIX)) return undefined;
  const parts = key.slice(INSTANCE_PREFIX.length).split('/');
  if (parts.length !== 3) return undefined;
  const [nodeText, coordinatesText, instanceId] = parts as [string, string, string];
  if (!isPart(nodeText, NODE_ID) || !isPart(instanceId, INSTANCE_ID)) return undefined;
  const node = Number(nodeText);
  const coordinates = parseCoordinates(coordinatesText);
  if (!Number.isSafeInteger(node) || coordinates === undefined) return undefined;
  return { nodeId: toNodeId(node), base: coordinates.base, version: coordinates.version, instanceId };
}

// ---------------------------------------------------------------------------------------------
// Artifacts and assignments

export const ARTIFACT_PREFIX = 'artifact/';
export const ARTIFACT_CHUNK_PREFIX = 'artifact-chunk/';
export const ASSIGNMENT_PREFIX = 'assignment/';

/** Digits of a chunk index in its key, so that keys sort in chunk order. */
const CHUNK_INDEX_DIGITS = 6;
/** Most chunks one artifact may have (the index must fit its digits). */
export const ARTIFACT_CHUNKS_MAX = 10 ** CHUNK_INDEX_DIGITS;

/** `artifact/{groupId}:{artifactId}/{version}`: a published artifact's metadata (written last). */
export function artifactKey(base: ArtifactBase, version: string): string {
  return `${ARTIFACT_PREFIX}${base}/${requireSemVer(version).text}`;
}

/** `artifact/{groupId}:{artifactId}/`: every published version of an artifact. */
export function artifactVersionsPrefix(base: ArtifactBase): string {
  return `${ARTIFACT_PREFIX}${base}/`;
}

/** The parts of an `artifact/` key; `undefined` when the key is not one. */
export function parseArtifactKey(key: string): { readonly base: ArtifactBase; readonly version: SemVer } | undefined {
  if (!key.startsWith(ARTIFACT_PREFIX)) return undefined;
  return parseBaseSlashVersion(key.slice(ARTIFACT_PREFIX.length));
}

/** `artifact-chunk/{groupId}:{artifactId}/{version}/`: the chunks of one artifact version. */
export function artifactChunkPrefix(base: ArtifactBase, version: string): string {
  return `${ARTIFACT_CHUNK_PREFIX}${base}/${requireSemVer(version).text}/`;
}

/** `artifact-chunk/{groupId}:{artifactId}/{version}/{index}`, the index zero-padded to sort. */
export function artifactChunkKey(base: ArtifactBase, version: string, index: number): string {
  if (!Number.isSafeInteger(index) || index < 0 || index >= ARTIFACT_CHUNKS_MAX) throw new InvalidArgumentError('chunkIndex', `must be an integer in [0, ${ARTIFACT_CHUNKS_MAX}), got ${String(index)}`);
  return artifactChunkPrefix(base, version) + String(index).padStart(CHUNK_INDEX_DIGITS, '0');
}

function parseBaseSlashVersion(rest: string): { readonly base: ArtifactBase; readonly version: SemVer } | undefined {
  const slash = rest.indexOf('/');
  if (slash < 0) return undefined;
  const base = parseArtifactBase(rest.slice(0, slash));
  const version = parseSemVer(rest.slice(slash + 1));
  return base === undefined || version === undefined ? undefined : { base, version };
}

/** `assignment/{nodeId}/`: every instance the leader assigned to that node. */
export function assignmentNodePrefix(node: NodeId): string {
  return ASSIGNMENT_PREFIX + instanceNodePrefix(node).slice(INSTANCE_PREFIX.length);
}

/**
 * `assignment/{nodeId}/{groupId}:{artifactId}:{version}/{instanceId}`: the leader's placement of
 * one instance; the node reports the instance under the `instance/` key with the same suffix.
 */
export function assignmentKey(node: NodeId, base: ArtifactBase, version: string, instanceId: string): string {
  return ASSIGNMENT_PREFIX + instanceKey(node, base, version, instanceId).slice(INSTANCE_PREFIX.length);
}

/** The parts of an `assignment/` key; `undefined` when the key is not one. */
export function parseAssignmentKey(key: string): InstanceKeyParts | undefined {
  if (!key.startsWith(ASSIGNMENT_PREFIX)) return undefined;
  return parseInstanceKey(INSTANCE_PREFIX + key.slice(ASSIGNMENT_PREFIX.length));
}

/** The `instance/` key that reports the instance an `assignment/` key places (same suffix). */
export function instanceKeyOfAssignment(assignment: string): string {
  if (!assignment.startsWith(ASSIGNMENT_PREFIX)) throw new InvalidArgumentError('key', `not an assignment key: ${JSON.stringify(assignment)}`);
  return INSTANCE_PREFIX + assignment.slice(ASSIGNMENT_PREFIX.length);
}
