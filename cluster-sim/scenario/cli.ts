/**
 * The command line the node-target scenarios share (`cluster-sim/<scenario>/cli.ts [--seeds N]
 * [--first-seed S] [--seed S] [--nodes 3|5] [--verbose] [--quiet]`): argument parsing and the seed
 * loop. A scenario's CLI names itself, draws and formats its options, runs one seed, folds each
 * result into its own totals and prints them; the loop prints the options, the per-seed summary
 * (`--quiet` keeps only progress lines and failures) and, for a failing seed, its violations, its
 * last events and the command that replays it.
 */
import { parseArgs } from 'node:util';
import { monotonicClock } from '../../src/platform/clock.ts';

const PROGRESS_EVERY_SEEDS = 50;

export interface ScenarioArgs {
  readonly nodes: 3 | 5;
  readonly seeds: readonly number[];
  readonly single: boolean;
  readonly quiet: boolean;
  readonly verbose: boolean;
}

export interface ScenarioSeedResult {
  readonly violations: readonly { readonly kind: string; readonly atMs: number; readonly message: string }[];
  readonly trace: readonly string[];
}

export interface ScenarioCli<O, R extends ScenarioSeedResult> {
  /** The folder under cluster-sim/, e.g. `updates`: names the usage and the replay command. */
  readonly scenario: string;
  draw(seed: number, nodes: 3 | 5): O;
  format(options: O): string;
  run(options: O, hooks: { verbose?: (line: string) => void }): Promise<R>;
  /** Folds one seed's result into the scenario's totals (prints nothing). */
  record(result: R, seed: number): void;
  /** The per-seed line, printed unless `--quiet`. */
  summarise(result: R, wallMs: number): string;
  /** The closing lines, after every seed ran; `wallS` is the whole run's real time. */
  report(args: ScenarioArgs, failed: number, wallS: number): void;
}

export function scenarioUsage(scenario: string): string {
  return `usage: npx tsx cluster-sim/${scenario}/cli.ts [--seeds N] [--first-seed S] [--seed S] [--nodes 3|5] [--verbose] [--quiet]`;
}

function fail(usage: string, message: string): never {
  console.error(`${message}\n${usage}`);
  process.exit(2);
}

function integer(usage: string, name: string, text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 0) fail(usage, `${name} must be a non-negative integer, got ${JSON.stringify(text)}`);
  return value;
}

/** Parses the process arguments; undefined after printing the usage for `--help`. Bad input exits 2. */
export function parseScenarioArgs(scenario: string): ScenarioArgs | undefined {
  const usage = scenarioUsage(scenario);
  const { values } = parseArgs({
    options: {
      seeds: { type: 'string' },
      'first-seed': { type: 'string' },
      seed: { type: 'string' },
      nodes: { type: 'string' },
      verbose: { type: 'boolean', default: false },
      quiet: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(usage);
    return undefined;
  }
  const nodes = integer(usage, '--nodes', values.nodes ?? '3');
  if (nodes !== 3 && nodes !== 5) fail(usage, '--nodes must be 3 or 5');
  const single = values.seed !== undefined;
  if (single && values.seeds !== undefined) fail(usage, '--seed and --seeds are exclusive');
  const first = integer(usage, '--first-seed', values['first-seed'] ?? '1');
  const seeds = single ? [integer(usage, '--seed', values.seed!)] : Array.from({ length: integer(usage, '--seeds', values.seeds ?? '100') }, (_, i) => first + i);
  return { nodes, seeds, single, quiet: values.quiet && !single, verbose: values.verbose };
}

/** Parses the arguments, runs every seed and sets the exit code (1 when any seed failed). */
export async function runScenarioCli<O, R extends ScenarioSeedResult>(cli: ScenarioCli<O, R>): Promise<void> {
  const args = parseScenarioArgs(cli.scenario);
  if (args === undefined) return;
  const { nodes, seeds, quiet } = args;
  const startedMs = monotonicClock.nowMs();
  let failed = 0;
  for (const [done, seed] of seeds.entries()) {
    const options = cli.draw(seed, nodes);
    if (!quiet) console.log(cli.format(options));
    const seedStartedMs = monotonicClock.nowMs();
    const result = await cli.run(options, args.verbose ? { verbose: (line) => console.log(line) } : {});
    const seedWallMs = monotonicClock.nowMs() - seedStartedMs;
    cli.record(result, seed);
    if (result.violations.length > 0) {
      failed++;
      if (quiet) console.log(cli.format(options));
      for (const v of result.violations) console.log(`VIOLATION ${v.kind} at ${v.atMs.toFixed(3)}ms (SEED=${seed}): ${v.message}`);
      console.log(`last ${result.trace.length} events:`);
      for (const line of result.trace) console.log(`  ${line}`);
      console.log(`replay: npx tsx cluster-sim/${cli.scenario}/cli.ts --seed ${seed} --nodes ${nodes} --verbose`);
    }
    if (!quiet) console.log(cli.summarise(result, seedWallMs));
    else if ((done + 1) % PROGRESS_EVERY_SEEDS === 0 || done + 1 === seeds.length) console.log(`[${String(done + 1).padStart(5)}/${seeds.length}] seeds ${seeds[0]}..${seed}: violations=${failed}`);
  }
  // Real time, read through src/platform: it measures the runner and never feeds a simulation.
  const wallS = (monotonicClock.nowMs() - startedMs) / 1000;
  cli.report(args, failed, wallS);
  process.exitCode = failed > 0 ? 1 : 0;
}
