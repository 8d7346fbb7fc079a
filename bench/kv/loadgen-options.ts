/**
 * The load generator's command line, parsed by the load generator and built by the driver, so
 * the two cannot drift apart. Every setting has a bound; a bad one is refused with its name.
 */
import { parseArgs } from 'node:util';
import type { SystemName } from './kv-client.ts';

/** put = put-only; mixed = 50 % puts, 50 % linearizable gets. */
export type Mix = 'put' | 'mixed';

/**
 * load = warm up, measure, print one result line. failover = put load; print a ready line after
 * warming up, then wait for `kill <ns>` on stdin and report the first write acknowledged after it.
 */
export type LoadMode = 'load' | 'failover';

/** Everything one load generator run needs. */
export interface LoadgenOptions {
  readonly system: SystemName;
  /** host:port of every member's client API. */
  readonly endpoints: readonly string[];
  readonly mode: LoadMode;
  readonly mix: Mix;
  /** Concurrent closed-loop clients, each with at most one request in flight. */
  readonly clients: number;
  readonly warmupSeconds: number;
  /** Measured wall time (load mode). */
  readonly measureSeconds: number;
  /** Distinct keys; each request draws one uniformly. */
  readonly keyspace: number;
  readonly keyBytes: number;
  readonly valueBytes: number;
  readonly seed: number;
  /** Deadline of one request. */
  readonly requestTimeoutMs: number;
  /** Failover mode: how long to wait after the kill for a write before giving up. */
  readonly failoverWaitMs: number;
}

/** A numeric option's bounds, and whether it must be an integer. */
export type NumberLimits = readonly [min: number, max: number, integer: boolean];

const LIMITS: Record<string, NumberLimits> = {
  clients: [1, 4096, true],
  warmup: [0, 600, false],
  seconds: [0.1, 3600, false],
  keyspace: [1, 100_000_000, true],
  'key-bytes': [8, 1024, true],
  'value-bytes': [1, 1024 * 1024, true],
  seed: [0, 0xffff_ffff, true],
  'timeout-ms': [1, 120_000, true],
  'failover-wait-ms': [100, 600_000, true],
};

/** Parses the load generator's `argv` (without node and script). */
export function parseLoadgenOptions(argv: readonly string[]): LoadgenOptions {
  const stringOption = { type: 'string' } as const;
  const { values } = parseArgs({
    args: [...argv],
    options: Object.fromEntries(['system', 'endpoints', 'mode', 'mix', ...Object.keys(LIMITS)].map((name) => [name, stringOption])),
    strict: true,
  });
  const text = (name: string): string => {
    const value = values[name];
    if (typeof value !== 'string') throw new Error(`loadgen: --${name} is required`);
    return value;
  };
  const num = (name: string): number => boundedNumber(`--${name}`, text(name), LIMITS[name]!);
  return {
    system: oneOf('--system', text('system'), ['cutover', 'etcd'] as const),
    endpoints: endpointList(text('endpoints')),
    mode: oneOf('--mode', text('mode'), ['load', 'failover'] as const),
    mix: oneOf('--mix', text('mix'), ['put', 'mixed'] as const),
    clients: num('clients'),
    warmupSeconds: num('warmup'),
    measureSeconds: num('seconds'),
    keyspace: num('keyspace'),
    keyBytes: num('key-bytes'),
    valueBytes: num('value-bytes'),
    seed: num('seed'),
    requestTimeoutMs: num('timeout-ms'),
    failoverWaitMs: num('failover-wait-ms'),
  };
}

/** The command line that `parseLoadgenOptions` turns back into `options`. */
export function loadgenArgv(options: LoadgenOptions): string[] {
  const pairs: [string, string | number][] = [
    ['system', options.system], ['endpoints', options.endpoints.join(',')], ['mode', options.mode], ['mix', options.mix],
    ['clients', options.clients], ['warmup', options.warmupSeconds], ['seconds', options.measureSeconds],
    ['keyspace', options.keyspace], ['key-bytes', options.keyBytes], ['value-bytes', options.valueBytes],
    ['seed', options.seed], ['timeout-ms', options.requestTimeoutMs], ['failover-wait-ms', options.failoverWaitMs],
  ];
  return pairs.flatMap(([name, value]) => [`--${name}`, String(value)]);
}

/** A number within `limits`; throws an Error naming the option otherwise. */
export function boundedNumber(name: string, text: string, [min, max, integer]: NumberLimits): number {
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value) || (integer && !Number.isInteger(value)) || value < min || value > max) {
    throw new Error(`${name}: must be ${integer ? 'an integer' : 'a number'} in [${min}, ${max}], got '${text}'`);
  }
  return value;
}

function oneOf<T extends string>(name: string, text: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(text)) throw new Error(`${name}: must be one of ${allowed.join(', ')}, got '${text}'`);
  return text as T;
}

function endpointList(text: string): string[] {
  const endpoints = text.split(',').filter((item) => item !== '');
  if (endpoints.length === 0 || endpoints.length > 16 || endpoints.some((e) => !/^[^\s:/]+:\d{1,5}$/.test(e))) {
    throw new Error(`--endpoints: give 1 to 16 host:port values separated by commas, got '${text}'`);
  }
  return endpoints;
}
