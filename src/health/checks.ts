/**
 * The check runners: one attempt of each kind (http, tcp, script, instance), the transient retry
 * around it (`runCheck`) and the round of all checks of an instance (`runRound`).
 *
 * Contract: nothing here rejects and nothing outlives its budget. Every attempt is bounded by a
 * timer on the injected Clock, and every path that ends an attempt also ends what it started
 * (the request is aborted, the socket destroyed, the child process group killed), so a check can
 * never block the node or the controller, whatever the target does.
 *
 * Transient faults (no answer in time, a refused or reset connection) are retried with a short
 * back-off while the budget allows, at most `CHECK_ATTEMPTS_MAX` attempts: a network blip inside
 * one interval does not count as a failure. A plain failure (wrong status, body, exit code) is an
 * answer, and is not retried.
 */
import { spawn } from 'node:child_process';
import { request as httpRequest, type ClientRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import { withTimeout, type Clock } from '../util/clock.ts';
import type { CheckResult, CheckSpec, CheckStatus, CheckTarget, HealthSpec, HttpCheckSpec, InstanceCheckSpec, ScriptCheckSpec, TcpCheckSpec, RoundResult } from './types.ts';

/** What the runners need from outside: monotonic time and timers, and the wall clock for `at`. */
export interface CheckDeps {
  readonly clock: Clock;
  readonly wallClockMs: () => number;
}

/** Most attempts of one check in one round (the first and its transient retries). */
export const CHECK_ATTEMPTS_MAX = 3;
/** Pause before the 2nd and the 3rd attempt. */
export const TRANSIENT_BACKOFF_MS: readonly number[] = [50, 150];
/** Most bytes of an HTTP body read for `bodyContains`. */
export const BODY_READ_MAX = 64 * 1024;
/** Most bytes of a script's stdout and of its stderr kept for the detail (the tail). */
export const SCRIPT_OUTPUT_TAIL_MAX = 1024;
/** Between SIGTERM and SIGKILL for a script that outlives its timeout (less when the budget is short). */
export const SCRIPT_KILL_GRACE_MS = 250;
/** After a script exits, the longest wait for its output pipes to drain before the verdict. */
export const SCRIPT_OUTPUT_DRAIN_MS = 100;
/** Longest `detail`, in characters. */
export const CHECK_DETAIL_LENGTH_MAX = 512;
/** A retry runs only with half the first attempt's time left, or this much when that is less. */
export const RETRY_MS_WANTED_MAX = 1000;
/** An attempt shorter than this is not worth starting (the spec's smallest timeout). */
const ATTEMPT_MS_MIN = 10;

/** `health()` passes when it returns nothing, `true`, or an object with `healthy: true`. */
export function isHealthy(answer: unknown): boolean {
  if (answer === undefined || answer === true) return true;
  return typeof answer === 'object' && answer !== null && (answer as { healthy?: unknown }).healthy === true;
}

/** One attempt's outcome; `transient` asks for a retry. */
interface Attempt {
  readonly status: CheckStatus;
  readonly detail: string;
  readonly transient: boolean;
}

/** Node.js error codes of a refused, reset or broken connection: the blips worth another try. */
const TRANSIENT_CODES: ReadonlySet<string> = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE']);

/**
 * Runs one check against `target`: attempts, with transient retries, inside `budgetMs` of clock
 * time from the call. Never rejects; the result says what happened (`at` is `options.at`, or the
 * wall clock at the call). The result is the last attempt's; `attempts` counts them.
 */
export async function runCheck(spec: CheckSpec, target: CheckTarget, deps: CheckDeps, options: { readonly budgetMs: number; readonly at?: number }): Promise<CheckResult> {
  const at = options.at ?? deps.wallClockMs();
  const deadlineMs = deps.clock.nowMs() + Math.max(0, options.budgetMs);
  let attempts = 0;
  let last: Attempt;
  let durationMs = 0;
  let firstAttemptMs = 0;
  for (;;) {
    // Rounded: the sub-millisecond that passed since the call is not worth a "1999 ms" detail.
    const attemptMs = Math.max(0, Math.min(spec.timeoutMs, Math.round(deadlineMs - deps.clock.nowMs())));
    if (attempts === 0) firstAttemptMs = attemptMs;
    const startMs = deps.clock.nowMs();
    last = await attemptSafely(spec, target, deps.clock, attemptMs);
    durationMs = Math.max(0, Math.round(deps.clock.nowMs() - startMs));
    attempts++;
    if (!last.transient || attempts >= CHECK_ATTEMPTS_MAX) break;
    const backoffMs = TRANSIENT_BACKOFF_MS[attempts - 1] ?? TRANSIENT_BACKOFF_MS[TRANSIENT_BACKOFF_MS.length - 1] ?? 0;
    // Retry only when the retry can have half the time the first attempt had (at most
    // RETRY_MS_WANTED_MAX): a sliver of an attempt would only turn a timeout into another, less
    // telling one.
    const leftMs = deadlineMs - deps.clock.nowMs() - backoffMs;
    if (leftMs < Math.max(ATTEMPT_MS_MIN, Math.min(RETRY_MS_WANTED_MAX, firstAttemptMs / 2))) break;
    await new Promise<void>((resolve) => deps.clock.schedule(backoffMs, resolve));
  }
  return { check: spec.name, type: spec.type, status: last.status, at, durationMs, attempts, detail: clip(last.detail) };
}

/**
 * Runs every check of `spec` at once, each with the policy interval as its budget (so a round
 * never runs into the next), and combines them by mode: ALL passes when every check succeeded,
 * ANY when at least one did. Never rejects.
 */
export async function runRound(spec: HealthSpec, target: CheckTarget, deps: CheckDeps): Promise<RoundResult> {
  const at = deps.wallClockMs();
  const budgetMs = spec.policy.intervalMs;
  const results = await Promise.all(spec.checks.map((check) => runCheck(check, target, deps, { budgetMs, at })));
  const passed = (result: CheckResult): boolean => result.status === 'success';
  const pass = spec.mode === 'ALL' ? results.every(passed) : results.some(passed);
  return { pass, results };
}

async function attemptSafely(spec: CheckSpec, target: CheckTarget, clock: Clock, timeoutMs: number): Promise<Attempt> {
  try {
    switch (spec.type) {
      case 'http':
        return await attemptHttp(spec, target, clock, timeoutMs);
      case 'tcp':
        return await attemptTcp(spec, clock, timeoutMs);
      case 'script':
        return await attemptScript(spec, target, clock, timeoutMs);
      case 'instance':
        return await attemptInstance(spec, target, clock, timeoutMs);
    }
  } catch (error) {
    // The runners settle on every path they know; this is the net for what they do not.
    return { status: 'error', detail: `check could not run: ${errorMessage(error)}`, transient: false };
  }
}

/**
 * Settles an attempt once: the first outcome wins, the timer is cancelled and `cleanup` runs (it
 * must end everything the attempt started). The timer settles `onTimeout()` after `timeoutMs`.
 */
function settleOnce(clock: Clock, timeoutMs: number, onTimeout: () => Attempt, resolve: (attempt: Attempt) => void): { finish: (attempt: Attempt) => void; setCleanup: (cleanup: () => void) => void } {
  let done = false;
  let cleanup: () => void = () => {};
  const finish = (attempt: Attempt): void => {
    if (done) return;
    done = true;
    cancel();
    try {
      cleanup();
    } finally {
      resolve(attempt);
    }
  };
  const cancel = clock.schedule(timeoutMs, () => finish(onTimeout()));
  return { finish, setCleanup: (fn) => (cleanup = fn) };
}

function timedOut(timeoutMs: number, what = 'no answer'): Attempt {
  return { status: 'timeout', detail: `${what} within ${timeoutMs} ms`, transient: true };
}

function networkFailure(error: unknown): Attempt {
  const code = (error as { code?: unknown }).code;
  const message = errorMessage(error);
  const transient = (typeof code === 'string' && TRANSIENT_CODES.has(code)) || message === 'socket hang up';
  return { status: 'failure', detail: message, transient };
}

function attemptHttp(spec: HttpCheckSpec, target: CheckTarget, clock: Clock, timeoutMs: number): Promise<Attempt> {
  const port = spec.port ?? target.httpPort;
  if (spec.url === undefined && port === undefined) {
    return Promise.resolve({ status: 'error', detail: 'no port to check: the check names no "port" or "url" and the instance serves no HTTP port', transient: false });
  }
  const headers: Record<string, string> = { ...spec.headers };
  if (!Object.keys(headers).some((name) => name.toLowerCase() === 'user-agent')) headers['user-agent'] = 'cutover-health-check';
  // A fresh connection per attempt (agent false: no pooled socket outlives the check).
  const options: RequestOptions = { method: spec.method, headers, agent: false };
  const url = spec.url === undefined ? undefined : new URL(spec.url);
  return new Promise((resolve) => {
    const startMs = clock.nowMs();
    const elapsed = (): number => Math.max(0, Math.round(clock.nowMs() - startMs));
    const { finish, setCleanup } = settleOnce(clock, timeoutMs, () => timedOut(timeoutMs), resolve);
    const req: ClientRequest =
      url === undefined ? httpRequest({ ...options, host: spec.host, port, path: spec.path }) : (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, options);
    setCleanup(() => req.destroy());
    req.on('error', (error) => finish(networkFailure(error)));
    req.on('response', (res) => {
      // The response's own errors end up on the request too once destroyed; keep one listener here.
      res.on('error', (error) => finish(networkFailure(error)));
      setCleanup(() => {
        res.destroy();
        req.destroy();
      });
      // The body is read only when it decides: a wrong status fails without it.
      if (spec.bodyContains === undefined || !spec.expectedStatus.includes(res.statusCode ?? 0)) {
        finish(judgeHttp(spec, res.statusCode ?? 0, elapsed(), undefined));
        return;
      }
      readBody(res, (body, truncated) => finish(judgeHttp(spec, res.statusCode ?? 0, elapsed(), { body, truncated })));
    });
    req.end();
  });
}

/** Reads at most `BODY_READ_MAX` bytes, then calls `done` once (at the end of the body or at the limit). */
function readBody(res: IncomingMessage, done: (body: string, truncated: boolean) => void): void {
  const chunks: Buffer[] = [];
  let bytes = 0;
  let called = false;
  const end = (truncated: boolean): void => {
    if (called) return;
    called = true;
    done(Buffer.concat(chunks).toString('utf8'), truncated);
  };
  res.on('data', (chunk: Buffer) => {
    const room = BODY_READ_MAX - bytes;
    if (room <= 0) return;
    const kept = chunk.length > room ? chunk.subarray(0, room) : chunk;
    chunks.push(kept);
    bytes += kept.length;
    if (bytes >= BODY_READ_MAX) end(true);
  });
  res.on('end', () => end(false));
}

function judgeHttp(spec: HttpCheckSpec, status: number, ms: number, read: { body: string; truncated: boolean } | undefined): Attempt {
  if (!spec.expectedStatus.includes(status)) return { status: 'failure', detail: `expected status ${spec.expectedStatus.join(' or ')}, got ${status} in ${ms} ms`, transient: false };
  if (spec.maxResponseTimeMs !== undefined && ms > spec.maxResponseTimeMs) {
    return { status: 'failure', detail: `HTTP ${status} in ${ms} ms, over the ${spec.maxResponseTimeMs} ms limit`, transient: false };
  }
  if (spec.bodyContains !== undefined && read !== undefined && !read.body.includes(spec.bodyContains)) {
    const scope = read.truncated ? ` (first ${BODY_READ_MAX} bytes read)` : '';
    return { status: 'failure', detail: `body does not contain ${JSON.stringify(spec.bodyContains)}${scope}`, transient: false };
  }
  return { status: 'success', detail: `HTTP ${status} in ${ms} ms`, transient: false };
}

function attemptTcp(spec: TcpCheckSpec, clock: Clock, timeoutMs: number): Promise<Attempt> {
  return new Promise((resolve) => {
    const startMs = clock.nowMs();
    const { finish, setCleanup } = settleOnce(clock, timeoutMs, () => timedOut(timeoutMs, `no connection to ${spec.host}:${spec.port}`), resolve);
    const socket = connect({ host: spec.host, port: spec.port });
    setCleanup(() => socket.destroy());
    socket.on('error', (error) => finish(networkFailure(error)));
    socket.on('connect', () => {
      const ms = Math.max(0, Math.round(clock.nowMs() - startMs));
      finish({ status: 'success', detail: `connected to ${spec.host}:${spec.port} in ${ms} ms`, transient: false });
    });
  });
}

/** The last `SCRIPT_OUTPUT_TAIL_MAX` bytes of a stream. */
class Tail {
  private buffer = Buffer.alloc(0);
  push(chunk: Buffer): void {
    const joined = Buffer.concat([this.buffer, chunk]);
    this.buffer = joined.length > SCRIPT_OUTPUT_TAIL_MAX ? joined.subarray(joined.length - SCRIPT_OUTPUT_TAIL_MAX) : joined;
  }
  text(): string {
    // eslint-disable-next-line no-control-regex -- control characters (newlines included) become spaces in a one-line detail
    return this.buffer.toString('utf8').replace(/[\u0000-\u001f\u007f]+/g, ' ').replace(/\s+/g, ' ').trim();
  }
}

function attemptScript(spec: ScriptCheckSpec, target: CheckTarget, clock: Clock, timeoutMs: number): Promise<Attempt> {
  // The kill grace comes out of the attempt's time, so that even a child ignoring SIGTERM is gone
  // (SIGKILL sent) when the attempt ends.
  const graceMs = Math.min(SCRIPT_KILL_GRACE_MS, Math.floor(timeoutMs / 4));
  const runMs = timeoutMs - graceMs;
  return new Promise((resolve) => {
    const startMs = clock.nowMs();
    const { finish, setCleanup } = settleOnce(clock, timeoutMs, () => timedOut(timeoutMs, 'no exit'), resolve);
    // No shell: the arguments reach the program as given. Its own process group (detached), so
    // that a timeout kills whatever it started too.
    const child = spawn(spec.command, [...spec.args], {
      cwd: target.cwd,
      shell: false,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      windowsHide: true,
    });
    let terminated = false;
    const signalGroup = (signal: NodeJS.Signals): void => {
      if (child.pid === undefined) return;
      try {
        // The whole group: the script and anything it started. After the script exits this ends
        // what it left behind, or finds no group (ESRCH), which is fine.
        process.kill(-child.pid, signal);
      } catch {
        if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      }
    };
    const cancelTerm = clock.schedule(runMs, () => {
      terminated = true;
      signalGroup('SIGTERM');
    });
    setCleanup(() => {
      cancelTerm();
      signalGroup('SIGKILL');
    });
    const stdout = new Tail();
    const stderr = new Tail();
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.on('error', (error) => {
      const code = (error as { code?: unknown }).code;
      finish({ status: 'error', detail: `cannot run ${JSON.stringify(spec.command)}: ${code === 'ENOENT' ? 'no such program (ENOENT)' : errorMessage(error)}`, transient: false });
    });
    // 'exit' can come before the last output is read; the verdict waits for 'close' (the pipes
    // drained), or at most SCRIPT_OUTPUT_DRAIN_MS when something the script started holds them.
    let exit: { readonly code: number | null; readonly signal: NodeJS.Signals | null; readonly ms: number } | undefined;
    const judge = (): void => {
      if (exit !== undefined) finish(judgeExit(spec, exit.code, exit.signal, exit.ms, stderr.text() || stdout.text()));
    };
    child.on('exit', (code, signal) => {
      // Whatever a script answers to our SIGTERM, it did not finish in time.
      if (terminated) {
        finish(timedOut(timeoutMs, 'no exit'));
        return;
      }
      exit = { code, signal, ms: Math.max(0, Math.round(clock.nowMs() - startMs)) };
      const cancelDrain = clock.schedule(SCRIPT_OUTPUT_DRAIN_MS, judge);
      setCleanup(() => {
        cancelTerm();
        cancelDrain();
        signalGroup('SIGKILL');
      });
    });
    child.on('close', judge);
  });
}

function judgeExit(spec: ScriptCheckSpec, exitCode: number | null, signal: NodeJS.Signals | null, ms: number, output: string): Attempt {
  const tail = output === '' ? '' : `: ${output}`;
  if (exitCode === null) return { status: 'failure', detail: `killed by ${signal ?? 'a signal'} (expected exit code ${spec.expectedExitCode})${tail}`, transient: false };
  if (exitCode !== spec.expectedExitCode) return { status: 'failure', detail: `exit code ${exitCode} (expected ${spec.expectedExitCode})${tail}`, transient: false };
  return { status: 'success', detail: `exit code ${exitCode} in ${ms} ms`, transient: false };
}

async function attemptInstance(_spec: InstanceCheckSpec, target: CheckTarget, clock: Clock, timeoutMs: number): Promise<Attempt> {
  const instance = target.instance;
  const health = instance?.health;
  if (typeof health !== 'function') return { status: 'error', detail: 'the instance has no health() hook', transient: false };
  const startMs = clock.nowMs();
  let answer: unknown;
  try {
    const pending = Promise.resolve(health.call(instance));
    // A hung hook cannot be cancelled; its late rejection must not surface as unhandled.
    pending.catch(() => {});
    answer = await withTimeout(pending, clock, timeoutMs, () => new HookTimeout());
  } catch (error) {
    if (error instanceof HookTimeout) return timedOut(timeoutMs, 'health() gave no answer');
    return { status: 'failure', detail: `health() threw: ${errorMessage(error)}`, transient: false };
  }
  const ms = Math.max(0, Math.round(clock.nowMs() - startMs));
  if (isHealthy(answer)) return { status: 'success', detail: `health() passed in ${ms} ms`, transient: false };
  return { status: 'failure', detail: `health() answered ${describeAnswer(answer)}`, transient: false };
}

class HookTimeout extends Error {}

function describeAnswer(answer: unknown): string {
  try {
    return JSON.stringify(answer) ?? String(answer);
  } catch {
    return String(answer);
  }
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function clip(detail: string): string {
  return detail.length > CHECK_DETAIL_LENGTH_MAX ? `${detail.slice(0, CHECK_DETAIL_LENGTH_MAX - 1)}…` : detail;
}
