/**
 * Time as the layers above `src/raft` see it: injected, so that the simulator can run a whole
 * node on simulated time. The real implementation is in `src/platform/`.
 */
export interface Clock {
  /** Monotonic milliseconds since an arbitrary origin. */
  nowMs(): number;
  /** Runs `fn` once after `delayMs`; returns a function that cancels it (idempotent). */
  schedule(delayMs: number, fn: () => void): () => void;
}

/** `promise`, or `onTimeout()` as a rejection once `timeoutMs` of `clock` time have passed. */
export function withTimeout<T>(promise: Promise<T>, clock: Clock, timeoutMs: number, onTimeout: () => Error): Promise<T> {
  return new Promise((resolve, reject) => {
    const cancel = clock.schedule(timeoutMs, () => reject(onTimeout()));
    promise.then(
      (value) => {
        cancel();
        resolve(value);
      },
      (error: unknown) => {
        cancel();
        reject(error);
      },
    );
  });
}
