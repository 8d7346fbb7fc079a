/**
 * Process plumbing shared by the KV benchmark's drivers: free ports, child processes that can be
 * killed with SIGKILL and restarted, their CPU time, and bounded waiting.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync, readFileSync } from 'node:fs';
import { monotonicClock } from '../../src/platform/clock.ts';
import { realClock } from '../../src/platform/scheduler.ts';

const CLOCK_TICKS_PER_SECOND = 100;

/**
 * User + system CPU time of a live process, in milliseconds, from /proc (Linux). Returns 0 when
 * the process is gone or /proc is not there: CPU figures are informative, never required.
 */
export function processCpuMsOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces) start at state, field 3.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return Number.isFinite(ticks) ? (ticks * 1000) / CLOCK_TICKS_PER_SECOND : 0;
  } catch {
    return 0;
  }
}

/**
 * One server process (a Cutover node or an etcd member) that the benchmark can start, kill with
 * SIGKILL, stop with SIGTERM and start again with the same command line and data.
 */
export class ServerProcess {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();

  /** `command` and `args` are re-used on every start; output is appended to `logFile`. */
  constructor(
    readonly name: string,
    private readonly command: string,
    private readonly args: readonly string[],
    readonly logFile: string,
  ) {}

  get running(): boolean {
    return this.child !== undefined;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  start(): void {
    if (this.child !== undefined) throw new Error(`${this.name} is already running`);
    const log = openSync(this.logFile, 'a');
    const child = spawn(this.command, [...this.args], { stdio: ['ignore', log, log] });
    closeSync(log);
    this.child = child;
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
  }

  /** kill -9; returns the monotonic time (ns, comparable across processes) just before the signal. */
  async kill(): Promise<bigint> {
    const child = this.requireChild();
    const killNs = monotonicClock.nowNs();
    child.kill('SIGKILL');
    await this.exited;
    this.child = undefined;
    return killNs;
  }

  /** SIGTERM, waiting up to `timeoutMs` for a clean exit before SIGKILL. */
  async stop(timeoutMs = 10_000): Promise<void> {
    const child = this.child;
    if (child === undefined) return;
    child.kill('SIGTERM');
    const cancel = realClock.schedule(timeoutMs, () => child.kill('SIGKILL'));
    await this.exited;
    cancel();
    this.child = undefined;
  }

  cpuMs(): number {
    return this.child?.pid === undefined ? 0 : processCpuMsOf(this.child.pid);
  }

  private requireChild(): ChildProcess {
    if (this.child === undefined) throw new Error(`${this.name} is not running`);
    return this.child;
  }
}
