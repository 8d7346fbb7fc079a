/**
 * Help for every command the CLI has, found by walking `--help` from the top (so commands added
 * later are covered too): each leaf command's help exits 0, names its usage, lists its own flags
 * and the global ones with their defaults, and fits 80 columns. The flags issue 6 names for
 * `update start`, `update routing` and `update status` are pinned with their defaults.
 */
import test from 'ava';
import { freePort } from '../../src/platform/wait.ts';
import { CliRunner } from './cli-harness.ts';

let cli: CliRunner;

test.before(async () => {
  // Help never connects; an endpoint where nothing listens makes sure of it.
  cli = new CliRunner(`127.0.0.1:${await freePort()}`);
});

test.after.always(() => cli?.dispose());

/** Help text with commander's line wrapping undone. */
function unwrapped(text: string): string {
  return text.replace(/\s+/g, ' ');
}

/** The sections of a help text, by heading (`Options:`, `Commands:`, `Operate a cluster:` …). */
function sections(help: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const line of help.split('\n')) {
    if (/^\S.*:$/.test(line)) out.set(line, (current = []));
    else if (current !== undefined && line.trim() !== '') current.push(line);
  }
  return out;
}

/** Names of the subcommands a help text lists (every section but options and arguments). */
function subcommands(help: string): string[] {
  const names: string[] = [];
  for (const [heading, lines] of sections(help)) {
    if (/^(Options|Global Options|Arguments):$/.test(heading)) continue;
    for (const line of lines) {
      const name = /^ {2}([a-z][a-z0-9-]*)(\s|$)/.exec(line)?.[1];
      if (name !== undefined && name !== 'help') names.push(name);
    }
  }
  return names;
}

/** The flags (long names) listed in the Options section of a help text. */
function flags(help: string): string[] {
  return (sections(help).get('Options:') ?? []).flatMap((line) => [.../^ {2}(?:-\w, )?(--[a-z][a-z-]*)/.exec(line)?.slice(1, 2) ?? []]);
}

const GLOBAL_FLAGS = ['--endpoints <list>', 'env: CUTOVER_ENDPOINTS', '--timeout <duration>', '(default: "10s")', '--output <format>', 'default: "table"', '--no-color', '--debug'];

/** Commands issue 6 asks for: the walk must find each. */
const REQUIRED = [
  'update start', 'update routing', 'update status', 'update list', 'update health', 'update complete', 'update rollback', 'update pause', 'update resume', 'update cancel', 'update promote', 'update approve', 'update history', 'update stats', 'update rollback-to',
  'slice publish', 'slice list', 'slice deploy', 'slice scale', 'slice undeploy', 'slice instances', 'invoke',
  'cluster status', 'cluster members', 'cluster add-learner', 'cluster promote', 'cluster remove', 'cluster transfer-leader',
  'kv get', 'kv put', 'kv del', 'kv range', 'kv watch', 'describe', 'call', 'completion',
];

/** Walks `--help` from the top, a level at a time, 4 processes at once; each leaf's path and help. */
async function leafHelps(): Promise<Map<string, string>> {
  const leaves = new Map<string, string>();
  let level: string[][] = [[]];
  // Bounded: the CLI has two levels of commands below the top.
  for (let depth = 0; depth < 4 && level.length > 0; depth++) {
    const next: string[][] = [];
    for (let i = 0; i < level.length; i += 4) {
      await Promise.all(
        level.slice(i, i + 4).map(async (path) => {
          const result = await cli.run([...path, '--help']);
          if (result.code !== 0) throw new Error(`cutover ${path.join(' ')} --help exited ${result.code}: ${result.stderr}`);
          const children = subcommands(result.stdout);
          if (path.length > 0 && children.length === 0) leaves.set(path.join(' '), result.stdout);
          for (const child of children) next.push([...path, child]);
        }),
      );
    }
    level = next;
  }
  return leaves;
}

let helps: Map<string, string>;

test.serial('the walk finds every command issue 6 asks for', async (t) => {
  // ~50 process starts; through tsx (no fresh bundle) on a busy 2-core machine that takes minutes.
  t.timeout(300_000);
  helps = await leafHelps();
  for (const command of REQUIRED) t.true(helps.has(command), `cutover ${command} has help (found: ${[...helps.keys()].join(', ')})`);
});

test.serial('every command\'s help names its usage, lists its flags and the global ones with defaults, in 80 columns', (t) => {
  t.true(helps.size >= REQUIRED.length);
  for (const [command, help] of helps) {
    t.true(help.startsWith(`Usage: cutover ${command}`), `cutover ${command} --help starts with its usage`);
    for (const text of GLOBAL_FLAGS) t.true(unwrapped(help).includes(text), `cutover ${command} --help shows ${text}`);
    t.true(flags(help).includes('--help'), `cutover ${command} --help lists its options`);
    for (const line of help.split('\n')) t.true(line.length <= 80, `cutover ${command} --help fits 80 columns: ${line}`);
    // A flag that says it has a default shows it the same way everywhere.
    for (const match of unwrapped(help).matchAll(/\(default: ([^)]*)\)/g)) t.not(match[1]!.trim(), '', `cutover ${command}: an empty default`);
  }
});

test.serial('update start lists the flags issue 6 names, with their defaults', (t) => {
  const help = unwrapped(helps.get('update start') ?? '');
  for (const text of [
    '-i, --instances <n>', 'default: as many as the current version runs',
    '--strategy <name>', 'MANUAL, CANARY, ROLLING, BLUE_GREEN, RECREATE, STAGED (default: MANUAL)',
    '--max-error-rate <r>', '--max-latency-ms <ms>', '--preset <name>', '(default: default)',
    '--manual-approval', '--cleanup <policy>', 'IMMEDIATE, GRACE_PERIOD, MANUAL (default: GRACE_PERIOD)',
    '--canary-percent <p>', '--batch-size <n>', '--batch-delay <s>', '--max-unavailable <p>',
    '--no-auto-rollback', '--failure-threshold <n>', '(default: 3)',
    '--initiated-by <name>', '(default: the OS user)',
  ]) t.true(help.includes(text), `update start --help shows ${text}`);
});

test.serial('update routing, status and the actions show their flags and defaults', (t) => {
  t.true(unwrapped(helps.get('update routing') ?? '').includes('-r, --ratio <new:old>'));
  const status = unwrapped(helps.get('update status') ?? '');
  for (const text of ['-w, --watch', '--interval <duration>', '(default: "1s")']) t.true(status.includes(text), `update status --help shows ${text}`);
  for (const action of ['complete', 'rollback', 'pause', 'resume', 'cancel', 'promote', 'approve']) {
    t.true(unwrapped(helps.get(`update ${action}`) ?? '').includes('--reason <text>'), `update ${action} --help shows --reason`);
  }
});
