/**
 * Runs the real `cutover` binary (bin/cutover.js: the precompiled dist/ when it is fresh, the
 * TypeScript through tsx otherwise) as a child process, the way an operator or a script would.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';

export const BIN = fileURLToPath(new URL('../../bin/cutover.js', import.meta.url));
const GOLDEN_DIR = fileURLToPath(new URL('./golden/', import.meta.url));

/** What one run printed and how it exited. */
export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `cutover` with a fixed environment; each call of a CliRunner shares its reflection cache. */
export class CliRunner {
  readonly cacheDir = mkdtempSync(path.join(os.tmpdir(), 'cutover-cli-cache-'));

  constructor(
    public endpoints: string,
    private readonly env: Record<string, string> = {},
  ) {}

  run(args: readonly string[], options: { env?: Record<string, string>; input?: string } = {}): Promise<CliResult> {
    return this.start(args, options).done;
  }

  /** Starts a run without waiting for it: `stdout()` is what it printed so far. */
  start(args: readonly string[], { env = {}, input }: { env?: Record<string, string>; input?: string } = {}): { stdout: () => string; done: Promise<CliResult> } {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: { ...process.env, CUTOVER_ENDPOINTS: this.endpoints, CUTOVER_CACHE_DIR: this.cacheDir, NO_COLOR: '1', TZ: 'UTC', COLUMNS: '80', ...this.env, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdin.end(input ?? '');
    const done = new Promise<CliResult>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });
    return { stdout: () => stdout, done };
  }

  /** Runs with `-o json`, expects exit 0, and parses stdout. */
  async json<T = Record<string, unknown>>(args: readonly string[], env: Record<string, string> = {}): Promise<T> {
    const result = await this.run([...args, '-o', 'json'], { env });
    if (result.code !== 0) throw new Error(`cutover ${args.join(' ')} exited ${result.code}: ${result.stderr.trim()}`);
    return JSON.parse(result.stdout) as T;
  }

  /** Runs and expects exit 0; returns stdout. */
  async ok(args: readonly string[], env: Record<string, string> = {}): Promise<string> {
    const result = await this.run(args, { env });
    if (result.code !== 0) throw new Error(`cutover ${args.join(' ')} exited ${result.code}: ${result.stderr.trim()}`);
    return result.stdout;
  }

  dispose(): void {
    rmSync(this.cacheDir, { recursive: true, force: true });
  }
}

/**
 * Compares `actual` with test/cli/golden/<name>.txt; UPDATE_GOLDEN=1 rewrites the file instead
 * (review the diff before committing it).
 */
export function assertGolden(t: ExecutionContext, name: string, actual: string): void {
  const file = path.join(GOLDEN_DIR, `${name}.txt`);
  if (process.env.UPDATE_GOLDEN === '1') {
    writeFileSync(file, actual);
    t.pass(`rewrote ${file}`);
    return;
  }
  t.is(actual, readFileSync(file, 'utf8'), `golden output ${name}.txt (UPDATE_GOLDEN=1 rewrites it)`);
}
