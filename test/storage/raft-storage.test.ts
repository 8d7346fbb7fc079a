import test, { type ExecutionContext } from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClassicLevel } from 'classic-level';
import { LevelRaftStorage, SNAPSHOT_CHUNK_BYTES, type LevelRaftStorageOptions } from '../../src/storage/index.ts';
import { HARD_STATE_KEY, entryKey, keyName, snapshotDataKey } from '../../src/storage/keys.ts';
import { encodeHardState, frameRecord } from '../../src/storage/records.ts';
import type { Entry, WritableRaftStorage } from '../../src/raft/index.ts';
import type { Clock } from '../../src/util/clock.ts';
import { raftStorageContract } from '../raft/storage-contract.ts';

const dirs: string[] = [];
const opened = new Set<LevelRaftStorage>();

test.after.always(async () => {
  await Promise.all([...opened].map((s) => s.close()));
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'cutover-storage-'));
  dirs.push(dir);
  return dir;
}

async function open(dataDir: string, extra: Partial<LevelRaftStorageOptions> = {}): Promise<LevelRaftStorage> {
  const storage = await LevelRaftStorage.open({ dataDir, ...extra });
  opened.add(storage);
  return storage;
}

/** Closes `storage` and opens its directory again: everything after this comes from disk. */
async function reopen(storage: WritableRaftStorage): Promise<LevelRaftStorage> {
  if (!(storage instanceof LevelRaftStorage)) throw new TypeError('reopen: not a LevelRaftStorage');
  await storage.close();
  opened.delete(storage);
  return open(storage.dataDir);
}

raftStorageContract(test, async () => open(await tempDir()), reopen);

function entry(index: number, term: number, text = `e${index}`): Entry {
  return { index, term, type: 'normal', data: new TextEncoder().encode(text) };
}

function entries(from: number, to: number, term: number): Entry[] {
  const list: Entry[] = [];
  for (let i = from; i <= to; i++) list.push(entry(i, term));
  return list;
}

/** Opens the LevelDB directory directly (the storage must be closed) and runs `fn` on it. */
async function withRawDb(dataDir: string, fn: (db: ClassicLevel<Uint8Array, Uint8Array>) => Promise<void>): Promise<void> {
  const db = new ClassicLevel<Uint8Array, Uint8Array>(dataDir, { keyEncoding: 'view', valueEncoding: 'view', createIfMissing: false, errorIfExists: false });
  await db.open();
  try {
    await fn(db);
  } finally {
    await db.close();
  }
}

async function rawKeys(dataDir: string, prefix: string): Promise<string[]> {
  const names: string[] = [];
  await withRawDb(dataDir, async (db) => {
    for await (const key of db.keys({ keyEncoding: 'view' })) {
      const name = keyName(key);
      if (name.startsWith(prefix)) names.push(name);
    }
  });
  return names;
}

/** A storage in a new directory holding entries 1..5 (term 1), hard state commit 3, then closed. */
async function closedLogOfFive(): Promise<string> {
  const storage = await open(await tempDir());
  await storage.save({ entries: entries(1, 5, 1), hardState: { term: 1, vote: 1, commit: 3 } });
  await storage.close();
  opened.delete(storage);
  return storage.dataDir;
}

async function assertCorrupt(t: ExecutionContext, dataDir: string, key: string): Promise<void> {
  const error = await t.throwsAsync(open(dataDir), { code: 'STORAGE_CORRUPT' });
  t.true(error?.message.includes(dataDir), `message names the data directory: ${error?.message}`);
  t.true(error?.message.includes(key), `message names the key ${key}: ${error?.message}`);
}

test('entries, hard state and membership survive close and reopen', async (t) => {
  const storage = await open(await tempDir());
  t.true(storage.isEmpty());
  await storage.bootstrap({ voters: [1, 2, 3], learners: [4] });
  await storage.save({ entries: entries(1, 3, 1), hardState: { term: 1, vote: 2, commit: 2 } });
  await storage.save({ entries: [entry(4, 2), { index: 5, term: 2, type: 'confChange', data: new Uint8Array([7, 8]) }], hardState: { term: 2, vote: 3, commit: 4 } });
  const reopened = await reopen(storage);
  t.false(reopened.isEmpty());
  t.deepEqual(reopened.initialState(), { hardState: { term: 2, vote: 3, commit: 4 }, confState: { voters: [1, 2, 3], learners: [4] } });
  t.is(reopened.firstIndex(), 1);
  t.is(reopened.lastIndex(), 5);
  t.is(reopened.term(0), 0);
  t.is(reopened.term(4), 2);
  const stored = reopened.entries(1, 6, Number.MAX_SAFE_INTEGER);
  t.deepEqual(stored.map((e) => [e.index, e.term, e.type, Buffer.from(e.data).toString('hex')]), [
    [1, 1, 'normal', Buffer.from('e1').toString('hex')],
    [2, 1, 'normal', Buffer.from('e2').toString('hex')],
    [3, 1, 'normal', Buffer.from('e3').toString('hex')],
    [4, 2, 'normal', Buffer.from('e4').toString('hex')],
    [5, 2, 'confChange', '0708'],
  ]);
});

test('bootstrap refuses a storage that already holds state', async (t) => {
  const storage = await open(await closedLogOfFive());
  await t.throwsAsync(storage.bootstrap({ voters: [1], learners: [] }), { code: 'STORAGE_NOT_EMPTY' });
});

test('a snapshot larger than one chunk survives reopen, with its metadata and membership', async (t) => {
  const storage = await open(await tempDir());
  await storage.save({ entries: entries(1, 10, 1), hardState: { term: 1, vote: 1, commit: 10 } });
  const data = new Uint8Array(2 * SNAPSHOT_CHUNK_BYTES + 12345).map((_, i) => (i * 31) % 251);
  const snapshot = await storage.createSnapshot(8, { voters: [1, 2], learners: [3] }, data);
  t.deepEqual(snapshot.metadata, { index: 8, term: 1, confState: { voters: [1, 2], learners: [3] } });
  await storage.compact(6);
  const reopened = await reopen(storage);
  t.deepEqual(reopened.snapshot().metadata, snapshot.metadata);
  t.true(Buffer.from(reopened.snapshot().data).equals(Buffer.from(data)));
  t.deepEqual(reopened.initialState().confState, { voters: [1, 2], learners: [3] });
  t.is(reopened.firstIndex(), 7);
  t.is(reopened.term(6), 1);
  await reopened.close();
  t.deepEqual(await rawKeys(reopened.dataDir, 'raft/snapshot-data/'), ['raft/snapshot-data/8/0', 'raft/snapshot-data/8/1', 'raft/snapshot-data/8/2']);
});

test('a newer snapshot deletes the chunks of the one before it', async (t) => {
  const storage = await open(await tempDir());
  await storage.save({ entries: entries(1, 10, 1), hardState: { term: 1, vote: 1, commit: 10 } });
  await storage.createSnapshot(4, { voters: [1], learners: [] }, new Uint8Array(SNAPSHOT_CHUNK_BYTES + 1));
  await storage.createSnapshot(9, { voters: [1], learners: [] }, new Uint8Array([1, 2, 3]));
  await storage.close();
  opened.delete(storage);
  t.deepEqual(await rawKeys(storage.dataDir, 'raft/snapshot-data/'), ['raft/snapshot-data/9/0']);
  const reopened = await open(storage.dataDir);
  t.deepEqual([...reopened.snapshot().data], [1, 2, 3]);
});

test('a snapshot received in a Ready replaces the log on disk too', async (t) => {
  const storage = await open(await closedLogOfFive());
  const snapshot = { metadata: { index: 20, term: 3, confState: { voters: [1, 2, 3], learners: [] } }, data: new Uint8Array([42]) };
  await storage.save({ snapshot, entries: [entry(21, 3)], hardState: { term: 3, vote: 0, commit: 20 } });
  const reopened = await reopen(storage);
  t.deepEqual(reopened.snapshot(), snapshot);
  t.is(reopened.firstIndex(), 21);
  t.is(reopened.lastIndex(), 21);
  t.is(reopened.term(20), 3);
  await reopened.close();
  t.deepEqual(await rawKeys(reopened.dataDir, 'raft/entry/'), ['raft/entry/21']);
});

test('a conflicting append truncates the stored suffix, and the truncation survives reopen', async (t) => {
  const storage = await open(await closedLogOfFive());
  await storage.save({ entries: [entry(3, 2, 'x3'), entry(4, 2, 'x4')], hardState: { term: 2, vote: 2, commit: 3 } });
  t.is(storage.lastIndex(), 4);
  const reopened = await reopen(storage);
  t.is(reopened.lastIndex(), 4);
  t.deepEqual(reopened.entries(1, 5, Infinity).map((e) => [e.index, e.term, new TextDecoder().decode(e.data)]), [
    [1, 1, 'e1'],
    [2, 1, 'e2'],
    [3, 2, 'x3'],
    [4, 2, 'x4'],
  ]);
  await reopened.close();
  t.deepEqual(await rawKeys(reopened.dataDir, 'raft/entry/'), ['raft/entry/1', 'raft/entry/2', 'raft/entry/3', 'raft/entry/4']);
});

test('compaction removes entries from disk and keeps the term of the compacted index', async (t) => {
  const storage = await open(await closedLogOfFive());
  await storage.compact(3);
  await storage.compact(2); // already compacted: a no-op
  await t.throwsAsync(async () => storage.entries(3, 5, Infinity), { code: 'LOG_COMPACTED' });
  const reopened = await reopen(storage);
  t.is(reopened.firstIndex(), 4);
  t.is(reopened.term(3), 1);
  t.throws(() => reopened.term(2), { code: 'LOG_COMPACTED' });
  t.throws(() => reopened.term(6), { code: 'LOG_UNAVAILABLE' });
  await reopened.close();
  t.deepEqual(await rawKeys(reopened.dataDir, 'raft/entry/'), ['raft/entry/4', 'raft/entry/5']);
});

test('snapshot and compaction errors carry MemoryStorage codes', async (t) => {
  const storage = await open(await closedLogOfFive());
  await storage.createSnapshot(3, { voters: [1], learners: [] }, new Uint8Array(0));
  await t.throwsAsync(storage.createSnapshot(3, { voters: [1], learners: [] }, new Uint8Array(0)), { code: 'SNAPSHOT_OUT_OF_DATE' });
  const old = { metadata: { index: 2, term: 1, confState: { voters: [1], learners: [] } }, data: new Uint8Array(0) };
  await t.throwsAsync(storage.save({ snapshot: old, entries: [] }), { code: 'SNAPSHOT_OUT_OF_DATE' });
  const reopened = await reopen(storage);
  t.is(reopened.snapshot().metadata.index, 3, 'the refused writes changed nothing on disk');
  t.is(reopened.lastIndex(), 5);
});

test('each synced batch reports its duration from the injected clock; no-op writes report nothing', async (t) => {
  let nowMs = 0;
  const clock: Clock = { nowMs: () => (nowMs += 7), schedule: () => () => {} };
  const durations: number[] = [];
  const storage = await open(await tempDir(), { clock, onSyncWrite: (ms) => durations.push(ms) });
  await storage.save({ entries: entries(1, 2, 1), hardState: { term: 1, vote: 1, commit: 1 } });
  await storage.save({ entries: [] });
  await storage.compact(0);
  await storage.compact(1);
  t.deepEqual(durations, [7, 7]);
});

test('a throwing onSyncWrite hook does not fail the write', async (t) => {
  const storage = await open(await tempDir(), {
    onSyncWrite: () => {
      throw new Error('metrics broke');
    },
  });
  await storage.save({ entries: entries(1, 1, 1) });
  t.is(storage.lastIndex(), 1);
});

test('writes apply in call order; reads see the last durable state until a write completes', async (t) => {
  const storage = await open(await tempDir());
  const first = storage.save({ entries: entries(1, 3, 1) });
  const second = storage.save({ entries: [entry(3, 2), entry(4, 2)], hardState: { term: 2, vote: 1, commit: 2 } });
  t.is(storage.lastIndex(), 0, 'nothing is visible before it is durable');
  await first;
  t.is(storage.lastIndex(), 3);
  await second;
  t.is(storage.term(3), 2);
  const reopened = await reopen(storage);
  t.is(reopened.lastIndex(), 4);
  t.is(reopened.term(3), 2);
});

test('writes after close are refused with STORAGE_CLOSED; close is idempotent', async (t) => {
  const storage = await open(await tempDir());
  const pending = storage.save({ entries: entries(1, 1, 1) });
  const closed = storage.close();
  await t.throwsAsync(storage.save({ entries: [entry(2, 1)] }), { code: 'STORAGE_CLOSED' });
  await pending; // queued before close: completes
  await closed;
  await storage.close();
  opened.delete(storage);
  t.is((await open(storage.dataDir)).lastIndex(), 1);
});

test('a second open of the same directory fails with STORAGE_OPEN_FAILED naming it', async (t) => {
  const storage = await open(await tempDir());
  const error = await t.throwsAsync(LevelRaftStorage.open({ dataDir: storage.dataDir }), { code: 'STORAGE_OPEN_FAILED' });
  t.true(error?.message.includes(storage.dataDir));
});

test('keys outside raft/ are left alone (other local stores may share the database)', async (t) => {
  const dataDir = await closedLogOfFive();
  await withRawDb(dataDir, (db) => db.put(new TextEncoder().encode('kv/x'), new Uint8Array([1])));
  t.is((await open(dataDir)).lastIndex(), 5);
});

test('corruption: a flipped byte in an entry stops the start with STORAGE_CORRUPT naming dir and key', async (t) => {
  const dataDir = await closedLogOfFive();
  await withRawDb(dataDir, async (db) => {
    const value = (await db.get(entryKey(3)))!;
    const flipped = new Uint8Array(value);
    flipped[flipped.length - 1]! ^= 0x01;
    await db.put(entryKey(3), flipped);
  });
  await assertCorrupt(t, dataDir, 'raft/entry/3');
});

test('corruption: a torn (truncated) entry value stops the start', async (t) => {
  const dataDir = await closedLogOfFive();
  await withRawDb(dataDir, async (db) => {
    const value = (await db.get(entryKey(4)))!;
    await db.put(entryKey(4), value.subarray(0, value.length - 2));
  });
  await assertCorrupt(t, dataDir, 'raft/entry/4');
});

test('corruption: a value shorter than the record header stops the start', async (t) => {
  const dataDir = await closedLogOfFive();
  await withRawDb(dataDir, (db) => db.put(HARD_STATE_KEY, new Uint8Array([1, 0, 0])));
  await assertCorrupt(t, dataDir, 'raft/hard-state');
});

test('corruption: a valid record copied under another key fails its checksum', async (t) => {
  const dataDir = await closedLogOfFive();
  await withRawDb(dataDir, async (db) => db.put(entryKey(3), (await db.get(entryKey(2)))!));
  await assertCorrupt(t, dataDir, 'raft/entry/3');
});

test('corruption: a gap in the entries stops the start, naming the entry after the gap', async (t) => {
  const dataDir = await closedLogOfFive();
  await withRawDb(dataDir, (db) => db.del(entryKey(3)));
  await assertCorrupt(t, dataDir, 'raft/entry/4');
});

test('corruption: a lost tail below the commit index stops the start', async (t) => {
  const dataDir = await closedLogOfFive();
  await withRawDb(dataDir, (db) => db.batch([{ type: 'del', key: entryKey(5) }, { type: 'del', key: entryKey(4) }, { type: 'del', key: entryKey(3) }], { sync: true }));
  await assertCorrupt(t, dataDir, 'raft/hard-state');
});

test('corruption: a well-formed hard state with a commit past the log stops the start', async (t) => {
  const dataDir = await closedLogOfFive();
  await withRawDb(dataDir, (db) => db.put(HARD_STATE_KEY, frameRecord(HARD_STATE_KEY, encodeHardState({ term: 1, vote: 1, commit: 9 }))));
  await assertCorrupt(t, dataDir, 'raft/hard-state');
});

test('corruption: a damaged or missing snapshot chunk stops the start', async (t) => {
  const storage = await open(await closedLogOfFive());
  await storage.createSnapshot(4, { voters: [1], learners: [] }, new Uint8Array(SNAPSHOT_CHUNK_BYTES + 100).fill(9));
  await storage.close();
  opened.delete(storage);
  const chunk1 = snapshotDataKey(4, 1);
  const original = await (async () => {
    let value: Uint8Array | undefined;
    await withRawDb(storage.dataDir, async (db) => {
      value = await db.get(chunk1);
      const damaged = new Uint8Array(value!);
      damaged[20]! ^= 0xff;
      await db.put(chunk1, damaged);
    });
    return value!;
  })();
  await assertCorrupt(t, storage.dataDir, 'raft/snapshot-data/4/1');
  await withRawDb(storage.dataDir, (db) => db.del(chunk1));
  await assertCorrupt(t, storage.dataDir, 'raft/snapshot-data/4/1');
  await withRawDb(storage.dataDir, (db) => db.put(chunk1, original));
  t.is((await open(storage.dataDir)).snapshot().data.byteLength, SNAPSHOT_CHUNK_BYTES + 100);
});

test('corruption: an unknown key under raft/ stops the start rather than being skipped', async (t) => {
  const dataDir = await closedLogOfFive();
  await withRawDb(dataDir, (db) => db.put(new TextEncoder().encode('raft/entry/x'), new Uint8Array([0])));
  await assertCorrupt(t, dataDir, 'raft/entry/x');
});

test('bad options are refused with INVALID_ARGUMENT naming the option', async (t) => {
  const bad: unknown[] = [
    [{ dataDir: '' }, 'dataDir'],
    [{ dataDir: 42 }, 'dataDir'],
    [{ dataDir: 'a\0b' }, 'dataDir'],
    [{ dataDir: '/tmp/x', onSyncWrite: 'yes' }, 'onSyncWrite'],
    [{ dataDir: '/tmp/x', clock: {} }, 'clock'],
    [{ dataDir: '/tmp/x', logger: { info: () => {} } }, 'logger'],
    [null, 'options'],
  ];
  for (const [options, field] of bad as [LevelRaftStorageOptions, string][]) {
    const error = await t.throwsAsync(LevelRaftStorage.open(options), { code: 'INVALID_ARGUMENT' });
    t.is((error as { field?: string } | undefined)?.field, field);
  }
});

test('a failed batch leaves the image unchanged and refuses every later write with STORAGE_WRITE_FAILED', async (t) => {
  const storage = await open(await closedLogOfFive());
  // LevelDB cannot be made to fail a write on demand, so the test breaks the handle's batch().
  const db = (storage as unknown as { db: { batch: () => Promise<void> } }).db;
  const batch = db.batch;
  db.batch = () => Promise.reject(new Error('disk full'));
  await t.throwsAsync(storage.save({ entries: [entry(6, 1)] }), { code: 'STORAGE_WRITE_FAILED' });
  t.is(storage.lastIndex(), 5, 'the image never shows a write that failed');
  db.batch = batch;
  await t.throwsAsync(storage.save({ entries: [entry(6, 1)] }), { code: 'STORAGE_WRITE_FAILED' });
  t.is((await reopen(storage)).lastIndex(), 5);
});
