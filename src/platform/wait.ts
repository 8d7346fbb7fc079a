/**
 * Bounded waiting on real time, for code that talks to real processes and sockets: tests, the
 * benchmarks and the local-cluster launcher. Never used by the node itself, which schedules
 * through an injected Clock.
 */
import { createServer } from 'node:net';
import { monotonicClock } from './clock.ts';
import { realClock } from './scheduler.ts';

/** Resolves after `ms` of real time (for tests against real processes and sockets). */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => realClock.schedule(ms, resolve));
}

/**
 * Polls `probe` every `intervalMs` until it returns a value other than undefined or false. Bounded by
 * `attempts` and, when given, by `timeoutMs` of real time (whichever comes first); then throws an
 * Error naming `what` and the last failure the probe threw.
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  { attempts = 100, intervalMs = 50, timeoutMs = Number.POSITIVE_INFINITY }: { attempts?: number; intervalMs?: number; timeoutMs?: number } = {},
): Promise<Exclude<T, false>> {
  const deadlineMs = monotonicClock.nowMs() + timeoutMs;
  let lastError: unknown;
  for (let i = 0; i < attempts && monotonicClock.nowMs() < deadlineMs; i++) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value as Exclude<T, false>;
    } catch (error) {
      lastError = error;
    }
    await sleep(intervalMs);
  }
  throw new Error(`timed out waiting for ${what}${lastError instanceof Error ? `: ${lastError.message}` : ''}`);
}

/** A free TCP port on 127.0.0.1 (bound, then released: a small race, accepted in tests and benches). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
