/**
 * The options of the slices scenario: the placement scenario's (`drawPlacementOptions`, which
 * draws the node target's own first) plus the instance lifecycle, the rolling-update stand-in and
 * the lag phase, from a separate random stream so that the other draws stay as they are. A few
 * drawn values are replaced: the snapshot settings (below) and the placement limits (more room
 * per node, smaller operator blueprints).
 *
 * Every seed of this scenario snapshots often: the snapshot threshold is 3–19 entries and at most
 * 10 entries are kept behind a snapshot, so a node kept behind a partition during the lag phase
 * needs a snapshot to catch up (and its routing table must follow the jump).
 */
import { SeededRandom } from '../../src/util/random.ts';
import type { SimOptions } from '../options.ts';
import { drawPlacementOptions, formatPlacementOptions, type PlacementOptions } from '../placement/options.ts';

/** What the slices scenario adds to a placement run. Times are simulated milliseconds. */
export interface SlicesOptions {
  /** Artifacts the rolling-update stand-in drives, `org.sim:svc{i}`. */
  readonly artifacts: number;
  /** Mean time between its writes while faults run. */
  readonly rolloutIntervalMeanMs: number;
  /** Most instances it asks for per version. */
  readonly versionInstancesMax: number;
  /** Share of its routing writes that are malformed (every table must ignore them alike). */
  readonly malformedRate: number;
  /** The in-memory slices: longest load, start(), stop() and health() in simulated ms (0: at once). */
  readonly loadMsMax: number;
  readonly startMsMax: number;
  readonly stopMsMax: number;
  readonly healthMsMax: number;
  /** Chance that one health() answers unhealthy; never `healthAttempts` times in a row. */
  readonly healthFailRate: number;
  /** InstanceManager settings. */
  readonly healthAttempts: number;
  readonly healthIntervalMs: number;
  readonly stoppedRetentionMs: number;
  /** Whether a lag phase runs after the safety phase: one node cut off until it needs a snapshot. */
  readonly lag: boolean;
  /** Longest the lag phase keeps its node cut off. */
  readonly lagMsMax: number;
  /** Route checks after convergence: this many weight periods of consecutive calls per node (4k calls for 1:3). */
  readonly routePeriods: number;
}

/** A slices run: the node target's options, the placement scenario's and this scenario's. */
export interface SlicesRunOptions {
  readonly sim: SimOptions;
  readonly placement: PlacementOptions;
  readonly slices: SlicesOptions;
}

/** Draws all three from `seed`. */
export function drawSlicesOptions(seed: number, nodes = 3): SlicesRunOptions {
  const placementRun = drawPlacementOptions(seed, nodes);
  const random = new SeededRandom(seed ^ 0x51ce5);
  const pick = <T>(values: readonly T[]): T => values[random.nextInt(0, values.length)]!;
  const sim: SimOptions = { ...placementRun.sim, snapshotThresholdEntries: random.nextInt(3, 20), compactionMarginEntries: pick([1, 2, 10]) };
  // Room for the rollout's versions next to the operator's blueprints, so that most seeds reach
  // the route check (both versions ACTIVE); 4 per node still runs out of room at times.
  const placement: PlacementOptions = { ...placementRun.placement, nodeInstancesMax: pick([4, 8, 64]), instancesMax: pick([2, 4, 6]) };
  const slices: SlicesOptions = {
    artifacts: random.nextInt(1, 3),
    rolloutIntervalMeanMs: pick([100, 300, 1000]),
    versionInstancesMax: pick([2, 4]),
    malformedRate: pick([0, 0.05]),
    loadMsMax: pick([0, 30]),
    startMsMax: pick([0, 50, 400]),
    stopMsMax: pick([0, 100]),
    healthMsMax: pick([0, 20, 200]),
    healthFailRate: pick([0, 0.3]),
    healthAttempts: 3,
    healthIntervalMs: pick([50, 200]),
    stoppedRetentionMs: pick([300, 2000]),
    lag: random.nextFloat() < 0.8,
    lagMsMax: pick([4000, 8000]),
    routePeriods: 250,
  };
  return { sim, placement, slices };
}

/** The placement scenario's line followed by this scenario's options. */
export function formatSlicesOptions(options: SlicesRunOptions): string {
  const parts = Object.entries(options.slices).map(([key, value]) => `${key}=${String(value)}`);
  return `${formatPlacementOptions({ sim: options.sim, placement: options.placement })} slices: ${parts.join(' ')}`;
}
