/**
 * What the load generator needs from a KV system: one put and one linearizable get, each a
 * single attempt with a deadline (no hidden retries, so both systems are measured alike; the
 * load loop itself moves on after an error).
 */

/** A KV client over all members of one cluster. */
export interface KvClient {
  /** Writes `value` under `key`; resolves once the system acknowledged the write. */
  put(key: string, value: string, timeoutMs: number): Promise<void>;
  /** A linearizable read of `key` (found or not); resolves with the system's answer. */
  get(key: string, timeoutMs: number): Promise<void>;
  /** Closes every connection; pending calls fail. */
  close(): void;
}

/** Which system a load generator talks to. */
export type SystemName = 'cutover' | 'etcd';

/** A short, stable label for an error, for the per-code error counts in the results. */
export function errorLabel(error: unknown): string {
  if (error !== null && typeof error === 'object') {
    const withCode = error as { code?: unknown; name?: unknown; metadata?: { get?: (key: string) => unknown[] } };
    const ours = withCode.metadata?.get?.('cutover-error-code')?.[0];
    if (ours !== undefined) return String(ours);
    if (typeof withCode.code === 'number') return `grpc-${withCode.code}`;
    if (typeof withCode.name === 'string' && withCode.name !== 'Error') return withCode.name;
  }
  return 'other';
}
