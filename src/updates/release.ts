/**
 * Release history (issue 5 item 4, Helm-like) and the one-active-update-per-artifact guard.
 *
 * KV layout (DESIGN "KV layout"):
 * - `release/{groupId}:{artifactId}/{revision}`: one finished update (COMPLETED, ROLLED_BACK,
 *   FAILED or CANCELLED) as a revision of the artifact: the version it rolled out, the version it
 *   started from, its settings (the start-request fields, so that a rollback to it can repeat
 *   them), its final status, timestamps, who started it and why it ended. The revision is written
 *   zero-padded to REVISION_DIGITS digits in the key so that keys sort by revision; the value holds
 *   it as a number. Revisions start at 1 and only grow: a rollback to revision N starts a new update,
 *   which makes a new revision when it finishes; history is never rewritten.
 * - `active-update/{groupId}:{artifactId}`: names the update that is not terminal yet. Start
 *   creates it in the same transaction as the record, guarded by "absent" (or by the modRevision of
 *   a stale one whose update is terminal or gone), so two concurrent Starts cannot both succeed.
 *   The transaction that moves the update to a terminal state deletes it and writes the release,
 *   guarded by the key's modRevision and by "release key absent" (`terminalTxnParts`).
 *
 * The release is written by the same transaction as the terminal transition (the controller's
 * step, or the Cancel command), so a finished update without its revision never exists.
 *
 * Statistics per artifact follow MATIH's ExecutionStatistics: total (every finished update,
 * cancelled ones included), successful (COMPLETED), failed (FAILED or ROLLED_BACK), the success
 * rate as a percentage of the total, and the average duration from start to finish.
 *
 * Stored values are data: `parseRelease` and `parseActiveUpdate` never throw.
 */
import type { Compare, Operation } from '../kv/types.ts';
import { parseArtifactBase, parseSemVer, type ArtifactBase } from '../slices/keys.ts';
import { CutoverError, InvalidArgumentError } from '../util/errors.ts';
import { parseJsonObject, refuse, type Parsed } from '../util/parsed.ts';
import { isTerminal, type UpdateRecord, type UpdateState } from './record.ts';

export const RELEASE_PREFIX = 'release/';
export const ACTIVE_UPDATE_PREFIX = 'active-update/';
/** Digits of a revision in its key. */
export const REVISION_DIGITS = 10;
/** Largest revision (what fits the key's digits). */
export const REVISION_MAX = 10 ** REVISION_DIGITS - 1;

export type ReleaseStatus = 'COMPLETED' | 'ROLLED_BACK' | 'FAILED' | 'CANCELLED';
const RELEASE_STATUSES: readonly ReleaseStatus[] = ['COMPLETED', 'ROLLED_BACK', 'FAILED', 'CANCELLED'];

/** The value of `release/{base}/{revision}`. */
export interface ReleaseRecord {
  readonly revision: number;
  readonly base: ArtifactBase;
  /** The version the update rolled out (what a rollback to this revision deploys again). */
  readonly version: string;
  /** The version that served when the update started. */
  readonly previousVersion: string;
  readonly status: ReleaseStatus;
  readonly updateId: string;
  /** Start-request fields (`parseStartRequest` names) without artifact, version and initiatedBy. */
  readonly settings: Readonly<Record<string, unknown>>;
  readonly startedAt: number;
  readonly finishedAt: number;
  readonly initiatedBy: string;
  /** Why the update ended: the reason of its last transition. */
  readonly reason: string;
  /** Set when the update was started by RollbackTo: the revision it restored. */
  readonly rollbackOfRevision: number | null;
}

/** The value of `active-update/{base}`. */
export interface ActiveUpdate {
  readonly updateId: string;
  /** Set when started by RollbackTo. */
  readonly rollbackOfRevision: number | null;
}

/** Statistics of one artifact's finished updates. */
export interface ReleaseStatistics {
  readonly base: ArtifactBase;
  readonly total: number;
  readonly successful: number;
  /** FAILED or ROLLED_BACK. */
  readonly failed: number;
  readonly cancelled: number;
  /** successful / total × 100; 0 when there is none. */
  readonly successRate: number;
  /** Mean of finishedAt − startedAt, in seconds; 0 when there is none. */
  readonly averageDurationSeconds: number;
}

/** `release/{base}/`: every revision of an artifact, in revision order. */
export function releasesPrefix(base: ArtifactBase): string {
  return `${RELEASE_PREFIX}${base}/`;
}

/** `release/{base}/{revision}`; throws INVALID_ARGUMENT naming `revision` when out of range. */
export function releaseKey(base: ArtifactBase, revision: number): string {
  if (!Number.isSafeInteger(revision) || revision < 1 || revision > REVISION_MAX) throw new InvalidArgumentError('revision', `must be an integer in [1, ${REVISION_MAX}], got ${String(revision)}`);
  return releasesPrefix(base) + String(revision).padStart(REVISION_DIGITS, '0');
}

/** The parts of a `release/` key; undefined when the key is not one. */
export function parseReleaseKey(key: string): { readonly base: ArtifactBase; readonly revision: number } | undefined {
  if (!key.startsWith(RELEASE_PREFIX)) return undefined;
  const rest = key.slice(RELEASE_PREFIX.length);
  const slash = rest.lastIndexOf('/');
  const base = slash < 0 ? undefined : parseArtifactBase(rest.slice(0, slash));
  const digits = rest.slice(slash + 1);
  if (base === undefined || !/^[0-9]{10}$/.test(digits) || Number(digits) < 1) return undefined;
  return { base, revision: Number(digits) };
}

/** `active-update/{base}`. */
export function activeUpdateKey(base: ArtifactBase): string {
  return ACTIVE_UPDATE_PREFIX + base;
}

export function formatActiveUpdate(active: ActiveUpdate): string {
  return JSON.stringify({ updateId: active.updateId, rollbackOfRevision: active.rollbackOfRevision });
}

/** Parses a stored `active-update/` value; never throws. */
export function parseActiveUpdate(value: string): Parsed<ActiveUpdate> {
  const parsed = parseJsonObject(value);
  if (!parsed.ok) return parsed;
  const { updateId, rollbackOfRevision } = parsed.value;
  if (typeof updateId !== 'string' || updateId.length === 0) return refuse('updateId must be a non-empty string');
  if (rollbackOfRevision !== null && rollbackOfRevision !== undefined && !isRevision(rollbackOfRevision)) return refuse('rollbackOfRevision must be a revision or null');
  return { ok: true, value: { updateId, rollbackOfRevision: (rollbackOfRevision as number | null | undefined) ?? null } };
}

function isRevision(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 1 && n <= REVISION_MAX;
}

function isTime(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

/**
 * The start-request fields of `record` (`parseStartRequest` names and units), so that a rollback
 * to its revision repeats its settings. Steps are written so that they parse back to the same
 * plan (`[100]` for a CANARY or STAGED plan without intermediate steps).
 */
export function settingsOf(record: UpdateRecord): Record<string, unknown> {
  const s = record.strategy;
  const percentPlan = s.kind === 'CANARY' || s.kind === 'STAGED';
  return {
    instances: record.instances.requested,
    strategy: s.kind,
    canaryPercentage: s.canaryPercentage,
    steps: percentPlan ? (s.steps.length > 0 ? [...s.steps] : [100]) : null,
    batchSize: s.batchSize,
    batchDelaySeconds: Math.round(s.batchDelayMs / 1000),
    maxUnavailablePercentage: s.maxUnavailablePercentage,
    monitoringSeconds: Math.round(s.monitoringMs / 1000),
    deployTimeoutSeconds: Math.round(s.deployTimeoutMs / 1000),
    maxErrorRate: record.thresholds.maxErrorRate,
    maxLatencyMs: record.thresholds.maxLatencyMs,
    minRequestCount: record.thresholds.minRequestCount,
    healthEvaluationIntervalSeconds: Math.round(record.healthGate.intervalMs / 1000),
    autoRollbackEnabled: record.healthGate.autoRollbackEnabled,
    failureThreshold: record.healthGate.failureThreshold,
    requireManualApproval: s.requireManualApproval,
    cleanupPolicy: record.cleanup.policy,
    gracePeriodSeconds: record.cleanup.policy === 'GRACE_PERIOD' ? Math.round(record.cleanup.gracePeriodMs / 1000) : null,
    healthChecks: record.healthChecks,
  };
}

/** The release of a terminal `record` as revision `revision`. */
export function releaseOf(record: UpdateRecord, revision: number, rollbackOfRevision: number | null): ReleaseRecord {
  if (!isTerminal(record.state)) throw new InvalidArgumentError('state', `a release is made of a finished update, ${record.id} is ${record.state}`);
  const last = record.log[record.log.length - 1];
  return {
    revision,
    base: record.base,
    version: record.newVersion,
    previousVersion: record.oldVersion,
    status: record.state as ReleaseStatus,
    updateId: record.id,
    settings: settingsOf(record),
    startedAt: record.createdAt,
    finishedAt: record.updatedAt,
    initiatedBy: record.initiatedBy,
    reason: last?.reason ?? '',
    rollbackOfRevision,
  };
}

export function formatRelease(release: ReleaseRecord): string {
  return JSON.stringify(release);
}

/** Parses a stored `release/` value; never throws. Unknown extra fields are ignored. */
export function parseRelease(value: string): Parsed<ReleaseRecord> {
  const parsed = parseJsonObject(value);
  if (!parsed.ok) return parsed;
  const j = parsed.value;
  const base = typeof j.base === 'string' ? parseArtifactBase(j.base) : undefined;
  if (!isRevision(j.revision)) return refuse('revision must be a positive integer');
  if (base === undefined) return refuse('base must be groupId:artifactId');
  if (typeof j.version !== 'string' || parseSemVer(j.version) === undefined) return refuse('version must be a semantic version');
  if (typeof j.previousVersion !== 'string' || parseSemVer(j.previousVersion) === undefined) return refuse('previousVersion must be a semantic version');
  if (typeof j.status !== 'string' || !(RELEASE_STATUSES as readonly string[]).includes(j.status)) return refuse(`status must be one of ${RELEASE_STATUSES.join(', ')}`);
  if (typeof j.updateId !== 'string') return refuse('updateId must be a string');
  if (typeof j.settings !== 'object' || j.settings === null || Array.isArray(j.settings)) return refuse('settings must be an object');
  if (!isTime(j.startedAt) || !isTime(j.finishedAt) || j.finishedAt < j.startedAt) return refuse('startedAt and finishedAt must be epoch ms, finishedAt not before startedAt');
  if (typeof j.initiatedBy !== 'string' || typeof j.reason !== 'string') return refuse('initiatedBy and reason must be strings');
  if (j.rollbackOfRevision !== null && !isRevision(j.rollbackOfRevision)) return refuse('rollbackOfRevision must be a revision or null');
  return {
    ok: true,
    value: {
      revision: j.revision,
      base,
      version: j.version,
      previousVersion: j.previousVersion,
      status: j.status as ReleaseStatus,
      updateId: j.updateId,
      settings: j.settings as Record<string, unknown>,
      startedAt: j.startedAt,
      finishedAt: j.finishedAt,
      initiatedBy: j.initiatedBy,
      reason: j.reason,
      rollbackOfRevision: j.rollbackOfRevision,
    },
  };
}

/** A stored entry (a `KeyValue` fits). */
export interface StoredEntry {
  readonly key: string;
  readonly value: string;
}

/** The revision the next finished update of `base` gets: one above the highest key under its prefix. */
export function nextRevision(base: ArtifactBase, entries: Iterable<StoredEntry>): number {
  let highest = 0;
  for (const entry of entries) {
    const parts = parseReleaseKey(entry.key);
    if (parts !== undefined && parts.base === base) highest = Math.max(highest, parts.revision);
  }
  return highest + 1;
}

/** The readable releases among `entries`, by revision; `onInvalid` hears of the others. */
export function readReleases(entries: Iterable<StoredEntry>, onInvalid: (key: string, reason: string) => void = () => {}): ReleaseRecord[] {
  const out: ReleaseRecord[] = [];
  for (const entry of entries) {
    const key = parseReleaseKey(entry.key);
    const parsed = parseRelease(entry.value);
    if (key === undefined || !parsed.ok || parsed.value.revision !== key.revision || parsed.value.base !== key.base) {
      onInvalid(entry.key, parsed.ok ? 'value disagrees with its key' : parsed.reason);
      continue;
    }
    out.push(parsed.value);
  }
  return out.sort((a, b) => a.revision - b.revision);
}

/** Statistics of `releases` (all of one artifact). */
export function releaseStatistics(base: ArtifactBase, releases: readonly ReleaseRecord[]): ReleaseStatistics {
  const total = releases.length;
  const successful = releases.filter((r) => r.status === 'COMPLETED').length;
  const failed = releases.filter((r) => r.status === 'FAILED' || r.status === 'ROLLED_BACK').length;
  const cancelled = releases.filter((r) => r.status === 'CANCELLED').length;
  const durationMs = releases.reduce((sum, r) => sum + (r.finishedAt - r.startedAt), 0);
  return {
    base,
    total,
    successful,
    failed,
    cancelled,
    successRate: total === 0 ? 0 : (100 * successful) / total,
    averageDurationSeconds: total === 0 ? 0 : durationMs / total / 1000,
  };
}

/** Which revision a RollbackTo restores. */
export type RollbackTarget = { readonly revision: number } | { readonly lastSuccessful: true };

/**
 * The release a RollbackTo restores, given the version serving now: revision N itself, or the
 * most recent COMPLETED revision whose version is not the one serving now (Helm's "last
 * successful": the last good state before the current one). Throws RELEASE_NOT_FOUND (no such
 * revision), NO_SUCCESSFUL_RELEASE, or ALREADY_CURRENT when the revision's version serves now.
 */
export function rollbackTarget(releases: readonly ReleaseRecord[], target: RollbackTarget, currentVersion: string): ReleaseRecord {
  if ('revision' in target) {
    const found = releases.find((r) => r.revision === target.revision);
    if (found === undefined) throw new CutoverError('RELEASE_NOT_FOUND', `revision ${target.revision} is not in the history${releases.length === 0 ? ' (the history is empty)' : ` (revisions ${releases[0]!.revision}..${releases[releases.length - 1]!.revision})`}`);
    if (found.version === currentVersion) throw new CutoverError('ALREADY_CURRENT', `revision ${found.revision} rolled out ${found.version}, which is the version serving now`);
    return found;
  }
  const candidates = releases.filter((r) => r.status === 'COMPLETED' && r.version !== currentVersion);
  const found = candidates[candidates.length - 1];
  if (found === undefined) throw new CutoverError('NO_SUCCESSFUL_RELEASE', `no COMPLETED revision rolled out a version other than ${currentVersion}, the one serving now`);
  return found;
}

/** The stored active-update key as read (value and modRevision). */
export interface ActiveUpdateEntry {
  readonly value: string;
  readonly modRevision: number;
}

/**
 * The compares and writes that go with the transaction moving `record` to a terminal state: the
 * release at `revision` (guarded by "absent") and, when `active` names this update, the deletion
 * of the active-update key (guarded by its modRevision).
 */
export function terminalTxnParts(record: UpdateRecord, revision: number, active: ActiveUpdateEntry | undefined): { readonly compare: Compare[]; readonly success: Operation[] } {
  const parsed = active === undefined ? undefined : parseActiveUpdate(active.value);
  const ours = parsed?.ok === true && parsed.value.updateId === record.id;
  const key = releaseKey(record.base, revision);
  const compare: Compare[] = [{ key, target: 'exists', op: '=', value: false }];
  const success: Operation[] = [{ type: 'put', key, value: formatRelease(releaseOf(record, revision, ours ? parsed.value.rollbackOfRevision : null)) }];
  if (ours && active !== undefined) {
    compare.push({ key: activeUpdateKey(record.base), target: 'modRevision', op: '=', value: active.modRevision });
    success.push({ type: 'delete', key: activeUpdateKey(record.base) });
  }
  return { compare, success };
}

/** True when moving from `before` to `after` finishes the update (so `terminalTxnParts` apply). */
export function finishes(before: UpdateState, after: UpdateState): boolean {
  return !isTerminal(before) && isTerminal(after);
}
