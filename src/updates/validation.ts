/**
 * Validation before deploy (issue 5 item 2): what must hold for an update of `base` from
 * `oldVersion` to `newVersion` to start deploying. Each failed check is a `Blocker` with a stable
 * code and a message naming what blocked it:
 *
 * - UPDATE_ACTIVE (ALREADY_EXISTS): another update of the artifact is not finished; the message
 *   names its id. One active update per artifact is also enforced atomically at Start by the
 *   `active-update/{base}` key (see `release.ts`); this check catches records written otherwise.
 * - NOT_DEPLOYED (NOT_FOUND): the artifact runs no version, or the old version has no blueprint.
 * - VERSION_CHANGED: the version serving now is not the one the update was started from.
 * - SAME_VERSION: the new version is the one serving now.
 * - ARTIFACT_NOT_FOUND (NOT_FOUND): the new version is not published; ARTIFACT_CORRUPT when its
 *   metadata cannot be read; ARTIFACT_MISMATCH when it belongs to another artifact.
 * - INCOMPATIBLE_VERSION: the two versions may not run side by side. During every strategy but
 *   RECREATE both serve calls at once, so the higher version's `minCompatibleVersion` (from its
 *   manifest) must admit the lower one: for an upgrade, the new version's must admit the old one;
 *   for a downgrade (a rollback to an older revision), the old version's must admit the new one.
 *   RECREATE never runs both (the old set stops before the new one gets calls), so it is the way
 *   across an incompatible pair and skips this check.
 * - INSUFFICIENT_CAPACITY: the live nodes have no room for the new instances next to the old ones
 *   (`placementCapacity` with the node limits; for RECREATE the old set's room counts, since it
 *   stops first).
 * All but the two NOT_FOUND codes and ALREADY_EXISTS are FAILED_PRECONDITION in the status table.
 *
 * `validateUpdate` is pure: the caller gathers the view (the controller from its KV mirror, the
 * API from reads) and looks the artifacts up with `lookupArtifact`. The controller feeds the
 * outcome to `nextStep` as `facts.validation` (`toValidationOutcome`); the API refuses a Start
 * with `UpdateValidationError`, whose code is the first blocker's and whose message lists all.
 */
import { parseRoutingRecord } from '../invoker/records.ts';
import type { ClusterPort } from '../node/cluster-port.ts';
import { getArtifactMeta, type ArtifactMeta } from '../slices/artifact-store.ts';
import { parseBlueprint, type BlueprintRecord } from '../slices/blueprints.ts';
import { blueprintKey, compareSemVer, parseBlueprintKey, parseSemVer, type ArtifactBase } from '../slices/keys.ts';
import { placementCapacity, type PlacementMember } from '../slices/placement.ts';
import { CutoverError } from '../util/errors.ts';
import type { ValidationOutcome } from './decide.ts';
import { resolveTarget } from './plan.ts';
import { parseActiveUpdate, type StoredEntry } from './release.ts';
import type { Strategy } from './request.ts';

/** One reason an update may not deploy. */
export interface Blocker {
  readonly code: string;
  readonly message: string;
}

/** The update being validated. */
export interface ValidationSubject {
  readonly id: string;
  readonly base: ArtifactBase;
  readonly oldVersion: string;
  readonly newVersion: string;
  readonly strategy: Strategy;
  /** From the request; null = as many as the old version's blueprint. */
  readonly requestedInstances: number | null;
}

/** A published version's metadata, as looked up. */
export type ArtifactLookup = { readonly kind: 'found'; readonly meta: ArtifactMeta } | { readonly kind: 'missing' } | { readonly kind: 'corrupt'; readonly reason: string };

/** What validation reads from the store, consistent at one revision (or newer). */
export interface ValidationView {
  /** Every `blueprint/` entry (capacity needs the other artifacts' too). */
  readonly blueprints: readonly StoredEntry[];
  /** Every `assignment/` entry. */
  readonly assignments: readonly StoredEntry[];
  /** Every `instance/` key. */
  readonly instanceKeys: readonly string[];
  /** The artifact's `version-routing/` value, if any. */
  readonly routingValue: string | undefined;
  /** The artifact's `active-update/` value, if any. */
  readonly activeUpdateValue: string | undefined;
  /** The leader's view of the members; undefined skips the capacity check (not the leader). */
  readonly members: readonly PlacementMember[] | undefined;
  readonly nodeDownAfterMs: number;
  readonly nodeInstancesMax: number;
  readonly newArtifact: ArtifactLookup;
  readonly oldArtifact: ArtifactLookup;
}

export type ValidationResult = { readonly ok: true; readonly oldBlueprint: BlueprintRecord; readonly target: number } | { readonly ok: false; readonly blockers: readonly Blocker[] };

/** The version an artifact serves now, or why there is none to name. */
export type CurrentVersion = { readonly ok: true; readonly version: string } | { readonly ok: false; readonly reason: string };

/** A refused Start: the first blocker's code, every blocker in the message and in `blockers`. */
export class UpdateValidationError extends CutoverError {
  override readonly name = 'UpdateValidationError';
  readonly blockers: readonly Blocker[];

  constructor(subject: { readonly base: string; readonly oldVersion?: string; readonly newVersion: string }, blockers: readonly Blocker[]) {
    const first = blockers[0];
    const from = subject.oldVersion === undefined ? '' : ` from ${subject.oldVersion}`;
    super(first?.code ?? 'VALIDATION_FAILED', `update of ${subject.base}${from} to ${subject.newVersion} blocked: ${blockers.map((b) => `[${b.code}] ${b.message}`).join('; ')}`);
    this.blockers = blockers;
  }
}

/** The blueprints of `base`, by version (readable ones only). */
export function artifactBlueprints(base: ArtifactBase, blueprints: readonly StoredEntry[]): Map<string, BlueprintRecord> {
  const out = new Map<string, BlueprintRecord>();
  for (const entry of blueprints) {
    const key = parseBlueprintKey(entry.key);
    const parsed = parseBlueprint(entry.value);
    if (key !== undefined && key.base === base && parsed.ok) out.set(key.version.text, parsed.value);
  }
  return out;
}

/**
 * The version `base` serves now: the one its routing record sends every call to, when that
 * version has a blueprint (a finished update, whatever the cleanup policy left running); else the
 * only version with a blueprint.
 */
export function currentVersion(base: ArtifactBase, blueprints: readonly StoredEntry[], routingValue: string | undefined): CurrentVersion {
  const deployed = artifactBlueprints(base, blueprints);
  const routing = routingValue === undefined ? undefined : parseRoutingRecord(routingValue);
  if (routing?.ok === true) {
    const r = routing.value;
    if (r.oldWeight === 0 && deployed.has(r.newVersion.text)) return { ok: true, version: r.newVersion.text };
    if (r.newWeight === 0 && deployed.has(r.oldVersion.text)) return { ok: true, version: r.oldVersion.text };
  }
  const versions = [...deployed.keys()];
  if (versions.length === 1) return { ok: true, version: versions[0]! };
  if (versions.length === 0) return { ok: false, reason: `${base} runs no version; deploy one first (Slices.Deploy)` };
  return { ok: false, reason: `${base} runs ${versions.join(', ')} and its routing names no single one of them` };
}

/** Looks up a version's metadata; a corrupt value is an answer, not an exception. */
export async function lookupArtifact(port: ClusterPort, base: ArtifactBase, version: string): Promise<ArtifactLookup> {
  try {
    const meta = await getArtifactMeta(port, base, version);
    return meta === undefined ? { kind: 'missing' } : { kind: 'found', meta };
  } catch (error) {
    if (error instanceof CutoverError && error.code === 'ARTIFACT_CORRUPT') return { kind: 'corrupt', reason: error.message };
    throw error;
  }
}

/** Checks `subject` against `view`; every failed check is a blocker (see the module comment). */
export function validateUpdate(subject: ValidationSubject, view: ValidationView): ValidationResult {
  const blockers: Blocker[] = [];
  const block = (code: string, message: string): void => {
    blockers.push({ code, message });
  };
  const { base, oldVersion, newVersion } = subject;
  const active = view.activeUpdateValue === undefined ? undefined : parseActiveUpdate(view.activeUpdateValue);
  if (active?.ok === true && active.value.updateId !== subject.id) block('UPDATE_ACTIVE', `update ${active.value.updateId} of ${base} is not finished; one update per artifact at a time`);

  const current = currentVersion(base, view.blueprints, view.routingValue);
  if (!current.ok) block('NOT_DEPLOYED', current.reason);
  else if (current.version === newVersion) block('SAME_VERSION', `${base} already serves ${newVersion}`);
  else if (current.version !== oldVersion) block('VERSION_CHANGED', `${base} serves ${current.version} now; the update was started from ${oldVersion}`);

  const artifact = view.newArtifact;
  if (artifact.kind === 'missing') block('ARTIFACT_NOT_FOUND', `${base}:${newVersion} is not published; publish it first`);
  else if (artifact.kind === 'corrupt') block('ARTIFACT_CORRUPT', artifact.reason);
  else if (`${artifact.meta.groupId}:${artifact.meta.artifactId}` !== base) block('ARTIFACT_MISMATCH', `${newVersion} was published as ${artifact.meta.groupId}:${artifact.meta.artifactId}, not ${base}`);

  const deployed = artifactBlueprints(base, view.blueprints);
  const oldBlueprint = deployed.get(oldVersion);
  if (oldBlueprint === undefined && current.ok) block('NOT_DEPLOYED', `${base}:${oldVersion} has no blueprint`);

  if (subject.strategy !== 'RECREATE') {
    const incompatible = compatibilityProblem(oldVersion, newVersion, view.oldArtifact, artifact);
    if (incompatible !== undefined) block('INCOMPATIBLE_VERSION', incompatible);
  }
  if (oldBlueprint !== undefined) {
    const target = resolveTarget(subject.requestedInstances, oldBlueprint);
    const short = capacityProblem(subject, view, oldBlueprint, target, deployed.get(newVersion));
    if (short !== undefined) block('INSUFFICIENT_CAPACITY', short);
    if (blockers.length === 0) return { ok: true, oldBlueprint, target };
  }
  return { ok: false, blockers };
}

/**
 * Why `oldVersion` and `newVersion` may not run side by side, or undefined: the higher version's
 * `minCompatibleVersion` must admit the lower one. An unpublished or unreadable manifest states
 * no constraint here (an unpublished new version is its own blocker).
 */
export function compatibilityProblem(oldVersion: string, newVersion: string, oldArtifact: ArtifactLookup, newArtifact: ArtifactLookup): string | undefined {
  const [older, newer] = [parseSemVer(oldVersion), parseSemVer(newVersion)];
  if (older === undefined || newer === undefined) return undefined;
  const upgrade = compareSemVer(newer, older) >= 0;
  const higher = upgrade ? newArtifact : oldArtifact;
  const lower = upgrade ? older : newer;
  const min = higher.kind === 'found' ? higher.meta.manifest.minCompatibleVersion : undefined;
  const minVersion = min === undefined ? undefined : parseSemVer(min);
  if (minVersion === undefined || compareSemVer(lower, minVersion) >= 0) return undefined;
  const higherText = upgrade ? newVersion : oldVersion;
  return `${higherText} may only run beside ${min} or later (its minCompatibleVersion), and ${lower.text} is older: ${upgrade ? 'upgrade through an intermediate version first' : 'roll back to a version it admits'}, or use strategy RECREATE, which never runs both`;
}

function capacityProblem(subject: ValidationSubject, view: ValidationView, oldBlueprint: BlueprintRecord, target: number, existing: BlueprintRecord | undefined): string | undefined {
  const needed = target - (existing?.instances ?? 0);
  if (needed <= 0 || view.members === undefined) return undefined;
  const oldKey = blueprintKey(subject.base, subject.oldVersion);
  // RECREATE stops the old set before the new one starts: plan as if its blueprint were at 0.
  const blueprints = subject.strategy === 'RECREATE' ? view.blueprints.map((e) => (e.key === oldKey ? { key: e.key, value: JSON.stringify({ ...oldBlueprint, instances: 0 }) } : e)) : view.blueprints;
  const room = placementCapacity(
    { blueprints, assignments: view.assignments, instanceKeys: view.instanceKeys, members: view.members, nodeDownAfterMs: view.nodeDownAfterMs, nodeInstancesMax: view.nodeInstancesMax },
    { base: subject.base, version: subject.newVersion, ...(oldBlueprint.perNodeMax === undefined ? {} : { perNodeMax: oldBlueprint.perNodeMax }) },
  );
  if (room >= needed) return undefined;
  const perNode = oldBlueprint.perNodeMax === undefined ? '' : `, at most ${oldBlueprint.perNodeMax} per node`;
  return `${subject.newVersion} needs ${needed} more instance(s) and the live nodes have room for ${room} (at most ${view.nodeInstancesMax} instances per node${perNode})`;
}

/** The outcome `nextStep` reads in VALIDATING; blockers as `[CODE] message`. */
export function toValidationOutcome(result: ValidationResult): ValidationOutcome {
  return result.ok ? { ok: true, oldBlueprint: result.oldBlueprint } : { ok: false, blockers: result.blockers.map((b) => `[${b.code}] ${b.message}`) };
}
