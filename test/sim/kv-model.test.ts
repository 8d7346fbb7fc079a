import test from 'ava';
import { kvModel, kvValueModel, type KvInput, type KvOutput } from '../../cluster-sim/checkers/kv-model.ts';
import { checkLinearizable, type HistoryOp } from '../../cluster-sim/checkers/linearizability.ts';

type Op = HistoryOp<KvInput, KvOutput>;
type Action = { input: KvInput; output: KvOutput | undefined };

const put = (value: string, prev: string | null): Action => ({ input: { kind: 'put', value }, output: { kind: 'put', prev } });
const get = (value: string | null, version: number): Action => ({ input: { kind: 'get' }, output: { kind: 'get', value, version } });
const cas = (expected: string | null, value: string, succeeded: boolean): Action => ({ input: { kind: 'cas', expected, value }, output: { kind: 'cas', succeeded } });
const del = (deleted: boolean): Action => ({ input: { kind: 'delete' }, output: { kind: 'delete', deleted } });
const noReply = (action: Action): Action => ({ input: action.input, output: undefined });

/** Ops numbered in the order given; `[call, ret]` per op, ret infinite without a reply. */
function history(...ops: [clientId: number, call: number, ret: number, action: Action][]): Op[] {
  return ops.map(([clientId, call, ret, action], id) => ({ id, clientId, key: 'k', call, ret: action.output === undefined ? Number.POSITIVE_INFINITY : ret, ...action }));
}

const check = (ops: readonly Op[]) => checkLinearizable(kvModel, ops);

test('a sequential history of puts, gets, txns and deletes with their answers is linearizable', (t) => {
  const ops = history(
    [1, 0, 1, get(null, 0)],
    [1, 2, 3, cas(null, 'a', true)],
    [2, 4, 5, put('b', 'a')],
    [2, 6, 7, get('b', 2)],
    [1, 8, 9, cas('a', 'c', false)],
    [1, 10, 11, del(true)],
    [2, 12, 13, del(false)],
    [2, 14, 15, put('d', null)],
    [1, 16, 17, get('d', 1)],
  );
  t.like(check(ops), { ok: true });
});

test('each wrong answer is a violation: a put prev, a get version, a txn outcome, a delete outcome', (t) => {
  t.like(check(history([1, 0, 1, put('a', null)], [1, 2, 3, put('b', null)])), { ok: false });
  t.like(check(history([1, 0, 1, put('a', null)], [1, 2, 3, put('b', 'a')], [2, 4, 5, get('b', 1)])), { ok: false });
  t.like(check(history([1, 0, 1, put('a', null)], [2, 2, 3, cas('a', 'b', false)])), { ok: false });
  t.like(check(history([1, 0, 1, put('a', null)], [1, 2, 3, del(true)], [2, 4, 5, del(true)])), { ok: false });
  // A deleted key starts again at version 1.
  t.like(check(history([1, 0, 1, put('a', null)], [1, 2, 3, del(true)], [1, 4, 5, put('b', null)], [2, 6, 7, get('b', 1)])), { ok: true });
});

test('a write without a reply may take effect at any later time, or never', (t) => {
  const late = history([1, 0, 1, noReply(put('a', null))], [2, 5, 6, get(null, 0)], [2, 7, 8, get('a', 1)]);
  t.like(check(late), { ok: true });
  const never = history([1, 0, 1, noReply(put('a', null))], [2, 5, 6, put('b', null)], [2, 7, 8, get('b', 1)]);
  t.like(check(never), { ok: true });
  // But not before it was called.
  const early = history([2, 0, 1, get('a', 1)], [1, 5, 6, noReply(put('a', null))]);
  t.like(check(early), { ok: false });
});

test('the values-only model ignores versions and nothing else', (t) => {
  const wrongVersion = history([1, 0, 1, put('a', null)], [2, 2, 3, get('a', 7)]);
  t.like(check(wrongVersion), { ok: false });
  t.like(checkLinearizable(kvValueModel, wrongVersion), { ok: true });
  t.like(checkLinearizable(kvValueModel, history([1, 0, 1, put('a', null)], [2, 2, 3, get('b', 1)])), { ok: false });
  t.like(checkLinearizable(kvValueModel, history([1, 0, 1, put('a', null)], [2, 2, 3, put('b', null)])), { ok: false });
});
