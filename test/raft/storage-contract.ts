/**
 * The RaftStorage / WritableRaftStorage contract (src/raft/storage.ts) as one suite that every
 * implementation runs: `raftStorageContract(test, makeStorage, reopen?)`.
 *
 * Implementation-neutral: it uses only the interface, awaits every write (an implementation may
 * be synchronous or asynchronous), and checks errors by `code`. `makeStorage` returns a new,
 * empty storage (no entries, no snapshot, zero hard state); `reopen`, when given, closes a storage
 * and opens what it persisted, and the suite then checks that everything saved survives.
 */
import type { ExecutionContext, TestFn } from 'ava';
import type { ConfState, Entry, HardState, Snapshot, WritableRaftStorage } from '../../src/raft/index.ts';
import { entrySize } from '../../src/raft/index.ts';

export type MakeStorage = () => Promise<WritableRaftStorage> | WritableRaftStorage;
export type ReopenStorage = (storage: WritableRaftStorage) => Promise<WritableRaftStorage>;

const NO_LIMIT = Number.MAX_SAFE_INTEGER;
const CONF: ConfState = { voters: [1, 2, 3], learners: [4] };
const encoder = new TextEncoder();

/** Entries with the given terms from index `first`, each with a payload naming index and term. */
function ents(first: number, terms: readonly number[]): Entry[] {
  return terms.map((term, i) => ({ term, index: first + i, type: i % 3 === 2 ? 'confChange' : 'normal', data: encoder.encode(`entry ${first + i} of term ${term}`) }));
}

function snapshotAt(index: number, term: number, confState: ConfState = CONF): Snapshot {
  return { metadata: { index, term, confState }, data: encoder.encode(`state at ${index}`) };
}

/** The code of what `f` throws or rejects with, or undefined when it succeeds. */
async function codeOf(f: () => unknown): Promise<string | undefined> {
  try {
    await f();
  } catch (error) {
    return (error as { code?: string }).code ?? `(no code: ${String(error)})`;
  }
  return undefined;
}

/** [index, term] of every entry in the storage, read through entries(). */
function contents(storage: WritableRaftStorage): [number, number][] {
  const first = storage.firstIndex();
  const last = storage.lastIndex();
  if (last < first) return [];
  return storage.entries(first, last + 1, NO_LIMIT).map((e) => [e.index, e.term]);
}

/** A storage holding entries 1..terms.length with the given terms. */
async function withLog(make: MakeStorage, terms: readonly number[]): Promise<WritableRaftStorage> {
  const storage = await make();
  await storage.save({ entries: ents(1, terms) });
  return storage;
}

/** Snapshot at 5 (term 2) taken and compacted over entries 1..8. */
async function compacted(make: MakeStorage): Promise<WritableRaftStorage> {
  const storage = await withLog(make, [1, 1, 2, 2, 2, 3, 3, 3]);
  await storage.createSnapshot(5, CONF, encoder.encode('state at 5'));
  await storage.compact(5);
  return storage;
}

function sameEntries(t: ExecutionContext, actual: readonly Entry[], expected: readonly Entry[], message?: string): void {
  t.deepEqual(
    actual.map((e) => ({ ...e, data: [...e.data] })),
    expected.map((e) => ({ ...e, data: [...e.data] })),
    message,
  );
}

/** Registers the contract's tests on `test` for the storage that `makeStorage` builds. */
export function raftStorageContract(test: TestFn, makeStorage: MakeStorage, reopen?: ReopenStorage): void {
  registerReads(test, makeStorage);
  registerWrites(test, makeStorage);
  registerSnapshots(test, makeStorage);
  if (reopen !== undefined) registerReopen(test, makeStorage, reopen);
}

function registerReads(test: TestFn, make: MakeStorage): void {
  test('RaftStorage contract › a new storage is empty: no entries, no snapshot, zero hard state', async (t) => {
    const storage = await make();
    t.deepEqual(storage.initialState().hardState, { term: 0, vote: 0, commit: 0 });
    t.deepEqual([storage.firstIndex(), storage.lastIndex(), storage.term(0)], [1, 0, 0]);
    t.is(storage.snapshot().metadata.index, 0);
    t.deepEqual(storage.entries(1, 1, NO_LIMIT), []);
  });

  test('RaftStorage contract › entries(lo, hi) returns exactly [lo, hi), contents included', async (t) => {
    const storage = await withLog(make, [1, 1, 2, 3, 3]);
    t.deepEqual([storage.firstIndex(), storage.lastIndex()], [1, 5]);
    sameEntries(t, storage.entries(2, 5, NO_LIMIT), ents(1, [1, 1, 2, 3, 3]).slice(1, 4));
    sameEntries(t, storage.entries(1, 6, NO_LIMIT), ents(1, [1, 1, 2, 3, 3]));
    t.deepEqual(storage.entries(3, 3, NO_LIMIT), []);
  });

  test('RaftStorage contract › entries() throws LOG_COMPACTED below firstIndex and LOG_UNAVAILABLE past lastIndex+1', async (t) => {
    const storage = await compacted(make);
    t.is(await codeOf(() => storage.entries(5, 7, NO_LIMIT)), 'LOG_COMPACTED');
    t.is(await codeOf(() => storage.entries(1, 7, NO_LIMIT)), 'LOG_COMPACTED');
    t.is(await codeOf(() => storage.entries(6, 10, NO_LIMIT)), 'LOG_UNAVAILABLE');
    t.is(await codeOf(() => storage.entries(6, 9, NO_LIMIT)), undefined);
  });

  test('RaftStorage contract › entries() stops at maxBytes but always returns at least one entry', async (t) => {
    const storage = await withLog(make, [1, 1, 1, 1, 1]);
    const sizes = storage.entries(1, 6, NO_LIMIT).map(entrySize);
    const upTo = (n: number): number => sizes.slice(0, n).reduce((a, b) => a + b, 0);
    t.is(storage.entries(1, 6, 0).length, 1, 'at least one, even with maxBytes 0');
    t.is(storage.entries(1, 6, sizes[0]! - 1).length, 1, 'at least one, even if it alone is too big');
    t.is(storage.entries(1, 6, upTo(3)).length, 3, 'exactly at the limit');
    t.is(storage.entries(1, 6, upTo(3) + sizes[3]! - 1).length, 3, 'one byte short of the next');
    t.is(storage.entries(2, 4, NO_LIMIT).length, 2, 'never more than asked for');
  });

  test('RaftStorage contract › term() covers [firstIndex-1, lastIndex] and throws LOG_COMPACTED / LOG_UNAVAILABLE outside', async (t) => {
    const storage = await compacted(make);
    t.is(storage.term(5), 2, 'the snapshot index has the snapshot term');
    t.deepEqual([6, 7, 8].map((i) => storage.term(i)), [3, 3, 3]);
    t.is(await codeOf(() => storage.term(4)), 'LOG_COMPACTED');
    t.is(await codeOf(() => storage.term(9)), 'LOG_UNAVAILABLE');
  });

  test('RaftStorage contract › an array returned by entries() is not changed by later writes', async (t) => {
    const storage = await withLog(make, [1, 1, 1, 1]);
    const before = storage.entries(1, 5, NO_LIMIT);
    const copy = before.map((e) => [e.index, e.term]);
    await storage.save({ entries: ents(2, [2, 2]) });
    await storage.createSnapshot(2, CONF, new Uint8Array(0));
    await storage.compact(2);
    t.deepEqual(before.map((e) => [e.index, e.term]), copy);
  });
}

function registerWrites(test: TestFn, make: MakeStorage): void {
  test('RaftStorage contract › save() appends entries that continue the log', async (t) => {
    const storage = await withLog(make, [1, 1]);
    await storage.save({ entries: ents(3, [2, 2]) });
    t.deepEqual(contents(storage), [[1, 1], [2, 1], [3, 2], [4, 2]]);
  });

  test('RaftStorage contract › save() replaces a conflicting suffix (shorter, same length, longer)', async (t) => {
    const cases: { at: number; terms: number[]; want: [number, number][] }[] = [
      { at: 2, terms: [3], want: [[1, 1], [2, 3]] },
      { at: 3, terms: [3, 3], want: [[1, 1], [2, 1], [3, 3], [4, 3]] },
      { at: 4, terms: [3, 3, 3], want: [[1, 1], [2, 1], [3, 2], [4, 3], [5, 3], [6, 3]] },
      { at: 1, terms: [4], want: [[1, 4]] },
    ];
    for (const c of cases) {
      const storage = await withLog(make, [1, 1, 2, 2]);
      await storage.save({ entries: ents(c.at, c.terms) });
      t.deepEqual(contents(storage), c.want, `save at ${c.at}`);
      t.is(storage.lastIndex(), c.want.length);
      sameEntries(t, storage.entries(c.at, c.at + c.terms.length, NO_LIMIT), ents(c.at, c.terms));
    }
  });

  test('RaftStorage contract › save() of entries already compacted keeps only the part past the snapshot', async (t) => {
    const storage = await compacted(make);
    await storage.save({ entries: ents(4, [2, 2, 4, 4]) });
    t.deepEqual(contents(storage), [[6, 4], [7, 4]]);
    t.is(storage.term(5), 2);
  });

  test('RaftStorage contract › the hard state round-trips, and saves without one keep it', async (t) => {
    const storage = await make();
    const hardState: HardState = { term: 7, vote: 3, commit: 2 };
    await storage.save({ entries: ents(1, [7, 7]), hardState });
    t.deepEqual(storage.initialState().hardState, hardState);
    await storage.save({ entries: ents(3, [7]) });
    t.deepEqual(storage.initialState().hardState, hardState);
    await storage.save({ entries: [], hardState: { term: 8, vote: 0, commit: 3 } });
    t.deepEqual(storage.initialState().hardState, { term: 8, vote: 0, commit: 3 });
  });
}

function registerSnapshots(test: TestFn, make: MakeStorage): void {
  test('RaftStorage contract › createSnapshot() records index, term, membership and data; compact() then drops the log up to it', async (t) => {
    const storage = await withLog(make, [1, 1, 2, 2, 2, 3, 3, 3]);
    const snapshot = await storage.createSnapshot(5, CONF, encoder.encode('state at 5'));
    t.deepEqual(snapshot.metadata, { index: 5, term: 2, confState: CONF });
    t.deepEqual([...storage.snapshot().data], [...encoder.encode('state at 5')]);
    t.deepEqual(storage.snapshot().metadata, snapshot.metadata);
    t.deepEqual(storage.initialState().confState, CONF);
    t.is(storage.firstIndex(), 1, 'nothing is dropped before compact()');
    await storage.compact(5);
    t.deepEqual([storage.firstIndex(), storage.lastIndex(), storage.term(5)], [6, 8, 2]);
    t.deepEqual(contents(storage), [[6, 3], [7, 3], [8, 3]]);
  });

  test('RaftStorage contract › compact() at or below the compacted index changes nothing', async (t) => {
    const storage = await compacted(make);
    await storage.compact(3);
    await storage.compact(5);
    t.deepEqual([storage.firstIndex(), storage.lastIndex(), storage.term(5)], [6, 8, 2]);
  });

  test('RaftStorage contract › createSnapshot() at or below the current snapshot throws SNAPSHOT_OUT_OF_DATE', async (t) => {
    const storage = await compacted(make);
    t.is(await codeOf(() => storage.createSnapshot(5, CONF, new Uint8Array(0))), 'SNAPSHOT_OUT_OF_DATE');
    t.is(await codeOf(() => storage.createSnapshot(4, CONF, new Uint8Array(0))), 'SNAPSHOT_OUT_OF_DATE');
    t.is(storage.snapshot().metadata.index, 5);
    t.is(await codeOf(() => storage.createSnapshot(7, CONF, new Uint8Array(0))), undefined);
  });

  test('RaftStorage contract › save({snapshot}) replaces the whole log, entries it covers or not', async (t) => {
    for (const index of [3, 6, 20]) {
      const storage = await withLog(make, [1, 1, 2, 2, 2, 3]);
      const snapshot = snapshotAt(index, 5);
      await storage.save({ entries: [], snapshot });
      t.deepEqual([storage.firstIndex(), storage.lastIndex(), storage.term(index)], [index + 1, index, 5], `snapshot at ${index}`);
      t.deepEqual(storage.snapshot().metadata, snapshot.metadata);
      t.deepEqual([...storage.snapshot().data], [...snapshot.data]);
      t.deepEqual(storage.initialState().confState, CONF);
      t.is(await codeOf(() => storage.entries(index, index + 1, NO_LIMIT)), 'LOG_COMPACTED');
    }
  });

  test('RaftStorage contract › save({snapshot, entries, hardState}) applies the snapshot, then the entries, then the hard state', async (t) => {
    const storage = await withLog(make, [1, 1]);
    const hardState: HardState = { term: 6, vote: 1, commit: 12 };
    await storage.save({ snapshot: snapshotAt(10, 5), entries: ents(11, [6, 6]), hardState });
    t.deepEqual([storage.firstIndex(), storage.lastIndex(), storage.term(10)], [11, 12, 5]);
    t.deepEqual(contents(storage), [[11, 6], [12, 6]]);
    t.deepEqual(storage.initialState().hardState, hardState);
  });

  test('RaftStorage contract › save({snapshot}) older than the current snapshot throws SNAPSHOT_OUT_OF_DATE', async (t) => {
    const storage = await compacted(make);
    t.is(await codeOf(() => storage.save({ entries: [], snapshot: snapshotAt(4, 2) })), 'SNAPSHOT_OUT_OF_DATE');
    t.is(await codeOf(() => storage.save({ entries: [], snapshot: snapshotAt(5, 2) })), 'SNAPSHOT_OUT_OF_DATE');
    t.deepEqual([storage.firstIndex(), storage.lastIndex()], [6, 8], 'the failed save changed nothing');
  });
}

function registerReopen(test: TestFn, make: MakeStorage, reopen: ReopenStorage): void {
  test('RaftStorage contract › after reopen: entries, hard state, snapshot and compaction survive', async (t) => {
    const storage = await compacted(make);
    const hardState: HardState = { term: 3, vote: 2, commit: 7 };
    await storage.save({ entries: ents(9, [3]), hardState });
    const before = { entries: storage.entries(6, 10, NO_LIMIT), snapshot: storage.snapshot(), initial: storage.initialState() };
    const reopened = await reopen(storage);
    t.deepEqual([reopened.firstIndex(), reopened.lastIndex(), reopened.term(5)], [6, 9, 2]);
    sameEntries(t, reopened.entries(6, 10, NO_LIMIT), before.entries);
    t.deepEqual(reopened.initialState(), before.initial);
    t.deepEqual(reopened.snapshot().metadata, before.snapshot.metadata);
    t.deepEqual([...reopened.snapshot().data], [...before.snapshot.data]);
  });

  test('RaftStorage contract › after reopen: a truncated suffix stays truncated', async (t) => {
    const storage = await withLog(make, [1, 1, 1, 1, 1]);
    await storage.save({ entries: ents(3, [2]) });
    const reopened = await reopen(storage);
    t.deepEqual(contents(reopened), [[1, 1], [2, 1], [3, 2]]);
    t.is(await codeOf(() => reopened.entries(4, 5, NO_LIMIT)), 'LOG_UNAVAILABLE');
  });

  test('RaftStorage contract › after reopen: a log replaced by a snapshot stays replaced, and writes continue', async (t) => {
    const storage = await withLog(make, [1, 1, 1, 1, 1]);
    await storage.save({ snapshot: snapshotAt(3, 2), entries: ents(4, [2]), hardState: { term: 2, vote: 0, commit: 4 } });
    const reopened = await reopen(storage);
    t.deepEqual([reopened.firstIndex(), reopened.lastIndex(), reopened.term(3)], [4, 4, 2]);
    t.deepEqual(contents(reopened), [[4, 2]]);
    t.deepEqual(reopened.initialState().confState, CONF);
    await reopened.save({ entries: ents(5, [2, 2]) });
    t.deepEqual(contents(reopened), [[4, 2], [5, 2], [6, 2]]);
  });
}
