/** RaftLog: stable storage plus the unstable tail (src/raft/log.ts). */
import test from 'ava';
import { RaftLog } from '../../src/raft/log.ts';
import { MemoryStorage, entrySize, type Entry } from '../../src/raft/index.ts';
import { AssertionError } from '../../src/util/assert.ts';
import { entries } from './harness.ts';

const NO_LIMIT = Number.MAX_SAFE_INTEGER;
const VOTERS = { voters: [1, 2, 3], learners: [] };

/** A log whose storage holds `stable` (terms of 1..n) and has `unstable` appended after. */
function logWith(stable: number[], unstable: number[] = []): RaftLog {
  const storage = MemoryStorage.bootstrap([1, 2, 3]);
  if (stable.length > 0) storage.save({ entries: entries(stable) });
  const log = new RaftLog(storage, NO_LIMIT);
  if (unstable.length > 0) log.append(entries(unstable, stable.length + 1));
  return log;
}

const indexes = (es: readonly Entry[]): number[] => es.map((e) => e.index);

test('a new log starts committed and applied at the storage\'s snapshot', (t) => {
  const storage = MemoryStorage.bootstrap([1, 2, 3]);
  storage.save({ entries: entries([1, 1, 2, 2]) });
  storage.createSnapshot(3, VOTERS, new Uint8Array(0));
  storage.compact(3);
  const log = new RaftLog(storage, NO_LIMIT);
  t.deepEqual([log.firstIndex(), log.lastIndex(), log.committed, log.applied], [4, 4, 3, 3]);
  t.is(log.term(3), 2, 'the snapshot index has the snapshot term');
  t.is(log.term(2), undefined, 'compacted');
  t.is(log.term(5), undefined, 'past the end');
});

test('term() reads the unstable tail before storage, and the tail wins after a truncation', (t) => {
  const log = logWith([1, 1, 1], [2]);
  t.deepEqual([1, 2, 3, 4].map((i) => log.term(i)), [1, 1, 1, 2]);
  log.append(entries([3, 3], 2));
  t.deepEqual([1, 2, 3, 4].map((i) => log.term(i)), [1, 3, 3, undefined]);
  t.is(log.lastIndex(), 3);
});

test('slice() joins storage and the unstable tail and honours maxBytes (but returns at least one entry)', (t) => {
  const log = logWith([1, 1, 1], [2, 2]);
  t.deepEqual(indexes(log.slice(2, 6, NO_LIMIT)), [2, 3, 4, 5]);
  const size = entrySize(log.slice(1, 2, NO_LIMIT)[0]!);
  t.deepEqual(indexes(log.slice(2, 6, 3 * size)), [2, 3, 4], 'limit across the boundary');
  t.deepEqual(indexes(log.slice(2, 6, 2 * size)), [2, 3], 'limit inside storage');
  t.deepEqual(indexes(log.slice(4, 6, size)), [4], 'limit inside the tail');
  t.deepEqual(indexes(log.slice(2, 6, 0)), [2], 'at least one entry');
  t.deepEqual(log.slice(3, 3, NO_LIMIT), []);
  t.throws(() => log.slice(0, 2, NO_LIMIT), { instanceOf: AssertionError });
  t.throws(() => log.slice(5, 7, NO_LIMIT), { instanceOf: AssertionError });
});

test('maybeAppend() refuses a mismatched previous entry, keeps a matching prefix and truncates a conflict', (t) => {
  const log = logWith([1, 2, 2]);
  t.is(log.maybeAppend(3, 1, 0, entries([3], 4)), undefined, 'prev term mismatch');
  t.is(log.maybeAppend(4, 2, 0, entries([3], 5)), undefined, 'prev past the end');
  t.is(log.maybeAppend(0, 0, 0, entries([1, 2])), 2, 'already present: nothing changes');
  t.is(log.lastIndex(), 3);
  t.is(log.maybeAppend(1, 1, 0, entries([2, 4, 4], 2)), 4);
  t.deepEqual([1, 2, 3, 4].map((i) => log.term(i)), [1, 2, 4, 4]);
});

test('maybeAppend() commits at most the last entry the message vouched for', (t) => {
  const log = logWith([1, 1, 1, 1]);
  log.maybeAppend(0, 0, 10, entries([1, 1]));
  t.is(log.committed, 2);
  log.maybeAppend(2, 1, 1, []);
  t.is(log.committed, 2, 'never backwards');
});

test('maybeAppend() that would overwrite a committed entry is a programmer error', (t) => {
  const log = logWith([1, 1, 1]);
  log.commitTo(2);
  t.throws(() => log.maybeAppend(1, 1, 0, entries([2], 2)), { instanceOf: AssertionError });
});

test('append() that would leave a gap or overwrite a committed entry is a programmer error', (t) => {
  const log = logWith([1, 1]);
  t.throws(() => log.append(entries([1], 4)), { instanceOf: AssertionError });
  log.commitTo(2);
  t.throws(() => log.append(entries([2], 2)), { instanceOf: AssertionError });
  t.is(log.append(entries([2], 3)), 3);
});

test('findConflictByTerm() finds the last index at or below `index` whose term is at most `term`', (t) => {
  const log = logWith([1, 1, 2, 2, 5, 5]);
  const cases: [number, number, [number, number]][] = [
    [6, 5, [6, 5]],
    [6, 4, [4, 2]],
    [6, 2, [4, 2]],
    [6, 1, [2, 1]],
    [3, 1, [2, 1]],
    [6, 0, [0, 0]],
    [9, 9, [9, 0]],
  ];
  for (const [index, term, want] of cases) t.deepEqual(log.findConflictByTerm(index, term), want, `(${index}, ${term})`);
});

test('maybeCommit() commits by counting only an entry of the given term, unless told to ignore it', (t) => {
  const log = logWith([1, 1, 2]);
  t.false(log.maybeCommit(2, 2));
  t.is(log.committed, 0);
  t.true(log.maybeCommit(2, 2, true));
  t.is(log.committed, 2);
  t.true(log.maybeCommit(3, 2));
  t.false(log.maybeCommit(1, 1), 'never backwards');
  t.is(log.committed, 3);
});

test('commitTo() past the last index and appliedTo() outside [applied, committed] are programmer errors', (t) => {
  const log = logWith([1, 1]);
  t.throws(() => log.commitTo(3), { instanceOf: AssertionError });
  log.commitTo(1);
  t.throws(() => log.appliedTo(2), { instanceOf: AssertionError });
  log.appliedTo(1);
  t.is(log.applied, 1);
});

test('nextCommittedEntries() hands out committed, unapplied entries within the byte limit', (t) => {
  const storage = MemoryStorage.bootstrap([1]);
  storage.save({ entries: entries([1, 1, 1, 1]) });
  const size = entrySize(entries([1])[0]!);
  const log = new RaftLog(storage, 2 * size);
  log.commitTo(3);
  t.deepEqual(indexes(log.nextCommittedEntries()), [1, 2]);
  log.appliedTo(2);
  t.deepEqual(indexes(log.nextCommittedEntries()), [3]);
  log.appliedTo(3);
  t.false(log.hasNextCommittedEntries());
});

test('restore() makes the snapshot the whole log until it is persisted, and holds back committed entries', (t) => {
  const log = logWith([1, 1, 1]);
  const snapshot = { metadata: { index: 10, term: 4, confState: VOTERS }, data: new Uint8Array(0) };
  log.restore(snapshot);
  t.deepEqual([log.firstIndex(), log.lastIndex(), log.lastTerm(), log.committed], [11, 10, 4, 10]);
  t.true(log.hasPendingSnapshot());
  t.false(log.hasNextCommittedEntries());
  t.deepEqual(log.nextCommittedEntries(), []);
  t.is(log.snapshot(), snapshot);
  log.append(entries([4], 11));
  t.is(log.lastIndex(), 11);
  log.unstable.stableSnapTo(10);
  t.false(log.hasPendingSnapshot());
});

test('stableTo() drops the persisted prefix of the tail, and is a no-op once that entry was replaced', (t) => {
  const log = logWith([], [1, 1, 1]);
  log.unstable.stableTo(2, 1);
  t.deepEqual(indexes(log.unstable.entries), [3]);
  log.append(entries([2], 3));
  log.unstable.stableTo(3, 1);
  t.deepEqual(indexes(log.unstable.entries), [3], 'the entry at 3 now has term 2: not what was persisted');
});

test('entriesFrom() is undefined for a compacted index', (t) => {
  const storage = MemoryStorage.bootstrap([1]);
  storage.save({ entries: entries([1, 1, 1]) });
  storage.createSnapshot(2, VOTERS, new Uint8Array(0));
  storage.compact(2);
  const log = new RaftLog(storage, NO_LIMIT);
  t.is(log.entriesFrom(2, NO_LIMIT), undefined);
  t.deepEqual(indexes(log.entriesFrom(3, NO_LIMIT) ?? []), [3]);
  t.deepEqual(log.entriesFrom(4, NO_LIMIT), []);
});
