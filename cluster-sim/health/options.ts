/**
 * The options of the health scenario (issue 7 on whole simulated nodes): the node target's and
 * the placement scenario's (`drawPlacementOptions`), plus the versions' scripted health, the
 * checks' policy, the event pruner's bounds, the two notification receivers' faults and the
 * leader-crash mode, drawn from a separate random stream so that the other draws stay as they are.
 */
import { SeededRandom } from '../../src/util/random.ts';
import type { SimOptions } from '../options.ts';
import { drawPlacementOptions, formatPlacementOptions, type PlacementOptions } from '../placement/options.ts';

/**
 * How a version's scripted checks answer, measured from each instance's start:
 * `healthy` always passes; `sick` passes for `sickAfterMs`, then fails for ever; `flapping`
 * alternates `flapPeriodMs` passing and `flapPeriodMs` failing; `never` never passes.
 */
export type HealthBehaviour = 'healthy' | 'sick' | 'flapping' | 'never';

export type LeaderCrashMode = 'off' | 'some' | 'every-step';

export interface HealthOptions {
  /** Updates started while faults run, one after another (versions 2.0.0, 3.0.0, …). */
  readonly updates: number;
  /** The behaviour of each of those versions, in order (1.0.0 is healthy). */
  readonly behaviours: readonly HealthBehaviour[];
  /** The clean update after the heal: its version's behaviour. */
  readonly finalBehaviour: HealthBehaviour;
  readonly sickAfterMs: number;
  readonly flapPeriodMs: number;
  readonly initialInstances: number;
  /** The checks' policy (the manifest's `healthChecks.policy`). */
  readonly intervalMs: number;
  readonly initialDelayMs: number;
  readonly successThreshold: number;
  readonly failureThreshold: number;
  /** Each update's monitoring window after its last routing step. */
  readonly monitoringSeconds: number;
  readonly callIntervalMs: number;
  readonly callTimeoutMs: number;
  readonly metricsIntervalMs: number;
  readonly operatorIntervalMs: number;
  /** The event pruner: count bound, age bound (ms), round interval, keys per delete transaction. */
  readonly eventsCountMax: number;
  readonly eventsAgeMsMax: number;
  readonly pruneIntervalMs: number;
  readonly pruneBatchMax: number;
  /** Notification delivery settings (the dispatcher's). */
  readonly notifyTimeoutMs: number;
  readonly notifyAttemptsMax: number;
  readonly notifyRetryDelayMsMin: number;
  readonly notifyRetryDelayMsMax: number;
  readonly cursorWriteIntervalMs: number;
  /** Receiver `alpha` refuses connections for `alphaDownMs` from `alphaDownAtMs` (safety phase). */
  readonly alphaDownAtMs: number;
  readonly alphaDownMs: number;
  /** Receiver `beta` takes requests and never answers for `betaHangMs` from `betaHangAtMs`, and again at the start of the final phase. */
  readonly betaHangAtMs: number;
  readonly betaHangMs: number;
  /** Share of requests (and of answers) to the receivers lost while faults run. */
  readonly receiverLossRate: number;
  readonly leaderCrash: LeaderCrashMode;
  readonly leaderDownMsMax: number;
  /** Simulated ms of updates under faults (added to the node target's safety phase). */
  readonly extraSafetyMs: number;
}

export interface HealthRunOptions {
  readonly sim: SimOptions;
  readonly placement: PlacementOptions;
  readonly health: HealthOptions;
}

export function drawHealthOptions(seed: number, nodes = 3): HealthRunOptions {
  const placementRun = drawPlacementOptions(seed, nodes);
  const random = new SeededRandom(seed ^ 0x4ea17);
  const pick = <T>(values: readonly T[]): T => values[random.nextInt(0, values.length)]!;
  const sim: SimOptions = { ...placementRun.sim, snapshotThresholdEntries: pick([10, 50, 200]), compactionMarginEntries: pick([10, 100]) };
  const placement: PlacementOptions = { ...placementRun.placement, nodeInstancesMax: 64 };
  const kinds: readonly HealthBehaviour[] = ['healthy', 'sick', 'sick', 'flapping', 'never'];
  const updates = random.nextInt(2, 5);
  const intervalMs = pick([500, 1000]);
  const health: HealthOptions = {
    updates,
    behaviours: Array.from({ length: updates }, () => pick(kinds)),
    finalBehaviour: pick(['healthy', 'sick', 'never'] as const),
    sickAfterMs: random.nextInt(3, 9) * 1000,
    flapPeriodMs: pick([1500, 4000]),
    initialInstances: pick([2, 3]),
    intervalMs,
    initialDelayMs: pick([0, 500]),
    successThreshold: pick([1, 2]),
    failureThreshold: pick([2, 3]),
    monitoringSeconds: pick([20, 30]),
    callIntervalMs: pick([40, 80]),
    callTimeoutMs: 4000,
    metricsIntervalMs: pick([250, 500]),
    operatorIntervalMs: pick([200, 500]),
    eventsCountMax: pick([15, 30, 60]),
    eventsAgeMsMax: pick([30_000, 60_000, 600_000]),
    pruneIntervalMs: pick([1000, 3000]),
    pruneBatchMax: pick([2, 5]),
    notifyTimeoutMs: pick([1000, 2000]),
    notifyAttemptsMax: 10,
    notifyRetryDelayMsMin: pick([100, 300]),
    notifyRetryDelayMsMax: 3000,
    cursorWriteIntervalMs: pick([500, 2000]),
    alphaDownAtMs: random.nextInt(2, 20) * 1000,
    alphaDownMs: random.nextInt(1, 9) * 1000,
    betaHangAtMs: random.nextInt(2, 20) * 1000,
    betaHangMs: random.nextInt(1, 9) * 1000,
    receiverLossRate: pick([0, 0.05, 0.2]),
    leaderCrash: pick<LeaderCrashMode>(['off', 'some', 'every-step']),
    leaderDownMsMax: pick([300, 1500]),
    extraSafetyMs: pick([30_000, 50_000]),
  };
  return { sim, placement, health };
}

export function formatHealthOptions(options: HealthRunOptions): string {
  const parts = Object.entries(options.health).map(([key, value]) => `${key}=${Array.isArray(value) ? value.join(',') : String(value)}`);
  return `${formatPlacementOptions({ sim: options.sim, placement: options.placement })} health: ${parts.join(' ')}`;
}
