import test from 'ava';
import { SeededRandom } from '../../src/util/random.ts';
import type { MemoryStorage, StorageUpdate, WritableRaftStorage } from '../../src/raft/storage.ts';
import type { ConfState, Entry, Snapshot } from '../../src/raft/types.ts';
import { raftStorageContract } from '../raft/storage-contract.ts';
import { crc32, decodeUpdate, encodeUpdate } from '../../cluster-sim/codec.ts';
import { SimDisk, SimDiskReads, tornRecord, verify } from '../../cluster-sim/disk.ts';

const encoder = new TextEncoder();

/**
 * The simulated disk as a WritableRaftStorage that crashes and recovers after every write, so the
 * storage contract checks that each kind of write survives encoding, checksums and recovery.
 */
class RecoveringDisk extends SimDiskReads implements WritableRaftStorage {
  readonly disk = new SimDisk([]);
  private readonly random = new SeededRandom(1);

  save(update: StorageUpdate): void {
    this.disk.beginWrite(update);
    try {
      this.disk.completeWrite();
    } finally {
      this.restart();
    }
  }
  createSnapshot(index: number, confState: ConfState, data: Uint8Array): Snapshot {
    const snapshot = this.disk.createSnapshot(index, confState, data);
    this.restart();
    return snapshot;
  }
  compact(index: number): void {
    this.disk.compact(index);
    this.restart();
  }
  restart(): void {
    this.disk.crash(false, this.random);
    const report = this.disk.recover(false);
    if (report.recordsDiscarded > 0) throw new Error('recovery discarded a completed write');
  }
}

raftStorageContract(
  test,
  () => new RecoveringDisk(),
  async (storage) => {
    (storage as RecoveringDisk).restart();
    return storage;
  },
);

function entry(index: number, term: number, text = `e${index}`): Entry {
  return { index, term, type: 'normal', data: encoder.encode(text) };
}

/** Everything recovery must reproduce: hard state, snapshot, and every entry. */
function image(storage: MemoryStorage): unknown {
  const first = storage.firstIndex();
  const last = storage.lastIndex();
  const entries = last >= first ? storage.entries(first, last + 1, Number.POSITIVE_INFINITY) : [];
  return { state: storage.initialState(), snapshot: storage.snapshot(), entries: entries.map((e) => ({ ...e, data: [...e.data] })) };
}

function write(disk: SimDisk, entries: Entry[], commit: number): void {
  disk.beginWrite({ entries, hardState: { term: entries.at(-1)?.term ?? 1, vote: 1, commit } });
  disk.completeWrite();
}

test('crc32 matches the standard check value', (t) => {
  t.is(crc32(encoder.encode('123456789')), 0xcbf43926);
  t.is(crc32(new Uint8Array(0)), 0);
});

test('an update survives encoding byte for byte', (t) => {
  const update = { entries: [entry(1, 1), { ...entry(2, 1), type: 'confChange' as const }], hardState: { term: 1, vote: 2, commit: 1 } };
  const decoded = decodeUpdate(encodeUpdate(update));
  t.deepEqual(decoded.hardState, update.hardState);
  t.deepEqual(
    decoded.entries.map((e) => ({ ...e, data: [...e.data] })),
    update.entries.map((e) => ({ ...e, data: [...e.data] })),
  );
});

test('completed writes survive a crash; the write in flight is lost', (t) => {
  const disk = new SimDisk([1, 2, 3]);
  write(disk, [entry(1, 1), entry(2, 1)], 1);
  write(disk, [entry(3, 2)], 2);
  const before = image(disk.storage);
  disk.beginWrite({ entries: [entry(4, 2)], hardState: { term: 2, vote: 1, commit: 3 } });
  disk.crash(false, new SeededRandom(1));
  const report = disk.recover(false);
  t.deepEqual(report, { recordsReplayed: 2, recordsDiscarded: 0, tornAccepted: 0 });
  t.deepEqual(image(disk.storage), before);
});

test('a crash may take back completed writes made without fsync, newest first, never one an fsync flushed', (t) => {
  const commitOnly = (disk: SimDisk, commit: number): void => {
    disk.beginWrite({ entries: [], hardState: { term: 1, vote: 1, commit }, sync: false });
    disk.completeWrite();
  };
  const recovered = new Set<number>();
  for (let seed = 1; seed <= 40; seed++) {
    const disk = new SimDisk([1, 2, 3]);
    write(disk, [entry(1, 1), entry(2, 1), entry(3, 1)], 1);
    commitOnly(disk, 2);
    commitOnly(disk, 3);
    const { unsyncedLost } = disk.crash(false, new SeededRandom(seed));
    disk.recover(false);
    const commit = disk.storage.initialState().hardState.commit;
    t.is(commit, 3 - unsyncedLost, `seed ${seed}`);
    t.is(disk.storage.lastIndex(), 3, 'entries are always synced');
    recovered.add(commit);
  }
  t.deepEqual([...recovered].sort(), [1, 2, 3]);
  // A synced write flushes the volatile ones before it; so does a graceful close.
  const disk = new SimDisk([1, 2, 3]);
  write(disk, [entry(1, 1), entry(2, 1)], 1);
  commitOnly(disk, 2);
  write(disk, [entry(3, 1)], 2);
  t.deepEqual(disk.crash(false, new SeededRandom(1)), { torn: false, unsyncedLost: 0 });
  disk.recover(false);
  commitOnly(disk, 3);
  disk.close();
  disk.recover(false);
  t.is(disk.storage.initialState().hardState.commit, 3);
});

test('a torn write is detected by its checksum and discarded, wherever it tore', (t) => {
  for (let seed = 1; seed <= 300; seed++) {
    const disk = new SimDisk([1, 2, 3]);
    write(disk, [entry(1, 1), entry(2, 1)], 2);
    const before = image(disk.storage);
    disk.beginWrite({ entries: [entry(3, 1, 'x'.repeat(seed % 40)), entry(4, 1)], hardState: { term: 1, vote: 1, commit: 4 } });
    t.deepEqual(disk.crash(true, new SeededRandom(seed)), { torn: true, unsyncedLost: 0 });
    const report = disk.recover(false);
    t.is(report.recordsDiscarded, 1, `seed ${seed}`);
    t.is(report.tornAccepted, 0, `seed ${seed}`);
    t.deepEqual(image(disk.storage), before, `seed ${seed}`);
  }
});

test('after discarding a torn record the disk keeps working and recovers again', (t) => {
  const disk = new SimDisk([1, 2, 3]);
  write(disk, [entry(1, 1)], 1);
  disk.beginWrite({ entries: [entry(2, 1)], hardState: { term: 1, vote: 1, commit: 2 } });
  disk.crash(true, new SeededRandom(7));
  disk.recover(false);
  write(disk, [entry(2, 2, 'other')], 2);
  const before = image(disk.storage);
  disk.crash(false, new SeededRandom(8));
  t.deepEqual(disk.recover(false), { recordsReplayed: 2, recordsDiscarded: 0, tornAccepted: 0 });
  t.deepEqual(image(disk.storage), before);
});

test('verification rejects any changed byte and any missing byte', (t) => {
  const bytes = encodeUpdate({ entries: [entry(1, 1), entry(2, 1)], hardState: { term: 1, vote: 0, commit: 0 } });
  const good = { length: bytes.length, checksum: crc32(bytes), bytes, tornTruth: false };
  t.true(verify(good));
  for (let i = 0; i < bytes.length; i++) {
    const changed = bytes.slice();
    changed[i] = changed[i]! ^ 0x01;
    t.false(verify({ ...good, bytes: changed }), `byte ${i}`);
  }
  t.false(verify({ ...good, bytes: bytes.slice(0, bytes.length - 1) }));
  for (let seed = 1; seed <= 100; seed++) t.false(verify(tornRecord(bytes, new SeededRandom(seed))), `tear ${seed}`);
});

test('a snapshot and a compaction fold the log into a checkpoint that recovery restores', (t) => {
  const disk = new SimDisk([1, 2, 3]);
  write(disk, [entry(1, 1), entry(2, 1), entry(3, 1)], 3);
  disk.createSnapshot(2, { voters: [1, 2, 3], learners: [] }, encoder.encode('state@2'));
  disk.compact(2);
  write(disk, [entry(4, 2)], 4);
  const before = image(disk.storage);
  t.is(disk.storage.firstIndex(), 3);
  disk.crash(false, new SeededRandom(1));
  t.deepEqual(disk.recover(false), { recordsReplayed: 1, recordsDiscarded: 0, tornAccepted: 0 });
  t.deepEqual(image(disk.storage), before);
});

test('the forget-vote variant drops the vote on recovery, and only the vote', (t) => {
  const disk = new SimDisk([1, 2, 3]);
  disk.beginWrite({ entries: [entry(1, 3)], hardState: { term: 3, vote: 2, commit: 1 } });
  disk.completeWrite();
  disk.crash(false, new SeededRandom(1));
  disk.recover(true);
  t.deepEqual(disk.storage.initialState().hardState, { term: 3, vote: 0, commit: 1 });
});
