import test from 'ava';
import { KvStore, type ApplyOutcome, type Command, type CommandResult, type WatchEvent } from '../../src/kv/index.ts';

let sequence = 0;
function apply(store: KvStore, command: Command, clientId = 0): ApplyOutcome {
  return store.apply({ clientId, sequence: ++sequence, command });
}
function ok(outcome: ApplyOutcome): CommandResult {
  if (!outcome.ok) throw new Error(`${outcome.code}: ${outcome.message}`);
  return outcome.result;
}

test('put keeps a global revision and per-key create/mod revision and version', (t) => {
  const store = new KvStore();
  ok(apply(store, { type: 'put', key: 'a', value: '1' }));
  ok(apply(store, { type: 'put', key: 'b', value: '1' }));
  ok(apply(store, { type: 'put', key: 'a', value: '2' }));
  t.is(store.revision(), 3);
  t.deepEqual(store.get('a'), { key: 'a', value: '2', createRevision: 1, modRevision: 3, version: 2 });
  t.deepEqual(store.get('b'), { key: 'b', value: '1', createRevision: 2, modRevision: 2, version: 1 });
});

test('delete returns the deleted key; a delete of nothing does not bump the revision', (t) => {
  const store = new KvStore();
  ok(apply(store, { type: 'put', key: 'a', value: '1' }));
  const result = ok(apply(store, { type: 'delete', key: 'a' }));
  t.is(result.type === 'delete' ? result.deleted.length : -1, 1);
  t.is(store.revision(), 2);
  ok(apply(store, { type: 'delete', key: 'a' }));
  t.is(store.revision(), 2);
  t.is(store.get('a'), undefined);
  // Re-creating starts a new life: version 1, new create revision.
  ok(apply(store, { type: 'put', key: 'a', value: 'x' }));
  t.like(store.get('a'), { createRevision: 3, version: 1 });
});

test('range by prefix is ordered and honours the limit; deletePrefix removes only the prefix', (t) => {
  const store = new KvStore();
  for (const key of ['app/c', 'app/a', 'apple', 'app/b', 'b']) ok(apply(store, { type: 'put', key, value: key }));
  t.deepEqual(store.range('app/').kvs.map((kv) => kv.key), ['app/a', 'app/b', 'app/c']);
  const limited = store.range('app', 2);
  t.deepEqual(limited.kvs.map((kv) => kv.key), ['app/a', 'app/b']);
  t.true(limited.more);
  ok(apply(store, { type: 'deletePrefix', prefix: 'app/' }));
  t.deepEqual(store.range('').kvs.map((kv) => kv.key), ['apple', 'b']);
});

test('txn compares value, version, revisions and existence, then runs one branch at one revision', (t) => {
  const store = new KvStore();
  ok(apply(store, { type: 'put', key: 'k', value: 'v1' }));
  const cas = (expected: string) => ok(apply(store, { type: 'txn', compare: [{ key: 'k', target: 'value', op: '=', value: expected }], success: [{ type: 'put', key: 'k', value: 'v2' }, { type: 'put', key: 'other', value: 'x' }], failure: [{ type: 'get', key: 'k' }] }));
  const first = cas('v1');
  t.like(first, { type: 'txn', succeeded: true, revision: 2 });
  t.is(store.get('k')?.modRevision, store.get('other')?.modRevision, 'one revision per txn');
  const second = cas('v1');
  t.like(second, { type: 'txn', succeeded: false, revision: 2 });
  t.like(second.type === 'txn' ? second.results[0] : undefined, { type: 'get', kv: { value: 'v2' } });
  const cmp = (target: 'version' | 'createRevision' | 'modRevision' | 'exists', op: '=' | '<' | '>' | '!=', value: number | boolean, key = 'k') =>
    ok(apply(store, { type: 'txn', compare: [{ key, target, op, value }], success: [], failure: [] }));
  t.like(cmp('version', '=', 2), { succeeded: true });
  t.like(cmp('createRevision', '<', 2), { succeeded: true });
  t.like(cmp('modRevision', '>', 2), { succeeded: false });
  t.like(cmp('exists', '=', false, 'missing'), { succeeded: true });
  t.like(cmp('version', '=', 0, 'missing'), { succeeded: true });
});

test('a retried request (same client and sequence) applies once and returns the first result', (t) => {
  const store = new KvStore();
  const request = { clientId: 7, sequence: 1, command: { type: 'put', key: 'k', value: 'v' } as Command };
  const first = store.apply(request);
  const retry = store.apply(request);
  t.deepEqual(retry, first);
  t.is(store.revision(), 1);
  t.is(store.get('k')?.version, 1);
  const stale = store.apply({ ...request, sequence: 0 });
  t.false(stale.ok);
  t.is(stale.ok ? '' : stale.code, 'REQUEST_STALE');
});

test('an invalid command fails deterministically with INVALID_ARGUMENT naming the field', (t) => {
  const store = new KvStore();
  const outcome = apply(store, { type: 'put', key: '', value: 'v' });
  t.false(outcome.ok);
  t.is(outcome.ok ? '' : outcome.code, 'INVALID_ARGUMENT');
  t.regex(outcome.ok ? '' : outcome.message, /operation\.key/);
  t.is(store.revision(), 0);
});

test('watches by prefix start from a revision and carry the previous value', (t) => {
  const store = new KvStore();
  ok(apply(store, { type: 'put', key: 'a/1', value: 'x' }));
  ok(apply(store, { type: 'put', key: 'b/1', value: 'y' }));
  ok(apply(store, { type: 'put', key: 'a/1', value: 'z' }));
  const seen: WatchEvent[] = [];
  const cancel = store.watch('a/', 1, (events) => seen.push(...events));
  t.deepEqual(seen.map((e) => [e.type, e.revision, e.kv.value, e.prev?.value]), [['put', 1, 'x', undefined], ['put', 3, 'z', 'x']]);
  ok(apply(store, { type: 'delete', key: 'a/1' }));
  ok(apply(store, { type: 'put', key: 'b/2', value: 'q' }));
  t.deepEqual(seen.slice(2).map((e) => [e.type, e.revision, e.kv.key, e.prev?.value]), [['delete', 4, 'a/1', 'z']]);
  cancel();
  ok(apply(store, { type: 'put', key: 'a/2', value: 'w' }));
  t.is(seen.length, 3);
});

test('a watch from a compacted revision fails with WATCH_COMPACTED; history is bounded', (t) => {
  const store = new KvStore({ historyEventsMax: 3 });
  for (let i = 0; i < 5; i++) ok(apply(store, { type: 'put', key: `k${i}`, value: 'v' }));
  t.is(store.compactedRevision(), 2);
  const error = t.throws(() => store.watch('', 2, () => {}));
  t.is((error as { code?: string }).code, 'WATCH_COMPACTED');
  const seen: number[] = [];
  store.watch('', 3, (events) => seen.push(...events.map((e) => e.revision)));
  t.deepEqual(seen, [3, 4, 5]);
  ok(apply(store, { type: 'compact', revision: 4 }));
  t.is((t.throws(() => store.watch('', 4, () => {})) as { code?: string }).code, 'WATCH_COMPACTED');
});

test('snapshot and restore reproduce keys, revision and the dedup table', (t) => {
  const store = new KvStore();
  ok(apply(store, { type: 'put', key: 'a', value: '1' }));
  store.apply({ clientId: 3, sequence: 9, command: { type: 'put', key: 'b', value: '2' } });
  const copy = new KvStore();
  copy.restore(store.snapshot());
  t.is(copy.revision(), 2);
  t.deepEqual(copy.range('').kvs, store.range('').kvs);
  // The dedup table survived: the retry is not applied again.
  copy.apply({ clientId: 3, sequence: 9, command: { type: 'put', key: 'b', value: '2' } });
  t.is(copy.revision(), 2);
  t.is((t.throws(() => copy.restore(new TextEncoder().encode('{'))) as { code?: string }).code, 'SNAPSHOT_CORRUPT');
});

test('the dedup table is bounded and forgets the least recently used client', (t) => {
  const store = new KvStore({ dedupClientsMax: 2 });
  const put = (clientId: number) => store.apply({ clientId, sequence: 1, command: { type: 'put', key: 'k', value: String(clientId) } });
  put(1);
  put(2);
  put(3); // client 1 forgotten
  put(1); // applies again
  t.is(store.get('k')?.version, 4);
  put(3); // remembered: not applied again
  t.is(store.get('k')?.version, 4);
});

test('restore tells watchers the jump as its net effect, at the snapshot revision', (t) => {
  const source = new KvStore();
  const target = new KvStore();
  const put = (store: KvStore, key: string, value: string) => store.apply({ clientId: 0, sequence: 0, command: { type: 'put', key, value } });
  put(target, 'r/kept', 'same');
  put(source, 'r/kept', 'same');
  put(target, 'r/gone', 'old');
  put(target, 'r/changed', 'before');
  put(target, 'other/x', '1');
  put(source, 'r/changed', 'after');
  put(source, 'r/new', 'fresh');
  // Make 'r/kept' identical in both: same modRevision is what "unchanged" means.
  const image = JSON.parse(new TextDecoder().decode(source.snapshot())) as { revision: number; kvs: { key: string; modRevision: number }[] };
  image.kvs.find((kv) => kv.key === 'r/kept')!.modRevision = target.get('r/kept')!.modRevision;
  const seen: { type: string; key: string; revision: number; value: string }[] = [];
  target.watch('r/', 0, (events) => seen.push(...events.map((e) => ({ type: e.type, key: e.kv.key, revision: e.revision, value: e.kv.value }))));
  target.restore(new TextEncoder().encode(JSON.stringify(image)));
  t.deepEqual(
    seen.sort((a, b) => (a.key < b.key ? -1 : 1)),
    [
      { type: 'put', key: 'r/changed', revision: image.revision, value: 'after' },
      { type: 'delete', key: 'r/gone', revision: image.revision, value: '' },
      { type: 'put', key: 'r/new', revision: image.revision, value: 'fresh' },
    ],
  );
});
