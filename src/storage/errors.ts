/**
 * Operational errors of the LevelDB storage. Each names the data directory, so that an operator
 * running several nodes on one machine knows which one to look at.
 */
import { AssertionError } from '../util/assert.ts';
import { CutoverError } from '../util/errors.ts';

/**
 * A stored record failed its checksum, is torn or malformed, or the records together break an
 * invariant of the log (a gap, a commit index past the log). The node must not start: skipping
 * the record could lose acknowledged writes. `key` is the printable key of the offending record
 * (undefined when LevelDB itself reports the corruption).
 */
export class StorageCorruptError extends CutoverError {
  override readonly name = 'StorageCorruptError';
  readonly dataDir: string;
  readonly key: string | undefined;

  constructor(dataDir: string, key: string | undefined, reason: string, options?: { cause?: unknown }) {
    const where = key === undefined ? '' : ` at key ${key}`;
    super('STORAGE_CORRUPT', `raft storage in ${dataDir} is corrupt${where}: ${reason}`, options);
    this.dataDir = dataDir;
    this.key = key;
  }
}

/** LevelDB could not be opened (locked by another process, permissions, not a directory, ...). */
export class StorageOpenError extends CutoverError {
  override readonly name = 'StorageOpenError';
  readonly dataDir: string;

  constructor(dataDir: string, cause: unknown) {
    super('STORAGE_OPEN_FAILED', `cannot open raft storage in ${dataDir}: ${describe(cause)}`, { cause });
    this.dataDir = dataDir;
  }
}

/**
 * A write failed. The storage refuses every later write, since what reached the disk is unknown:
 * the node must stop and restart, which reloads the state from disk.
 */
export class StorageWriteError extends CutoverError {
  override readonly name = 'StorageWriteError';
  readonly dataDir: string;

  constructor(dataDir: string, message: string, cause?: unknown) {
    super('STORAGE_WRITE_FAILED', `raft storage in ${dataDir}: ${message}`, cause === undefined ? undefined : { cause });
    this.dataDir = dataDir;
  }
}

/** A write was attempted after `close()`. */
export class StorageClosedError extends CutoverError {
  override readonly name = 'StorageClosedError';
  constructor(dataDir: string) {
    super('STORAGE_CLOSED', `raft storage in ${dataDir} is closed`);
  }
}

/** `bootstrap` was called on a storage that already holds state. */
export class StorageNotEmptyError extends CutoverError {
  override readonly name = 'StorageNotEmptyError';
  constructor(dataDir: string) {
    super('STORAGE_NOT_EMPTY', `raft storage in ${dataDir} already holds state; refusing to bootstrap over it`);
  }
}

function describe(cause: unknown): string {
  if (!(cause instanceof Error)) return String(cause);
  const code = (cause as { code?: unknown }).code;
  const inner = cause.cause instanceof Error ? ` (${cause.cause.message})` : '';
  return `${typeof code === 'string' ? `${code}: ` : ''}${cause.message}${inner}`;
}

/**
 * LevelDB's own corruption report becomes STORAGE_CORRUPT and any other LevelDB failure
 * STORAGE_OPEN_FAILED; our own errors (and assertion failures) pass through unchanged.
 */
export function toStartupError(error: unknown, dataDir: string): unknown {
  if (error instanceof CutoverError || !(error instanceof Error)) return error;
  if (hasLevelCode(error, 'LEVEL_CORRUPTION')) {
    return new StorageCorruptError(dataDir, undefined, `LevelDB reports corruption: ${error.message}`, { cause: error });
  }
  return error instanceof AssertionError ? error : new StorageOpenError(dataDir, error);
}

/** True when `error` or its cause carries the LevelDB error code `code`. */
function hasLevelCode(error: Error, code: string): boolean {
  if ((error as { code?: unknown }).code === code) return true;
  return error.cause instanceof Error && (error.cause as { code?: unknown }).code === code;
}
