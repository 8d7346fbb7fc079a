/**
 * The options of the placement scenario, drawn from the seed on top of the node target's own
 * (`drawOptions`), from a separate random stream so that the node target's draws stay as they are.
 */
import { SeededRandom } from '../../src/util/random.ts';
import { drawOptions, formatOptions, type SimOptions } from '../options.ts';

/** What the placement scenario adds to a node-target run. Times are simulated milliseconds. */
export interface PlacementOptions {
  /** PlacementController settings. */
  readonly nodeDownAfterMs: number;
  readonly nodeInstancesMax: number;
  readonly recheckIntervalMs: number;
  /** Blueprints the operator writes, as `org.sim:app{i}/1.0.0` (one version each) or versions of one artifact. */
  readonly blueprints: number;
  /** Whether the blueprints are versions of one artifact (`org.sim:app/1.0.{i}`). */
  readonly oneArtifact: boolean;
  /** Largest instance count the operator asks for. */
  readonly instancesMax: number;
  /** Share of the operator's writes that set a perNodeMax, and that delete a blueprint. */
  readonly perNodeMaxRate: number;
  readonly deleteRate: number;
  /** Mean time between the operator's writes during the safety phase. */
  readonly operatorIntervalMeanMs: number;
  /** How often each node's fake instance reporter reconciles its `instance/` keys with its assignments. */
  readonly reportIntervalMs: number;
  /** Whether the liveness phase leaves one node down (it must then lose all its keys). */
  readonly keepOneDown: boolean;
  /** After convergence, how long nothing may change (no churn). */
  readonly stableMs: number;
}

/** A placement run: the node target's options plus the scenario's. */
export interface PlacementRunOptions {
  readonly sim: SimOptions;
  readonly placement: PlacementOptions;
}

/**
 * Draws both from `seed`. The safety phase is shortened to 10–20 s (the scenario's interest is in
 * crashes and heals, and a test runs many seeds). The KV client options are drawn but unused: the
 * scenario's only client is the blueprint operator.
 */
export function drawPlacementOptions(seed: number, nodes = 3): PlacementRunOptions {
  const random = new SeededRandom(seed ^ 0x91ace5);
  const pick = <T>(values: readonly T[]): T => values[random.nextInt(0, values.length)]!;
  const safetyPhaseMs = random.nextInt(10, 21) * 1000;
  const sim = drawOptions(seed, { nodes, target: 'node', overrides: { safetyPhaseMs } });
  const placement: PlacementOptions = {
    nodeDownAfterMs: pick([500, 1500, 3000]),
    nodeInstancesMax: pick([2, 4, 8, 64]),
    recheckIntervalMs: pick([50, 200, 500]),
    blueprints: random.nextInt(1, 5),
    oneArtifact: random.nextFloat() < 0.3,
    instancesMax: pick([3, 6, 12]),
    perNodeMaxRate: pick([0, 0.3]),
    deleteRate: pick([0, 0.1, 0.25]),
    operatorIntervalMeanMs: pick([200, 1000, 3000]),
    reportIntervalMs: pick([100, 300]),
    keepOneDown: random.nextFloat() < 0.5,
    stableMs: 2000,
  };
  return { sim, placement };
}

/** The node target's `SEED=…` line followed by the scenario's options. */
export function formatPlacementOptions(options: PlacementRunOptions): string {
  const parts = Object.entries(options.placement).map(([key, value]) => `${key}=${String(value)}`);
  return `${formatOptions(options.sim)} placement: ${parts.join(' ')}`;
}
