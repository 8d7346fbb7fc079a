/**
 * Raft storage on LevelDB. The read side is synchronous (the Raft core calls it synchronously), so
 * `open` loads everything after the snapshot into an in-memory image, verifying every record; each
 * write is one atomic, synced LevelDB batch, and the image moves to the written state only after
 * the batch is durable. Reads during a write therefore see the last durable state.
 */
import type { StorageUpdate, WritableRaftStorage } from '../raft/storage.ts';
import type { ConfState, Entry, HardState, Snapshot } from '../raft/types.ts';
import type { Clock } from '../util/clock.ts';
import type { Logger } from '../util/logger.ts';
import { openDb, writeSyncedBatch, type RaftDb } from './db.ts';
import { StorageClosedError, StorageNotEmptyError, StorageWriteError, toStartupError } from './errors.ts';
import { entriesIn, firstIndex, isEmptyImage, lastIndex, termAt, type StorageImage } from './image.ts';
import { loadImage } from './load.ts';
import { resolveOptions, type LevelRaftStorageOptions, type ResolvedOptions } from './options.ts';
import { planBootstrap, planCompact, planCreateSnapshot, planSave, type RecordOp, type WritePlan } from './plan.ts';

const noop = (): void => {};

/**
 * `WritableRaftStorage` on LevelDB, with MemoryStorage's semantics and errors. Writes are
 * serialised in call order; each is durable (fsynced) when its promise resolves. After a failed
 * write every later write rejects with STORAGE_WRITE_FAILED: the node must restart.
 */
export class LevelRaftStorage implements WritableRaftStorage {
  readonly dataDir: string;
  private image: StorageImage;
  /** Set by the first failed write: what reached the disk is unknown from then on. */
  private failed = false;
  /** Set by `close()`: no write may be queued after it. */
  private closing: Promise<void> | undefined;
  /** The tail of the write queue; never rejects. */
  private writes: Promise<void> = Promise.resolve();
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly onSyncWrite: ((durationMs: number) => void) | undefined;

  private constructor(
    private readonly db: RaftDb,
    image: StorageImage,
    options: ResolvedOptions,
  ) {
    this.dataDir = options.dataDir;
    this.image = image;
    this.logger = options.logger.child({ component: 'raft-storage' });
    this.clock = options.clock;
    this.onSyncWrite = options.onSyncWrite;
  }

  /**
   * Opens (creating if missing) the storage in `options.dataDir` and loads it. Rejects with
   * INVALID_ARGUMENT for bad options, STORAGE_OPEN_FAILED when LevelDB cannot open the directory,
   * and STORAGE_CORRUPT (naming the directory and key) for any bad record or broken invariant.
   */
  static async open(options: LevelRaftStorageOptions): Promise<LevelRaftStorage> {
    const resolved = resolveOptions(options);
    const db = await openDb(resolved.dataDir).catch((error: unknown) => {
      throw toStartupError(error, resolved.dataDir);
    });
    let image: StorageImage;
    try {
      image = await loadImage(db, resolved.dataDir);
    } catch (error) {
      await db.close();
      throw error;
    }
    const storage = new LevelRaftStorage(db, image, resolved);
    storage.logOpened();
    return storage;
  }

  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: this.image.hardState, confState: this.image.snapshot.metadata.confState };
  }

  entries(lo: number, hi: number, maxBytes: number): readonly Entry[] {
    return entriesIn(this.image, lo, hi, maxBytes);
  }

  term(index: number): number {
    return termAt(this.image, index);
  }

  firstIndex(): number {
    return firstIndex(this.image);
  }

  lastIndex(): number {
    return lastIndex(this.image);
  }

  snapshot(): Snapshot {
    return this.image.snapshot;
  }

  /** True when the directory holds no state at all: a new member that needs `bootstrap`. */
  isEmpty(): boolean {
    return isEmptyImage(this.image);
  }

  /** Persists one Ready (snapshot, entries, hard state) as one atomic, synced batch. */
  async save(update: StorageUpdate): Promise<void> {
    // Refuse to skip the fsync for anything but a commit-index-only update (a bug otherwise).
    const sync = update.sync !== false || update.entries.length > 0 || update.snapshot !== undefined;
    await this.enqueue((image) => planSave(image, update), sync);
  }

  /**
   * Records a snapshot of the applied state at `index`. Rejects with SNAPSHOT_OUT_OF_DATE when
   * `index` is not past the current snapshot, LOG_COMPACTED when it is below the first index.
   */
  async createSnapshot(index: number, confState: ConfState, data: Uint8Array): Promise<Snapshot> {
    const image = await this.enqueue((current) => planCreateSnapshot(current, index, confState, data));
    return image.snapshot;
  }

  /** Deletes the entries up to and including `index` from disk; a no-op if already compacted. */
  async compact(index: number): Promise<void> {
    await this.enqueue((image) => planCompact(image, index));
  }

  /**
   * Stores the initial membership of a new cluster member (as a snapshot at index 0, like
   * `MemoryStorage.bootstrap`). Rejects with STORAGE_NOT_EMPTY unless `isEmpty()`.
   */
  async bootstrap(confState: ConfState): Promise<void> {
    await this.enqueue((image) => {
      if (!isEmptyImage(image)) throw new StorageNotEmptyError(this.dataDir);
      return planBootstrap(image, confState);
    });
  }

  /** Waits for the writes already queued, then closes LevelDB. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.closeAfterWrites();
    return this.closing;
  }

  private async closeAfterWrites(): Promise<void> {
    await this.writes;
    await this.db.close();
    this.logger.info({ dataDir: this.dataDir }, 'raft storage closed');
  }

  /** Queues a write; rejects at once if the storage is closing or closed. */
  private enqueue(plan: (image: StorageImage) => WritePlan, sync = true): Promise<StorageImage> {
    if (this.closing !== undefined) return Promise.reject(new StorageClosedError(this.dataDir));
    const run = this.writes.then(() => this.write(plan, sync));
    this.writes = run.then(noop, noop);
    return run;
  }

  /** Plans against the current image, writes the batch (if any), then moves the image. */
  private async write(plan: (image: StorageImage) => WritePlan, sync: boolean): Promise<StorageImage> {
    if (this.failed) throw new StorageWriteError(this.dataDir, 'an earlier write failed; restart to reload from disk');
    const { ops, next } = plan(this.image);
    if (ops.length === 0) return this.image;
    const durationMs = await this.commit(ops, sync);
    this.image = next;
    if (sync) this.reportSyncWrite(durationMs);
    return next;
  }

  /** Writes `ops` as one batch (synced unless `sync` is false) and returns how long it took. */
  private async commit(ops: readonly RecordOp[], sync: boolean): Promise<number> {
    const startMs = this.clock.nowMs();
    try {
      await writeSyncedBatch(this.db, ops, sync);
    } catch (error) {
      this.failed = true;
      this.logger.error({ dataDir: this.dataDir, err: error }, 'raft storage write failed; refusing further writes');
      throw new StorageWriteError(this.dataDir, `synced batch of ${ops.length} operations failed`, error);
    }
    return this.clock.nowMs() - startMs;
  }

  private reportSyncWrite(durationMs: number): void {
    if (this.onSyncWrite === undefined) return;
    try {
      this.onSyncWrite(durationMs);
    } catch (error) {
      this.logger.warn({ err: error }, 'onSyncWrite hook threw; ignored');
    }
  }

  private logOpened(): void {
    const { hardState, snapshot } = this.image;
    this.logger.info(
      { dataDir: this.dataDir, firstIndex: this.firstIndex(), lastIndex: this.lastIndex(), snapshotIndex: snapshot.metadata.index, term: hardState.term, commit: hardState.commit },
      'raft storage opened',
    );
  }
}
