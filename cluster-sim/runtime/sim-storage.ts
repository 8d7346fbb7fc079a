/**
 * The node runtime's `WritableRaftStorage` on a simulated disk (`SimDisk`), for one incarnation of
 * a node. Reads are synchronous, from the disk's live image (the last durable state, as with the
 * LevelDB storage). Writes are serialised in call order, and each takes simulated time: `save`
 * resolves when its write is complete: durable, or for a write without fsync (`sync: false`) in the
 * operating system's hands, where a crash (a power loss) may still take it back. A crash kills the
 * storage: the write in flight is lost or torn (the disk decides), and its promise, like every
 * later one, never settles.
 *
 * Every completed write is shown to the invariant checker (log matching, commit monotonic, the
 * Ready contract, committed entries), as are snapshots taken and installed.
 */
import type { StorageUpdate, WritableRaftStorage } from '../../src/raft/storage.ts';
import type { ConfState, Snapshot } from '../../src/raft/types.ts';
import type { SeededRandom } from '../../src/util/random.ts';
import type { InvariantChecker } from '../checkers/invariants.ts';
import { SimDiskReads, type SimDisk } from '../disk.ts';
import type { EventQueue } from '../events.ts';
import type { SimOptions } from '../options.ts';
import type { Trace } from '../trace.ts';

/** What a node's storage needs from the simulation around it. */
export interface StorageEnvironment {
  readonly queue: EventQueue;
  readonly trace: Trace;
  readonly options: SimOptions;
  readonly checker: InvariantChecker;
  readonly counters: { snapshotsTaken: number; snapshotsInstalled: number };
}

const noop = (): void => {};

/** One incarnation's storage on its node's disk. */
export class SimStorage extends SimDiskReads implements WritableRaftStorage {
  private alive = true;
  /** The tail of the write queue; never rejects. */
  private writes: Promise<void> = Promise.resolve();

  constructor(
    private readonly nodeId: number,
    protected readonly disk: SimDisk,
    private readonly env: StorageEnvironment,
    /** Draws write latencies (the node's own stream). */
    private readonly random: SeededRandom,
    private readonly onZombie: (what: string) => void,
  ) {
    super();
  }

  /** One Ready's durable part as one record; resolves once the record is on disk. */
  save(update: StorageUpdate): Promise<void> {
    return this.enqueue('save', () => {
      this.disk.beginWrite(update);
      return () => {
        this.disk.completeWrite();
        this.env.checker.onPersisted(this.nodeId, update, this.disk.storage);
        if (update.snapshot !== undefined && update.snapshot.metadata.index > 0) this.installed(update.snapshot);
      };
    });
  }

  /** A snapshot of the applied state, written as a new checkpoint (atomic: all or nothing at a crash). */
  createSnapshot(index: number, confState: ConfState, data: Uint8Array): Promise<Snapshot> {
    return this.enqueue('createSnapshot', () => () => {
      const snapshot = this.disk.createSnapshot(index, confState, data);
      this.env.checker.onDurable(this.nodeId);
      this.env.checker.onSnapshotCreated(this.nodeId, index, data);
      this.env.counters.snapshotsTaken++;
      this.env.trace.record(this.env.queue.nowMs, this.nodeId, 'snapshot', `index=${index}`);
      return snapshot;
    });
  }

  /** Log compaction, written as a new checkpoint (atomic). */
  compact(index: number): Promise<void> {
    return this.enqueue('compact', () => () => {
      this.disk.compact(index);
      this.env.checker.onDurable(this.nodeId);
    });
  }

  /** The node crashed: nothing more is written, and no pending write settles. */
  kill(): void {
    this.alive = false;
  }

  private installed(snapshot: Snapshot): void {
    this.env.checker.onSnapshotInstalled(this.nodeId, snapshot);
    this.env.counters.snapshotsInstalled++;
    this.env.trace.record(this.env.queue.nowMs, this.nodeId, 'install-snapshot', `index=${snapshot.metadata.index} term=${snapshot.metadata.term}`);
  }

  /**
   * Queues a write behind the earlier ones. `begin` runs when the write starts (it may put bytes
   * in flight on the disk) and returns `complete`, which runs when the write's simulated latency
   * has passed; the promise settles with its result. Neither runs after a crash.
   */
  private enqueue<T>(what: string, begin: () => () => T): Promise<T> {
    if (!this.alive) this.onZombie(`asked its storage to ${what}`);
    const run = this.writes.then(
      () =>
        new Promise<T>((resolve, reject) => {
          if (!this.alive) return;
          const complete = begin();
          const { diskWriteMinMs, diskWriteMaxMs } = this.env.options;
          this.env.queue.after(diskWriteMinMs + this.random.nextFloat() * (diskWriteMaxMs - diskWriteMinMs), () => {
            if (!this.alive) return;
            try {
              resolve(complete());
            } catch (error) {
              reject(error);
            }
          });
        }),
    );
    this.writes = run.then(noop, noop);
    return run;
  }
}
