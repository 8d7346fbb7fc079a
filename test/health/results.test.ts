import test from 'ava';
import { MemoryHealthResultsStore, ResultLedger, resolveBounds } from '../../src/health/results.ts';
import { SeededRandom } from '../../src/util/random.ts';
import { resultsStoreContract, T0 } from './results-contract.ts';

resultsStoreContract(test, 'memory', async (options) => new MemoryHealthResultsStore(options));

test('bounds: defaults, and bad ones refused naming the field', (t) => {
  t.deepEqual(resolveBounds(), { perInstanceMax: 500, totalMax: 100_000, maxAgeMs: 86_400_000, pruneEveryAppends: 64, pruneBatchMax: 4096 });
  for (const [options, field] of [
    [{ perInstanceMax: 0 }, 'perInstanceMax'],
    [{ totalMax: 1.5 }, 'totalMax'],
    [{ maxAgeMs: -1 }, 'maxAgeMs'],
    [{ pruneEveryAppends: '3' }, 'pruneEveryAppends'],
    [{ pruneBatchMax: 0 }, 'pruneBatchMax'],
    [{ perInstanceMax: 10, totalMax: 5 }, 'perInstanceMax'],
  ] as const) {
    const error = t.throws(() => resolveBounds(options as never));
    t.is((error as { field?: string }).field, field);
  }
  t.throws(() => new MemoryHealthResultsStore({} as never), { code: 'INVALID_ARGUMENT' } as never);
});

/**
 * The ledger against a naive model (every entry in one list, bounds enforced by sorting): random
 * appends with out-of-order times, several instances, tight bounds, time moving on.
 */
test('ledger: random appends keep exactly what a naive model keeps (seeded)', (t) => {
  for (const seed of [1, 2, 3, 4, 5]) {
    const random = new SeededRandom(seed);
    const bounds = resolveBounds({ perInstanceMax: 7, totalMax: 20, maxAgeMs: 5_000, pruneEveryAppends: 3, pruneBatchMax: 4 });
    const ledger = new ResultLedger<string>(bounds);
    let model: { instance: string; at: number; seq: number }[] = [];
    let seq = 1;
    let now = T0;
    for (let step = 0; step < 2_000; step++) {
      now += random.nextInt(0, 400);
      const instance = `i-${random.nextInt(0, 5)}`;
      const count = random.nextInt(1, 4);
      const items = Array.from({ length: count }, () => ({ at: now - random.nextInt(0, 3_000), payload: instance }));
      const change = ledger.add({ base: 'b', version: 'v', instanceId: instance }, items, now);
      // Model: add, trim the instance, trim the total, prune by age when due (in unbounded batches).
      for (const item of items) model.push({ instance, at: item.at, seq: seq++ });
      const order = (a: { at: number; seq: number }, b: { at: number; seq: number }) => a.at - b.at || a.seq - b.seq;
      model.sort(order);
      const mine = model.filter((e) => e.instance === instance);
      const drop = new Set(mine.slice(0, Math.max(0, mine.length - bounds.perInstanceMax)));
      model = model.filter((e) => !drop.has(e));
      model = model.slice(Math.max(0, model.length - bounds.totalMax));
      t.true(change.added.length <= count);
      t.true(ledger.size() <= bounds.totalMax);
      const expected = model.filter((e) => e.at >= now - bounds.maxAgeMs);
      const got = ledger.select({ base: 'b', limit: 10_000 }, now).map((e) => ({ instance: e.payload, at: e.at, seq: e.seq }));
      t.deepEqual(got, [...expected].reverse(), `seed ${seed} step ${step}`);
      if (t.passed === false) return;
      // The model never prunes by age: the total bound evicts expired entries first anyway (they
      // are the oldest), so it keeps the same live entries. The ledger holds a subset of the
      // model's: the live ones plus the expired ones it has not pruned yet.
      t.true(ledger.size() >= expected.length && ledger.size() <= model.length);
    }
  }
});

test('ledger: remove forgets entries (a failed write), idempotently', (t) => {
  const ledger = new ResultLedger<number>(resolveBounds({ perInstanceMax: 10, totalMax: 10 }));
  const ref = { base: 'b', version: 'v', instanceId: 'a' };
  const first = ledger.add(ref, [{ at: 1, payload: 1 }, { at: 2, payload: 2 }], 10);
  ledger.add(ref, [{ at: 3, payload: 3 }], 10);
  ledger.remove(first.added.map((a) => a.entry));
  ledger.remove(first.added.map((a) => a.entry));
  t.is(ledger.size(), 1);
  t.deepEqual(ledger.select({ limit: 10 }, 10).map((e) => e.payload), [3]);
  // The heap no longer holds them for the total bound.
  ledger.add(ref, Array.from({ length: 10 }, (_, i) => ({ at: 10 + i, payload: 10 + i })), 10);
  t.deepEqual(ledger.select({ limit: 100 }, 10).map((e) => e.payload), [19, 18, 17, 16, 15, 14, 13, 12, 11, 10]);
  t.is(ledger.instances(), 1);
});

test('ledger: the heap of evicted entries stays bounded under per-instance trimming', (t) => {
  const ledger = new ResultLedger<null>(resolveBounds({ perInstanceMax: 2, totalMax: 100_000 }));
  for (let i = 0; i < 50_000; i++) ledger.add({ base: 'b', version: 'v', instanceId: 'a' }, [{ at: T0 + i, payload: null }], T0 + i);
  t.is(ledger.size(), 2);
  const heap = (ledger as unknown as { heap: unknown[] }).heap;
  t.true(heap.length <= 2 * 2 + 1024 + 1, `heap holds ${heap.length}`);
});
