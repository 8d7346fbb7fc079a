/**
 * Every knob of a simulated run, drawn from its seed ("swarm testing": each seed gets its own mix
 * of faults, so some seeds hammer one fault while others never see it). The run prints all of
 * them, and a run is fully determined by them: `runSimulation(drawOptions(seed))` replays a seed.
 */
import { SeededRandom } from '../src/util/random.ts';

/** Deliberately broken variants, used to prove the checkers can fail. */
export const UNSAFE_VARIANTS = ['commit-previous-term', 'forget-vote', 'stale-read'] as const;
export type UnsafeVariant = (typeof UNSAFE_VARIANTS)[number];

/**
 * What runs on each simulated node: `node`, the node runtime itself (`CutoverNode` with its KV
 * store, cluster-sim/runtime/), or `raft`, the simulator's own driver of the bare Raft core
 * (node.ts, with a register state machine).
 */
export const SIM_TARGETS = ['node', 'raft'] as const;
export type SimTarget = (typeof SIM_TARGETS)[number];

/** All options of one run. Times are simulated milliseconds; rates are probabilities. */
export interface SimOptions {
  readonly seed: number;
  readonly nodes: number;
  readonly target: SimTarget;
  /** A broken variant, or 'none' for the real system. */
  readonly unsafe: UnsafeVariant | 'none';
  // Raft and the node driver.
  readonly tickMs: number;
  /** Each node's tick interval is off by up to this fraction (its clock drifts). */
  readonly tickDriftFraction: number;
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  readonly maxSizePerMsgBytes: number;
  readonly maxInflightMsgs: number;
  /** The leader drops proposals past this many uncommitted bytes (bounds a cut-off leader's backlog). */
  readonly maxUncommittedEntriesBytes: number;
  readonly snapshotThresholdEntries: number;
  // Network between nodes.
  readonly latencyMinMs: number;
  /** Mean of the exponential part of the delay, added to the minimum: messages reorder. */
  readonly latencyMeanMs: number;
  readonly latencySpikeRate: number;
  readonly latencySpikeMaxMs: number;
  readonly lossRate: number;
  readonly duplicateRate: number;
  // Clients and their links.
  readonly clients: number;
  readonly keys: number;
  readonly clientLossRate: number;
  readonly thinkMsMax: number;
  readonly requestTimeoutMs: number;
  /** A client gives an operation up (no reply recorded) after this long. */
  readonly operationDeadlineMs: number;
  readonly getWeight: number;
  readonly putWeight: number;
  readonly casWeight: number;
  // Disk.
  readonly diskWriteMinMs: number;
  readonly diskWriteMaxMs: number;
  /** Chance that a write in flight when its node crashes is left torn on disk. */
  readonly tornWriteRate: number;
  // Faults.
  readonly faultIntervalMeanMs: number;
  readonly partitionWeight: number;
  readonly clogWeight: number;
  readonly crashWeight: number;
  readonly transferWeight: number;
  readonly membershipWeight: number;
  readonly partitionDurationMaxMs: number;
  readonly clogDurationMaxMs: number;
  readonly downtimeMaxMs: number;
  // Phases.
  readonly safetyPhaseMs: number;
  readonly livenessTicksMax: number;
  /** Whether the liveness phase restarts every node, not only the crashed ones. */
  readonly livenessFullRestart: boolean;
  // The node target only (the raft target ignores them).
  /** Weight of deletes in the operation mix. */
  readonly deleteWeight: number;
  /** The node's own deadline for a proposal or a linearizable read (NodeSettings.requestTimeoutMs). */
  readonly nodeRequestTimeoutMs: number;
  /** Entries a node keeps behind its snapshot (NodeSettings.compactionMarginEntries). */
  readonly compactionMarginEntries: number;
  /** Share of the crash faults that are graceful stops (`CutoverNode.stop()`) instead. */
  readonly gracefulStopRate: number;
}

/** What a caller may fix before the rest is drawn. */
export interface DrawRequest {
  readonly nodes?: number;
  /** Default 'node': the node runtime is the product. */
  readonly target?: SimTarget;
  readonly unsafe?: UnsafeVariant | 'none';
  readonly overrides?: Partial<SimOptions>;
}

/** Draws every option from `seed`. The same seed and request always give the same options. */
export function drawOptions(seed: number, request: DrawRequest = {}): SimOptions {
  const random = new SeededRandom(seed ^ 0x0b710115);
  const pick = <T>(values: readonly T[]): T => values[random.nextInt(0, values.length)]!;
  const chance = (p: number): boolean => random.nextFloat() < p;
  const between = (min: number, max: number): number => round(min + random.nextFloat() * (max - min));
  const unsafe = request.unsafe ?? 'none';
  const target = request.target ?? 'node';
  const drawn: SimOptions = {
    seed,
    nodes: request.nodes ?? 3,
    target,
    unsafe,
    tickMs: 10,
    tickDriftFraction: pick([0, 0.01, 0.05]),
    electionTicks: pick([10, 10, 15]),
    heartbeatTicks: pick([1, 2, 3]),
    preVote: chance(0.8),
    checkQuorum: chance(0.8),
    maxSizePerMsgBytes: pick([1, 256, 4096, 1 << 20]),
    maxInflightMsgs: pick([1, 4, 64, 256]),
    maxUncommittedEntriesBytes: pick([2048, 16384, 1 << 26]),
    snapshotThresholdEntries: chance(0.4) ? random.nextInt(3, 20) : random.nextInt(50, 500),
    latencyMinMs: between(0.2, 3),
    latencyMeanMs: between(0.5, 15),
    latencySpikeRate: pick([0, 0.001, 0.01]),
    latencySpikeMaxMs: between(50, 400),
    lossRate: pick([0, 0, 0.01, 0.05, 0.15]),
    duplicateRate: pick([0, 0.01, 0.05]),
    clients: random.nextInt(3, 7),
    keys: random.nextInt(2, 5),
    clientLossRate: pick([0, 0.01, 0.05]),
    thinkMsMax: pick([0, 10, 50]),
    requestTimeoutMs: random.nextInt(100, 400),
    operationDeadlineMs: random.nextInt(1000, 8000),
    getWeight: random.nextInt(1, 5),
    putWeight: random.nextInt(1, 5),
    casWeight: random.nextInt(0, 4),
    diskWriteMinMs: between(0.05, 1),
    diskWriteMaxMs: between(1, 8),
    tornWriteRate: pick([0, 0.5, 1]),
    faultIntervalMeanMs: pick([100, 300, 1000, 3000]),
    partitionWeight: pick([0, 1, 3]),
    clogWeight: pick([0, 1, 2]),
    crashWeight: pick([0, 1, 3]),
    transferWeight: pick([0, 1]),
    membershipWeight: request.nodes === 5 ? pick([0, 1, 2]) : pick([0, 0, 1]),
    partitionDurationMaxMs: random.nextInt(200, 5000),
    clogDurationMaxMs: random.nextInt(100, 3000),
    downtimeMaxMs: random.nextInt(50, 5000),
    safetyPhaseMs: random.nextInt(20, 41) * 1000,
    livenessTicksMax: 1500,
    livenessFullRestart: chance(0.3),
    // Drawn last, so that adding them left the raft target's draws (and its seeds' runs) unchanged.
    deleteWeight: random.nextInt(0, 3),
    nodeRequestTimeoutMs: pick([200, 1000, 5000]),
    compactionMarginEntries: pick([1, 2, 10, 100]),
    gracefulStopRate: pick([0, 0.2, 0.5]),
  };
  return { ...drawn, ...unsafeProfile(unsafe), ...targetProfile(target), ...request.overrides, seed };
}

/**
 * The node runtime always runs Raft with pre-vote and check-quorum on (NodeSettings has no switch
 * for them), so its runs say so; the raft target keeps the drawn values.
 */
function targetProfile(target: SimTarget): Partial<SimOptions> {
  return target === 'node' ? { preVote: true, checkQuorum: true } : {};
}

/**
 * Fault settings that make a broken variant trip within a few hundred seeds. They only tilt the
 * drawn options toward the faults each bug needs; the checkers are the same as for real runs.
 */
function unsafeProfile(unsafe: UnsafeVariant | 'none'): Partial<SimOptions> {
  switch (unsafe) {
    case 'none':
      return {};
    case 'commit-previous-term':
      // Figure 8 needs an old-term entry counted onto a majority while its leader's no-op is not,
      // then a rival leader from a newer term: one entry per message, many crashes and elections.
      return { maxSizePerMsgBytes: 1, maxInflightMsgs: 1, crashWeight: 3, partitionWeight: 3, faultIntervalMeanMs: 60, downtimeMaxMs: 300, latencyMeanMs: 10, preVote: false, checkQuorum: false };
    case 'forget-vote':
      // Two candidates in one term, and a voter that restarts between their requests.
      return { crashWeight: 5, partitionWeight: 1, clogWeight: 0, faultIntervalMeanMs: 40, downtimeMaxMs: 30, latencyMeanMs: 30, preVote: false, checkQuorum: false, electionTicks: 10 };
    case 'stale-read':
      return { partitionWeight: 3, faultIntervalMeanMs: 300 };
  }
}

/** `SEED=<seed> nodes=<n> key=value ...`: one line with every option, in declaration order. */
export function formatOptions(options: SimOptions): string {
  const parts = [`SEED=${options.seed}`];
  for (const [key, value] of Object.entries(options)) if (key !== 'seed') parts.push(`${key}=${String(value)}`);
  return parts.join(' ');
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}
