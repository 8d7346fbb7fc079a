/**
 * The `cutover` command line: the composition root. It parses arguments and hands off to a
 * command; nothing below src/cli imports it.
 *
 * `node` and `local` run cluster nodes; every other command is an operator command that talks to
 * a cluster over the management API, learned by gRPC reflection. The node runtime is imported only
 * by the commands that run it, so an operator command starts without loading it.
 */
import { Command, CommanderError, Option } from 'commander';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CutoverError } from '../util/errors.ts';
import { EXIT, UsageError, errorLine, exitCodeOf } from './cli-errors.ts';
import { registerClusterCommands } from './commands/cluster-commands.ts';
import { registerCompletionCommand } from './commands/completion-command.ts';
import { DEFAULT_ENDPOINTS, DEFAULT_TIMEOUT } from './commands/context.ts';
import { registerDescribeCommands } from './commands/describe-commands.ts';
import { registerEventsCommands } from './commands/events-commands.ts';
import { registerHealthCommands } from './commands/health-commands.ts';
import { registerNotifyCommands } from './commands/notify-commands.ts';
import { registerKvCommands } from './commands/kv-commands.ts';
import { registerSliceCommands } from './commands/slice-commands.ts';
import { registerUpdateCommands } from './commands/update-commands.ts';
import type { RawNodeConfig } from './node-config.ts';

const program = new Command('cutover')
  .description('Cutover: zero-downtime rolling updates on a Raft cluster')
  .addOption(new Option('-e, --endpoints <list>', 'cluster nodes to talk to (host:port,…), tried in order').env('CUTOVER_ENDPOINTS').default(DEFAULT_ENDPOINTS, 'the local cluster, 127.0.0.1:7001-7003'))
  .addOption(new Option('--timeout <duration>', 'bound on each command\'s calls, retries included (500ms, 10s, 2m)').default(DEFAULT_TIMEOUT))
  .addOption(new Option('-o, --output <format>', 'table, json or yaml').choices(['table', 'json', 'yaml']).default('table'))
  .option('--no-color', 'no colour (also off when stdout is not a terminal or NO_COLOR is set)')
  .option('--debug', 'print connection decisions and stack traces on errors')
  // Commands listed by name: their arguments are in their own help, and the list fits 80 columns.
  .configureHelp({ showGlobalOptions: true, subcommandTerm: (command) => command.name() })
  // Usage errors exit 2, not commander's 1 (see cli-errors.ts).
  .exitOverride();

program.commandsGroup('Operate a cluster:');
registerUpdateCommands(program);
registerEventsCommands(program);
registerSliceCommands(program);
registerHealthCommands(program);
registerNotifyCommands(program);
registerClusterCommands(program);
registerKvCommands(program);
registerDescribeCommands(program);
registerCompletionCommand(program);

program.commandsGroup('Run nodes:');

program
  .command('local')
  .description('run a local cluster of node processes on loopback (the main command: npm start)')
  .addOption(new Option('--size <n>', 'number of nodes').default('3'))
  .addOption(new Option('--data-dir <dir>', 'where node data and logs go').default(path.join('.cutover', 'local')))
  .addOption(new Option('--base-port <port>', 'node i serves API and peers on base-port + i - 1').default('7001'))
  .addOption(new Option('--metrics-base-port <port>', 'node i serves /metrics on this + i - 1').default('9101'))
  .addOption(new Option('--log-level <level>', 'node log level').default('info'))
  .action(async (opts: { size: string; dataDir: string; basePort: string; metricsBasePort: string; logLevel: string }) => {
    const size = Number(opts.size);
    if (!Number.isInteger(size) || size < 1 || size > 7) throw new UsageError(`--size must be 1..7, got ${opts.size}`, 'for example `--size 3`');
    const { runLocalCluster } = await import('./local-cluster.ts');
    await runLocalCluster({ size, dataRoot: path.resolve(opts.dataDir), basePort: Number(opts.basePort), metricsBasePort: Number(opts.metricsBasePort), host: '127.0.0.1', logLevel: opts.logLevel });
  });

program
  .command('node')
  .description('run one cluster node (settings from --config, CUTOVER_* environment, then flags)')
  .option('--config <file>', 'JSON or YAML config file')
  .option('--id <id>', 'this node\'s id (a positive integer)')
  .option('--data-dir <dir>', 'data directory (LevelDB)')
  .option('--listen <host:port>', 'address for peers and the management API')
  .option('--peers <list>', 'initial members: id=host:port,…')
  .option('--metrics-listen <host:port>', 'address of /metrics, /healthz and /readyz')
  .option('--log-level <level>', 'trace, debug, info, warn, error or fatal')
  .option('--no-forward-writes', 'answer NOT_LEADER on a follower instead of forwarding writes')
  .option('--join', 'join an existing cluster as a learner (add it first with Cluster/AddMember)')
  .option('--slices <settings>', 'slice settings as key=value,… (artifactBytesMax, nodeDownAfterMs, nodeInstancesMax, invokeTimeoutMs, drainTimeoutMs)')
  .action(async (opts: Record<string, unknown>) => {
    const { configFromEnv, readConfigFile, resolveNodeConfig } = await import('./node-config.ts');
    const { runNode } = await import('./node-command.ts');
    const fromFile: RawNodeConfig = typeof opts.config === 'string' ? readConfigFile(opts.config) : {};
    const sliceFlags = typeof opts.slices === 'string' ? parseKeyValues('--slices', opts.slices) : undefined;
    if (sliceFlags !== undefined) fromFile.slices = { ...(typeof fromFile.slices === 'object' ? fromFile.slices : {}), ...sliceFlags };
    const fromFlags: RawNodeConfig = { id: opts.id, dataDir: opts.dataDir, listen: opts.listen, peers: opts.peers, metricsListen: opts.metricsListen, logLevel: opts.logLevel, forwardWrites: opts.forwardWrites === false ? false : undefined, join: opts.join === true ? true : undefined };
    await runNode(resolveNodeConfig(fromFile, configFromEnv(process.env), fromFlags));
    // Shut down in order already; idle gRPC channels must not keep the process alive.
    process.exit(0);
  });

/** `a=1,b=2` → { a: '1', b: '2' }; values are validated by the config resolver. */
function parseKeyValues(flag: string, text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of text.split(',').filter((s) => s.trim() !== '')) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw new CutoverError('INVALID_ARGUMENT', `${flag} takes key=value,…; got ${JSON.stringify(item)}`);
    out[item.slice(0, eq).trim()] = item.slice(eq + 1).trim();
  }
  return out;
}

let runsNodes = false;
program.hook('preAction', (_program, command) => {
  runsNodes = command.name() === 'node' || command.name() === 'local';
  // Which build runs (dist/ or the sources through tsx; see bin/cutover.js).
  if (program.opts<{ debug?: boolean }>().debug === true) console.error(`cutover: running ${fileURLToPath(import.meta.url)} on node ${process.version}`);
});

/** Usage errors on one line, with where to look: `cutover: <problem> — see `cutover kv get --help``. */
function configureErrors(command: Command, path: string): void {
  command.configureOutput({ outputError: (text, write) => write(`cutover: ${text.trim().replace(/^error: /, '')} — see \`${path} --help\`\n`) });
  for (const sub of command.commands) configureErrors(sub, `${path} ${sub.name()}`);
}
configureErrors(program, 'cutover');

// No top-level await: the bundle (scripts/build-cli.mjs) is CommonJS, so that V8 can cache its code.
void program.parseAsync(process.argv).then(
  // Operator commands are done once their action returns; a node command runs until stopped.
  () => (runsNodes ? undefined : process.exit(process.exitCode ?? EXIT.OK)),
  (error: unknown) => process.exit(reportError(error)),
);

/** Prints one line for `error` (a stack too with --debug) and returns the exit code. */
function reportError(error: unknown): number {
  if (error instanceof CommanderError) {
    // Commander has printed its message already. Help asked for is a success; help shown because
    // a subcommand is missing (exit code 1 from commander) is a usage error.
    if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version') return EXIT.OK;
    return error.code === 'commander.help' && error.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
  }
  const debug = program.opts<{ debug?: boolean }>().debug === true || process.argv.includes('--debug');
  console.error(`cutover: ${errorLine(error)}`);
  if (debug && error instanceof Error) console.error(error.stack);
  // A node's settings refused at start-up are a usage error; a cluster's refusal is not.
  if (error instanceof CutoverError && error.code === 'INVALID_ARGUMENT' && runsNodes) return EXIT.USAGE;
  return exitCodeOf(error);
}
