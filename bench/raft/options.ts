/**
 * Command-line options of the Raft core benchmark. Every setting has a bound, and a bad one is
 * rejected at start-up with a message that names it.
 */
import { parseArgs } from 'node:util';

/** One benchmark run's settings. */
export interface BenchOptions {
  /** Measured wall time per configuration. */
  readonly measureSeconds: number;
  /** Independent runs per configuration (fresh cluster each); the table shows the median. */
  readonly runs: number;
  /** Unmeasured wall time per configuration before measuring (JIT, caches, steady pipeline). */
  readonly warmupSeconds: number;
  /** Payload bytes of every proposed entry (the core adds a fixed 24-byte header in flow control). */
  readonly entryBytes: number;
  readonly seed: number;
  /** Cluster sizes to run, e.g. [3, 5]. */
  readonly nodeCounts: readonly number[];
  /** Closed-loop proposer counts to run, e.g. [1, 64]. */
  readonly proposerCounts: readonly number[];
  /** Each node snapshots and compacts its log every this many applied entries; 0 never does. */
  readonly compactEveryEntries: number;
  /** Entries kept behind a compaction point, so a slightly slow follower needs no snapshot. */
  readonly compactRetainEntries: number;
  /** Real milliseconds per Raft tick (heartbeats and check-quorum run as in production). */
  readonly tickIntervalMs: number;
}

const USAGE = `usage: npm run bench:raft -- [--seconds S] [--warmup S] [--runs N] [--entry-bytes N] [--seed N]
                          [--nodes 3,5] [--proposers 1,64] [--compact-every N] [--compact-retain N]
                          [--tick-ms MS]`;

const LIMITS = {
  seconds: [0.1, 600],
  warmup: [0, 600],
  runs: [1, 100],
  entryBytes: [1, 1024 * 1024],
  nodes: [1, 9],
  proposers: [1, 4096],
  compactEvery: [0, 100_000_000],
  compactRetain: [0, 100_000_000],
  tickMs: [1, 10_000],
} as const;

/** Parses `argv` (without node and script); throws an Error naming the bad option. */
export function parseBenchOptions(argv: readonly string[]): BenchOptions {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      seconds: { type: 'string', default: '3' },
      warmup: { type: 'string', default: '1' },
      runs: { type: 'string', default: '1' },
      'entry-bytes': { type: 'string', default: '64' },
      seed: { type: 'string', default: '1' },
      nodes: { type: 'string', default: '3,5' },
      proposers: { type: 'string', default: '1,64' },
      'compact-every': { type: 'string', default: '10000' },
      'compact-retain': { type: 'string', default: '5000' },
      'tick-ms': { type: 'string', default: '100' },
      // Handled by the caller (see wantsHelp); declared so that strict parsing accepts it.
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  return {
    measureSeconds: numberOption('--seconds', values.seconds, LIMITS.seconds, false),
    warmupSeconds: numberOption('--warmup', values.warmup, LIMITS.warmup, false),
    runs: numberOption('--runs', values.runs, LIMITS.runs, true),
    entryBytes: numberOption('--entry-bytes', values['entry-bytes'], LIMITS.entryBytes, true),
    seed: numberOption('--seed', values.seed, [0, 0xffff_ffff], true),
    nodeCounts: listOption('--nodes', values.nodes, LIMITS.nodes),
    proposerCounts: listOption('--proposers', values.proposers, LIMITS.proposers),
    compactEveryEntries: numberOption('--compact-every', values['compact-every'], LIMITS.compactEvery, true),
    compactRetainEntries: numberOption('--compact-retain', values['compact-retain'], LIMITS.compactRetain, true),
    tickIntervalMs: numberOption('--tick-ms', values['tick-ms'], LIMITS.tickMs, false),
  };
}

/** True when the command line asks for the usage text. */
export function wantsHelp(argv: readonly string[]): boolean {
  return argv.includes('--help');
}

/** The usage text, for `--help` and errors. */
export function benchUsage(): string {
  return USAGE;
}

function numberOption(name: string, text: string, [min, max]: readonly [number, number], integer: boolean): number {
  const value = Number(text);
  const valid = text.trim() !== '' && Number.isFinite(value) && (!integer || Number.isInteger(value));
  if (!valid || value < min || value > max) {
    throw new Error(`${name}: must be ${integer ? 'an integer' : 'a number'} in [${min}, ${max}], got '${text}'`);
  }
  return value;
}

function listOption(name: string, text: string, limits: readonly [number, number]): number[] {
  const items = text.split(',').map((item) => numberOption(name, item, limits, true));
  if (items.length === 0 || items.length > 16) throw new Error(`${name}: give 1 to 16 comma-separated values, got '${text}'`);
  return items;
}
