/**
 * The `cutover` command line: the composition root. It parses arguments and hands off to a
 * command; nothing below src/cli imports it.
 */
import { Command, Option } from 'commander';
import path from 'node:path';
import { CutoverError } from '../util/errors.ts';
import { runLocalCluster } from './local-cluster.ts';
import { configFromEnv, readConfigFile, resolveNodeConfig, type RawNodeConfig } from './node-config.ts';
import { runNode } from './node-command.ts';

const program = new Command('cutover')
  .description('Cutover: zero-downtime rolling updates on a Raft cluster')
  .option('--debug', 'print stack traces on errors')
  .showHelpAfterError();

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
    if (!Number.isInteger(size) || size < 1 || size > 7) throw new CutoverError('INVALID_ARGUMENT', `--size must be 1..7, got ${opts.size}`);
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

try {
  await program.parseAsync(process.argv);
} catch (error) {
  const debug = program.opts<{ debug?: boolean }>().debug === true;
  if (error instanceof CutoverError) console.error(`cutover: ${error.message} [${error.code}]`);
  else console.error(`cutover: ${error instanceof Error ? error.message : String(error)}`);
  if (debug && error instanceof Error) console.error(error.stack);
  process.exit(error instanceof CutoverError && error.code === 'INVALID_ARGUMENT' ? 2 : 1);
}
