/**
 * The rolling-update record stored at `rolling-update/{updateId}` (JSON), the one durable truth
 * about an update (DESIGN decisions 3, 4 and 7): everything the leader's controller needs to resume
 * an update after a failover is here, including the deadlines (wall-clock epoch ms, because the
 * next leader runs on another machine with another monotonic clock) and a bounded transition log.
 *
 * Lifecycle (DESIGN "Update lifecycle"; the table itself is in `transitions.ts`):
 *
 *   PENDING → VALIDATING → DEPLOYING → DEPLOYED → ROUTING → COMPLETING → COMPLETED
 *   VALIDATING … COMPLETING → ROLLING_BACK → ROLLED_BACK
 *   PENDING, VALIDATING → CANCELLED          any non-terminal → FAILED
 *
 * `paused` is a flag on a non-terminal update, not a state.
 *
 * Invariants (checked by `parseUpdateRecord`, so a record read back is one the domain can act on):
 * - `routing`, `instances.target` and `instances.old` are set together, by the one transaction that
 *   enters DEPLOYING (and writes the new blueprint and the routing record): `routing !== null`
 *   means "the new version's blueprint may exist". They are null in PENDING, VALIDATING and
 *   CANCELLED and set from DEPLOYING to COMPLETED.
 * - `rollback` is set in ROLLING_BACK and ROLLED_BACK.
 * - `paused` is false in terminal states and in ROLLING_BACK; `pauseReason` is set iff paused.
 * - times never go backwards within a record: `updatedAt` ≥ every log entry's `at` ≥ `createdAt`.
 *
 * Stored values are data another node (or an older Cutover) wrote: `parseUpdateRecord` never
 * throws, refuses unknown states and strategies and wrong types with a reason naming the field, and
 * ignores unknown extra fields so that a newer writer can add some. Absent values are `null`, not
 * missing, so that the JSON form is stable.
 */
import { healthSpecJson, parseHealthSpec } from '../health/spec.ts';
import { INSTANCES_MAX, type BlueprintRecord } from '../slices/blueprints.ts';
import { parseArtifactBase, parseSemVer, requireSemVer, type ArtifactBase } from '../slices/keys.ts';
import { assert } from '../util/assert.ts';
import { InvalidArgumentError } from '../util/errors.ts';
import { parseJsonObject, refuse, type Parsed } from '../util/parsed.ts';
import { CLEANUP_POLICIES, LIMITS, STRATEGIES, isPlainText, isRatio, type CleanupPolicy, type Ratio, type StartRequest, type Strategy } from './request.ts';

export const UPDATE_STATES = ['PENDING', 'VALIDATING', 'DEPLOYING', 'DEPLOYED', 'ROUTING', 'COMPLETING', 'COMPLETED', 'ROLLING_BACK', 'ROLLED_BACK', 'CANCELLED', 'FAILED'] as const;
export type UpdateState = (typeof UPDATE_STATES)[number];

export const TERMINAL_STATES: readonly UpdateState[] = ['COMPLETED', 'ROLLED_BACK', 'CANCELLED', 'FAILED'];

/** True for COMPLETED, ROLLED_BACK, CANCELLED and FAILED: nothing happens to the update any more. */
export function isTerminal(state: UpdateState): boolean {
  return TERMINAL_STATES.includes(state);
}

export const UPDATE_PREFIX = 'rolling-update/';

/** Most transition-log entries kept; older ones are dropped and counted in `logDropped`. */
export const LOG_MAX = 100;
/** Most approvals kept (only the next step can be approved, so old ones are history). */
export const APPROVALS_MAX = 100;
/** Most rolled-back instance ids kept in `rollback.rolledBackInstances`. */
export const ROLLED_BACK_IDS_MAX = 100;
/** Longest reason kept, in characters; longer system reasons are cut. */
export const REASON_LENGTH_MAX = 1024;
/** Most plan steps a record may have applied (ROLLING with batches of 1 over INSTANCES_MAX). */
export const STEP_INDEX_MAX = INSTANCES_MAX + 1;

const UPDATE_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/** Who did something: an operator (by name) or a part of the system (`controller`, `health-gate`). */
export interface Actor {
  readonly kind: 'user' | 'system';
  readonly name: string;
}

/** The controller's own steps. */
export const CONTROLLER: Actor = { kind: 'system', name: 'controller' };
/** Decisions of the health gate (pause on breach, automatic rollback). */
export const HEALTH_GATE: Actor = { kind: 'system', name: 'health-gate' };

/** The strategy and the parameters of its plan (durations in ms). */
export interface StrategySettings {
  readonly kind: Strategy;
  readonly canaryPercentage: number;
  /** See `StartRequest.steps`. */
  readonly steps: readonly number[];
  readonly batchSize: number;
  readonly batchDelayMs: number;
  readonly maxUnavailablePercentage: number;
  /** How long an automatic strategy holds 100% before completing. */
  readonly monitoringMs: number;
  /** How long new instances (and, in a rollback, old ones) may take to become ACTIVE. */
  readonly deployTimeoutMs: number;
  readonly requireManualApproval: boolean;
}

/** Instance counts. `target` and `old` are fixed when DEPLOYING is entered. */
export interface InstanceSettings {
  /** From the request; null = match the old version's blueprint. */
  readonly requested: number | null;
  /** New instances the update runs at 100%. */
  readonly target: number | null;
  /** The old version's blueprint when the update deployed: restored by a rollback. */
  readonly old: BlueprintRecord | null;
}

export interface Thresholds {
  /** Fraction in [0, 1]. */
  readonly maxErrorRate: number;
  /** On p99. */
  readonly maxLatencyMs: number;
  /** Fewer calls in a window is too little traffic to judge. */
  readonly minRequestCount: number;
}

/** Health-gate settings and its durable count. */
export interface HealthGateState {
  readonly intervalMs: number;
  readonly autoRollbackEnabled: boolean;
  readonly failureThreshold: number;
  /** Breaching evaluations in a row, each at least `intervalMs` after the previous counted one. */
  readonly consecutiveBreaches: number;
  /** When the last counted breach was evaluated; null when the count is 0. */
  readonly lastBreachAt: number | null;
}

export interface CleanupSettings {
  readonly policy: CleanupPolicy;
  /** GRACE_PERIOD only; 0 otherwise. */
  readonly gracePeriodMs: number;
}

/** An operator's Approve of plan step `step` (0-based). */
export interface Approval {
  readonly step: number;
  readonly by: Actor;
  readonly at: number;
}

/** MATIH's RollbackInfo, with Cutover's actor. */
export interface RollbackInfo {
  readonly reason: string;
  readonly initiatedAt: number;
  readonly initiatedBy: Actor;
  /** Consecutive health breaches when the rollback started. */
  readonly currentFailures: number;
  /** Ids of the new version's instances stopped by the rollback (at most ROLLED_BACK_IDS_MAX). */
  readonly rolledBackInstances: readonly string[];
  /** How many there were in all. */
  readonly rolledBackCount: number;
}

/** Absolute wall-clock deadlines (epoch ms); null when not pending. */
export interface Deadlines {
  /** ROUTING: the next plan step may not be applied before this (batch delay, step hold). */
  readonly nextStepAt: number | null;
  /** ROUTING, last step applied: complete at this time if healthy. */
  readonly monitoringUntil: number | null;
  /** New instances last asked for must be ACTIVE by then, or the update rolls back. */
  readonly deployUntil: number | null;
  /** ROLLING_BACK: the old version must be back to ACTIVE by then. */
  readonly restoreUntil: number | null;
  /** COMPLETING: the old version is removed at this time (cleanup policy). */
  readonly graceCleanupAt: number | null;
}

export interface LogEntry {
  /** What happened: `DEPLOYING -> DEPLOYED`, `route 1:3 (step 2/5)`, `pause`, … */
  readonly step: string;
  readonly at: number;
  readonly actor: Actor;
  readonly reason: string;
}

/** The value of `rolling-update/{id}`. */
export interface UpdateRecord {
  readonly id: string;
  readonly base: ArtifactBase;
  readonly oldVersion: string;
  readonly newVersion: string;
  readonly state: UpdateState;
  readonly paused: boolean;
  readonly pauseReason: string | null;
  readonly strategy: StrategySettings;
  readonly instances: InstanceSettings;
  /** Plan steps applied so far (0 = none; see `plan.ts`). */
  readonly stepIndex: number;
  /** The weights this update last wrote to `version-routing/`; null before DEPLOYING. */
  readonly routing: Ratio | null;
  readonly thresholds: Thresholds;
  readonly healthGate: HealthGateState;
  readonly cleanup: CleanupSettings;
  readonly approvals: readonly Approval[];
  readonly rollback: RollbackInfo | null;
  readonly deadlines: Deadlines;
  /** The last LOG_MAX entries, oldest first. */
  readonly log: readonly LogEntry[];
  readonly logDropped: number;
  readonly initiatedBy: string;
  /** The update's health-check override for the new version (JSON form, src/health/spec.ts); null = its manifest's. */
  readonly healthChecks: Readonly<Record<string, unknown>> | null;
  readonly createdAt: number;
  readonly updatedAt: number;
}

/** `rolling-update/{id}`; throws INVALID_ARGUMENT naming `updateId` when the id is malformed. */
export function updateKey(id: string): string {
  requireUpdateId(id);
  return UPDATE_PREFIX + id;
}

/** The update id of a `rolling-update/` key; undefined when the key is not one. */
export function parseUpdateKey(key: string): string | undefined {
  if (!key.startsWith(UPDATE_PREFIX)) return undefined;
  const id = key.slice(UPDATE_PREFIX.length);
  return UPDATE_ID.test(id) ? id : undefined;
}

/** Checks an update id: 1-128 letters, digits, '.', '_', '-', starting with a letter or digit. */
export function requireUpdateId(id: unknown, field = 'updateId'): string {
  if (typeof id !== 'string' || !UPDATE_ID.test(id)) throw new InvalidArgumentError(field, `must be 1-128 letters, digits, '.', '_' and '-', starting with a letter or digit, got ${JSON.stringify(id)}`);
  return id;
}

/** `reason` cut to REASON_LENGTH_MAX characters. */
export function clipReason(reason: string): string {
  return reason.length <= REASON_LENGTH_MAX ? reason : `${reason.slice(0, REASON_LENGTH_MAX - 1)}…`;
}

function isTime(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

/**
 * The PENDING record of a new update. `oldVersion` is the version serving now, as the caller found
 * it; `nowMs` is wall-clock epoch ms. Throws INVALID_ARGUMENT naming `updateId` or `version` (the
 * new version must differ from the old one: routing between two equal versions means nothing).
 */
export function createUpdateRecord(request: StartRequest, options: { readonly id: string; readonly oldVersion: string; readonly nowMs: number }): UpdateRecord {
  const id = requireUpdateId(options.id);
  const oldVersion = requireSemVer(options.oldVersion, 'oldVersion').text;
  if (oldVersion === request.newVersion) throw new InvalidArgumentError('version', `must differ from the current version ${oldVersion}`);
  assert(isTime(options.nowMs), `nowMs must be epoch ms, got ${options.nowMs}`);
  const at = options.nowMs;
  return {
    id,
    base: request.base,
    oldVersion,
    newVersion: request.newVersion,
    state: 'PENDING',
    paused: false,
    pauseReason: null,
    strategy: {
      kind: request.strategy,
      canaryPercentage: request.canaryPercentage,
      steps: [...request.steps],
      batchSize: request.batchSize,
      batchDelayMs: request.batchDelaySeconds * 1000,
      maxUnavailablePercentage: request.maxUnavailablePercentage,
      monitoringMs: request.monitoringSeconds * 1000,
      deployTimeoutMs: request.deployTimeoutSeconds * 1000,
      requireManualApproval: request.requireManualApproval,
    },
    instances: { requested: request.instances, target: null, old: null },
    stepIndex: 0,
    routing: null,
    thresholds: { maxErrorRate: request.maxErrorRate, maxLatencyMs: request.maxLatencyMs, minRequestCount: request.minRequestCount },
    healthGate: {
      intervalMs: request.healthEvaluationIntervalSeconds * 1000,
      autoRollbackEnabled: request.autoRollbackEnabled,
      failureThreshold: request.failureThreshold,
      consecutiveBreaches: 0,
      lastBreachAt: null,
    },
    cleanup: { policy: request.cleanupPolicy, gracePeriodMs: request.gracePeriodSeconds * 1000 },
    approvals: [],
    rollback: null,
    deadlines: { nextStepAt: null, monitoringUntil: null, deployUntil: null, restoreUntil: null, graceCleanupAt: null },
    log: [{ step: 'start', at, actor: { kind: 'user', name: request.initiatedBy }, reason: `${request.strategy} update of ${request.base} from ${oldVersion} to ${request.newVersion}` }],
    logDropped: 0,
    initiatedBy: request.initiatedBy,
    healthChecks: request.healthChecks,
    createdAt: at,
    updatedAt: at,
  };
}

/** `record` with `entry` appended to its log (keeping the last LOG_MAX) and `updatedAt` moved on. */
export function withLogEntry(record: UpdateRecord, entry: LogEntry): UpdateRecord {
  const log = [...record.log, { ...entry, reason: clipReason(entry.reason) }];
  const dropped = Math.max(0, log.length - LOG_MAX);
  return { ...record, log: log.slice(dropped), logDropped: record.logDropped + dropped, updatedAt: Math.max(record.updatedAt, entry.at) };
}

/**
 * The time a change to `record` happens at: `nowMs`, but never before the record's last change,
 * so that a new leader whose wall clock is behind never moves a record's history backwards.
 */
export function effectiveNow(record: UpdateRecord, nowMs: number): number {
  assert(isTime(nowMs), `nowMs must be epoch ms, got ${nowMs}`);
  return Math.max(nowMs, record.updatedAt);
}

/** The stored form. Asserts (a bug, not an operational error) that the record is valid. */
export function formatUpdateRecord(record: UpdateRecord): string {
  const text = JSON.stringify(record);
  const back = parseUpdateRecord(text);
  assert(back.ok, `formatUpdateRecord: invalid record ${record.id}: ${back.ok ? '' : back.reason}`);
  return text;
}

// ---------------------------------------------------------------------------------------------
// Parsing

/** Thrown inside the parser only; `parseUpdateRecord` turns it into a refusal. */
class Refusal {
  constructor(readonly reason: string) {}
}

function fail(path: string, message: string): never {
  throw new Refusal(`${path} ${message}`);
}

function objectAt(value: unknown, path: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(path, 'must be an object');
  return value as Record<string, unknown>;
}

function intAt(value: unknown, path: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) fail(path, `must be an integer in [${min}, ${max}]`);
  return value;
}

function timeAt(value: unknown, path: string): number {
  if (!isTime(value)) fail(path, 'must be a time in epoch ms (a non-negative integer)');
  return value;
}

function nullableTimeAt(value: unknown, path: string): number | null {
  return value === null ? null : timeAt(value, path);
}

function boolAt(value: unknown, path: string): boolean {
  if (typeof value !== 'boolean') fail(path, 'must be true or false');
  return value;
}

function textAt(value: unknown, path: string, maxLength: number): string {
  if (typeof value !== 'string' || value.length > maxLength) fail(path, `must be a string of at most ${maxLength} characters`);
  return value;
}

function oneOfAt<T extends string>(value: unknown, path: string, choices: readonly T[]): T {
  if (typeof value !== 'string' || !(choices as readonly string[]).includes(value)) fail(path, `must be one of ${choices.join(', ')}`);
  return value as T;
}

function arrayAt(value: unknown, path: string, maxLength: number): unknown[] {
  if (!Array.isArray(value) || value.length > maxLength) fail(path, `must be a list of at most ${maxLength} items`);
  return value as unknown[];
}

function versionAt(value: unknown, path: string): string {
  const semver = typeof value === 'string' ? parseSemVer(value) : undefined;
  if (semver === undefined) fail(path, 'must be a semantic version');
  return semver.text;
}

function actorAt(value: unknown, path: string): Actor {
  const json = objectAt(value, path);
  const kind = oneOfAt(json.kind, `${path}.kind`, ['user', 'system'] as const);
  if (!isPlainText(json.name)) fail(`${path}.name`, 'must be 1-128 characters without control characters');
  return { kind, name: json.name };
}

function ratioAt(value: unknown, path: string): Ratio {
  const json = objectAt(value, path);
  const ratio = { newWeight: json.newWeight, oldWeight: json.oldWeight };
  if (!isRatio(ratio)) fail(path, 'must be { newWeight, oldWeight }, integers in [0, 1000000], not both 0');
  return ratio;
}

function blueprintAt(value: unknown, path: string): BlueprintRecord {
  const json = objectAt(value, path);
  const instances = intAt(json.instances, `${path}.instances`, 0, INSTANCES_MAX);
  return json.perNodeMax === undefined ? { instances } : { instances, perNodeMax: intAt(json.perNodeMax, `${path}.perNodeMax`, 1, INSTANCES_MAX) };
}

function strategyAt(value: unknown): StrategySettings {
  const json = objectAt(value, 'strategy');
  const steps = arrayAt(json.steps, 'strategy.steps', LIMITS.steps.maxLength).map((s, i) => intAt(s, `strategy.steps[${i}]`, 1, 99));
  if (steps.some((s, i) => i > 0 && s <= steps[i - 1]!)) fail('strategy.steps', 'must be strictly increasing');
  const kind = oneOfAt(json.kind, 'strategy.kind', STRATEGIES);
  const canaryPercentage = intAt(json.canaryPercentage, 'strategy.canaryPercentage', LIMITS.percentage.min, LIMITS.percentage.max);
  if (kind === 'CANARY' && steps.some((s) => s <= canaryPercentage)) fail('strategy.steps', 'must be above canaryPercentage');
  if (kind !== 'CANARY' && kind !== 'STAGED' && steps.length > 0) fail('strategy.steps', `must be empty with ${kind}`);
  return {
    kind,
    canaryPercentage,
    steps,
    batchSize: intAt(json.batchSize, 'strategy.batchSize', LIMITS.batchSize.min, LIMITS.batchSize.max),
    batchDelayMs: intAt(json.batchDelayMs, 'strategy.batchDelayMs', 0, LIMITS.batchDelaySeconds.max * 1000),
    maxUnavailablePercentage: intAt(json.maxUnavailablePercentage, 'strategy.maxUnavailablePercentage', LIMITS.maxUnavailablePercentage.min, LIMITS.maxUnavailablePercentage.max),
    monitoringMs: intAt(json.monitoringMs, 'strategy.monitoringMs', 0, LIMITS.monitoringSeconds.max * 1000),
    deployTimeoutMs: intAt(json.deployTimeoutMs, 'strategy.deployTimeoutMs', 1, LIMITS.deployTimeoutSeconds.max * 1000),
    requireManualApproval: boolAt(json.requireManualApproval, 'strategy.requireManualApproval'),
  };
}

function instancesAt(value: unknown): InstanceSettings {
  const json = objectAt(value, 'instances');
  return {
    requested: json.requested === null ? null : intAt(json.requested, 'instances.requested', 1, INSTANCES_MAX),
    target: json.target === null ? null : intAt(json.target, 'instances.target', 1, INSTANCES_MAX),
    old: json.old === null ? null : blueprintAt(json.old, 'instances.old'),
  };
}

function thresholdsAt(value: unknown): Thresholds {
  const json = objectAt(value, 'thresholds');
  const { maxErrorRate } = json;
  if (typeof maxErrorRate !== 'number' || !Number.isFinite(maxErrorRate) || maxErrorRate < 0 || maxErrorRate > 1) fail('thresholds.maxErrorRate', 'must be a fraction in [0, 1]');
  return {
    maxErrorRate,
    maxLatencyMs: intAt(json.maxLatencyMs, 'thresholds.maxLatencyMs', LIMITS.maxLatencyMs.min, LIMITS.maxLatencyMs.max),
    minRequestCount: intAt(json.minRequestCount, 'thresholds.minRequestCount', LIMITS.minRequestCount.min, LIMITS.minRequestCount.max),
  };
}

function healthGateAt(value: unknown): HealthGateState {
  const json = objectAt(value, 'healthGate');
  const consecutiveBreaches = intAt(json.consecutiveBreaches, 'healthGate.consecutiveBreaches', 0, Number.MAX_SAFE_INTEGER);
  const lastBreachAt = nullableTimeAt(json.lastBreachAt, 'healthGate.lastBreachAt');
  if ((consecutiveBreaches === 0) !== (lastBreachAt === null)) fail('healthGate.lastBreachAt', 'must be set exactly when consecutiveBreaches > 0');
  return {
    intervalMs: intAt(json.intervalMs, 'healthGate.intervalMs', LIMITS.healthEvaluationIntervalSeconds.min * 1000, LIMITS.healthEvaluationIntervalSeconds.max * 1000),
    autoRollbackEnabled: boolAt(json.autoRollbackEnabled, 'healthGate.autoRollbackEnabled'),
    failureThreshold: intAt(json.failureThreshold, 'healthGate.failureThreshold', LIMITS.failureThreshold.min, LIMITS.failureThreshold.max),
    consecutiveBreaches,
    lastBreachAt,
  };
}

function cleanupAt(value: unknown): CleanupSettings {
  const json = objectAt(value, 'cleanup');
  const policy = oneOfAt(json.policy, 'cleanup.policy', CLEANUP_POLICIES);
  const gracePeriodMs = policy === 'GRACE_PERIOD' ? intAt(json.gracePeriodMs, 'cleanup.gracePeriodMs', LIMITS.gracePeriodSeconds.min * 1000, LIMITS.gracePeriodSeconds.max * 1000) : intAt(json.gracePeriodMs, 'cleanup.gracePeriodMs', 0, 0);
  return { policy, gracePeriodMs };
}

function rollbackAt(value: unknown): RollbackInfo | null {
  if (value === null) return null;
  const json = objectAt(value, 'rollback');
  const ids = arrayAt(json.rolledBackInstances, 'rollback.rolledBackInstances', ROLLED_BACK_IDS_MAX).map((id, i) => textAt(id, `rollback.rolledBackInstances[${i}]`, 128));
  const rolledBackCount = intAt(json.rolledBackCount, 'rollback.rolledBackCount', ids.length, Number.MAX_SAFE_INTEGER);
  return {
    reason: textAt(json.reason, 'rollback.reason', REASON_LENGTH_MAX),
    initiatedAt: timeAt(json.initiatedAt, 'rollback.initiatedAt'),
    initiatedBy: actorAt(json.initiatedBy, 'rollback.initiatedBy'),
    currentFailures: intAt(json.currentFailures, 'rollback.currentFailures', 0, Number.MAX_SAFE_INTEGER),
    rolledBackInstances: ids,
    rolledBackCount,
  };
}

function deadlinesAt(value: unknown): Deadlines {
  const json = objectAt(value, 'deadlines');
  return {
    nextStepAt: nullableTimeAt(json.nextStepAt, 'deadlines.nextStepAt'),
    monitoringUntil: nullableTimeAt(json.monitoringUntil, 'deadlines.monitoringUntil'),
    deployUntil: nullableTimeAt(json.deployUntil, 'deadlines.deployUntil'),
    restoreUntil: nullableTimeAt(json.restoreUntil, 'deadlines.restoreUntil'),
    graceCleanupAt: nullableTimeAt(json.graceCleanupAt, 'deadlines.graceCleanupAt'),
  };
}

function logAt(value: unknown): LogEntry[] {
  return arrayAt(value, 'log', LOG_MAX).map((item, i) => {
    const json = objectAt(item, `log[${i}]`);
    return { step: textAt(json.step, `log[${i}].step`, 256), at: timeAt(json.at, `log[${i}].at`), actor: actorAt(json.actor, `log[${i}].actor`), reason: textAt(json.reason, `log[${i}].reason`, REASON_LENGTH_MAX) };
  });
}

function approvalsAt(value: unknown): Approval[] {
  return arrayAt(value, 'approvals', APPROVALS_MAX).map((item, i) => {
    const json = objectAt(item, `approvals[${i}]`);
    return { step: intAt(json.step, `approvals[${i}].step`, 0, STEP_INDEX_MAX), by: actorAt(json.by, `approvals[${i}].by`), at: timeAt(json.at, `approvals[${i}].at`) };
  });
}

const DEPLOYED_STATES: readonly UpdateState[] = ['DEPLOYING', 'DEPLOYED', 'ROUTING', 'COMPLETING', 'COMPLETED'];
const UNDEPLOYED_STATES: readonly UpdateState[] = ['PENDING', 'VALIDATING', 'CANCELLED'];

function checkInvariants(record: UpdateRecord): void {
  const deployed = record.routing !== null;
  if ((record.instances.target !== null) !== deployed || (record.instances.old !== null) !== deployed) fail('routing', 'instances.target and instances.old must be set together');
  if (DEPLOYED_STATES.includes(record.state) && !deployed) fail('routing', `must be set in ${record.state}`);
  if (UNDEPLOYED_STATES.includes(record.state) && deployed) fail('routing', `must be null in ${record.state}`);
  if ((record.state === 'ROLLING_BACK' || record.state === 'ROLLED_BACK') && record.rollback === null) fail('rollback', `must be set in ${record.state}`);
  if (record.paused && (isTerminal(record.state) || record.state === 'ROLLING_BACK')) fail('paused', `must be false in ${record.state}`);
  if (record.paused !== (record.pauseReason !== null)) fail('pauseReason', 'must be set exactly when paused');
  if (record.oldVersion === record.newVersion) fail('newVersion', 'must differ from oldVersion');
  if (record.updatedAt < record.createdAt) fail('updatedAt', 'must not be before createdAt');
  if (record.log.some((entry) => entry.at > record.updatedAt)) fail('log', 'must not hold entries after updatedAt');
}

/** Absent (a record written before issue 7) or null: none; else a spec `parseHealthSpec` accepts. */
function healthChecksAt(value: unknown): Record<string, unknown> | null {
  if (value === undefined || value === null) return null;
  try {
    return healthSpecJson(parseHealthSpec(value, 'healthChecks'));
  } catch (error) {
    return fail('healthChecks', error instanceof Error ? error.message : String(error));
  }
}

function recordOf(json: Record<string, unknown>): UpdateRecord {
  const id = json.id;
  if (typeof id !== 'string' || !UPDATE_ID.test(id)) fail('id', "must be 1-128 letters, digits, '.', '_' and '-'");
  const base = typeof json.base === 'string' ? parseArtifactBase(json.base) : undefined;
  if (base === undefined) fail('base', 'must be groupId:artifactId');
  const paused = boolAt(json.paused, 'paused');
  const record: UpdateRecord = {
    id,
    base,
    oldVersion: versionAt(json.oldVersion, 'oldVersion'),
    newVersion: versionAt(json.newVersion, 'newVersion'),
    state: oneOfAt(json.state, 'state', UPDATE_STATES),
    paused,
    pauseReason: json.pauseReason === null ? null : textAt(json.pauseReason, 'pauseReason', REASON_LENGTH_MAX),
    strategy: strategyAt(json.strategy),
    instances: instancesAt(json.instances),
    stepIndex: intAt(json.stepIndex, 'stepIndex', 0, STEP_INDEX_MAX),
    routing: json.routing === null ? null : ratioAt(json.routing, 'routing'),
    thresholds: thresholdsAt(json.thresholds),
    healthGate: healthGateAt(json.healthGate),
    cleanup: cleanupAt(json.cleanup),
    approvals: approvalsAt(json.approvals),
    rollback: rollbackAt(json.rollback),
    deadlines: deadlinesAt(json.deadlines),
    log: logAt(json.log),
    logDropped: intAt(json.logDropped, 'logDropped', 0, Number.MAX_SAFE_INTEGER),
    initiatedBy: isPlainText(json.initiatedBy) ? json.initiatedBy : fail('initiatedBy', 'must be 1-128 characters without control characters'),
    healthChecks: healthChecksAt(json.healthChecks),
    createdAt: timeAt(json.createdAt, 'createdAt'),
    updatedAt: timeAt(json.updatedAt, 'updatedAt'),
  };
  checkInvariants(record);
  return record;
}

/** Parses a stored `rolling-update/` value; never throws. The reason names the offending field. */
export function parseUpdateRecord(value: string): Parsed<UpdateRecord> {
  const parsed = parseJsonObject(value);
  if (!parsed.ok) return parsed;
  try {
    return { ok: true, value: recordOf(parsed.value) };
  } catch (error) {
    if (error instanceof Refusal) return refuse(error.reason);
    // Anything else would be a bug in this parser; stored data still must not crash the caller.
    return refuse(`unreadable record: ${String(error)}`);
  }
}
