/**
 * CLI start-up: time from spawning `cutover cluster status` to the first byte on its stdout, over
 * `--runs` runs (after two warm-up runs that fill the reflection and code caches), as min, p50,
 * p90 and max. Also the time to exit, and the same for each way of running the CLI, taken in turn:
 * the `cutover` bin (the bundle, compiled with the V8 code cache), the bin without the code cache,
 * the bundle run directly by node, the bin without any cache (a full reflection discovery and a
 * full compile every time), and the TypeScript sources through tsx.
 *
 *   npx tsx bench/cli/startup.ts [--runs 20] [--endpoints host:port,…] [--start-cluster] [--cpu]
 *                                [--way label=path/to/cli.js …]
 *
 * --cpu runs each command under GNU time and adds the median CPU time (user + system) per way:
 * less dependent on what else the machine runs than the wall times.
 *
 * The bench builds its own bundle first (scripts/build-cli.mjs --out dist/bench-cli-<pid>, removed
 * afterwards) and points the bin at it with CUTOVER_DIST_DIR, so a build made stale by an edit
 * (the bin would quietly run tsx) cannot skew the figures. `--way` adds a way: `node <path>
 * cluster status` with the same environment, e.g. the bin of another checkout to compare with.
 *
 * Against the local cluster (npm start) by default; --start-cluster starts its own 3-node cluster on
 * free ports (`cutover local` in a temporary directory) and stops it afterwards. Also prints the
 * load average, since start-up time on a shared 2-core machine depends on what else runs.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
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
  /** Also measure each run's CPU time (GNU time). */
  cpu: boolean;
  /** Extra ways: [label, path of a CLI entry script]. */
  ways: [string, string][];
}

function parseOptions(argv: readonly string[]): Options {
  const options: Options = { runs: 20, endpoints: '127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003', startCluster: false, cpu: false, ways: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--runs') options.runs = Number(argv[++i]);
    else if (arg === '--endpoints') options.endpoints = String(argv[++i]);
    else if (arg === '--start-cluster') options.startCluster = true;
    else if (arg === '--cpu') options.cpu = true;
    else if (arg === '--way') {
      const text = String(argv[++i]);
      const eq = text.indexOf('=');
      if (eq <= 0 || eq === text.length - 1) throw new Error(`--way takes label=path, got ${JSON.stringify(text)}`);
      options.ways.push([text.slice(0, eq), path.resolve(text.slice(eq + 1))]);
    }
    else throw new Error(`unknown argument ${arg}; see the comment at the top of bench/cli/startup.ts`);
  }
  if (!Number.isInteger(options.runs) || options.runs < 1) throw new Error('--runs must be a positive integer');
  if (options.cpu && !existsSync(GNU_TIME)) throw new Error(`--cpu needs GNU time at ${GNU_TIME}`);
  return options;
}

interface Sample {
  firstByteMs: number;
  exitMs: number;
  /** User + system CPU time of the run (with --cpu), else NaN. */
  cpuMs: number;
}

/** GNU time, which --cpu runs each command under (it reports the child's CPU time in 10 ms steps). */
const GNU_TIME = '/usr/bin/time';

/**
 * One run: spawn, time the first stdout byte and the exit; a non-zero exit is an error. With
 * `cpuFile`, the run goes through GNU time, which writes the child's user and system seconds there
 * (one more fork and exec in every way's figures).
 */
function runOnce(args: readonly string[], env: NodeJS.ProcessEnv, cpuFile: string | undefined): Promise<Sample> {
  return new Promise((resolve, reject) => {
    const startedNs = monotonicClock.nowNs();
    const [command, commandArgs] = cpuFile === undefined ? [process.execPath, args] : [GNU_TIME, ['-f', '%U %S', '-o', cpuFile, process.execPath, ...args]];
    const child = spawn(command, commandArgs, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let firstByteNs: bigint | undefined;
    let stderr = '';
    child.stdout.on('data', () => (firstByteNs ??= monotonicClock.nowNs()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      const exitNs = monotonicClock.nowNs();
      if (code !== 0 || firstByteNs === undefined) return reject(new Error(`${args.join(' ')} exited ${code}: ${stderr.trim()}`));
      const cpuMs = cpuFile === undefined ? Number.NaN : readFileSync(cpuFile, 'utf8').trim().split(/\s+/).reduce((sum, seconds) => sum + Number(seconds) * 1000, 0);
      resolve({ firstByteMs: Number(firstByteNs - startedNs) / 1e6, exitMs: Number(exitNs - startedNs) / 1e6, cpuMs });
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

/** Builds the bundle into a directory of its own (see the module comment); returns it. */
function buildBundle(): string {
  const out = mkdtempSync(path.join(ROOT, 'dist', 'bench-cli-'));
  const build = spawnSync(process.execPath, ['scripts/build-cli.mjs', '--out', out], { cwd: ROOT, encoding: 'utf8' });
  if (build.status !== 0 || !build.stdout.includes('bundled')) throw new Error(`the build failed:\n${build.stdout}${build.stderr}`);
  return out;
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const distDir = buildBundle();
  const cluster = options.startCluster ? await startCluster() : undefined;
  // The local cluster deploys its example slice as it starts: let that settle first.
  if (cluster !== undefined) await sleep(5000);
  const endpoints = cluster?.endpoints ?? options.endpoints;
  const cacheDir = mkdtempSync(path.join(os.tmpdir(), 'cutover-bench-cache-'));
  const env = { ...process.env, CUTOVER_ENDPOINTS: endpoints, CUTOVER_CACHE_DIR: cacheDir, CUTOVER_DIST_DIR: distDir, NO_COLOR: '1' };
  const variants: [string, string[], NodeJS.ProcessEnv][] = [
    ['bin (code cache)', ['bin/cutover.js', 'cluster', 'status'], env],
    ['bin, no code cache', ['bin/cutover.js', 'cluster', 'status'], { ...env, CUTOVER_CODE_CACHE: 'off' }],
    ['node <bundle>', [path.join(distDir, 'main.js'), 'cluster', 'status'], env],
    ['bin, no caches', ['bin/cutover.js', 'cluster', 'status'], { ...env, CUTOVER_CACHE_DIR: 'off' }],
    ['tsx src/cli/main.ts', ['--import', 'tsx', 'src/cli/main.ts', 'cluster', 'status'], env],
    ...options.ways.map(([label, script]): [string, string[], NodeJS.ProcessEnv] => [label, [script, 'cluster', 'status'], env]),
  ];
  try {
    console.log(`cutover cluster status against ${endpoints}; ${options.runs} runs per way, after 2 warm-up runs; bundle ${path.relative(ROOT, distDir)}`);
    console.log(`node ${process.version}, ${os.cpus().length} cores, load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} at start`);
    // Round-robin over the ways, so that a busy moment of the machine hits them alike.
    const cpuFile = options.cpu ? path.join(cacheDir, 'cpu.txt') : undefined;
    for (const [, args, wayEnv] of variants) for (let i = 0; i < 2; i++) await runOnce(args, wayEnv, cpuFile);
    const samples = variants.map((): Sample[] => []);
    for (let i = 0; i < options.runs; i++) for (const [v, [, args, wayEnv]] of variants.entries()) samples[v]!.push(await runOnce(args, wayEnv, cpuFile));
    const width = Math.max(20, ...variants.map(([name]) => name.length));
    console.log(`\n${'way'.padEnd(width)}  first byte  min   p50   p90   max    exit p50   p90${options.cpu ? '    cpu p50' : ''}   (ms)`);
    for (const [v, [name]] of variants.entries()) {
      const first = samples[v]!.map((s) => s.firstByteMs).sort((a, b) => a - b);
      const exit = samples[v]!.map((s) => s.exitMs).sort((a, b) => a - b);
      const cell = (value: number): string => value.toFixed(0).padStart(6);
      const cpu = samples[v]!.map((s) => s.cpuMs).sort((a, b) => a - b);
      console.log(`${name.padEnd(width)}       ${cell(first[0]!)}${cell(percentile(first, 50))}${cell(percentile(first, 90))}${cell(first.at(-1)!)}  ${cell(percentile(exit, 50))}${cell(percentile(exit, 90))}${options.cpu ? `     ${cell(percentile(cpu, 50))}` : ''}`);
    }
    console.log(`\nload average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} at the end`);
  } finally {
    rmSync(cacheDir, { recursive: true, force: true });
    rmSync(distDir, { recursive: true, force: true });
    await cluster?.stop();
  }
}

await main();
