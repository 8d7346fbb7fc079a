/**
 * The options of the rolling-updates scenario: the node target's and the placement scenario's
 * (`drawPlacementOptions`), plus traffic, slice versions, the operator and the leader-crash mode,
 * drawn from a separate random stream so that the other draws stay as they are.
 */
import { SeededRandom } from '../../src/util/random.ts';
import type { SimOptions } from '../options.ts';
import { drawPlacementOptions, formatPlacementOptions, type PlacementOptions } from '../placement/options.ts';

/** `every-step`: the leader is crashed right after each update step it commits; `some`: after a third of them. */
export type LeaderCrashMode = 'off' | 'some' | 'every-step';

export interface UpdatesOptions {
  /** Artifacts updated, `org.sim:upd{i}`. */
  readonly artifacts: number;
  /** Instances of the first version. */
  readonly initialInstances: number;
  /** Every node calls every artifact once per this many simulated ms. */
  readonly callIntervalMs: number;
  readonly callTimeoutMs: number;
  /** Period of the metrics windows pushed to the leader. */
  readonly metricsIntervalMs: number;
  /** Share of the versions published bad, and how they are bad. */
  readonly badRate: number;
  readonly badKind: 'errors' | 'latency' | 'both';
  /** A bad version's share of failing calls, and its added latency (ms). */
  readonly badErrorRate: number;
  readonly badLatencyMs: number;
  /** Health thresholds of every update (error rate, p99 ms). */
  readonly maxErrorRate: number;
  readonly maxLatencyMs: number;
  /** Share of updates started without auto-rollback. */
  readonly noAutoRollbackRate: number;
  /** Chances per update that the operator pauses (then resumes) it, rolls it back, cancels it early. */
  readonly pauseRate: number;
  readonly rollbackRate: number;
  readonly cancelRate: number;
  /** How often the operator looks at its updates. */
  readonly operatorIntervalMs: number;
  readonly leaderCrash: LeaderCrashMode;
  /** Longest delay between the commit seen and the crash. */
  readonly leaderCrashDelayMaxMs: number;
  /** Downtime of a node crashed after a step. */
  readonly leaderDownMsMax: number;
  /** The in-memory slices: longest start() and stop(), health() failure chance. */
  readonly startMsMax: number;
  readonly stopMsMax: number;
  readonly healthFailRate: number;
  /** Simulated ms of updates under faults (added to the node target's safety phase). */
  readonly extraSafetyMs: number;
}

export interface UpdatesRunOptions {
  readonly sim: SimOptions;
  readonly placement: PlacementOptions;
  readonly updates: UpdatesOptions;
}

export function drawUpdatesOptions(seed: number, nodes = 3): UpdatesRunOptions {
  const placementRun = drawPlacementOptions(seed, nodes);
  const random = new SeededRandom(seed ^ 0x0bda7e5);
  const pick = <T>(values: readonly T[]): T => values[random.nextInt(0, values.length)]!;
  const sim: SimOptions = { ...placementRun.sim, snapshotThresholdEntries: pick([10, 50, 200]), compactionMarginEntries: pick([10, 100]) };
  const placement: PlacementOptions = { ...placementRun.placement, nodeInstancesMax: pick([8, 64]) };
  const leaderCrash = pick<LeaderCrashMode>(['off', 'some', 'every-step', 'every-step']);
  const updates: UpdatesOptions = {
    artifacts: random.nextInt(1, 3),
    initialInstances: pick([2, 3]),
    callIntervalMs: pick([40, 80]),
    callTimeoutMs: 4000,
    metricsIntervalMs: pick([250, 500, 1000]),
    badRate: pick([0, 0.3, 0.5]),
    badKind: pick(['errors', 'latency', 'both'] as const),
    badErrorRate: pick([0.3, 0.6]),
    badLatencyMs: 2500,
    maxErrorRate: 0.05,
    maxLatencyMs: 1500,
    noAutoRollbackRate: pick([0, 0.2]),
    pauseRate: pick([0, 0.2]),
    rollbackRate: pick([0, 0.1]),
    cancelRate: pick([0, 0.05]),
    operatorIntervalMs: pick([100, 300]),
    leaderCrash,
    leaderCrashDelayMaxMs: pick([0, 5, 30]),
    leaderDownMsMax: pick([300, 1500]),
    startMsMax: pick([0, 50, 300]),
    stopMsMax: pick([0, 100]),
    healthFailRate: pick([0, 0.2]),
    extraSafetyMs: pick([20_000, 40_000]),
  };
  return { sim, placement, updates };
}

export function formatUpdatesOptions(options: UpdatesRunOptions): string {
  const parts = Object.entries(options.updates).map(([key, value]) => `${key}=${String(value)}`);
  return `${formatPlacementOptions({ sim: options.sim, placement: options.placement })} updates: ${parts.join(' ')}`;
}
