/**
 * Command-line options of `npm run load` (commander). Every flag is checked when it is parsed; a
 * bad one stops the program with a message naming it and what it accepts.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { parseArtifactBase } from '../../src/slices/keys.ts';

export interface LoadOptions {
  /** Calls started per second, on a fixed schedule (open loop). */
  readonly rps: number;
  readonly durationMs: number;
  readonly endpoints: readonly string[];
  readonly artifact: string;
  readonly method: string;
  readonly payload: unknown;
  /** Deadline of each call. */
  readonly timeoutMs: number;
  /** Calls in flight at most; a call due while this many are pending is not sent (and counted). */
  readonly maxInFlight: number;
  /** How long `connect` may take to read the routing state. */
  readonly connectTimeoutMs: number;
}

export const DEFAULT_ENDPOINTS = '127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003';
const RPS_MAX = 100_000;
const DURATION_MAX_MS = 24 * 60 * 60 * 1000;
const METHOD_LENGTH_MAX = 128;

/** `30s`, `500ms`, `2m`, `1h`, or a bare number of seconds → milliseconds in (0, maxMs]. */
export function parseDuration(text: string, maxMs = DURATION_MAX_MS): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (match === null) throw new InvalidArgumentError(`expected a duration like 30s, 500ms, 2m or 1h (a bare number is seconds), got '${text}'.`);
  const unit = match[2] ?? 's';
  const ms = Number(match[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[unit as 'ms' | 's' | 'm' | 'h'];
  if (!(ms > 0) || ms > maxMs) throw new InvalidArgumentError(`must be more than 0 and at most ${maxMs / 1000} s, got '${text}'.`);
  return ms;
}

function parseRps(text: string): number {
  const rps = Number(text);
  if (text.trim() === '' || !Number.isFinite(rps) || rps <= 0 || rps > RPS_MAX) throw new InvalidArgumentError(`expected calls per second, a number in (0, ${RPS_MAX}], got '${text}'.`);
  return rps;
}

/** `host:port,host:port`; a host is a name, an IPv4 address or a bracketed IPv6 address. */
export function parseEndpoints(text: string): string[] {
  const endpoints = text.split(',').map((e) => e.trim()).filter((e) => e !== '');
  if (endpoints.length === 0) throw new InvalidArgumentError('expected a comma-separated list of host:port.');
  for (const endpoint of endpoints) {
    const match = /^(\[[0-9a-fA-F:]+\]|[^\s:/[\]]+):(\d{1,5})$/.exec(endpoint);
    const port = match === null ? Number.NaN : Number(match[2]);
    if (!(port >= 1 && port <= 65535)) throw new InvalidArgumentError(`each endpoint must be host:port with a port in 1..65535, got '${endpoint}'.`);
  }
  return endpoints;
}

function parseArtifact(text: string): string {
  if (parseArtifactBase(text) === undefined) throw new InvalidArgumentError(`expected groupId:artifactId like org.example:greeter, got '${text}'.`);
  return text;
}

function parseMethod(text: string): string {
  if (text.length === 0 || text.length > METHOD_LENGTH_MAX) throw new InvalidArgumentError(`expected a method name of 1 to ${METHOD_LENGTH_MAX} characters.`);
  return text;
}

function parsePayload(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new InvalidArgumentError(`expected JSON, got '${text}' (${error instanceof Error ? error.message : String(error)}).`);
  }
}

function parseCount(text: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 1 || n > 1_000_000) throw new InvalidArgumentError(`expected an integer in [1, 1000000], got '${text}'.`);
  return n;
}

/** Parses `argv` (node and script included, as in process.argv); exits with a message on bad flags. */
export function parseLoadOptions(argv: readonly string[]): LoadOptions {
  const program = new Command('npm run load --')
    .description('Open-loop load generator: calls a slice at a fixed rate through the embedded client (connect()), straight to the instances, and reports per version.')
    .addOption(new Option('--rps <n>', 'calls started per second (open loop: the schedule does not wait for replies)').default(200, '200').argParser(parseRps))
    .addOption(new Option('--duration <time>', 'how long to send: 30s, 500ms, 2m, 1h').default(30_000, '30s').argParser((t) => parseDuration(t)))
    .addOption(new Option('--endpoints <list>', 'host:port of one or more nodes\' API, comma-separated').default(parseEndpoints(DEFAULT_ENDPOINTS), DEFAULT_ENDPOINTS).argParser(parseEndpoints))
    .addOption(new Option('--artifact <groupId:artifactId>', 'the slice to call').default('org.example:greeter').argParser(parseArtifact))
    .addOption(new Option('--method <name>', 'the method to call').default('hello').argParser(parseMethod))
    .addOption(new Option('--payload <json>', 'the argument of every call, as JSON').default({ name: 'load' }, '{"name":"load"}').argParser(parsePayload))
    .addOption(new Option('--timeout <time>', 'deadline of each call').default(5000, '5s').argParser((t) => parseDuration(t, 24 * 60 * 60 * 1000)))
    .addOption(new Option('--max-in-flight <n>', 'calls pending at most; a call due beyond this is not sent, and counted').default(10_000).argParser(parseCount))
    .addOption(new Option('--connect-timeout <time>', 'how long to wait for the routing state at start').default(10_000, '10s').argParser((t) => parseDuration(t, 600_000)))
    .showHelpAfterError()
    .allowExcessArguments(false);
  program.parse([...argv]);
  const o = program.opts<{ rps: number; duration: number; endpoints: string[]; artifact: string; method: string; payload: unknown; timeout: number; maxInFlight: number; connectTimeout: number }>();
  return { rps: o.rps, durationMs: o.duration, endpoints: o.endpoints, artifact: o.artifact, method: o.method, payload: o.payload, timeoutMs: o.timeout, maxInFlight: o.maxInFlight, connectTimeoutMs: o.connectTimeout };
}
