/**
 * One node's simulated disk. The durable image is a checkpoint (the whole storage at the last
 * fold) followed by a log of records, one per completed write; each record carries its length and
 * a CRC-32. The node's live `MemoryStorage` is always what recovery would rebuild from that image.
 *
 * A write is in flight from `beginWrite` to `completeWrite` (the simulator puts a delay between
 * them). A crash loses the write in flight, or, in the storage fault mode, leaves it torn: its
 * header (length and checksum of the full record) is on disk but only a prefix of its bytes is,
 * the rest being whatever the sectors held before. Recovery verifies every record and discards a
 * bad one and everything after it. That is safe because a write in flight was never acknowledged:
 * the node sends a Ready's messages only after its write completes.
 *
 * A write made without fsync (`StorageUpdate.sync === false`: a Ready that only moves the commit
 * index) completes, but stays volatile until a later synced write or a checkpoint flushes it. A
 * crash is a power loss: it keeps only a prefix of the volatile records (drawn at random), and the
 * write in flight is then lost too. Writes without an explicit `sync` are synced.
 */
import { assert } from '../src/util/assert.ts';
import type { SeededRandom } from '../src/util/random.ts';
import { MemoryStorage, type RaftStorage, type StorageUpdate } from '../src/raft/storage.ts';
import type { ConfState, Entry, HardState, Snapshot } from '../src/raft/types.ts';
import { crc32, decodeImage, decodeUpdate, encodeImage, encodeUpdate, type StorageImage } from './codec.ts';

/** A record as it lies on disk. */
export interface DiskRecord {
  /** Length of the record as written in its header. */
  readonly length: number;
  /** CRC-32 of the full record as written in its header. */
  readonly checksum: number;
  /** The bytes actually on disk (fewer or different ones if the write was torn). */
  readonly bytes: Uint8Array;
  /** Ground truth for the checker, never read by recovery: this record was torn. */
  readonly tornTruth: boolean;
}

/** What a recovery found. */
export interface RecoveryReport {
  readonly recordsReplayed: number;
  /** Records that failed verification and were discarded. */
  readonly recordsDiscarded: number;
  /** Torn records that passed verification: must always be 0 (the checker reports otherwise). */
  readonly tornAccepted: number;
}

/** Disk counters, for the run summary. */
export interface DiskStats {
  writes: number;
  bytesWritten: number;
  lostWrites: number;
  /** Completed writes made without fsync that a crash took back. */
  unsyncedLost: number;
  tornWrites: number;
  tornDetected: number;
  folds: number;
}

/** A write in flight: its update and encoded bytes. */
interface PendingWrite {
  readonly update: StorageUpdate;
  readonly bytes: Uint8Array;
  readonly sync: boolean;
}

/** Folding the log into a new checkpoint once it holds this many records bounds recovery work. */
const LOG_RECORDS_MAX = 1024;

/** The simulated disk of one node. */
/**
 * The read side of `RaftStorage` over a SimDisk's live image (the last durable state), shared by
 * the storage adapters built on the disk.
 */
export abstract class SimDiskReads implements RaftStorage {
  protected abstract readonly disk: SimDisk;

  initialState(): { hardState: HardState; confState: ConfState } {
    return this.disk.storage.initialState();
  }
  entries(lo: number, hi: number, maxBytes: number): readonly Entry[] {
    return this.disk.storage.entries(lo, hi, maxBytes);
  }
  term(index: number): number {
    return this.disk.storage.term(index);
  }
  firstIndex(): number {
    return this.disk.storage.firstIndex();
  }
  lastIndex(): number {
    return this.disk.storage.lastIndex();
  }
  snapshot(): Snapshot {
    return this.disk.storage.snapshot();
  }
}

export class SimDisk {
  readonly stats: DiskStats = { writes: 0, bytesWritten: 0, lostWrites: 0, unsyncedLost: 0, tornWrites: 0, tornDetected: 0, folds: 0 };
  private checkpoint: DiskRecord;
  private log: DiskRecord[] = [];
  /** The records of `log` that an fsync has made durable: a prefix (the rest are volatile). */
  private durableRecords = 0;
  private pending: PendingWrite | undefined;
  private live: MemoryStorage | undefined;

  /** A fresh disk whose cluster membership is `voters`. */
  constructor(voters: readonly number[]) {
    const storage = MemoryStorage.bootstrap(voters);
    this.checkpoint = sealRecord(encodeImage(imageOf(storage)));
    this.live = storage;
  }

  /** The live storage the node's RawNode reads. Only while the node is up. */
  get storage(): MemoryStorage {
    assert(this.live !== undefined, 'SimDisk: storage read while crashed');
    return this.live;
  }

  get writeInFlight(): boolean {
    return this.pending !== undefined;
  }

  /** Starts writing `update`; it becomes durable (and visible in `storage`) at `completeWrite`. */
  beginWrite(update: StorageUpdate): void {
    assert(this.pending === undefined, 'SimDisk: a write is already in flight');
    assert(this.live !== undefined, 'SimDisk: write while crashed');
    this.pending = { update, bytes: encodeUpdate(update), sync: update.sync !== false };
  }

  /** Makes the write in flight durable and applies it to the live storage. */
  completeWrite(): void {
    const pending = this.pending;
    assert(pending !== undefined && this.live !== undefined, 'SimDisk: no write in flight');
    this.pending = undefined;
    // The live storage validates the update first: a write it rejects never reaches the log.
    this.live.save(pending.update);
    this.log.push(sealRecord(pending.bytes));
    // An fsync flushes this record and every volatile one before it (one append-only file).
    if (pending.sync) this.durableRecords = this.log.length;
    this.stats.writes++;
    this.stats.bytesWritten += pending.bytes.length;
    if (this.log.length >= LOG_RECORDS_MAX) this.fold();
  }

  /**
   * Records a snapshot of the applied state at `index` (WritableRaftStorage.createSnapshot). Like
   * `compact`, durable at once and atomic: a new checkpoint is written, then switched to, as a
   * rename over the old file would.
   */
  createSnapshot(index: number, confState: ConfState, data: Uint8Array): Snapshot {
    assert(this.pending === undefined, 'SimDisk: snapshot while a write is in flight');
    const snapshot = this.storage.createSnapshot(index, confState, data);
    this.fold();
    return snapshot;
  }

  /** Discards entries up to `index` (WritableRaftStorage.compact); durable at once, atomic. */
  compact(index: number): void {
    assert(this.pending === undefined, 'SimDisk: compaction while a write is in flight');
    this.storage.compact(index);
    this.fold();
  }

  /**
   * The node crashed (a power loss): the live storage is gone, volatile records may be lost (a
   * random suffix of them), and the write in flight is lost, or left torn when `tear` is set and
   * every volatile record survived (with `random` choosing where it tore).
   */
  crash(tear: boolean, random: SeededRandom): { torn: boolean; unsyncedLost: number } {
    const pending = this.pending;
    this.pending = undefined;
    this.live = undefined;
    const unsyncedLost = this.loseVolatile(random);
    // What survived the power loss is on the platter now.
    this.durableRecords = this.log.length;
    if (pending === undefined) return { torn: false, unsyncedLost };
    if (!tear || unsyncedLost > 0) {
      this.stats.lostWrites++;
      return { torn: false, unsyncedLost };
    }
    this.log.push(tornRecord(pending.bytes, random));
    this.durableRecords = this.log.length;
    this.stats.tornWrites++;
    return { torn: true, unsyncedLost };
  }

  /**
   * A clean shutdown (the node runtime's graceful stop): nothing may be in flight, since a node
   * that stops finishes its writes first. The live storage goes; `recover` rebuilds it. The
   * operating system keeps what was written without fsync, so nothing volatile is lost.
   */
  close(): void {
    assert(this.pending === undefined, 'SimDisk: closed with a write in flight');
    this.live = undefined;
    this.durableRecords = this.log.length;
  }

  /** Drops a random suffix of the volatile records; returns how many. Draws nothing when none are volatile. */
  private loseVolatile(random: SeededRandom): number {
    const volatile = this.log.length - this.durableRecords;
    if (volatile === 0) return 0;
    const lost = volatile - random.nextInt(0, volatile + 1);
    this.log.length -= lost;
    this.stats.unsyncedLost += lost;
    return lost;
  }

  /**
   * Rebuilds the live storage from the durable image, verifying every record. With `forgetVote`
   * (a broken variant) the recovered hard state loses its vote.
   */
  recover(forgetVote: boolean): RecoveryReport {
    assert(this.live === undefined && this.pending === undefined, 'SimDisk: recover while running');
    assert(verify(this.checkpoint), 'SimDisk: checkpoint failed verification (checkpoints are atomic)');
    const storage = restoreImage(decodeImage(this.checkpoint.bytes));
    const report = replay(storage, this.log);
    this.log = this.log.slice(0, report.recordsReplayed);
    this.durableRecords = this.log.length;
    this.stats.tornDetected += report.recordsDiscarded;
    if (forgetVote) storage.save({ entries: [], hardState: { ...storage.initialState().hardState, vote: 0 } });
    this.live = storage;
    return report;
  }

  /** Replaces checkpoint + log with one checkpoint of the live storage. */
  private fold(): void {
    this.checkpoint = sealRecord(encodeImage(imageOf(this.storage)));
    this.log = [];
    this.durableRecords = 0;
    this.stats.folds++;
  }
}

/** Applies verified records in order; stops at the first bad one. */
function replay(storage: MemoryStorage, log: readonly DiskRecord[]): RecoveryReport {
  let replayed = 0;
  let tornAccepted = 0;
  for (const record of log) {
    if (!verify(record)) break;
    if (record.tornTruth) tornAccepted++;
    storage.save(decodeUpdate(record.bytes));
    replayed++;
  }
  return { recordsReplayed: replayed, recordsDiscarded: log.length - replayed, tornAccepted };
}

/** A record whose header matches its bytes. */
function sealRecord(bytes: Uint8Array): DiskRecord {
  return { length: bytes.length, checksum: crc32(bytes), bytes, tornTruth: false };
}

/** Recovery's check: the record is as long as its header says and its checksum matches. */
export function verify(record: DiskRecord): boolean {
  return record.bytes.length === record.length && crc32(record.bytes) === record.checksum;
}

/**
 * The write of `bytes` torn at a random point: the header is the full record's; the bytes past
 * the tear are missing, or are stale garbage (made to differ from what should have been written in
 * at least one byte, otherwise the write simply completed).
 */
export function tornRecord(bytes: Uint8Array, random: SeededRandom): DiskRecord {
  const tearAt = random.nextInt(0, bytes.length);
  // Half the tears end the file early; the others leave stale bytes after the tear.
  if (random.nextFloat() < 0.5) return { length: bytes.length, checksum: crc32(bytes), bytes: bytes.slice(0, tearAt), tornTruth: true };
  const onDisk = new Uint8Array(bytes.length);
  onDisk.set(bytes.subarray(0, tearAt));
  for (let i = tearAt; i < bytes.length; i++) onDisk[i] = random.nextInt(0, 256);
  if (onDisk[tearAt] === bytes[tearAt]) onDisk[tearAt] = (bytes[tearAt]! + 1) & 0xff;
  return { length: bytes.length, checksum: crc32(bytes), bytes: onDisk, tornTruth: true };
}

/** The whole content of `storage`. */
function imageOf(storage: MemoryStorage): StorageImage {
  const first = storage.firstIndex();
  const last = storage.lastIndex();
  const entries = last >= first ? storage.entries(first, last + 1, Number.POSITIVE_INFINITY) : [];
  const hardState = storage.initialState().hardState;
  const snapshot = storage.snapshot();
  if (snapshot.metadata.index === first - 1) return { base: { snapshot, entries, hardState } };
  // A snapshot taken but not yet compacted up to: the log's base is the compaction point.
  const base = { metadata: { index: first - 1, term: storage.term(first - 1), confState: snapshot.metadata.confState }, data: new Uint8Array(0) };
  return { base: { snapshot: base, entries, hardState }, snapshot };
}

/** A storage holding exactly `image`. */
function restoreImage(image: StorageImage): MemoryStorage {
  const { snapshot: base, entries, hardState } = image.base;
  assert(base !== undefined, 'SimDisk: checkpoint without a base');
  const storage = new MemoryStorage();
  storage.applySnapshot(base);
  storage.save({ entries, ...(hardState === undefined ? {} : { hardState }) });
  if (image.snapshot !== undefined) {
    const { index, confState } = image.snapshot.metadata;
    storage.createSnapshot(index, confState, image.snapshot.data);
    assert(storage.snapshot().metadata.term === image.snapshot.metadata.term, 'SimDisk: restored snapshot term differs');
  }
  return storage;
}
