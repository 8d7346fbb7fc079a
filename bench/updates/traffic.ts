/**
 * Steady greeter traffic through an embedded client (`connect` from the package entry, which
 * pushes its call metrics to the leader every second, so the health gate sees these calls): call i
 * starts at start + i / rps whatever happened to the earlier ones (open loop), at most
 * `maxInFlight` pending (a call that would exceed it is counted as not sent). Each call is
 * recorded with its start and end (this process's monotonic clock), the version and node of the
 * instance that served it, and its error code if it failed.
 *
 * Version and node come from the client's routing decision: `Invoker.invoke` calls
 * `RoutingTable.route` synchronously once per call, so the wrapper below sees the decision of the
 * call being started (bench/load/load.ts does the same). The invoker's single retry of a call
 * that certainly was not sent (a connection failure) goes to another instance of the same version
 * later; it is counted by `retries()`, and the call keeps its first node.
 */
import { connect, type CutoverClient } from '../../src/index.ts';
import type { RouteDecision } from '../../src/invoker/decisions.ts';
import { monotonicClock } from '../../src/platform/clock.ts';
import { sleep } from '../../src/platform/wait.ts';
import { CutoverError } from '../../src/util/errors.ts';
import { GREETER } from './cluster.ts';

export interface CallRecord {
  readonly startedAt: number;
  endedAt: number;
  /** Version of the instance the call was first routed to; '' when it was not routed. */
  version: string;
  /** Node id of that instance; 0 when not routed. */
  nodeId: number;
  error: string | undefined;
}

export interface TrafficOptions {
  readonly endpoints: readonly string[];
  readonly rps: number;
  readonly maxInFlight: number;
  readonly timeoutMs: number;
}

export class Traffic {
  readonly calls: CallRecord[] = [];
  notSent = 0;
  private inFlight = 0;
  private running = true;
  private sender: Promise<void> = Promise.resolve();
  private current: CallRecord | undefined;
  private stopped: Promise<CallRecord[]> | undefined;

  private constructor(
    readonly client: CutoverClient,
    private readonly options: TrafficOptions,
  ) {
    const table = client.table;
    const route = table.route.bind(table);
    const note = (decision: RouteDecision): RouteDecision => {
      const call = this.current;
      if (call !== undefined && decision.ok) {
        call.version = decision.version;
        call.nodeId = Number(decision.instance.nodeId);
      }
      return decision;
    };
    table.route = (base, localNodeId) => note(route(base, localNodeId));
  }

  static async start(options: TrafficOptions): Promise<Traffic> {
    const client = await connect({ endpoints: options.endpoints, invokeTimeoutMs: options.timeoutMs });
    const traffic = new Traffic(client, options);
    traffic.sender = traffic.send();
    return traffic;
  }

  /** Calls the client retried on another instance after a connection failure. */
  retries(): number {
    return this.client.status().retries;
  }

  /** Stops sending, waits for the calls in flight (at most `timeoutMs` more) and closes the client. */
  stop(): Promise<CallRecord[]> {
    this.stopped ??= this.finish();
    return this.stopped;
  }

  private async finish(): Promise<CallRecord[]> {
    this.running = false;
    await this.sender;
    const until = monotonicClock.nowMs() + this.options.timeoutMs + 1000;
    while (this.inFlight > 0 && monotonicClock.nowMs() < until) await sleep(20);
    await this.client.close();
    return this.calls;
  }

  private async send(): Promise<void> {
    const intervalMs = 1000 / this.options.rps;
    const startMs = monotonicClock.nowMs();
    let next = 0;
    while (this.running) {
      const now = monotonicClock.nowMs();
      while (startMs + next * intervalMs <= now) {
        this.startCall(next);
        next++;
      }
      await sleep(Math.max(1, Math.floor(startMs + next * intervalMs - monotonicClock.nowMs())));
    }
  }

  private startCall(i: number): void {
    if (this.inFlight >= this.options.maxInFlight) {
      this.notSent++;
      return;
    }
    const record: CallRecord = { startedAt: monotonicClock.nowMs(), endedAt: 0, version: '', nodeId: 0, error: undefined };
    this.calls.push(record);
    this.inFlight++;
    this.current = record;
    let call: Promise<unknown>;
    try {
      call = this.client.invoker.invoke(GREETER, 'hello', { name: `bench-${i}` }, { timeoutMs: this.options.timeoutMs });
    } finally {
      this.current = undefined;
    }
    call.then(
      () => this.done(record, undefined),
      (error: unknown) => this.done(record, error instanceof CutoverError ? error.code : String(error)),
    );
  }

  private done(record: CallRecord, error: string | undefined): void {
    record.endedAt = monotonicClock.nowMs();
    record.error = error;
    this.inFlight--;
  }
}

/** Calls per version (and failures per code) as "1.0.0: 812, 2.0.0: 388, failed UNAVAILABLE: 2". */
export function summarize(calls: readonly CallRecord[]): string {
  const counts = new Map<string, number>();
  for (const c of calls) {
    const key = c.error === undefined ? c.version : `failed ${c.error}${c.version === '' ? '' : ` on ${c.version}`}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts].map(([k, v]) => `${k}: ${v}`).join(', ');
}
