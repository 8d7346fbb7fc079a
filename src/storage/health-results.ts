/**
 * The node's local health results store on LevelDB (issue 7, item 3): raw check results stay on
 * the node that ran them. This is a local diagnostic store, never replicated and never part of
 * the Raft state: only state changes go through Raft. So it trades durability for cost where the
 * Raft storage cannot: writes are not fsynced (a crash may lose the last results), and a corrupt
 * value is skipped and counted rather than failing the query or the node's start-up.
 *
 * It has a database of its own (the lead passes `{dataDir}/health`), keyed so that results sort
 * by instance, then time:
 *
 * | key                                                          | value                     |
 * |--------------------------------------------------------------|---------------------------|
 * | `r/{base}/{version}/{instanceId}/{at: 13 digits}-{seq: 15 digits}` | a `StoredResult` as JSON |
 *
 * In the names, `%` is written `%25` and `/` `%2F`, so `/` separates the parts unambiguously.
 * `seq` numbers the results of one process run and goes on from the highest found at open.
 *
 * Bounds and query order are the shared `ResultLedger`'s (src/health/results.ts): the ledger,
 * rebuilt from the keys at open (a keys-only scan), knows every stored result's instance, time
 * and sequence, so an append evicts by deleting exact keys in the same batch, and a query reads
 * exactly the values it returns (one `getMany`).
 */
import { CutoverError, InvalidArgumentError } from '../util/errors.ts';
import { silentLogger, type Logger } from '../util/logger.ts';
import {
  HealthStoreClosedError,
  ResultLedger,
  parseStoredResult,
  resolveBounds,
  toStoredResults,
  validateQuery,
  type LedgerEntry,
  type ResultsBoundsOptions,
  type ResultsQuery,
} from '../health/results.ts';
import type { CheckResult, HealthResultsStore, InstanceRef, StoredResult } from '../health/types.ts';
import { openDb, type RaftDb } from './db.ts';
import type { RecordOp } from './plan.ts';

/** Default bound on appends waiting for their batch. */
export const APPEND_QUEUE_MAX_DEFAULT = 1_000;
/** Keys left behind by failed batches, deleted with the next one; past this they wait for the next open. */
const ORPHAN_KEYS_MAX = 10_000;
/** Deletes at open go in batches of this many keys. */
const OPEN_DELETE_BATCH = 1_000;

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });
const KEY_RANGE = Object.freeze({ gte: encoder.encode('r/'), lt: encoder.encode('r0') });
const TIME_PART = /^(\d{13})-(\d{15})$/;
/** Not fsynced: see the module doc. */
const WRITE_OPTIONS = Object.freeze({ sync: false, keyEncoding: 'view', valueEncoding: 'view' });
const READ_OPTIONS = Object.freeze({ keyEncoding: 'view', valueEncoding: 'view', fillCache: true });

/** Options of `LevelHealthResultsStore.open` (the bounds are `ResultsBoundsOptions`). */
export interface LevelHealthResultsStoreOptions extends ResultsBoundsOptions {
  /** The database directory, created if missing; this store is its only user. */
  readonly dir: string;
  /** Epoch milliseconds, for the age bound. */
  readonly wallClockMs: () => number;
  /** Parent logger; the store logs through a child `{ component: 'health-results' }`. */
  readonly logger?: Logger;
  /** Default `APPEND_QUEUE_MAX_DEFAULT`; past it `append` rejects with HEALTH_STORE_BUSY. */
  readonly appendQueueMax?: number;
}

/** Counters, for metrics and tests. */
export interface LevelHealthResultsStats {
  readonly total: number;
  readonly instances: number;
  /** Values that did not parse, skipped by queries. */
  readonly corruptSkipped: number;
  /** Keys that did not parse, deleted at open. */
  readonly corruptKeysDeleted: number;
  /** Batches that failed. */
  readonly writeFailures: number;
  readonly appendsQueued: number;
}

type Ledger = ResultLedger<null>;
type Entry = LedgerEntry<null>;

/** `HealthResultsStore` on LevelDB. Appends are serialised, one batch each. */
export class LevelHealthResultsStore implements HealthResultsStore {
  readonly dir: string;
  private readonly logger: Logger;
  private readonly wallClockMs: () => number;
  private readonly appendQueueMax: number;
  private closing: Promise<void> | undefined;
  /** The tail of the append queue; never rejects. */
  private writes: Promise<void> = Promise.resolve();
  private readonly reads = new Set<Promise<unknown>>();
  private appendsQueued = 0;
  private orphanKeys: string[] = [];
  private counters = { corruptSkipped: 0, corruptKeysDeleted: 0, writeFailures: 0 };

  private constructor(
    private readonly db: RaftDb,
    private readonly ledger: Ledger,
    options: LevelHealthResultsStoreOptions,
    appendQueueMax: number,
    logger: Logger,
  ) {
    this.dir = options.dir;
    this.wallClockMs = options.wallClockMs;
    this.appendQueueMax = appendQueueMax;
    this.logger = logger;
  }

  /**
   * Opens (creating if missing) the store in `options.dir` and rebuilds its ledger from the keys;
   * enforces the bounds (they may be lower than last time) and deletes unparseable keys. Rejects
   * with INVALID_ARGUMENT naming a bad option, HEALTH_STORE_OPEN_FAILED when LevelDB cannot open
   * the directory (locked by another process, permissions, corrupt beyond LevelDB's repair).
   */
  static async open(options: LevelHealthResultsStoreOptions): Promise<LevelHealthResultsStore> {
    const { appendQueueMax, bounds } = validateOptions(options);
    const logger = (options.logger ?? silentLogger).child({ component: 'health-results' });
    let db: RaftDb;
    try {
      db = await openDb(options.dir);
    } catch (error) {
      throw new CutoverError('HEALTH_STORE_OPEN_FAILED', `cannot open the health results store in ${options.dir}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
    try {
      const ledger = new ResultLedger<null>(bounds);
      const store = new LevelHealthResultsStore(db, ledger, options, appendQueueMax, logger);
      await store.load();
      return store;
    } catch (error) {
      await db.close();
      throw new CutoverError('HEALTH_STORE_OPEN_FAILED', `cannot load the health results store in ${options.dir}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
  }

  /**
   * Files one round's results (one batch with the evictions it causes). Rejects with
   * INVALID_ARGUMENT naming a bad field (nothing stored), HEALTH_STORE_BUSY when
   * `appendQueueMax` appends are waiting, HEALTH_STORE_WRITE_FAILED when the batch failed
   * (nothing of it stored; the next append retries its deletions), HEALTH_STORE_CLOSED after close.
   */
  async append(ref: InstanceRef, results: readonly CheckResult[]): Promise<void> {
    if (this.closing !== undefined) throw new HealthStoreClosedError();
    const stored = toStoredResults(ref, results);
    if (stored.length === 0) return;
    if (this.appendsQueued >= this.appendQueueMax) {
      throw new CutoverError('HEALTH_STORE_BUSY', `the health results store in ${this.dir} has ${this.appendQueueMax} appends waiting (appendQueueMax)`);
    }
    this.appendsQueued++;
    const done = this.writes.then(() => this.write(ref, stored));
    this.writes = done.then(
      () => {},
      () => {},
    );
    try {
      await done;
    } finally {
      this.appendsQueued--;
    }
  }

  /** Newest first; see `HealthResultsStore.recent`. A value that does not parse is skipped and counted. */
  async recent(query: ResultsQuery): Promise<StoredResult[]> {
    if (this.closing !== undefined) throw new HealthStoreClosedError();
    const entries = this.ledger.select(validateQuery(query), this.wallClockMs());
    if (entries.length === 0) return [];
    const read = this.db.getMany(entries.map((entry) => encoder.encode(keyOf(entry))), READ_OPTIONS);
    this.reads.add(read);
    let values: (Uint8Array | undefined)[];
    try {
      values = await read;
    } finally {
      this.reads.delete(read);
    }
    const results: StoredResult[] = [];
    values.forEach((value, i) => {
      // Undefined: an append still in its batch, or one whose batch failed.
      if (value === undefined) return;
      const result = decodeValue(value, entries[i]!);
      if (result !== undefined) results.push(result);
      else this.corruptValue(keyOf(entries[i]!));
    });
    return results;
  }

  /** Waits for queued appends, then closes the database. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.writes;
      await Promise.allSettled([...this.reads]);
      await this.db.close();
    })();
    return this.closing;
  }

  stats(): LevelHealthResultsStats {
    return { total: this.ledger.size(), instances: this.ledger.instances(), ...this.counters, appendsQueued: this.appendsQueued };
  }

  private async write(ref: InstanceRef, stored: readonly StoredResult[]): Promise<void> {
    const change = this.ledger.add(ref, stored.map((r) => ({ at: r.at, payload: null })), this.wallClockMs());
    const orphans = this.orphanKeys;
    this.orphanKeys = [];
    const deletes = [...orphans, ...change.evicted.map(keyOf)];
    const ops: RecordOp[] = deletes.map((key) => ({ type: 'del', key: encoder.encode(key) }));
    for (const { entry, index } of change.added) ops.push({ type: 'put', key: encoder.encode(keyOf(entry)), value: encoder.encode(JSON.stringify(stored[index])) });
    try {
      await this.db.batch(ops, WRITE_OPTIONS);
    } catch (error) {
      this.counters.writeFailures++;
      this.ledger.remove(change.added.map((a) => a.entry));
      // The evicted entries are gone from the ledger but not from disk: delete them next time.
      this.orphanKeys = deletes.slice(0, ORPHAN_KEYS_MAX);
      if (this.counters.writeFailures <= 10 || this.counters.writeFailures % 1000 === 0) {
        this.logger.warn({ err: error, failures: this.counters.writeFailures }, 'health results batch failed');
      }
      throw new CutoverError('HEALTH_STORE_WRITE_FAILED', `health results store in ${this.dir}: write failed: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
  }

  /** Rebuilds the ledger from the keys, then deletes what the bounds evict and what does not parse. */
  private async load(): Promise<void> {
    const corruptKeys: Uint8Array[] = [];
    const iterator = this.db.keys({ ...KEY_RANGE, fillCache: false, keyEncoding: 'view' });
    try {
      for await (const key of iterator) {
        const parsed = parseKey(key);
        if (parsed === undefined) corruptKeys.push(key);
        else this.ledger.load(parsed, parsed.at, parsed.seq, null);
      }
    } finally {
      await iterator.close();
    }
    const evicted = this.ledger.enforceAll(this.wallClockMs()).map((entry) => encoder.encode(keyOf(entry)));
    const deletes = [...corruptKeys, ...evicted];
    for (let i = 0; i < deletes.length; i += OPEN_DELETE_BATCH) {
      await this.db.batch(deletes.slice(i, i + OPEN_DELETE_BATCH).map((key) => ({ type: 'del' as const, key })), WRITE_OPTIONS);
    }
    this.counters.corruptKeysDeleted = corruptKeys.length;
    if (corruptKeys.length > 0) this.logger.warn({ keys: corruptKeys.length, dir: this.dir }, 'health results store: deleted keys that do not parse');
    this.logger.info({ dir: this.dir, results: this.ledger.size(), instances: this.ledger.instances(), evicted: evicted.length }, 'health results store opened');
  }

  private corruptValue(key: string): void {
    this.counters.corruptSkipped++;
    if (this.counters.corruptSkipped <= 10 || this.counters.corruptSkipped % 1000 === 0) {
      this.logger.warn({ key, skipped: this.counters.corruptSkipped }, 'health results store: skipped a corrupt value');
    }
  }
}

function validateOptions(options: LevelHealthResultsStoreOptions): { appendQueueMax: number; bounds: ReturnType<typeof resolveBounds> } {
  if (typeof options !== 'object' || options === null) throw new InvalidArgumentError('options', 'must be an object');
  const { dir, wallClockMs, logger } = options as Partial<Record<keyof LevelHealthResultsStoreOptions, unknown>>;
  if (typeof dir !== 'string' || dir.trim() === '') throw new InvalidArgumentError('dir', 'must be a non-empty path');
  if (dir.includes('\0')) throw new InvalidArgumentError('dir', 'must not contain a NUL byte');
  if (typeof wallClockMs !== 'function') throw new InvalidArgumentError('wallClockMs', 'must be a function');
  if (logger !== undefined && typeof (logger as Partial<Logger> | null)?.child !== 'function') throw new InvalidArgumentError('logger', 'must be a Logger');
  const appendQueueMax = options.appendQueueMax ?? APPEND_QUEUE_MAX_DEFAULT;
  if (typeof appendQueueMax !== 'number' || !Number.isSafeInteger(appendQueueMax) || appendQueueMax < 1) throw new InvalidArgumentError('appendQueueMax', 'must be an integer >= 1');
  return { appendQueueMax, bounds: resolveBounds(options) };
}

/** The key of a ledger entry. */
function keyOf(entry: Entry): string {
  const { slot } = entry;
  return `r/${escapeName(slot.base)}/${escapeName(slot.version)}/${escapeName(slot.instanceId)}/${String(entry.at).padStart(13, '0')}-${String(entry.seq).padStart(15, '0')}`;
}

interface ParsedKey {
  readonly base: string;
  readonly version: string;
  readonly instanceId: string;
  readonly at: number;
  readonly seq: number;
}

/** Decodes a key of the layout above, or undefined when it is not exactly one. */
export function parseKey(bytes: Uint8Array): ParsedKey | undefined {
  let text: string;
  try {
    text = decoder.decode(bytes);
  } catch {
    return undefined;
  }
  const parts = text.split('/');
  if (parts.length !== 5 || parts[0] !== 'r') return undefined;
  const names = parts.slice(1, 4).map(unescapeName);
  const time = TIME_PART.exec(parts[4]!);
  if (time === null || names.some((n) => n === undefined || n === '')) return undefined;
  const [base, version, instanceId] = names as [string, string, string];
  return { base, version, instanceId, at: Number(time[1]), seq: Number(time[2]) };
}

function escapeName(name: string): string {
  return name.replaceAll('%', '%25').replaceAll('/', '%2F');
}

function unescapeName(text: string): string | undefined {
  // Only `%25` and `%2F` are ever written; anything else did not come from `escapeName`.
  if (/%(?!25|2F)/.test(text)) return undefined;
  return text.replace(/%(25|2F)/g, (escape) => (escape === '%25' ? '%' : '/'));
}

/** The stored result, when the value parses and agrees with its key. */
function decodeValue(value: Uint8Array, entry: Entry): StoredResult | undefined {
  let json: unknown;
  try {
    json = JSON.parse(decoder.decode(value));
  } catch {
    return undefined;
  }
  const result = parseStoredResult(json);
  if (result === undefined) return undefined;
  const { slot } = entry;
  const agrees = result.base === slot.base && result.version === slot.version && result.instanceId === slot.instanceId && result.at === entry.at;
  return agrees ? result : undefined;
}
