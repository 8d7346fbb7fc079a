/**
 * The driver's side of the load generator: spawns `loadgen.ts` as a child process, reads its JSON
 * lines from stdout, and for failover writes the kill time to its stdin.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { processCpuMsOf } from './processes.ts';
import type { FailoverProbeResult, LoadResult } from './loadgen.ts';
import { loadgenArgv, type LoadgenOptions } from './loadgen-options.ts';

const LOADGEN = fileURLToPath(new URL('./loadgen.ts', import.meta.url));

type Message = { type: 'ready' } | LoadResult | FailoverProbeResult;

/** One running load generator process. */
export class LoadgenProcess {
  private readonly child: ChildProcess;
  private readonly messages: Message[] = [];
  private waiting: (() => void) | undefined;
  private exitCode: number | null | undefined;
  private readonly exited: Promise<void>;

  /** Spawns the load generator with `options`; its stderr goes to ours. */
  constructor(options: LoadgenOptions) {
    this.child = spawn(process.execPath, ['--import', 'tsx', LOADGEN, ...loadgenArgv(options)], { stdio: ['pipe', 'pipe', 'inherit'] });
    // 'close' comes after stdout has ended, so every line has been read by then.
    this.exited = new Promise((resolve) => this.child.once('close', (code) => {
      this.exitCode = code;
      this.wake();
      resolve();
    }));
    createInterface({ input: this.child.stdout! }).on('line', (line) => this.onLine(line));
  }

  /** The next message of `type`; rejects if the process exits first. */
  async next<T extends Message['type']>(type: T): Promise<Extract<Message, { type: T }>> {
    for (;;) {
      const index = this.messages.findIndex((m) => m.type === type);
      if (index >= 0) return this.messages.splice(index, 1)[0] as Extract<Message, { type: T }>;
      if (this.exitCode !== undefined) throw new Error(`the load generator exited (code ${this.exitCode}) before sending '${type}'`);
      await new Promise<void>((resolve) => (this.waiting = resolve));
    }
  }

  /** Tells a failover-mode load generator when the leader was killed. */
  sendKill(killNs: bigint): void {
    this.child.stdin!.write(`kill ${killNs}\n`);
  }

  /** CPU time (ms) the load generator has used so far (Linux; 0 elsewhere). */
  cpuMs(): number {
    return this.child.pid === undefined ? 0 : processCpuMsOf(this.child.pid);
  }

  /** Closes its stdin and waits for the process to exit. */
  async close(): Promise<void> {
    this.child.stdin!.end();
    await this.exited;
  }

  /** Kills the process (for error paths). */
  kill(): void {
    this.child.kill('SIGKILL');
  }

  private onLine(line: string): void {
    if (!line.startsWith('{')) return;
    this.messages.push(JSON.parse(line) as Message);
    this.wake();
  }

  private wake(): void {
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting?.();
  }
}

/** Runs one load-mode measurement to the end and returns its result. */
export async function measureLoad(options: LoadgenOptions): Promise<LoadResult> {
  const loadgen = new LoadgenProcess(options);
  try {
    const result = await loadgen.next('result');
    await loadgen.close();
    return result;
  } catch (error) {
    loadgen.kill();
    throw error;
  }
}
