/**
 * One suite for every `HealthResultsStore` (the memory one and the LevelDB one): bounds, order,
 * filters, validation. `make` opens a fresh store with the given bounds and wall clock.
 */
import type { TestFn } from 'ava';
import type { CheckResult, CheckStatus, HealthResultsStore, InstanceRef } from '../../src/health/types.ts';
import type { ResultsBoundsOptions } from '../../src/health/results.ts';

export type StoreWithStats = HealthResultsStore & { stats(): { readonly total: number; readonly instances: number } };
export type MakeStore = (options: ResultsBoundsOptions & { wallClockMs: () => number }) => Promise<StoreWithStats>;

export const T0 = 1_700_000_000_000;

export function ref(instanceId: string, over: Partial<InstanceRef> = {}): InstanceRef {
  return { base: 'acme:greeter', version: '2.0.0', instanceId, nodeId: 1, ...over };
}

export function check(at: number, status: CheckStatus = 'success', over: Partial<CheckResult> = {}): CheckResult {
  return { check: 'hook', type: 'instance', status, at, durationMs: 2, attempts: 1, detail: `${status} at ${at}`, ...over };
}

export function resultsStoreContract(test: TestFn, name: string, make: MakeStore): void {
  test(`${name}: recent is newest first with exact-match filters, sinceMs and limit`, async (t) => {
    const store = await make({ wallClockMs: () => T0 + 100_000 });
    await store.append(ref('i-1'), [check(T0 + 1_000), check(T0 + 1_000, 'failure', { check: 'tcp', type: 'tcp' })]);
    await store.append(ref('i-2', { nodeId: 2 }), [check(T0 + 2_000, 'timeout')]);
    await store.append(ref('o-1', { version: '1.0.0' }), [check(T0 + 3_000)]);
    await store.append(ref('i-1', { base: 'acme:greeter2' }), [check(T0 + 4_000, 'error')]);
    await store.append(ref('i-1'), [check(T0 + 5_000)]);

    const all = await store.recent({ limit: 100 });
    t.deepEqual(
      all.map((r) => [r.base, r.version, r.instanceId, r.at, r.check]),
      [
        ['acme:greeter', '2.0.0', 'i-1', T0 + 5_000, 'hook'],
        ['acme:greeter2', '2.0.0', 'i-1', T0 + 4_000, 'hook'],
        ['acme:greeter', '1.0.0', 'o-1', T0 + 3_000, 'hook'],
        ['acme:greeter', '2.0.0', 'i-2', T0 + 2_000, 'hook'],
        // Same round: the later result of the append is the newer.
        ['acme:greeter', '2.0.0', 'i-1', T0 + 1_000, 'tcp'],
        ['acme:greeter', '2.0.0', 'i-1', T0 + 1_000, 'hook'],
      ],
    );
    t.deepEqual(all[3], { base: 'acme:greeter', version: '2.0.0', instanceId: 'i-2', nodeId: 2, check: 'hook', type: 'instance', status: 'timeout', at: T0 + 2_000, durationMs: 2, attempts: 1, detail: `timeout at ${T0 + 2_000}` });

    const at = async (query: Parameters<HealthResultsStore['recent']>[0]) => (await store.recent(query)).map((r) => r.at - T0);
    t.deepEqual(await at({ base: 'acme:greeter', limit: 100 }), [5_000, 3_000, 2_000, 1_000, 1_000]);
    t.deepEqual(await at({ base: 'acme:greeter', version: '2.0.0', limit: 100 }), [5_000, 2_000, 1_000, 1_000]);
    t.deepEqual(await at({ instanceId: 'i-1', limit: 100 }), [5_000, 4_000, 1_000, 1_000]);
    t.deepEqual(await at({ base: 'acme:greeter', version: '2.0.0', instanceId: 'i-1', limit: 100 }), [5_000, 1_000, 1_000]);
    t.deepEqual(await at({ base: 'acme:gr', limit: 100 }), []);
    t.deepEqual(await at({ sinceMs: T0 + 3_000, limit: 100 }), [5_000, 4_000, 3_000]);
    t.deepEqual(await at({ limit: 2 }), [5_000, 4_000]);
    t.deepEqual(await at({ instanceId: 'i-1', sinceMs: T0 + 2_000, limit: 1 }), [5_000]);
    await store.close();
  });

  test(`${name}: results arriving out of time order are returned in time order`, async (t) => {
    const store = await make({ wallClockMs: () => T0 + 100_000 });
    await store.append(ref('a'), [check(T0 + 30)]);
    await store.append(ref('b'), [check(T0 + 10)]);
    await store.append(ref('a'), [check(T0 + 20)]);
    await store.append(ref('a'), [check(T0 + 40)]);
    t.deepEqual((await store.recent({ limit: 10 })).map((r) => [r.instanceId, r.at - T0]), [['a', 40], ['a', 30], ['a', 20], ['b', 10]]);
    await store.close();
  });

  test(`${name}: the per-instance bound keeps each instance's newest results`, async (t) => {
    const store = await make({ wallClockMs: () => T0 + 100_000, perInstanceMax: 3, totalMax: 100 });
    for (let i = 0; i < 10; i++) {
      await store.append(ref('a'), [check(T0 + i)]);
      await store.append(ref('b'), [check(T0 + 100 + i)]);
    }
    t.deepEqual((await store.recent({ instanceId: 'a', limit: 100 })).map((r) => r.at - T0), [9, 8, 7]);
    t.deepEqual((await store.recent({ instanceId: 'b', limit: 100 })).map((r) => r.at - T0), [109, 108, 107]);
    t.like(store.stats(), { total: 6, instances: 2 });
    // One append larger than the bound keeps its newest.
    await store.append(ref('c'), [check(T0 + 5), check(T0 + 1), check(T0 + 4), check(T0 + 2), check(T0 + 3)]);
    t.deepEqual((await store.recent({ instanceId: 'c', limit: 100 })).map((r) => r.at - T0), [5, 4, 3]);
    await store.close();
  });

  test(`${name}: the total bound keeps the newest results across instances`, async (t) => {
    const store = await make({ wallClockMs: () => T0 + 100_000, perInstanceMax: 5, totalMax: 5 });
    for (let i = 0; i < 12; i++) await store.append(ref(`i-${i % 3}`), [check(T0 + i)]);
    t.deepEqual((await store.recent({ limit: 100 })).map((r) => r.at - T0), [11, 10, 9, 8, 7]);
    t.like(store.stats(), { total: 5, instances: 3 });
    // An instance whose results were all evicted is forgotten.
    for (let i = 12; i < 17; i++) await store.append(ref('new'), [check(T0 + i)]);
    t.like(store.stats(), { total: 5, instances: 1 });
    await store.close();
  });

  test(`${name}: the age bound hides expired results at once and prunes them every pruneEveryAppends appends, in batches`, async (t) => {
    let now = T0;
    const store = await make({ wallClockMs: () => now, maxAgeMs: 1_000, pruneEveryAppends: 4, pruneBatchMax: 3 });
    for (let i = 0; i < 7; i++) await store.append(ref('a'), [check(T0 + i * 100)]);
    // The 4th append pruned (nothing expired then); 7 stored.
    t.is(store.stats().total, 7);
    now = T0 + 1_450; // results at 0..400 have expired
    t.deepEqual((await store.recent({ limit: 100 })).map((r) => r.at - T0), [600, 500]);
    t.is(store.stats().total, 7, 'no scan on a query');
    await store.append(ref('a'), [check(now)]); // the 8th append prunes a batch of 3
    t.is(store.stats().total, 5);
    await store.append(ref('a'), [check(now)]); // more were left: the next append prunes again
    t.is(store.stats().total, 4);
    t.deepEqual((await store.recent({ limit: 100 })).map((r) => r.at - T0), [1_450, 1_450, 600, 500]);
    await store.close();
  });

  test(`${name}: bad input is refused with INVALID_ARGUMENT naming the field, and nothing of it is stored`, async (t) => {
    const store = await make({ wallClockMs: () => T0 });
    const bad: [InstanceRef, unknown[], string][] = [
      [ref('a'), [check(T0), { ...check(T0), status: 'meh' }], 'results[1].status'],
      [ref('a'), [{ ...check(T0), at: -1 }], 'results[0].at'],
      [ref('a'), [{ ...check(T0), at: 1e13 }], 'results[0].at'],
      [ref('a'), [{ ...check(T0), type: 'ftp' }], 'results[0].type'],
      [ref('a'), [{ ...check(T0), check: '' }], 'results[0].check'],
      [ref('a'), [{ ...check(T0), durationMs: Number.NaN }], 'results[0].durationMs'],
      [ref('a'), [{ ...check(T0), attempts: 1.5 }], 'results[0].attempts'],
      [ref('a'), [{ ...check(T0), detail: 3 }], 'results[0].detail'],
      [ref('a'), [null], 'results[0]'],
      [ref(''), [check(T0)], 'ref.instanceId'],
      [ref('a', { base: 'x'.repeat(300) }), [check(T0)], 'ref.base'],
      [ref('a', { nodeId: 1.5 }), [check(T0)], 'ref.nodeId'],
      [ref('a'), Array.from({ length: 257 }, () => check(T0)), 'results'],
    ];
    for (const [r, results, field] of bad) {
      const error = await t.throwsAsync(store.append(r, results as CheckResult[]));
      t.is((error as { code?: string }).code, 'INVALID_ARGUMENT', field);
      t.is((error as { field?: string }).field, field);
    }
    t.is(store.stats().total, 0);
    const queries: [unknown, string][] = [
      [{}, 'limit'],
      [{ limit: 0 }, 'limit'],
      [{ limit: 10_001 }, 'limit'],
      [{ limit: 1.5 }, 'limit'],
      [{ limit: 1, base: '' }, 'base'],
      [{ limit: 1, version: 7 }, 'version'],
      [{ limit: 1, sinceMs: 'yesterday' }, 'sinceMs'],
      [null, 'query'],
    ];
    for (const [query, field] of queries) {
      const error = await t.throwsAsync(store.recent(query as never));
      t.is((error as { field?: string }).field, field);
    }
    t.deepEqual(await store.recent({ limit: 10_000 }), []);
    await store.close();
  });

  test(`${name}: stored results keep only the known fields, a long detail is cut, fractional at is floored`, async (t) => {
    const store = await make({ wallClockMs: () => T0 + 10_000 });
    await store.append(ref('a'), [{ ...check(T0 + 0.7), detail: 'x'.repeat(5_000), extra: 'dropped' } as CheckResult]);
    const [stored] = await store.recent({ limit: 1 });
    t.is(stored!.detail.length, 1024);
    t.true(stored!.detail.endsWith('…'));
    t.is(stored!.at, T0);
    t.false('extra' in stored!);
    await store.append(ref('a'), []);
    t.is(store.stats().total, 1);
    await store.close();
  });

  test(`${name}: after close every call rejects with HEALTH_STORE_CLOSED`, async (t) => {
    const store = await make({ wallClockMs: () => T0 });
    await store.close();
    await t.throwsAsync(store.append(ref('a'), [check(T0)]), { code: 'HEALTH_STORE_CLOSED' } as never);
    await t.throwsAsync(store.recent({ limit: 1 }), { code: 'HEALTH_STORE_CLOSED' } as never);
    await store.close();
  });
}
