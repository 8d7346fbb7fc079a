/**
 * Command-line options of `npm run bench:kv`. Every setting has a bound; a bad one is refused at
 * start-up with a message that names it.
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import type { SystemName } from './kv-client.ts';
import { boundedNumber, type Mix, type NumberLimits } from './loadgen-options.ts';

/** One benchmark run's settings. */
export interface BenchOptions {
  readonly clients: number;
  /** Interleaved rounds of every (system, mix); the report shows the median round. */
  readonly rounds: number;
  readonly measureSeconds: number;
  readonly warmupSeconds: number;
  readonly keyspace: number;
  readonly keyBytes: number;
  readonly valueBytes: number;
  readonly requestTimeoutMs: number;
  /** kill -9 trials per system; 0 skips failover. */
  readonly failoverTrials: number;
  /** Put load before each kill (the load generator's warm-up in failover mode). */
  readonly failoverWarmupSeconds: number;
  /**
   * Request deadline during failover trials. A request that reached a member without a leader
   * blocks its client until this deadline, so it bounds how late a client can notice the new
   * leader; with many clients whose deadlines are spread out, the first retry after recovery
   * comes about deadline ÷ clients later. Short enough not to hide the failover, long enough for
   * any healthy request.
   */
  readonly failoverTimeoutMs: number;
  readonly seed: number;
  readonly systems: readonly SystemName[];
  readonly mixes: readonly Mix[];
  /** all = each request to a random member (followers forward); leader = every request to the leader. */
  readonly route: 'all' | 'leader';
  /** Parent directory of the clusters' temporary data roots. */
  readonly dataParent: string;
  /** When set, Cutover nodes run with `--cpu-prof` and write their profiles here. */
  readonly cpuProfileDir: string | undefined;
}

const USAGE = `usage: npm run bench:kv -- [--clients N] [--rounds N] [--seconds S] [--warmup S] [--keyspace N]
                       [--key-bytes N] [--value-bytes N] [--timeout-ms MS]
                       [--failover-trials N] [--failover-warmup S] [--failover-timeout-ms MS] [--seed N]
                       [--systems cutover,etcd] [--mixes put,mixed] [--route all|leader]
                       [--data-dir DIR] [--cpu-prof DIR]`;

const NUMBERS: Record<string, readonly [string, NumberLimits]> = {
  clients: ['64', [1, 4096, true]],
  rounds: ['3', [1, 20, true]],
  seconds: ['10', [0.1, 3600, false]],
  warmup: ['3', [0, 600, false]],
  keyspace: ['10000', [1, 100_000_000, true]],
  'key-bytes': ['8', [8, 1024, true]],
  'value-bytes': ['256', [1, 1024 * 1024, true]],
  'timeout-ms': ['5000', [1, 120_000, true]],
  'failover-trials': ['5', [0, 100, true]],
  'failover-warmup': ['2', [0.1, 600, false]],
  'failover-timeout-ms': ['1000', [10, 120_000, true]],
  seed: ['1', [0, 0xffff_ffff, true]],
};

/** Thrown by `parseBenchOptions` for `--help`; its message is the usage text. */
export class HelpRequested extends Error {
  constructor() {
    super(USAGE);
    this.name = 'HelpRequested';
  }
}

/** Parses `argv` (without node and script); throws an Error naming the bad option. */
export function parseBenchOptions(argv: readonly string[]): BenchOptions {
  const numberOptions = Object.fromEntries(Object.entries(NUMBERS).map(([name, [fallback]]) => [name, { type: 'string', default: fallback } as const]));
  const { values } = parseArgs({
    args: [...argv],
    options: {
      ...numberOptions,
      systems: { type: 'string', default: 'cutover,etcd' },
      mixes: { type: 'string', default: 'put,mixed' },
      route: { type: 'string', default: 'all' },
      'data-dir': { type: 'string', default: os.tmpdir() },
      'cpu-prof': { type: 'string' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help === true) throw new HelpRequested();
  const text = values as Record<string, unknown>;
  const num = (name: string): number => boundedNumber(`--${name}`, String(text[name]), NUMBERS[name]![1]);
  return {
    clients: num('clients'), rounds: num('rounds'), measureSeconds: num('seconds'), warmupSeconds: num('warmup'),
    keyspace: num('keyspace'), keyBytes: num('key-bytes'), valueBytes: num('value-bytes'),
    requestTimeoutMs: num('timeout-ms'), failoverTrials: num('failover-trials'), failoverWarmupSeconds: num('failover-warmup'),
    failoverTimeoutMs: num('failover-timeout-ms'),
    seed: num('seed'),
    systems: listOf('--systems', String(values.systems), ['cutover', 'etcd'] as const),
    mixes: listOf('--mixes', String(values.mixes), ['put', 'mixed'] as const),
    route: oneRoute(String(values.route)),
    dataParent: String(values['data-dir']),
    cpuProfileDir: typeof values['cpu-prof'] === 'string' ? values['cpu-prof'] : undefined,
  };
}

function listOf<T extends string>(name: string, text: string, allowed: readonly T[]): T[] {
  const items = text.split(',').filter((item) => item !== '');
  if (items.length === 0 || items.some((item) => !(allowed as readonly string[]).includes(item))) {
    throw new Error(`${name}: give a comma-separated subset of ${allowed.join(',')}, got '${text}'`);
  }
  return [...new Set(items)] as T[];
}

function oneRoute(text: string): 'all' | 'leader' {
  if (text !== 'all' && text !== 'leader') throw new Error(`--route: must be all or leader, got '${text}'`);
  return text;
}
