/**
 * What an operator asks for when starting a rolling update, with the defaults of the product
 * documents (shared/seeds): Aether's guide for thresholds, presets, manual approval and cleanup;
 * the MATIH orchestrator for strategies and their parameters; the Coolify task for the health
 * evaluation cadence and auto-rollback. Also the `new:old` routing ratio of `update routing`.
 *
 * Everything here is user input: `parseStartRequest` and `parseRatio` throw
 * `InvalidArgumentError` (INVALID_ARGUMENT) naming the field and showing the accepted form. Every
 * number has bounds, every list a maximum length, and unknown fields are refused (a misspelt
 * `maxErrorrate` silently falling back to its default would be worse than an error). `null` and
 * `undefined` both mean "use the default", so JSON clients can send null.
 *
 * Defaults and why:
 * - strategy MANUAL: Aether's model (deploy at 0%, the operator moves the ratio), so its quick start
 *   works as written; the other strategies are opt-in.
 * - healthEvaluationIntervalSeconds 10: the Coolify task's check interval. With failureThreshold 3
 *   a sustained breach is decided within about 30 s (the task's "rollback within 30 seconds of
 *   detection"); MATIH's 30 s would take 90 s, and below a few seconds a window holds too few calls
 *   to judge.
 * - minRequestCount 20: fewer calls in an evaluation window is "too little traffic", not a breach.
 *   With a handful of calls one error reads as a 10-50% error rate and would trip even RELAXED (5%);
 *   20 still lets a 10-second window at 2 calls/s be judged.
 * - monitoringSeconds 300: the Coolify task's post-deployment monitoring duration; an automatic
 *   strategy holds 100% for this long, with the old version still running, before completing.
 * - deployTimeoutSeconds 300: MATIH's healthCheckTimeoutSeconds; new instances not ACTIVE by then
 *   start a rollback.
 * - autoRollbackEnabled true: the Coolify task's default, and the point of the health gate
 *   (MATIH's default is false; Cutover follows the DESIGN's promise of rolling back on its own).
 */
import { healthSpecJson, parseHealthSpec } from '../health/spec.ts';
import { INSTANCES_MAX } from '../slices/blueprints.ts';
import { requireArtifactBase, requireSemVer, type ArtifactBase } from '../slices/keys.ts';
import { InvalidArgumentError } from '../util/errors.ts';

export const STRATEGIES = ['MANUAL', 'CANARY', 'ROLLING', 'BLUE_GREEN', 'RECREATE', 'STAGED'] as const;
export type Strategy = (typeof STRATEGIES)[number];

export const CLEANUP_POLICIES = ['IMMEDIATE', 'GRACE_PERIOD', 'MANUAL'] as const;
export type CleanupPolicy = (typeof CLEANUP_POLICIES)[number];

/** Aether's threshold presets: error rate as a fraction, p99 latency in ms. */
export const HEALTH_PRESETS = {
  DEFAULT: { maxErrorRate: 0.01, maxLatencyMs: 500 },
  STRICT: { maxErrorRate: 0.001, maxLatencyMs: 200 },
  RELAXED: { maxErrorRate: 0.05, maxLatencyMs: 1000 },
} as const;
export type HealthPreset = keyof typeof HEALTH_PRESETS;
export const HEALTH_PRESET_NAMES = Object.keys(HEALTH_PRESETS) as readonly HealthPreset[];

/** The defaults of every optional field (see the module comment for the choices). */
export const START_DEFAULTS = {
  strategy: 'MANUAL' as Strategy,
  canaryPercentage: 10,
  /** CANARY weight steps after the canary share; those not above the canary share are skipped. */
  canarySteps: [25, 50, 75] as readonly number[],
  batchSize: 5,
  batchDelaySeconds: 60,
  maxUnavailablePercentage: 25,
  monitoringSeconds: 300,
  deployTimeoutSeconds: 300,
  healthPreset: 'DEFAULT' as HealthPreset,
  minRequestCount: 20,
  healthEvaluationIntervalSeconds: 10,
  autoRollbackEnabled: true,
  failureThreshold: 3,
  requireManualApproval: false,
  cleanupPolicy: 'GRACE_PERIOD' as CleanupPolicy,
  gracePeriodSeconds: 300,
  initiatedBy: 'anonymous',
} as const;

/** Bounds, inclusive. */
export const LIMITS = {
  percentage: { min: 1, max: 99 },
  steps: { maxLength: 100 },
  batchSize: { min: 1, max: INSTANCES_MAX },
  batchDelaySeconds: { min: 0, max: 86_400 },
  maxUnavailablePercentage: { min: 0, max: 100 },
  monitoringSeconds: { min: 0, max: 86_400 },
  deployTimeoutSeconds: { min: 1, max: 86_400 },
  maxErrorRate: { min: 0, max: 1 },
  maxLatencyMs: { min: 1, max: 600_000 },
  minRequestCount: { min: 1, max: 1_000_000 },
  healthEvaluationIntervalSeconds: { min: 1, max: 3_600 },
  failureThreshold: { min: 1, max: 100 },
  gracePeriodSeconds: { min: 1, max: 604_800 },
  instances: { min: 1, max: INSTANCES_MAX },
  textLength: { min: 1, max: 128 },
} as const;

/** A validated start request with every default applied. */
export interface StartRequest {
  readonly base: ArtifactBase;
  /** Canonical SemVer text of the version to roll out. */
  readonly newVersion: string;
  /** New instances to run; `null` = as many as the current version's blueprint asks for. */
  readonly instances: number | null;
  readonly strategy: Strategy;
  readonly canaryPercentage: number;
  /**
   * New-version percentages, strictly increasing, without 100 (always the last step, added by the
   * plan). CANARY: the steps after the canary share; STAGED: the stages; other strategies: empty.
   */
  readonly steps: readonly number[];
  readonly batchSize: number;
  readonly batchDelaySeconds: number;
  readonly maxUnavailablePercentage: number;
  readonly monitoringSeconds: number;
  readonly deployTimeoutSeconds: number;
  /** Fraction in [0, 1]; a window whose error rate is above it breaches. */
  readonly maxErrorRate: number;
  /** p99 latency above this breaches. */
  readonly maxLatencyMs: number;
  readonly minRequestCount: number;
  readonly healthEvaluationIntervalSeconds: number;
  readonly autoRollbackEnabled: boolean;
  readonly failureThreshold: number;
  readonly requireManualApproval: boolean;
  readonly cleanupPolicy: CleanupPolicy;
  /** Only for GRACE_PERIOD; 0 for the other policies. */
  readonly gracePeriodSeconds: number;
  readonly initiatedBy: string;
  /**
   * The update's own health checks for the new version's instances (the JSON form of
   * src/health/spec.ts), replacing the checks its manifest declares; null = the manifest's.
   */
  readonly healthChecks: Readonly<Record<string, unknown>> | null;
}

const FIELDS = [
  'artifactBase',
  'version',
  'instances',
  'strategy',
  'canaryPercentage',
  'steps',
  'batchSize',
  'batchDelaySeconds',
  'maxUnavailablePercentage',
  'monitoringSeconds',
  'deployTimeoutSeconds',
  'healthPreset',
  'maxErrorRate',
  'maxLatencyMs',
  'minRequestCount',
  'healthEvaluationIntervalSeconds',
  'autoRollbackEnabled',
  'failureThreshold',
  'requireManualApproval',
  'cleanupPolicy',
  'gracePeriodSeconds',
  'initiatedBy',
  'healthChecks',
] as const;

type Fields = Readonly<Record<string, unknown>>;

function given(fields: Fields, name: string): unknown {
  const value = fields[name];
  return value === null ? undefined : value;
}

function integerField(fields: Fields, name: string, bounds: { readonly min: number; readonly max: number }, fallback: number): number {
  const value = given(fields, name);
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < bounds.min || value > bounds.max) {
    throw new InvalidArgumentError(name, `must be an integer in [${bounds.min}, ${bounds.max}], got ${JSON.stringify(value)}`);
  }
  return value;
}

function optionalInteger(fields: Fields, name: string, bounds: { readonly min: number; readonly max: number }): number | null {
  return given(fields, name) === undefined ? null : integerField(fields, name, bounds, 0);
}

function booleanField(fields: Fields, name: string, fallback: boolean): boolean {
  const value = given(fields, name);
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw new InvalidArgumentError(name, `must be true or false, got ${JSON.stringify(value)}`);
  return value;
}

function choiceField<T extends string>(fields: Fields, name: string, choices: readonly T[], fallback: T): T {
  const value = given(fields, name);
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !(choices as readonly string[]).includes(value)) {
    throw new InvalidArgumentError(name, `must be one of ${choices.join(', ')}, got ${JSON.stringify(value)}`);
  }
  return value as T;
}

/** Printable text without control characters, 1..128 characters. */
export function isPlainText(value: unknown): value is string {
  // eslint-disable-next-line no-control-regex
  return typeof value === 'string' && value.length >= LIMITS.textLength.min && value.length <= LIMITS.textLength.max && !/[\u0000-\u001f\u007f]/.test(value);
}

function textField(fields: Fields, name: string, fallback: string): string {
  const value = given(fields, name);
  if (value === undefined) return fallback;
  if (!isPlainText(value)) throw new InvalidArgumentError(name, `must be ${LIMITS.textLength.min} to ${LIMITS.textLength.max} characters without control characters, got ${JSON.stringify(value)}`);
  return value;
}

/** The health-check override, checked and in canonical JSON form; null when not given. */
function healthChecksField(fields: Fields): Record<string, unknown> | null {
  const value = given(fields, 'healthChecks');
  return value === undefined ? null : healthSpecJson(parseHealthSpec(value, 'healthChecks'));
}

function errorRateField(fields: Fields, fallback: number): number {
  const value = given(fields, 'maxErrorRate');
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < LIMITS.maxErrorRate.min || value > LIMITS.maxErrorRate.max) {
    throw new InvalidArgumentError('maxErrorRate', `must be a fraction in [0, 1] like 0.01 for 1%, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** Percentages strictly increasing, each above `above` and below 100. */
function stepsField(fields: Fields, above: number): number[] | undefined {
  const value = given(fields, 'steps');
  if (value === undefined) return undefined;
  const form = `must be a list of at most ${LIMITS.steps.maxLength} strictly increasing integer percentages in [${above + 1}, 100] like [25, 50, 100]`;
  if (!Array.isArray(value) || value.length === 0 || value.length > LIMITS.steps.maxLength) throw new InvalidArgumentError('steps', `${form}, got ${JSON.stringify(value)}`);
  let previous = above;
  for (const step of value as unknown[]) {
    if (typeof step !== 'number' || !Number.isSafeInteger(step) || step <= previous || step > 100) throw new InvalidArgumentError('steps', `${form}, got ${JSON.stringify(value)}`);
    previous = step;
  }
  const steps = value as number[];
  // 100 is always the plan's last step; a list that names it says the same thing.
  return steps[steps.length - 1] === 100 ? steps.slice(0, -1) : [...steps];
}

function strategySteps(fields: Fields, strategy: Strategy, canaryPercentage: number): number[] {
  if (strategy === 'CANARY') return stepsField(fields, canaryPercentage) ?? START_DEFAULTS.canarySteps.filter((s) => s > canaryPercentage);
  if (strategy === 'STAGED') {
    const steps = stepsField(fields, 0);
    if (steps === undefined) throw new InvalidArgumentError('steps', 'is required with strategy STAGED: a list of new-version percentages like [10, 50, 100], each applied after an Approve');
    return steps;
  }
  if (given(fields, 'steps') !== undefined) throw new InvalidArgumentError('steps', `is only accepted with strategy CANARY or STAGED, not ${strategy}`);
  return [];
}

/**
 * Validates a start request (`{ artifactBase, version, ... }`, the field names of Aether's REST
 * API and MATIH's request) and applies the defaults. Throws INVALID_ARGUMENT naming the field.
 */
export function parseStartRequest(input: unknown): StartRequest {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new InvalidArgumentError('request', 'must be an object like { "artifactBase": "org.example:greeter", "version": "2.0.0" }');
  }
  const fields = input as Fields;
  const unknown = Object.keys(fields).filter((name) => !(FIELDS as readonly string[]).includes(name) && fields[name] !== undefined);
  if (unknown.length > 0) throw new InvalidArgumentError(unknown[0]!, `is not a start request field; accepted: ${FIELDS.join(', ')}`);

  const base = requireArtifactBase(fields.artifactBase, 'artifactBase');
  const newVersion = requireSemVer(fields.version, 'version').text;
  const strategy = choiceField(fields, 'strategy', STRATEGIES, START_DEFAULTS.strategy);
  const canaryPercentage = integerField(fields, 'canaryPercentage', LIMITS.percentage, START_DEFAULTS.canaryPercentage);
  const preset = HEALTH_PRESETS[choiceField(fields, 'healthPreset', HEALTH_PRESET_NAMES, START_DEFAULTS.healthPreset)];
  const cleanupPolicy = choiceField(fields, 'cleanupPolicy', CLEANUP_POLICIES, START_DEFAULTS.cleanupPolicy);
  if (cleanupPolicy !== 'GRACE_PERIOD' && given(fields, 'gracePeriodSeconds') !== undefined) {
    throw new InvalidArgumentError('gracePeriodSeconds', `is only accepted with cleanupPolicy GRACE_PERIOD, not ${cleanupPolicy}`);
  }
  return {
    base,
    newVersion,
    instances: optionalInteger(fields, 'instances', LIMITS.instances),
    strategy,
    canaryPercentage,
    steps: strategySteps(fields, strategy, canaryPercentage),
    batchSize: integerField(fields, 'batchSize', LIMITS.batchSize, START_DEFAULTS.batchSize),
    batchDelaySeconds: integerField(fields, 'batchDelaySeconds', LIMITS.batchDelaySeconds, START_DEFAULTS.batchDelaySeconds),
    maxUnavailablePercentage: integerField(fields, 'maxUnavailablePercentage', LIMITS.maxUnavailablePercentage, START_DEFAULTS.maxUnavailablePercentage),
    monitoringSeconds: integerField(fields, 'monitoringSeconds', LIMITS.monitoringSeconds, START_DEFAULTS.monitoringSeconds),
    deployTimeoutSeconds: integerField(fields, 'deployTimeoutSeconds', LIMITS.deployTimeoutSeconds, START_DEFAULTS.deployTimeoutSeconds),
    maxErrorRate: errorRateField(fields, preset.maxErrorRate),
    maxLatencyMs: integerField(fields, 'maxLatencyMs', LIMITS.maxLatencyMs, preset.maxLatencyMs),
    minRequestCount: integerField(fields, 'minRequestCount', LIMITS.minRequestCount, START_DEFAULTS.minRequestCount),
    healthEvaluationIntervalSeconds: integerField(fields, 'healthEvaluationIntervalSeconds', LIMITS.healthEvaluationIntervalSeconds, START_DEFAULTS.healthEvaluationIntervalSeconds),
    autoRollbackEnabled: booleanField(fields, 'autoRollbackEnabled', START_DEFAULTS.autoRollbackEnabled),
    failureThreshold: integerField(fields, 'failureThreshold', LIMITS.failureThreshold, START_DEFAULTS.failureThreshold),
    requireManualApproval: booleanField(fields, 'requireManualApproval', START_DEFAULTS.requireManualApproval),
    cleanupPolicy,
    gracePeriodSeconds: cleanupPolicy === 'GRACE_PERIOD' ? integerField(fields, 'gracePeriodSeconds', LIMITS.gracePeriodSeconds, START_DEFAULTS.gracePeriodSeconds) : 0,
    initiatedBy: textField(fields, 'initiatedBy', START_DEFAULTS.initiatedBy),
    healthChecks: healthChecksField(fields),
  };
}

// ---------------------------------------------------------------------------------------------
// Routing ratios

/** Largest weight a ratio may name. */
export const RATIO_PART_MAX = 1_000_000;

/** A `new:old` routing ratio: integers in [0, RATIO_PART_MAX], not both 0. */
export interface Ratio {
  readonly newWeight: number;
  readonly oldWeight: number;
}

const RATIO_FORM = `ratio must be new:old with integers 0..${RATIO_PART_MAX}, not both 0, like 1:3`;

/** True when `ratio` holds two integers in [0, RATIO_PART_MAX], not both 0. */
export function isRatio(ratio: { readonly newWeight: unknown; readonly oldWeight: unknown }): ratio is Ratio {
  const part = (n: unknown): boolean => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0 && n <= RATIO_PART_MAX;
  return part(ratio.newWeight) && part(ratio.oldWeight) && (ratio.newWeight as number) + (ratio.oldWeight as number) > 0;
}

/**
 * Reads `new:old` (`1:3` = 25% new, `1:0` = all new, `0:1` = all old). Only decimal digits and one
 * colon, no spaces or signs. Throws INVALID_ARGUMENT naming `ratio` and showing the accepted form.
 */
export function parseRatio(text: unknown): Ratio {
  const match = typeof text === 'string' ? /^([0-9]{1,7}):([0-9]{1,7})$/.exec(text) : null;
  const ratio = match === null ? undefined : { newWeight: Number(match[1]), oldWeight: Number(match[2]) };
  if (ratio === undefined || !isRatio(ratio)) throw new InvalidArgumentError('ratio', `${RATIO_FORM}; got ${typeof text === 'string' ? JSON.stringify(text) : String(text)}`);
  return ratio;
}

/** `new:old`, the form `parseRatio` reads. */
export function formatRatio(ratio: Ratio): string {
  return `${ratio.newWeight}:${ratio.oldWeight}`;
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

/** The ratio in lowest terms (`25:75` → `1:3`, `0:7` → `0:1`). */
export function reduceRatio(ratio: Ratio): Ratio {
  const divisor = gcd(ratio.newWeight, ratio.oldWeight);
  return { newWeight: ratio.newWeight / divisor, oldWeight: ratio.oldWeight / divisor };
}

/** The new version's share in percent, for people (`1:3` → 25). */
export function percentNew(ratio: Ratio): number {
  return (100 * ratio.newWeight) / (ratio.newWeight + ratio.oldWeight);
}
