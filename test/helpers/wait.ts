import { realClock } from '../../src/platform/scheduler.ts';

/** Resolves after `ms` of real time (for tests against real processes and sockets). */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => realClock.schedule(ms, resolve));
}

/** Polls `probe` every `intervalMs` until it returns a value other than undefined; bounded. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, { attempts = 100, intervalMs = 50 } = {}): Promise<T> {
  let lastError: unknown;
  for (let i = 0; i < attempts; i++) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    await sleep(intervalMs);
  }
  throw new Error(`timed out waiting for ${what}${lastError instanceof Error ? `: ${lastError.message}` : ''}`);
}
