/** Options of `LevelRaftStorage.open`, and their validation. */
import { realClock } from '../platform/scheduler.ts';
import type { Clock } from '../util/clock.ts';
import { InvalidArgumentError } from '../util/errors.ts';
import { silentLogger, type Logger } from '../util/logger.ts';

export interface LevelRaftStorageOptions {
  /**
   * The LevelDB directory, created if missing. While open, this storage is its only user (LevelDB
   * locks it); other local stores may share the database only through `LevelRaftStorage` itself.
   */
  readonly dataDir: string;
  /** Parent logger; the storage logs through a child `{ component: 'raft-storage' }`. */
  readonly logger?: Logger;
  /** Times the synced writes for `onSyncWrite`. Defaults to the real monotonic clock. */
  readonly clock?: Clock;
  /**
   * Called after each successful synced batch with its duration in milliseconds (for the node's
   * sync-write latency histogram). It must not throw; if it does, the error is logged and ignored.
   */
  readonly onSyncWrite?: (durationMs: number) => void;
}

/** The options with defaults filled in. */
export interface ResolvedOptions {
  readonly dataDir: string;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly onSyncWrite: ((durationMs: number) => void) | undefined;
}

/**
 * Validates `options` (which may come from untyped configuration) and fills in defaults. Throws
 * `InvalidArgumentError` (code INVALID_ARGUMENT) naming the first bad option.
 */
export function resolveOptions(options: LevelRaftStorageOptions): ResolvedOptions {
  if (typeof options !== 'object' || options === null) throw new InvalidArgumentError('options', 'must be an object');
  const { dataDir, logger, clock, onSyncWrite } = options as Partial<Record<keyof LevelRaftStorageOptions, unknown>>;
  if (typeof dataDir !== 'string' || dataDir.trim() === '') throw new InvalidArgumentError('dataDir', 'must be a non-empty path');
  if (dataDir.includes('\0')) throw new InvalidArgumentError('dataDir', 'must not contain a NUL byte');
  if (logger !== undefined && !hasMethods(logger, ['debug', 'info', 'warn', 'error', 'child'])) {
    throw new InvalidArgumentError('logger', 'must be a Logger (debug, info, warn, error, child)');
  }
  if (clock !== undefined && !hasMethods(clock, ['nowMs'])) throw new InvalidArgumentError('clock', 'must be a Clock (nowMs)');
  if (onSyncWrite !== undefined && typeof onSyncWrite !== 'function') throw new InvalidArgumentError('onSyncWrite', 'must be a function');
  return {
    dataDir,
    logger: options.logger ?? silentLogger,
    clock: options.clock ?? realClock,
    onSyncWrite: options.onSyncWrite,
  };
}

function hasMethods(value: unknown, names: readonly string[]): boolean {
  if (typeof value !== 'object' || value === null) return false;
  const record = value as Record<string, unknown>;
  return names.every((name) => typeof record[name] === 'function');
}
