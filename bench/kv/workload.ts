/**
 * The closed-loop workload: N clients, each with one request in flight, drawing keys uniformly
 * from a fixed key space and values from a pool of random printable strings. Latencies go into
 * HDR histograms (microseconds, 3 significant digits) while the measurement window is open.
 */
import { build, type Histogram } from 'hdr-histogram-js';
import { monotonicClock } from '../../src/platform/clock.ts';
import { SeededRandom, type Random } from '../../src/util/random.ts';
import { errorLabel, type KvClient } from './kv-client.ts';
import type { Mix } from './loadgen-options.ts';
import { sleep } from '../../src/platform/wait.ts';

/** Latencies above this are recorded as this (a request's deadline is far below it). */
const LATENCY_US_MAX = 600_000_000;
/** Pause after a failed request, so a client facing a dead member does not spin. */
const ERROR_PAUSE_MS = 10;
const VALUE_POOL_SIZE = 64;

/** The shape of one request: what it does and on which key. */
export interface WorkloadShape {
  readonly mix: Mix;
  readonly keyspace: number;
  readonly keyBytes: number;
  readonly valueBytes: number;
  readonly requestTimeoutMs: number;
}

/** Latency percentiles of one histogram, in milliseconds. */
export interface LatencySummary {
  readonly count: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly p999Ms: number;
  readonly maxMs: number;
  readonly meanMs: number;
}

/** A completed request, for observers such as the failover probe. */
export type CompletionObserver = (startNs: bigint, endNs: bigint, ok: boolean) => void;

/** Counters and histograms of the measurement window. */
export class WindowStats {
  readonly all: Histogram = newHistogram();
  readonly puts: Histogram = newHistogram();
  readonly gets: Histogram = newHistogram();
  errors = 0;
  readonly errorsByLabel = new Map<string, number>();
}

/** Runs `clients` closed-loop clients against `client` until `stop()`; see the module comment. */
export class ClosedLoop {
  /** Requests completed successfully since start, window or not. */
  completedTotal = 0;
  private window: WindowStats | undefined;
  private stopping = false;
  private readonly values: string[];
  private readonly workers: Promise<void>[] = [];

  constructor(
    private readonly client: KvClient,
    private readonly shape: WorkloadShape,
    private readonly random: Random,
    private readonly observer: CompletionObserver = () => {},
  ) {
    this.values = Array.from({ length: VALUE_POOL_SIZE }, () => randomPrintable(random, shape.valueBytes));
  }

  /** Starts `clients` workers, each with its own random stream. */
  start(clients: number): void {
    for (let i = 0; i < clients; i++) this.workers.push(this.worker(new SeededRandom(this.random.nextUint32())));
  }

  /** Opens a fresh measurement window; what completes from now on is counted in it. */
  openWindow(): WindowStats {
    this.window = new WindowStats();
    return this.window;
  }

  /** Closes the window; later completions are no longer counted. */
  closeWindow(): void {
    this.window = undefined;
  }

  /** Lets each worker finish its request in flight, then resolves. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.window = undefined;
    await Promise.all(this.workers);
  }

  private async worker(random: Random): Promise<void> {
    while (!this.stopping) {
      const isPut = this.shape.mix === 'put' || random.nextFloat() < 0.5;
      const key = keyOf(random.nextInt(0, this.shape.keyspace), this.shape.keyBytes);
      const startNs = monotonicClock.nowNs();
      try {
        if (isPut) await this.client.put(key, this.values[random.nextInt(0, this.values.length)]!, this.shape.requestTimeoutMs);
        else await this.client.get(key, this.shape.requestTimeoutMs);
        this.onSuccess(isPut, startNs, monotonicClock.nowNs());
      } catch (error) {
        this.onError(error, startNs);
        await sleep(ERROR_PAUSE_MS);
      }
    }
  }

  private onSuccess(isPut: boolean, startNs: bigint, endNs: bigint): void {
    this.completedTotal++;
    this.observer(startNs, endNs, true);
    const window = this.window;
    if (window === undefined) return;
    const latencyUs = Math.min(LATENCY_US_MAX, Math.max(1, Math.round(Number(endNs - startNs) / 1000)));
    window.all.recordValue(latencyUs);
    (isPut ? window.puts : window.gets).recordValue(latencyUs);
  }

  private onError(error: unknown, startNs: bigint): void {
    this.observer(startNs, monotonicClock.nowNs(), false);
    const window = this.window;
    if (window === undefined) return;
    window.errors++;
    const label = errorLabel(error);
    window.errorsByLabel.set(label, (window.errorsByLabel.get(label) ?? 0) + 1);
  }
}

/** Percentiles of `histogram` in milliseconds (all zero when it is empty). */
export function summarize(histogram: Histogram): LatencySummary {
  const ms = (us: number): number => us / 1000;
  return {
    count: histogram.totalCount,
    p50Ms: ms(histogram.getValueAtPercentile(50)),
    p90Ms: ms(histogram.getValueAtPercentile(90)),
    p99Ms: ms(histogram.getValueAtPercentile(99)),
    p999Ms: ms(histogram.getValueAtPercentile(99.9)),
    maxMs: ms(histogram.maxValue),
    meanMs: ms(histogram.totalCount === 0 ? 0 : histogram.mean),
  };
}

/** Key number `index` as exactly `keyBytes` ASCII hex digits. */
export function keyOf(index: number, keyBytes: number): string {
  return index.toString(16).padStart(keyBytes, '0');
}

function newHistogram(): Histogram {
  return build({ lowestDiscernibleValue: 1, highestTrackableValue: LATENCY_US_MAX, numberOfSignificantValueDigits: 3, autoResize: false });
}

function randomPrintable(random: Random, length: number): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
  let text = '';
  for (let i = 0; i < length; i++) text += alphabet[random.nextInt(0, alphabet.length)];
  return text;
}
