import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClassicLevel } from 'classic-level';
import { LevelHealthResultsStore, parseKey, type LevelHealthResultsStoreOptions } from '../../src/storage/health-results.ts';
import { check, ref, resultsStoreContract, T0 } from '../health/results-contract.ts';

const dirs: string[] = [];
const opened = new Set<LevelHealthResultsStore>();

test.after.always(async () => {
  await Promise.all([...opened].map((s) => s.close()));
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'cutover-health-'));
  dirs.push(dir);
  // A subdirectory that does not exist yet, as the node's `{dataDir}/health`.
  return join(dir, 'health');
}

async function open(options: LevelHealthResultsStoreOptions): Promise<LevelHealthResultsStore> {
  const store = await LevelHealthResultsStore.open(options);
  opened.add(store);
  return store;
}

async function withRawDb(dir: string, fn: (db: ClassicLevel<string, string>) => Promise<void>): Promise<void> {
  const db = new ClassicLevel<string, string>(dir, { keyEncoding: 'utf8', valueEncoding: 'utf8', createIfMissing: false, errorIfExists: false });
  await db.open();
  try {
    await fn(db);
  } finally {
    await db.close();
  }
}

async function rawKeys(dir: string): Promise<string[]> {
  let keys: string[] = [];
  await withRawDb(dir, async (db) => {
    keys = await db.keys().all();
  });
  return keys;
}

resultsStoreContract(test, 'leveldb', async (options) => open({ dir: await tempDir(), ...options }));

test('reopening keeps the results, and sequence numbers go on from the highest stored', async (t) => {
  const dir = await tempDir();
  const wallClockMs = () => T0 + 10_000;
  const first = await open({ dir, wallClockMs });
  await first.append(ref('i-1'), [check(T0 + 1), check(T0 + 1, 'failure', { check: 'tcp', type: 'tcp' })]);
  await first.append(ref('i/2', { base: 'acme:50%' }), [check(T0 + 2, 'timeout')]);
  const before = await first.recent({ limit: 10 });
  await first.close();
  await first.close();

  const second = await open({ dir, wallClockMs });
  t.deepEqual(await second.recent({ limit: 10 }), before);
  t.like(second.stats(), { total: 3, instances: 2 });
  await second.append(ref('i-1'), [check(T0 + 1, 'error')]);
  // Same `at` as the first round: the new result sorts after it by its sequence number.
  t.deepEqual((await second.recent({ instanceId: 'i-1', limit: 10 })).map((r) => r.status), ['error', 'failure', 'success']);
  await second.close();

  const keys = await rawKeys(dir);
  t.deepEqual(keys, [
    `r/acme:50%25/2.0.0/i%2F2/${T0 + 2}-000000000000003`,
    `r/acme:greeter/2.0.0/i-1/${T0 + 1}-000000000000001`,
    `r/acme:greeter/2.0.0/i-1/${T0 + 1}-000000000000002`,
    `r/acme:greeter/2.0.0/i-1/${T0 + 1}-000000000000004`,
  ]);
  t.like(parseKey(new TextEncoder().encode(keys[0]!)), { base: 'acme:50%', instanceId: 'i/2', at: T0 + 2, seq: 3 });
});

test('evictions delete their keys in the append batch', async (t) => {
  const dir = await tempDir();
  const store = await open({ dir, wallClockMs: () => T0 + 10_000, perInstanceMax: 2, totalMax: 3 });
  for (let i = 0; i < 6; i++) await store.append(ref(`i-${i % 2}`), [check(T0 + i)]);
  await store.close();
  const keys = await rawKeys(dir);
  t.is(keys.length, 3);
  t.deepEqual(keys.map((k) => Number(k.split('/')[4]!.slice(0, 13)) - T0).sort(), [3, 4, 5]);
});

test('reopening with lower bounds, or later in time, evicts at open', async (t) => {
  const dir = await tempDir();
  const first = await open({ dir, wallClockMs: () => T0 + 10_000 });
  for (let i = 0; i < 10; i++) await first.append(ref(`i-${i % 2}`), [check(T0 + i * 1_000)]);
  await first.close();
  const second = await open({ dir, wallClockMs: () => T0 + 10_000, perInstanceMax: 4, totalMax: 6 });
  t.deepEqual((await second.recent({ limit: 100 })).map((r) => (r.at - T0) / 1_000), [9, 8, 7, 6, 5, 4]);
  await second.close();
  t.is((await rawKeys(dir)).length, 6);
  // A day later everything has expired.
  const third = await open({ dir, wallClockMs: () => T0 + 10_000 + 86_400_000 });
  t.like(third.stats(), { total: 0, instances: 0 });
  await third.close();
  t.deepEqual(await rawKeys(dir), []);
});

test('a corrupt value is skipped and counted, not failing the query; a key that does not parse is deleted at open', async (t) => {
  const dir = await tempDir();
  const first = await open({ dir, wallClockMs: () => T0 + 10_000 });
  await first.append(ref('i-1'), [check(T0 + 1)]);
  await first.append(ref('i-1'), [check(T0 + 2)]);
  await first.append(ref('i-1'), [check(T0 + 3)]);
  await first.close();
  const keys = await rawKeys(dir);
  await withRawDb(dir, async (db) => {
    await db.put(keys[0]!, '{"torn');
    await db.put(keys[1]!, JSON.stringify({ ...check(T0 + 99), ...ref('someone-else') }));
    await db.put('r/acme:greeter/2.0.0/i-1/not-a-time', '{}');
    await db.put('r/%zz/2.0.0/i-1/1700000000000-000000000000009', '{}');
    await db.put('r/too/few/1700000000000-000000000000009', '{}');
  });
  const second = await open({ dir, wallClockMs: () => T0 + 10_000 });
  t.deepEqual((await second.recent({ limit: 10 })).map((r) => r.at - T0), [3]);
  t.like(second.stats(), { total: 3, corruptSkipped: 2, corruptKeysDeleted: 3 });
  await second.close();
  t.deepEqual(await rawKeys(dir), keys);
});

test('a failed batch stores nothing of its append, rejects with HEALTH_STORE_WRITE_FAILED, and its deletions are retried by the next', async (t) => {
  const dir = await tempDir();
  const store = await open({ dir, wallClockMs: () => T0 + 10_000, perInstanceMax: 2, totalMax: 10 });
  await store.append(ref('a'), [check(T0 + 1)]);
  await store.append(ref('a'), [check(T0 + 2)]);
  const db = (store as unknown as { db: { batch: (...args: unknown[]) => Promise<void> } }).db;
  const batch = db.batch.bind(db);
  db.batch = () => Promise.reject(new Error('disk gone'));
  await t.throwsAsync(store.append(ref('a'), [check(T0 + 3)]), { code: 'HEALTH_STORE_WRITE_FAILED' } as never);
  t.like(store.stats(), { total: 1, writeFailures: 1 });
  db.batch = batch;
  t.deepEqual((await store.recent({ limit: 10 })).map((r) => r.at - T0), [2]);
  await store.append(ref('a'), [check(T0 + 4)]);
  t.deepEqual((await store.recent({ limit: 10 })).map((r) => r.at - T0), [4, 2]);
  await store.close();
  t.is((await rawKeys(dir)).length, 2);
});

test('appends wait in a bounded queue: past appendQueueMax they reject with HEALTH_STORE_BUSY', async (t) => {
  const store = await open({ dir: await tempDir(), wallClockMs: () => T0 + 10_000, appendQueueMax: 2 });
  const appends = [store.append(ref('a'), [check(T0 + 1)]), store.append(ref('a'), [check(T0 + 2)])];
  await t.throwsAsync(store.append(ref('a'), [check(T0 + 3)]), { code: 'HEALTH_STORE_BUSY' } as never);
  await Promise.all(appends);
  await store.append(ref('a'), [check(T0 + 4)]);
  t.is(store.stats().total, 3);
  await store.close();
});

test('close waits for queued appends', async (t) => {
  const dir = await tempDir();
  const store = await open({ dir, wallClockMs: () => T0 + 10_000 });
  const pending = store.append(ref('a'), [check(T0 + 1)]);
  await store.close();
  await pending;
  t.is((await rawKeys(dir)).length, 1);
});

test('open: bad options name the field; a directory already open elsewhere is HEALTH_STORE_OPEN_FAILED', async (t) => {
  for (const [options, field] of [
    [{ dir: '', wallClockMs: () => 0 }, 'dir'],
    [{ dir: 'x\0y', wallClockMs: () => 0 }, 'dir'],
    [{ dir: '/tmp/x' }, 'wallClockMs'],
    [{ dir: '/tmp/x', wallClockMs: () => 0, appendQueueMax: 0 }, 'appendQueueMax'],
    [{ dir: '/tmp/x', wallClockMs: () => 0, totalMax: -5 }, 'totalMax'],
  ] as const) {
    const error = await t.throwsAsync(LevelHealthResultsStore.open(options as never));
    t.is((error as { code?: string }).code, 'INVALID_ARGUMENT');
    t.is((error as { field?: string }).field, field);
  }
  const dir = await tempDir();
  const store = await open({ dir, wallClockMs: () => 0 });
  await t.throwsAsync(LevelHealthResultsStore.open({ dir, wallClockMs: () => 0 }), { code: 'HEALTH_STORE_OPEN_FAILED' } as never);
  await store.close();
});
