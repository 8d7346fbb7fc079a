/** MemoryStorage runs the storage contract suite, plus what is specific to it. */
import test from 'ava';
import { MemoryStorage, limitSize, type WritableRaftStorage } from '../../src/raft/index.ts';
import { entries } from './harness.ts';
import { raftStorageContract } from './storage-contract.ts';

/**
 * MemoryStorage persists nothing, so "reopen" rebuilds a new one from what the old one exposes
 * through the read interface: it checks that the interface shows everything a restart needs.
 */
async function reopen(storage: WritableRaftStorage): Promise<WritableRaftStorage> {
  const copy = new MemoryStorage();
  copy.applySnapshot(storage.snapshot());
  const first = storage.firstIndex();
  const last = storage.lastIndex();
  const tail = last >= first ? storage.entries(first, last + 1, Number.MAX_SAFE_INTEGER) : [];
  await copy.save({ entries: tail, hardState: storage.initialState().hardState });
  return copy;
}

raftStorageContract(test, () => new MemoryStorage(), reopen);

test('bootstrap() holds the membership in a snapshot at index 0', (t) => {
  const storage = MemoryStorage.bootstrap([1, 2], [3]);
  t.deepEqual(storage.initialState().confState, { voters: [1, 2], learners: [3] });
  t.deepEqual([storage.snapshot().metadata.index, storage.firstIndex(), storage.lastIndex()], [0, 1, 0]);
});

test('limitSize() keeps the longest prefix within the limit, but never returns nothing for something', (t) => {
  const es = entries([1, 1, 1]);
  t.is(limitSize(es, 0).length, 1);
  t.is(limitSize(es, Number.MAX_SAFE_INTEGER).length, 3);
  t.deepEqual(limitSize([], 0), []);
});
