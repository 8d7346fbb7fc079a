/**
 * The README's "Rolling updates" walkthrough, command by command, on a real 3-node cluster set up
 * as `npm start` leaves it (greeter 1.0.0 on three instances). The commands are read from the
 * README (between the `<!-- walkthrough` markers), so the README cannot drift from what is tested:
 * `npx cutover …` runs the real binary, `npm run load -- … &` runs the load generator in the
 * background. Every command must exit 0, except those whose comment says "exits 1".
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { waitFor } from '../../src/platform/wait.ts';
import { ProcessCluster } from '../process/harness.ts';
import { CliRunner } from './cli-harness.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const GREETER = 'org.example:greeter';

interface Step {
  readonly line: string;
  readonly kind: 'cutover' | 'load';
  readonly args: string[];
  readonly expectedCode: number;
}

/** The walkthrough's commands, in order. */
export function walkthroughSteps(readme: string): Step[] {
  const start = readme.indexOf('<!-- walkthrough');
  const end = readme.indexOf('<!-- /walkthrough -->');
  if (start < 0 || end < start) throw new Error('README.md has no <!-- walkthrough --> section');
  const blocks = [...readme.slice(start, end).matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
  const steps: Step[] = [];
  for (const line of blocks.join('').split('\n')) {
    const hash = line.search(/\s#\s/);
    const command = (hash < 0 ? line : line.slice(0, hash)).trim();
    const comment = hash < 0 ? '' : line.slice(hash);
    if (command === '') continue;
    const words = command.split(/\s+/);
    const expectedCode = /exits 1/.test(comment) ? 1 : 0;
    if (words[0] === 'npx' && words[1] === 'cutover') steps.push({ line, kind: 'cutover', args: words.slice(2), expectedCode });
    else if (words.slice(0, 4).join(' ') === 'npm run load --' && words.at(-1) === '&') steps.push({ line, kind: 'load', args: words.slice(4, -1), expectedCode });
    else throw new Error(`the walkthrough has a command this test cannot run: ${line}`);
  }
  return steps;
}

let cluster: ProcessCluster;
let cli: CliRunner;
const background: ChildProcess[] = [];

test.before(async () => {
  cluster = await ProcessCluster.start(3);
  cli = new CliRunner([...cluster.nodes.values()].map((n) => n.address).join(','));
  // What `npm start` does after the cluster is up.
  await cli.ok(['slice', 'publish', 'examples/slices/greeter/1.0.0']);
  await cli.ok(['slice', 'deploy', GREETER, '1.0.0', '-i', '3']);
  await waitFor('3 ACTIVE instances of 1.0.0', async () => {
    const response = await cli.json<{ instances: { state: string; assigned: boolean }[] }>(['slice', 'instances', GREETER]);
    return response.instances.filter((i) => i.assigned && i.state === 'ACTIVE').length === 3;
  }, { attempts: 240, intervalMs: 250 });
});

test.after.always(async () => {
  for (const child of background) child.kill('SIGKILL');
  await cluster?.destroy();
  cli?.dispose();
});

test.serial('the README walkthrough: 2.0.0 by 1:9 → 1:3 → 1:1 → 1:0 and complete, then 2.1.0-bad rolled back on its own', async (t) => {
  t.timeout(240_000);
  const steps = walkthroughSteps(readFileSync(`${ROOT}README.md`, 'utf8'));
  t.true(steps.length >= 10, 'the walkthrough is found');
  const ratios = steps.flatMap((s) => (s.args[1] === 'routing' ? [s.args.at(-1)] : []));
  t.deepEqual(ratios, ['1:9', '1:3', '1:1', '1:0'], 'the walkthrough shifts 1:9 → 1:3 → 1:1 → 1:0');
  const watched: string[] = [];
  for (const step of steps) {
    if (step.kind === 'load') {
      const child = spawn(process.execPath, ['--import', 'tsx', 'bench/load/load.ts', ...step.args, '--endpoints', cli.endpoints], { cwd: ROOT, stdio: 'ignore' });
      background.push(child);
      continue;
    }
    const result = await cli.run(step.args);
    t.is(result.code, step.expectedCode, `${step.line.trim()}\n${result.stdout}${result.stderr}`);
    if (step.args.includes('--watch')) watched.push(result.stdout);
    if (step.args[1] === 'history') t.regex(result.stdout, /\n\s+1\s+2\.0\.0\s+1\.0\.0\s+COMPLETED\s+MANUAL\s.*\n\s+2\s+2\.1\.0-bad\s+2\.0\.0\s+ROLLED_BACK\s+CANARY\s/);
  }
  t.is(watched.length, 2);
  t.regex(watched[0]!, /state: {4}COMPLETED\n/);
  t.regex(watched[1]!, /state: {4}ROLLED_BACK\n/);
  t.regex(watched[1]!, /rollback: by the system/);
  const history = await cli.json<{ releases: { version: string; status: string }[] }>(['update', 'history', GREETER]);
  t.deepEqual(history.releases.map((r) => [r.version, r.status]), [['2.0.0', 'COMPLETED'], ['2.1.0-bad', 'ROLLED_BACK']]);
});
