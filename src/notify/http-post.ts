/**
 * One bounded HTTP POST: node:http or node:https by the URL, a fresh connection (no shared agent, so
 * one hanging receiver holds nothing another channel needs), the whole exchange cut at `timeoutMs`
 * of the injected clock, and at most `responseBytesMax` of the answer read (for the log). Never
 * throws: the outcome says whether it worked and whether trying again could help.
 *
 * Host names are resolved through a gate that lets at most `LOOKUPS_IN_FLIGHT_MAX` run at once:
 * `dns.lookup` blocks a libuv threadpool thread until the system resolver answers (which can take
 * its full timeout when DNS is down), and that pool also runs the node's LevelDB reads and writes.
 * A dead resolver must not slow the Raft log for every channel's sake.
 */
import dns from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import type { Clock } from '../util/clock.ts';

/** Host-name lookups of notifications running at once (libuv's pool has 4 threads by default). */
export const LOOKUPS_IN_FLIGHT_MAX = 2;
/** Lookups waiting for the gate; more fail at once (each request in flight waits for one at most). */
const LOOKUPS_WAITING_MAX = 1024;

let lookupsInFlight = 0;
const lookupsWaiting: (() => void)[] = [];

/** `dns.lookup` through the gate (IP literals never get here: net connects to them directly). */
type LookupCallback = (error: NodeJS.ErrnoException | null, address: string | dns.LookupAddress[], family?: number) => void;

/** `dns.lookup` through the gate (IP literals never get here: net connects to them directly). */
const gatedLookup: LookupFunction = (hostname, options, callback) => {
  const done = callback as LookupCallback;
  const run = (): void => {
    lookupsInFlight++;
    const resolved: LookupCallback = (error, address, family) => {
      lookupsInFlight--;
      lookupsWaiting.shift()?.();
      done(error, address, family);
    };
    (dns.lookup as (hostname: string, options: dns.LookupOptions, callback: LookupCallback) => void)(hostname, options, resolved);
  };
  if (lookupsInFlight < LOOKUPS_IN_FLIGHT_MAX) run();
  else if (lookupsWaiting.length < LOOKUPS_WAITING_MAX) lookupsWaiting.push(run);
  else done(Object.assign(new Error(`more than ${LOOKUPS_WAITING_MAX} host-name lookups waiting`), { code: 'ELOOKUPQUEUE' }), '', 4);
};

export interface PostOptions {
  readonly clock: Clock;
  readonly timeoutMs: number;
  /** Bytes of the response body kept (the rest is not read). */
  readonly responseBytesMax: number;
}

export type PostOutcome =
  | { readonly ok: true; readonly status: number; readonly durationMs: number }
  | {
      readonly ok: false;
      /** `network`: no answer (refused, reset, DNS); `timeout`: cut at the timeout; `status`: a non-2xx answer. */
      readonly kind: 'network' | 'timeout' | 'status';
      /** The HTTP status, 0 without an answer. */
      readonly status: number;
      readonly message: string;
      /** Whether another attempt may succeed: not for a 4xx other than 408 and 429. */
      readonly retryable: boolean;
      readonly durationMs: number;
    };

/** A request in flight; `abort()` ends it at once (its outcome is then a network failure). */
export interface PostHandle {
  readonly outcome: Promise<PostOutcome>;
  abort(): void;
}

export function retryableStatus(status: number): boolean {
  return !(status >= 400 && status < 500) || status === 408 || status === 429;
}

/** POSTs `body` to `url` with `headers`; see the module comment for the bounds. */
export function postJson(url: string, body: string, headers: Readonly<Record<string, string>>, options: PostOptions): PostHandle {
  const startMs = options.clock.nowMs();
  const elapsed = (): number => Math.max(0, options.clock.nowMs() - startMs);
  let cancelTimer: () => void = () => {};
  let settle: (outcome: PostOutcome) => void = () => {};
  const outcome = new Promise<PostOutcome>((resolve) => {
    let done = false;
    settle = (value) => {
      if (done) return;
      done = true;
      cancelTimer();
      resolve(value);
    };
  });
  const fail = (kind: 'network' | 'timeout', message: string): void => settle({ ok: false, kind, status: 0, message, retryable: true, durationMs: elapsed() });

  let target: URL;
  try {
    target = new URL(url);
  } catch {
    settle({ ok: false, kind: 'network', status: 0, message: 'the URL does not parse', retryable: false, durationMs: 0 });
    return { outcome, abort: () => {} };
  }
  const transport = target.protocol === 'https:' ? https : http;
  const bytes = Buffer.from(body, 'utf8');
  let request: http.ClientRequest;
  try {
    request = transport.request(target, {
      method: 'POST',
      agent: false,
      lookup: gatedLookup,
      headers: { ...headers, 'content-type': 'application/json', 'content-length': String(bytes.length), 'user-agent': 'cutover-notify/1' },
    });
  } catch (error) {
    // Node refuses some requests before any I/O (a header or host it cannot send): no retry helps.
    settle({ ok: false, kind: 'network', status: 0, message: error instanceof Error ? error.message : String(error), retryable: false, durationMs: 0 });
    return { outcome, abort: () => {} };
  }
  cancelTimer = options.clock.schedule(options.timeoutMs, () => {
    fail('timeout', `no answer within ${options.timeoutMs} ms`);
    request.destroy();
  });
  request.on('error', (error: Error & { code?: string }) => fail('network', error.code === undefined ? error.message : `${error.code}: ${error.message}`));
  request.on('response', (response) => {
    const status = response.statusCode ?? 0;
    const chunks: Buffer[] = [];
    let kept = 0;
    const finish = (): void => {
      const text = Buffer.concat(chunks).toString('utf8');
      if (status >= 200 && status < 300) settle({ ok: true, status, durationMs: elapsed() });
      else settle({ ok: false, kind: 'status', status, message: `HTTP ${status}${text === '' ? '' : `: ${text}`}`, retryable: retryableStatus(status), durationMs: elapsed() });
      request.destroy();
    };
    response.on('data', (chunk: Buffer) => {
      if (kept < options.responseBytesMax) {
        const part = chunk.subarray(0, options.responseBytesMax - kept);
        chunks.push(part);
        kept += part.length;
      }
      // Enough read: the status is what counts, and a receiver may stream forever.
      if (kept >= options.responseBytesMax) finish();
    });
    response.on('end', finish);
    response.on('error', finish);
  });
  request.end(bytes);
  return {
    outcome,
    abort: () => {
      fail('network', 'aborted');
      request.destroy();
    },
  };
}
