/**
 * `cutover update status --watch` on a real terminal: the real CLI binary runs under a
 * pseudo-terminal (`script` from util-linux, on Debian and its CI images; no native npm module)
 * against a real 3-node cluster, while the test steers a MANUAL update to COMPLETED.
 *
 * Checked on the terminal: each frame after the first moves the cursor up to the start of the
 * last frame and clears to the end of the screen (CSI n F, CSI 0 J) instead of scrolling; a frame
 * shows the state and the traffic bar of the new:old split; colour (SGR) appears, except with
 * NO_COLOR=1, where the redraw still happens; the watch exits 0 once the update is COMPLETED.
 */
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { sleep, waitFor } from '../../src/platform/wait.ts';
import { ProcessCluster } from '../process/harness.ts';
import { BIN, CliRunner, type CliResult } from './cli-harness.ts';

const GREETER = 'org.example:greeter';
const EXAMPLES = fileURLToPath(new URL('../../examples/slices/greeter/', import.meta.url));
const ESC = String.fromCharCode(27);
/** ESC [ n F (cursor to the start of the line n up) then ESC [ 0 J (clear to the end of the screen). */
const REDRAW = new RegExp(`${ESC}\\[(\\d+)F${ESC}\\[0J`, 'g');
/** Any SGR sequence (colour, bold, dim). */
const SGR = new RegExp(`${ESC}\\[[0-9;]*m`);
/** Any CSI sequence. */
const CSI = new RegExp(`${ESC}\\[[0-9;]*[A-Za-z]`, 'g');
/** Longest a watch may run after the update finished before the test gives up on it. */
const WATCH_EXIT_WAIT_MS = 60_000;

const hasScript = spawnSync('script', ['--version'], { stdio: 'ignore' }).status === 0;

let cluster: ProcessCluster;
let cli: CliRunner;

test.before(async () => {
  if (!hasScript) return;
  cluster = await ProcessCluster.start(3);
  cli = new CliRunner([...cluster.nodes.values()].map((n) => n.address).join(','));
  for (const version of ['1.0.0', '2.0.0']) await cli.ok(['slice', 'publish', path.join(EXAMPLES, version)]);
  await cli.ok(['slice', 'deploy', GREETER, '1.0.0', '-i', '1']);
});

test.after.always(async () => {
  await cluster?.destroy();
  cli?.dispose();
});

/** Single-quotes `word` for sh. */
function shellQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** A run of the CLI on a pseudo-terminal of `columns` × 40, as `script` reports it. */
interface TtyRun {
  /** What the terminal showed so far, with the pty's \r\n turned back into \n. */
  output(): string;
  readonly done: Promise<CliResult>;
  kill(): void;
}

/**
 * Runs `cutover <args>` under `script -qfec`, its stdout and stdin a pseudo-terminal. `stty` sizes
 * the terminal first (a pty nobody sized reports 0 columns). `script -e` exits with the command's
 * code.
 */
function runOnTty(args: readonly string[], env: Record<string, string>, columns: number): TtyRun {
  const command = `stty cols ${columns} rows 40 && exec ${[process.execPath, BIN, ...args].map(shellQuote).join(' ')}`;
  const { NO_COLOR: _noColor, COLUMNS: _columns, ...inherited } = process.env;
  const child = spawn('script', ['-qfec', command, '/dev/null'], {
    env: { ...inherited, TERM: 'xterm-256color', TZ: 'UTC', CUTOVER_ENDPOINTS: cli.endpoints, CUTOVER_CACHE_DIR: cli.cacheDir, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const done = new Promise<CliResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout: stdout.replace(/\r\n/g, '\n'), stderr }));
  });
  return { output: () => stdout.replace(/\r\n/g, '\n'), done, kill: () => child.kill('SIGKILL') };
}

/** Resolves with the run's result, or kills it and fails after `WATCH_EXIT_WAIT_MS`. */
async function exitOf(run: TtyRun, what: string): Promise<CliResult> {
  const bound = sleep(WATCH_EXIT_WAIT_MS).then(() => undefined);
  const result = await Promise.race([run.done, bound]);
  if (result === undefined) {
    run.kill();
    throw new Error(`${what} did not exit within ${WATCH_EXIT_WAIT_MS} ms of the update finishing; it showed:\n${run.output()}`);
  }
  return result;
}

/** The text of the last frame: what follows the last redraw sequence, escape codes removed. */
function lastFrame(output: string): string {
  const starts = [...output.matchAll(REDRAW)];
  const last = starts.at(-1);
  const text = last === undefined ? output : output.slice(last.index + last[0].length);
  return text.replace(CSI, '');
}

test.serial('update status --watch redraws in place on a terminal, in colour unless NO_COLOR, and exits 0 on COMPLETED', async (t) => {
  if (!hasScript) {
    t.log('util-linux `script` is not installed: the terminal test cannot run here');
    t.pass();
    return;
  }
  const started = await cli.json<{ update: { id: string } }>(['update', 'start', GREETER, '2.0.0', '-i', '1', '--cleanup', 'IMMEDIATE']);
  const id = started.update.id;
  await waitFor(`update ${id} ROUTING`, async () => (await cli.json<{ update: { state: string } }>(['update', 'status', id])).update.state === 'ROUTING', { attempts: 240, intervalMs: 250 });
  await cli.json(['update', 'routing', id, '-r', '1:3']);

  const watchArgs = ['update', 'status', id, '--watch', '--interval', '200ms', '--timeout', '30s'];
  const coloured = runOnTty(watchArgs, {}, 100);
  const plain = runOnTty(watchArgs, { NO_COLOR: '1' }, 100);
  const runs = [coloured, plain];
  try {
    // At least two redraws each (three frames) before the update moves on.
    await waitFor('three frames of each watch', () => runs.every((r) => [...r.output().matchAll(REDRAW)].length >= 2), { attempts: 300, intervalMs: 100 });
    for (const run of runs) {
      const frame = lastFrame(run.output());
      t.regex(frame, /^update: {3}\S+\n/, frame);
      t.regex(frame, /\nstate: {4}ROUTING\n/, frame);
      // 1:3 is 25% of a 30-cell bar: 8 cells new (rounded), 22 old.
      t.true(frame.includes(`traffic:  new ${'█'.repeat(8)}${'░'.repeat(22)} old  1:3 (25% new)`), frame);
      t.regex(frame, /refreshed .* every 0\.2s; Ctrl-C stops watching/, frame);
    }
    // The cursor goes back exactly over the last frame: each redraw moves up as many lines as
    // the frame before it printed.
    const frames = coloured.output().split(REDRAW);
    const ups = [...coloured.output().matchAll(REDRAW)].map((m) => Number(m[1]));
    ups.forEach((up, i) => t.is(up, (frames[i * 2] ?? '').split('\n').length - 1, `redraw ${i + 1} moves up over the frame before it`));

    t.regex(coloured.output(), SGR, 'colour on the terminal');
    t.true(coloured.output().includes('\u001b[33mROUTING\u001b[39m'), 'the state in yellow while the update runs');
    t.notRegex(plain.output(), SGR, 'no colour with NO_COLOR=1');

    await cli.json(['update', 'routing', id, '-r', '1:0']);
    await cli.json(['update', 'complete', id]);
    for (const [run, name] of [[coloured, 'the coloured watch'], [plain, 'the NO_COLOR watch']] as const) {
      const result = await exitOf(run, name);
      t.is(result.code, 0, `${name} exits 0 on COMPLETED: ${result.stderr}${result.stdout.slice(-2000)}`);
      const frame = lastFrame(result.stdout);
      t.regex(frame, /\nstate: {4}COMPLETED\n/, frame);
      t.true(frame.includes(`traffic:  new ${'█'.repeat(30)} old  1:0 (100% new)`), frame);
      t.regex(frame, /COMPLETED: the update is finished\n$/, frame);
      for (const line of frame.split('\n')) t.true(line.length <= 100, `fits the 100-column terminal: ${line}`);
    }
    t.true((await coloured.done).stdout.includes('\u001b[32mCOMPLETED\u001b[39m'), 'COMPLETED in green');
  } finally {
    for (const run of runs) run.kill();
  }
});

test.serial('a terminal that reports no size gets 80 columns, not 40', async (t) => {
  if (!hasScript) {
    t.pass();
    return;
  }
  // `stty cols 0`: the pty says 0 × 0, as one nobody sized does; COLUMNS is not set.
  const run = runOnTty(['update', 'list', '--all'], {}, 0);
  const result = await exitOf(run, 'update list');
  t.is(result.code, 0, result.stderr);
  const header = result.stdout.replace(CSI, '').split('\n')[0]!;
  t.regex(header, /^ID\s+ARTIFACT\s+VERSIONS\s+STATE\s+ROUTING\s+AGE$/);
  // At 40 columns the ARTIFACT column would be cut (org.exam…); at 80 it is whole.
  t.true(result.stdout.includes('org.example:greeter'), result.stdout);
});
