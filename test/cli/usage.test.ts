/**
 * The CLI without a cluster: help for every command with its flags and defaults, usage errors
 * (exit 2, one line), an unreachable cluster (exit 3, one line, a stack only with --debug), and
 * the completion scripts.
 */
import { spawnSync } from 'node:child_process';
import test from 'ava';
import { freePort } from '../../src/platform/wait.ts';
import { CliRunner } from './cli-harness.ts';

let cli: CliRunner;

test.before(async () => {
  // Nothing listens on a port that was just free: every command that connects finds no cluster.
  cli = new CliRunner(`127.0.0.1:${await freePort()}`);
});

test.after.always(() => cli?.dispose());

/** Every command that does something, with the flags (and defaults) its help must show. */
const COMMANDS: [path: string, shows: string[]][] = [
  ['slice publish', []],
  ['slice list', []],
  ['slice deploy', ['--instances <n>', '(default: "1")', '--per-node-max <n>', '(default: "0")']],
  ['slice scale', ['--instances <n>']],
  ['slice undeploy', []],
  ['slice instances', []],
  ['invoke', ['--invoke-timeout <ms>', '(default: "0")']],
  ['cluster status', []],
  ['cluster members', []],
  ['cluster add-learner', []],
  ['cluster promote', []],
  ['cluster remove', []],
  ['cluster transfer-leader', ['--no-wait']],
  ['kv get', ['--serializable']],
  ['kv put', []],
  ['kv del', ['--prefix']],
  ['kv range', ['--limit <n>', '(default: "0")']],
  ['kv watch', ['--rev <n>', '--count <n>']],
  ['describe', []],
  ['call', ['--idempotent']],
  ['completion', []],
  ['local', ['--base-port <port>', '(default: "7001")']],
  ['node', ['--config <file>']],
];

/** Help text with its line wrapping undone. */
function unwrapped(text: string): string {
  return text.replace(/\s+/g, ' ');
}

const GLOBAL_FLAGS = ['--endpoints <list>', 'env: CUTOVER_ENDPOINTS', '--timeout <duration>', '(default: "10s")', '--output <format>', 'default: "table"', '--no-color', '--debug'];

test('cutover --help lists the commands and the global flags with their defaults', async (t) => {
  const result = await cli.run(['--help']);
  t.is(result.code, 0);
  for (const text of [...GLOBAL_FLAGS, 'slice', 'cluster', 'kv', 'invoke', 'describe', 'call', 'completion', 'local', 'node']) t.true(unwrapped(result.stdout).includes(text), `shows ${text}`);
  for (const line of result.stdout.split('\n')) t.true(line.length <= 80, `fits 80 columns: ${line}`);
});

test('every command\'s --help lists its own flags and the global ones, with defaults', async (t) => {
  // A few at a time: each is a process start on a 2-core machine.
  for (let i = 0; i < COMMANDS.length; i += 4) {
    await Promise.all(
      COMMANDS.slice(i, i + 4).map(async ([path, shows]) => {
        const result = await cli.run([...path.split(' '), '--help']);
        t.is(result.code, 0, `${path} --help`);
        for (const text of [...shows, ...GLOBAL_FLAGS, 'Usage: cutover']) t.true(unwrapped(result.stdout).includes(text), `cutover ${path} --help shows ${text}`);
      }),
    );
  }
});

const USAGE_ERRORS: [args: string[], says: string][] = [
  [['kv', 'get'], "missing required argument 'key'"],
  [['bogus'], "unknown command 'bogus'"],
  [['kv', 'get', 'a', '--bogus'], "unknown option '--bogus'"],
  [['kv', 'get', 'a', '-o', 'xml'], 'Allowed choices are table, json, yaml'],
  [['kv', 'get', 'a', '--timeout', 'soon'], '--timeout takes a duration'],
  [['kv', 'get', 'a', '--endpoints', 'nohost'], '"nohost" is not host:port'],
  [['slice', 'deploy', 'greeter', '1.0.0'], '"greeter" is not groupId:artifactId'],
  [['slice', 'deploy', 'org.example:greeter', '1.0.0', '-i', 'many'], '--instances must be an integer'],
  [['slice', 'scale', 'org.example:greeter', '1.0.0'], "required option '-i, --instances <n>' not specified"],
  [['invoke', 'org.example:greeter', 'hello', '{name:'], '[json] is not valid JSON'],
  [['completion', 'fish'], 'no completion for "fish"'],
  [['kv'], 'Usage: cutover kv'],
];

for (const [args, says] of USAGE_ERRORS) {
  test(`usage error: cutover ${args.join(' ')} exits 2 and says what is wrong`, async (t) => {
    const result = await cli.run(args);
    t.is(result.code, 2, result.stderr);
    t.true(result.stderr.includes(says), result.stderr);
    t.is(result.stdout, '');
    if (args.length > 1) t.is(result.stderr.trim().split('\n').length, 1, `one line: ${result.stderr}`);
  });
}

test('an unreachable cluster exits 3 with one line that says what to do, within --timeout', async (t) => {
  const result = await cli.run(['cluster', 'status', '--timeout', '3s']);
  t.is(result.code, 3);
  const lines = result.stderr.trim().split('\n');
  t.is(lines.length, 1, result.stderr);
  t.regex(lines[0]!, /^cutover: cannot reach the cluster at 127\.0\.0\.1:\d+ .*\[CLUSTER_UNREACHABLE\] — start it with `npm start`, or point the CLI at it with --endpoints/);
  t.is(result.stdout, '');
});

test('--debug adds the connection attempts and a stack trace', async (t) => {
  const result = await cli.run(['kv', 'get', 'a', '--debug', '--timeout', '3s']);
  t.is(result.code, 3);
  t.regex(result.stderr, /unreachable/);
  t.regex(result.stderr, /UnreachableError: cannot reach the cluster[\s\S]*\n\s+at /);
});

test('completion bash: valid bash that completes commands, subcommands and -o values', async (t) => {
  const script = await cli.ok(['completion', 'bash']);
  t.is(spawnSync('bash', ['-n'], { input: script }).status, 0, 'bash -n accepts it');
  const complete = (words: string[]): string[] => {
    const line = `${script}\nCOMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _cutover; printf '%s\\n' "\${COMPREPLY[@]}"`;
    return spawnSync('bash', ['-c', line], { encoding: 'utf8' }).stdout.split('\n').filter((s) => s !== '');
  };
  t.deepEqual(complete(['cutover', 'cl']), ['cluster']);
  t.deepEqual(complete(['cutover', 'cluster', 'tr']), ['transfer-leader']);
  t.deepEqual(complete(['cutover', '-o', 'json', 'kv', 'w']), ['watch']);
  t.deepEqual(complete(['cutover', 'kv', 'get', '-o', 'y']), ['yaml']);
  t.true(complete(['cutover', 'slice', 'deploy', '--']).includes('--instances'));
});

test('completion zsh: a compdef script that names every command', async (t) => {
  const script = await cli.ok(['completion', 'zsh']);
  t.true(script.startsWith('#compdef cutover'));
  for (const name of ['slice', 'publish', 'cluster', 'transfer-leader', 'kv', 'watch', 'describe', 'call', '--endpoints']) t.true(script.includes(name), name);
  const zsh = spawnSync('zsh', ['-n'], { input: script });
  if (zsh.error === undefined) t.is(zsh.status, 0, 'zsh -n accepts it');
});
