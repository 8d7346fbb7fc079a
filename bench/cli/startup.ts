/**
 * CLI start-up: time from spawning `cutover cluster status` to the first byte on its stdout, over
 * `--runs` runs (after two warm-up runs that fill the reflection cache), as p50/p90. Also the time
 * to exit, and the same for each way of running the CLI, taken in turn: the `cutover` bin (the
 * bundle in dist/cli when fresh), the bundle directly, the bin without the reflection cache (a
 * full discovery every time), and the TypeScript sources through tsx.
 *
 *   npx tsx bench/cli/startup.ts [--runs 20] [--endpoints host:port,…] [--start-cluster]
 *
 * Against the local cluster (npm start) by default; --start-cluster starts its own 3-node cluster on
 * free ports (`cutover local` in a temporary directory) and stops it afterwards. Also prints the
 * load average, since start-up time on a shared 2-core machine depends on what else runs.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { monotonicClock } from '../../src/platform/clock.ts';
import { freePort, sleep } from '../../src/platform/wait.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

interface Options {
  runs: number;
  endpoints: string;
  startCluster: boolean;
}

function parseOptions(argv: readonly string[]): Options {
  const options: Options = { runs: 20, endpoints: '127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003', startCluster: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--runs') options.runs = Number(argv[++i]);
    else if (arg === '--endpoints') options.endpoints = String(argv[++i]);
    else if (arg === '--start-cluster') options.startCluster = true;
    else throw new Error(`unknown argument ${arg}; see the comment at the top of bench/cli/startup.ts`);
  }
  if (!Number.isInteger(options.runs) || options.runs < 1) throw new Error('--runs must be a positive integer');
  return options;
}

interface Sample {
  firstByteMs: number;
  exitMs: number;
}

/** One run: spawn, time the first stdout byte and the exit; a non-zero exit is an error. */
function runOnce(args: readonly string[], env: NodeJS.ProcessEnv): Promise<Sample> {
  return new Promise((resolve, reject) => {
    const startedNs = monotonicClock.nowNs();
    const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let firstByteNs: bigint | undefined;
    let stderr = '';
    child.stdout.on('data', () => (firstByteNs ??= monotonicClock.nowNs()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      const exitNs = monotonicClock.nowNs();
      if (code !== 0 || firstByteNs === undefined) return reject(new Error(`${args.join(' ')} exited ${code}: ${stderr.trim()}`));
      resolve({ firstByteMs: Number(firstByteNs - startedNs) / 1e6, exitMs: Number(exitNs - startedNs) / 1e6 });
    });
  });
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** Starts `cutover local` on free ports in a temporary directory; resolves once it has a leader. */
async function startCluster(): Promise<{ endpoints: string; stop: () => Promise<void> }> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'cutover-bench-cli-'));
  const basePort = await freePort();
  const metricsBasePort = await freePort();
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'local', '--base-port', String(basePort), '--metrics-base-port', String(metricsBasePort), '--data-dir', dataDir, '--log-level', 'warn'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  for (let i = 0; i < 600 && !output.includes('Leader:'); i++) await sleep(100);
  if (!output.includes('Leader:')) throw new Error(`the local cluster did not start:\n${output}`);
  const endpoints = [0, 1, 2].map((i) => `127.0.0.1:${basePort + i}`).join(',');
  return {
    endpoints,
    stop: async () => {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.on('exit', resolve));
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const cluster = options.startCluster ? await startCluster() : undefined;
  // The local cluster deploys its example slice as it starts: let that settle first.
  if (cluster !== undefined) await sleep(5000);
  const endpoints = cluster?.endpoints ?? options.endpoints;
  const cacheDir = mkdtempSync(path.join(os.tmpdir(), 'cutover-bench-cache-'));
  const env = { ...process.env, CUTOVER_ENDPOINTS: endpoints, CUTOVER_CACHE_DIR: cacheDir, NO_COLOR: '1' };
  const noCache = { ...env, CUTOVER_CACHE_DIR: 'off' };
  const variants: [string, string[], NodeJS.ProcessEnv][] = [
    ['bin/cutover.js', ['bin/cutover.js', 'cluster', 'status'], env],
    ...(existsSync(path.join(ROOT, 'dist/cli/main.js')) ? [['dist/cli/main.js', ['dist/cli/main.js', 'cluster', 'status'], env] as [string, string[], NodeJS.ProcessEnv]] : []),
    ['bin, no refl. cache', ['bin/cutover.js', 'cluster', 'status'], noCache],
    ['tsx src/cli/main.ts', ['--import', 'tsx', 'src/cli/main.ts', 'cluster', 'status'], env],
  ];
  try {
    console.log(`cutover cluster status against ${endpoints}; ${options.runs} runs per way, after 2 warm-up runs`);
    console.log(`node ${process.version}, ${os.cpus().length} cores, load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} at start`);
    console.log('\nway                   first byte min   p50   p90    exit p50   p90   (ms)');
    // Round-robin over the ways, so that a busy moment of the machine hits them alike.
    for (const [, args, wayEnv] of variants) for (let i = 0; i < 2; i++) await runOnce(args, wayEnv);
    const samples = variants.map((): Sample[] => []);
    for (let i = 0; i < options.runs; i++) for (const [v, [, args, wayEnv]] of variants.entries()) samples[v]!.push(await runOnce(args, wayEnv));
    for (const [v, [name]] of variants.entries()) {
      const first = samples[v]!.map((s) => s.firstByteMs).sort((a, b) => a - b);
      const exit = samples[v]!.map((s) => s.exitMs).sort((a, b) => a - b);
      const cell = (v: number): string => v.toFixed(0).padStart(6);
      console.log(`${name.padEnd(20)}  ${cell(first[0]!)}    ${cell(percentile(first, 50))}${cell(percentile(first, 90))}  ${cell(percentile(exit, 50))}${cell(percentile(exit, 90))}`);
    }
    console.log(`\nload average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} at the end`);
  } finally {
    rmSync(cacheDir, { recursive: true, force: true });
    await cluster?.stop();
  }
}

await main();
