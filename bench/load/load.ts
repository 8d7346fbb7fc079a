/**
 * `npm run load -- --rps 200 --duration 30s [--endpoints h:p,…] [--artifact g:a] [--method m]`:
 * an open-loop load generator for slices (`--help` lists every flag).
 *
 * It connects with the embedded client (`connect()` from the package entry: the client follows the
 * routing state by KV watch and calls each instance directly on its node, no proxy hop) and
 * starts call i at start + i / rps whatever happened to the calls before it, so a slow version
 * cannot slow the offered load down (no coordinated omission). Latency is measured from the call's
 * scheduled start to its settlement; the summary also shows how late the generator started calls
 * (its lag) and the p99 from the actual start, so that a generator that fell behind is visible.
 *
 * Every second it prints the calls that completed in that second per version, with errors; at the
 * end (or on Ctrl-C) it waits for the calls in flight and prints per version: calls, errors, error
 * rate, share of the calls, p50/p99/max latency, and the error codes.
 *
 * Which version served a call is the routing decision the client's invoker made for it: the load
 * generator wraps the client's `RoutingTable.route` (which `Invoker.invoke` calls synchronously,
 * once per call) to read it. A retry after a connection failure stays on the same version, so
 * the decision names the version that answered or failed.
 */
import { build, type Histogram } from 'hdr-histogram-js';
import { connect, type CutoverClient } from '../../src/index.ts';
import type { RouteDecision } from '../../src/invoker/decisions.ts';
import { monotonicClock } from '../../src/platform/clock.ts';
import { realClock } from '../../src/platform/scheduler.ts';
import { sleep } from '../../src/platform/wait.ts';
import { parseLoadOptions, type LoadOptions } from './options.ts';

/** Calls the client refused before any version was chosen (UNKNOWN_SLICE, NO_ACTIVE_INSTANCE). */
const UNROUTED = '(no route)';
const LATENCY_US_MAX = 24 * 60 * 60 * 1_000_000;

interface VersionStats {
  calls: number;
  errors: number;
  /** Completed in the current one-second interval. */
  intervalCalls: number;
  intervalErrors: number;
  /** From the scheduled start (what a caller on that schedule waits). */
  readonly latency: Histogram;
  /** From the actual start: without the generator's own lag. */
  readonly serviceLatency: Histogram;
  readonly errorCodes: Map<string, number>;
}

function newHistogram(): Histogram {
  return build({ lowestDiscernibleValue: 1, highestTrackableValue: LATENCY_US_MAX, numberOfSignificantValueDigits: 3, autoResize: false });
}

function errorCode(error: unknown): string {
  if (error !== null && typeof error === 'object' && 'code' in error && typeof error.code === 'string') return error.code;
  return error instanceof Error ? error.name : 'ERROR';
}

class LoadRun {
  private readonly stats = new Map<string, VersionStats>();
  private readonly lag: Histogram = newHistogram();
  private sent = 0;
  private notSent = 0;
  private inFlight = 0;
  private lastDecision: RouteDecision | undefined;
  private idle: (() => void) | undefined;

  constructor(
    private readonly client: CutoverClient,
    private readonly options: LoadOptions,
  ) {
    // See the module comment: the invoker calls route() synchronously once per invoke.
    const table = client.table;
    const route = table.route.bind(table);
    table.route = (base, localNodeId) => {
      const decision = route(base, localNodeId);
      this.lastDecision = decision;
      return decision;
    };
  }

  /** Sends on schedule until `durationMs` has passed or `stopped()` says so. */
  async send(startMs: number, stopped: () => boolean): Promise<void> {
    const intervalMs = 1000 / this.options.rps;
    const total = Math.max(1, Math.round((this.options.durationMs / 1000) * this.options.rps));
    let next = 0;
    while (next < total && !stopped()) {
      const now = monotonicClock.nowMs();
      while (next < total && startMs + next * intervalMs <= now) {
        this.start(startMs + next * intervalMs, now);
        next++;
      }
      if (next < total) {
        const wait = startMs + next * intervalMs - monotonicClock.nowMs();
        // A timer has millisecond granularity; a call due in under 1 ms waits for the next turn.
        await sleep(Math.max(0, Math.floor(wait)));
      }
    }
  }

  private start(scheduledMs: number, nowMs: number): void {
    this.lag.recordValue(Math.min(LATENCY_US_MAX, Math.max(1, Math.round((nowMs - scheduledMs) * 1000))));
    if (this.inFlight >= this.options.maxInFlight) {
      this.notSent++;
      return;
    }
    this.sent++;
    this.inFlight++;
    this.lastDecision = undefined;
    const call = this.client.invoker.invoke(this.options.artifact, this.options.method, this.options.payload, { timeoutMs: this.options.timeoutMs });
    const decision = this.lastDecision as RouteDecision | undefined;
    const version = decision?.ok === true ? decision.version : UNROUTED;
    call.then(
      () => this.done(version, scheduledMs, nowMs, undefined),
      (error: unknown) => this.done(version, scheduledMs, nowMs, errorCode(error)),
    );
  }

  private done(version: string, scheduledMs: number, sentMs: number, code: string | undefined): void {
    this.inFlight--;
    const stats = this.version(version);
    stats.calls++;
    stats.intervalCalls++;
    const now = monotonicClock.nowMs();
    stats.latency.recordValue(Math.min(LATENCY_US_MAX, Math.max(1, Math.round((now - scheduledMs) * 1000))));
    stats.serviceLatency.recordValue(Math.min(LATENCY_US_MAX, Math.max(1, Math.round((now - sentMs) * 1000))));
    if (code !== undefined) {
      stats.errors++;
      stats.intervalErrors++;
      stats.errorCodes.set(code, (stats.errorCodes.get(code) ?? 0) + 1);
    }
    if (this.inFlight === 0) this.idle?.();
  }

  private version(version: string): VersionStats {
    let stats = this.stats.get(version);
    if (stats === undefined) {
      stats = { calls: 0, errors: 0, intervalCalls: 0, intervalErrors: 0, latency: newHistogram(), serviceLatency: newHistogram(), errorCodes: new Map() };
      this.stats.set(version, stats);
    }
    return stats;
  }

  /** Resolves once no call is in flight, or after `timeoutMs`; returns how many are left. */
  async drain(timeoutMs: number): Promise<number> {
    if (this.inFlight > 0) {
      await new Promise<void>((resolve) => {
        const cancel = realClock.schedule(timeoutMs, () => resolve());
        this.idle = () => {
          cancel();
          resolve();
        };
      });
      this.idle = undefined;
    }
    return this.inFlight;
  }

  /** The line for the interval that just ended (`label`: its end, like `3s`); resets the interval counters. */
  intervalLine(label: string): string {
    const parts = this.sortedVersions().map(([version, s]) => {
      const line = `${version} ${s.intervalCalls}${s.intervalErrors > 0 ? ` (${s.intervalErrors} err)` : ''}`;
      s.intervalCalls = 0;
      s.intervalErrors = 0;
      return line;
    });
    return `${label.padStart(5)}  sent ${String(this.sent).padStart(7)}  in flight ${String(this.inFlight).padStart(5)}  |  ${parts.length === 0 ? 'no call completed yet' : parts.join('  ')}`;
  }

  summary(elapsedMs: number, leftInFlight: number): string {
    const rows = this.sortedVersions();
    const completed = rows.reduce((sum, [, s]) => sum + s.calls, 0);
    const header = ['version', 'calls', 'share', 'errors', 'error rate', 'p50 ms', 'p99 ms', 'max ms', 'p99 from send ms', 'error codes'];
    const ms = (us: number): string => (us / 1000).toFixed(2);
    const cells = rows.map(([version, s]) => [
      version,
      String(s.calls),
      `${completed === 0 ? '0.0' : ((s.calls / completed) * 100).toFixed(1)} %`,
      String(s.errors),
      `${s.calls === 0 ? '0.00' : ((s.errors / s.calls) * 100).toFixed(2)} %`,
      ms(s.latency.getValueAtPercentile(50)),
      ms(s.latency.getValueAtPercentile(99)),
      ms(s.latency.maxValue),
      ms(s.serviceLatency.getValueAtPercentile(99)),
      [...s.errorCodes.entries()].sort((a, b) => b[1] - a[1]).map(([code, n]) => `${code} ${n}`).join(', '),
    ]);
    const totalErrors = rows.reduce((sum, [, s]) => sum + s.errors, 0);
    const all = newHistogram();
    const allService = newHistogram();
    for (const [, s] of rows) {
      all.add(s.latency);
      allService.add(s.serviceLatency);
    }
    cells.push(['all', String(completed), '100.0 %', String(totalErrors), `${completed === 0 ? '0.00' : ((totalErrors / completed) * 100).toFixed(2)} %`, ms(all.getValueAtPercentile(50)), ms(all.getValueAtPercentile(99)), ms(all.maxValue), ms(allService.getValueAtPercentile(99)), '']);
    const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
    const line = (c: readonly string[]): string => `| ${c.map((cell, i) => (i === 0 || i === c.length - 1 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join(' | ')} |`;
    const rule = `|${widths.map((w, i) => (i === 0 || i === widths.length - 1 ? `:${'-'.repeat(w + 1)}` : `${'-'.repeat(w + 1)}:`)).join('|')}|`;
    const rate = this.sent / (elapsedMs / 1000);
    return [
      `\n${this.options.artifact} ${this.options.method}: ${this.sent} calls sent in ${(elapsedMs / 1000).toFixed(1)} s (${rate.toFixed(1)}/s, target ${this.options.rps}/s)` +
        `${this.notSent > 0 ? `, ${this.notSent} not sent (--max-in-flight ${this.options.maxInFlight} reached)` : ''}${leftInFlight > 0 ? `, ${leftInFlight} still in flight at exit (not counted)` : ''}`,
      `generator lag (start of a call after its scheduled time): p50 ${ms(this.lag.getValueAtPercentile(50))} ms, p99 ${ms(this.lag.getValueAtPercentile(99))} ms, max ${ms(this.lag.maxValue)} ms; latencies are from the scheduled time, except 'p99 from send'`,
      '',
      line(header),
      rule,
      ...cells.map(line),
    ].join('\n');
  }

  private sortedVersions(): [string, VersionStats][] {
    return [...this.stats.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }
}

async function main(): Promise<void> {
  const options = parseLoadOptions(process.argv);
  let client: CutoverClient;
  try {
    client = await connect({ endpoints: options.endpoints, timeoutMs: Math.ceil(options.connectTimeoutMs) });
  } catch (error) {
    console.error(`load: cannot connect to ${options.endpoints.join(', ')}: ${error instanceof Error ? error.message : String(error)}`);
    console.error('load: is a cluster running? `npm start` starts one on 127.0.0.1:7001-7003.');
    process.exit(1);
  }
  const known = client.table.snapshot().artifacts.find((a) => a.base === options.artifact);
  if (known === undefined) console.error(`load: warning: the cluster knows no routing record or instance of ${options.artifact}; calls will fail with UNKNOWN_SLICE`);
  console.log(`load: ${options.rps} calls/s for ${options.durationMs / 1000} s to ${options.artifact} ${options.method} through ${options.endpoints.join(', ')} (embedded client, direct to instances)`);

  const run = new LoadRun(client, options);
  let interrupted = false;
  const onSignal = (): void => {
    if (interrupted) process.exit(130);
    interrupted = true;
    console.log('\nload: interrupted; waiting for the calls in flight (Ctrl-C again to quit at once)');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const startMs = monotonicClock.nowMs();
  let second = 0;
  const tick = (): void => {
    second++;
    console.log(run.intervalLine(`${second}s`));
    cancelTick = realClock.schedule(startMs + (second + 1) * 1000 - monotonicClock.nowMs(), tick);
  };
  let cancelTick = realClock.schedule(1000, tick);
  await run.send(startMs, () => interrupted);
  const elapsedMs = monotonicClock.nowMs() - startMs;
  const left = await run.drain(options.timeoutMs + 1000);
  cancelTick();
  console.log(run.intervalLine('end'));
  console.log(run.summary(elapsedMs, left));
  await client.close();
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(`load: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  },
);
