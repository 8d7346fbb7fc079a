/** The replicated KV state machine: public surface. */
export { KvStore, WatchCompactedError } from './store.ts';
export type { ApplyOutcome, KvStoreOptions, WatchListener } from './store.ts';
export { validateCommand, validateRequest, DEFAULT_KV_LIMITS } from './validate.ts';
export type { KvLimits } from './validate.ts';
export * from './types.ts';
