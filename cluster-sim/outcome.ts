/**
 * What a run returns, and the parts of judging it that both targets share: the liveness condition
 * after the heal, the linearizability verdict on the client history, the run's counters and its
 * result. The targets differ only in what runs on a node (simulation.ts drives the bare Raft core;
 * runtime/simulation.ts runs the node runtime).
 */
import type { Status } from '../src/raft/types.ts';
import type { InvariantChecker, Violation } from './checkers/invariants.ts';
import { checkLinearizable, type HistoryOp, type Model } from './checkers/linearizability.ts';
import type { DiskStats, SimDisk } from './disk.ts';
import type { EventQueue } from './events.ts';
import type { FaultStats } from './faults.ts';
import type { NetworkStats } from './network.ts';
import type { SimOptions } from './options.ts';
import type { Trace } from './trace.ts';
import type { WorkloadStats } from './workload.ts';

/** Everything a run counted. All of it is deterministic for a given seed. */
export interface SimStats {
  simTimeMs: number;
  events: number;
  traceEvents: number;
  network: NetworkStats;
  disk: DiskStats;
  faults: FaultStats;
  workload: WorkloadStats;
  maxTerm: number;
  maxCommit: number;
  snapshotsTaken: number;
  /** Snapshots a node received from its leader and installed (the catch-up path). */
  snapshotsInstalled: number;
  /** Simulated ms from the heal to a leader plus client progress; undefined if never reached. */
  livenessMs: number | undefined;
  linearizability: 'ok' | 'violation' | 'unknown' | 'skipped';
  /** Why the verdict is "unknown": which model ran out of search budget, and what a weaker one said. */
  linearizabilityNote: string;
  historyOps: number;
}

/** The outcome of one run. */
export interface SimResult {
  readonly options: SimOptions;
  /** Empty when every checker passed. The run stops at the first safety violation. */
  readonly violations: readonly Violation[];
  readonly stats: SimStats;
  /** Digest of every traced event: equal for two runs of one seed. */
  readonly traceDigest: string;
  /** The last events before the end of the run (filled when there is a violation). */
  readonly trace: readonly string[];
}

export interface RunHooks {
  /** Receives every trace event as a line while the run goes (for --verbose). */
  readonly verbose?: (line: string) => void;
  /** How many trace lines a failed run returns (default 30). */
  readonly traceLines?: number;
}

/** Linearizability search budget per key; past it the verdict is "unknown", not a violation. */
export const LINEARIZABILITY_STEPS_PER_KEY_MAX = 2_000_000;
/** Recent trace events kept for a failure report. */
export const TRACE_CAPACITY = 512;

/** A node as the judging code sees it, on either target. */
export interface JudgedNode {
  readonly id: number;
  readonly disk: SimDisk;
  status(): Status | undefined;
}

/** The pieces of a run that `collectStats` reads. */
export interface RunParts {
  readonly queue: EventQueue;
  readonly trace: Trace;
  readonly network: { readonly stats: NetworkStats };
  readonly faults: { readonly stats: FaultStats };
  readonly workload: { readonly stats: WorkloadStats };
  readonly nodes: readonly JudgedNode[];
  readonly counters: { readonly snapshotsTaken: number; readonly snapshotsInstalled: number };
}

/** The liveness goal after the heal: a leader, and every client's worth of new operations, one of them a write. */
export function livenessReached(options: SimOptions, progress: { operations: number; writes: number }, nodes: readonly JudgedNode[]): boolean {
  return progress.writes >= 1 && progress.operations >= options.clients && nodes.some((node) => node.status()?.role === 'leader');
}

/** The liveness violation's message. */
export function livenessFailure(options: SimOptions, progress: { operations: number; writes: number }, nodes: readonly JudgedNode[]): string {
  return (
    `no leader with client progress within ${options.livenessTicksMax} ticks of the heal ` +
    `(ops completed since heal: ${progress.operations}, writes: ${progress.writes}); nodes: ${describeNodes(nodes)}`
  );
}

/** One line per node: role, term, indexes, membership and (on a leader) its peers' progress. */
export function describeNodes(nodes: readonly JudgedNode[]): string {
  return nodes
    .map((node) => {
      const s = node.status();
      if (s === undefined) return `n${node.id}: down`;
      const progress = s.progress.map((p) => `${p.id}:${p.state} match=${p.match} next=${p.next} inflight=${p.inflightCount}`).join(', ');
      return `n${node.id}: ${s.role} term=${s.term} leader=${s.leader} commit=${s.commit} applied=${s.applied} last=${s.lastIndex} voters=${s.confState.voters.join(',')} learners=${s.confState.learners.join(',')}${progress === '' ? '' : ` progress=[${progress}]`}`;
    })
    .join('; ');
}

/**
 * Checks the whole client history against `models`, strongest first: a weaker model runs only when
 * the search under the stronger one ran out of budget, so that a violation it can see is still
 * reported. A violation goes to the checker; "unknown" (every model out of budget, or the weaker
 * ones passing) to the trace.
 */
export function judgeHistory<I, O>(
  models: readonly Model<unknown, I, O>[],
  history: readonly HistoryOp<I, O>[],
  checker: InvariantChecker,
  trace: Trace,
  nowMs: number,
): Pick<SimStats, 'linearizability' | 'linearizabilityNote'> {
  const unknown: string[] = [];
  for (const [rank, model] of models.entries()) {
    const label = models.length === 1 ? '' : `model ${rank + 1} of ${models.length}: `;
    const verdict = checkLinearizable(model, history, { maxStepsPerKey: LINEARIZABILITY_STEPS_PER_KEY_MAX });
    if (verdict.ok === true && rank === 0) return { linearizability: 'ok', linearizabilityNote: '' };
    if (verdict.ok === true) {
      unknown.push(`${label}linearizable`);
      break;
    }
    if (verdict.ok === false) {
      checker.report('linearizability', `${label}key ${verdict.key}: ${verdict.reason}\n    ${verdict.trace.join('\n    ')}`);
      return { linearizability: 'violation', linearizabilityNote: '' };
    }
    unknown.push(`${label}key ${verdict.key}: ${verdict.reason}`);
  }
  const note = unknown.join('; ');
  trace.record(nowMs, 0, 'linearizability-unknown', note);
  return { linearizability: 'unknown', linearizabilityNote: note };
}

/** The run's counters. */
export function collectStats(parts: RunParts, judged: Pick<SimStats, 'livenessMs' | 'linearizability' | 'linearizabilityNote' | 'historyOps'>): SimStats {
  const disk: DiskStats = { writes: 0, bytesWritten: 0, lostWrites: 0, unsyncedLost: 0, tornWrites: 0, tornDetected: 0, folds: 0 };
  for (const node of parts.nodes) for (const key of Object.keys(disk) as (keyof DiskStats)[]) disk[key] += node.disk.stats[key];
  const statuses = parts.nodes.map((node) => node.status());
  return {
    simTimeMs: parts.queue.nowMs,
    events: parts.queue.eventsRun,
    traceEvents: parts.trace.eventCount,
    network: { ...parts.network.stats },
    disk,
    faults: { ...parts.faults.stats },
    workload: { ...parts.workload.stats },
    maxTerm: Math.max(0, ...statuses.map((s) => s?.term ?? 0)),
    maxCommit: Math.max(0, ...statuses.map((s) => s?.commit ?? 0)),
    snapshotsTaken: parts.counters.snapshotsTaken,
    snapshotsInstalled: parts.counters.snapshotsInstalled,
    ...judged,
  };
}

/** The result of a finished run. */
export function buildResult(options: SimOptions, checker: InvariantChecker, trace: Trace, stats: SimStats, hooks: RunHooks): SimResult {
  const failed = checker.violations.length > 0;
  return { options, violations: checker.violations, stats, traceDigest: trace.digest, trace: failed ? trace.last(hooks.traceLines ?? 30) : [] };
}

/** An error as one violation message. */
export function describeException(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}\n${error.stack ?? ''}` : String(error);
}
