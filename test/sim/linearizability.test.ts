import test from 'ava';
import { checkLinearizable, type HistoryOp, type LinearizabilityResult } from '../../cluster-sim/checkers/linearizability.ts';
import { registerModel, type RegisterInput, type RegisterOutput } from '../../cluster-sim/checkers/register-model.ts';
import { AssertionError } from '../../src/util/assert.ts';

type Op = HistoryOp<RegisterInput, RegisterOutput>;
type Action = { input: RegisterInput; output: RegisterOutput | undefined };

const put = (value: string): Action => ({ input: { kind: 'put', value }, output: { kind: 'put' } });
const get = (value: string | null): Action => ({ input: { kind: 'get' }, output: { kind: 'get', value } });
const cas = (expected: string | null, value: string, ok: boolean): Action => ({
  input: { kind: 'cas', expected, value },
  output: { kind: 'cas', ok },
});
/** The same request with no reply seen. */
const noReply = (action: Action): Action => ({ input: action.input, output: undefined });

/** One op; `ret` is forced to infinity for an op without a reply, as the recorder does. */
function op(clientId: number, call: number, ret: number, action: Action, key = 'k'): Omit<Op, 'id'> {
  return { clientId, key, call, ret: action.output === undefined ? Number.POSITIVE_INFINITY : ret, ...action };
}

/** Numbers the ops 0, 1, 2, ... in the order given. */
function history(...ops: Omit<Op, 'id'>[]): Op[] {
  return ops.map((o, id) => ({ id, ...o }));
}

const check = (ops: readonly Op[], options?: { maxStepsPerKey?: number }): LinearizabilityResult =>
  checkLinearizable(registerModel, ops, options);

test('a sequential history that reads its own writes is linearizable', (t) => {
  const ops = history(op(1, 0, 1, get(null)), op(1, 2, 3, put('a')), op(2, 4, 5, get('a')), op(2, 6, 7, put('b')), op(1, 8, 9, get('b')));
  t.deepEqual(check(ops), { ok: true, keysChecked: 1, opsChecked: 5 });
});

test('a stale read after a later put completed is a violation on that key', (t) => {
  const ops = history(op(1, 0, 1, put('a')), op(1, 2, 3, put('b')), op(2, 4, 5, get('a')));
  const result = check(ops);
  t.like(result, { ok: false, key: 'k' });
  if (result.ok !== false) return;
  t.regex(result.reason, /#2 \(client 2\)/);
  // The trace is ordered by call and points at the stale read.
  t.is(result.trace.length, 3);
  t.regex(result.trace[0] ?? '', /^#0 client 1 \[0, 1\] put "a"/);
  t.regex(result.trace[2] ?? '', /^#2 client 2 \[4, 5\] get -> "a" .*stuck/);
});

test('empty history is linearizable', (t) => {
  t.deepEqual(check([]), { ok: true, keysChecked: 0, opsChecked: 0 });
});

test('overlapping puts pass when one order explains the reads', (t) => {
  // put a and put b overlap; the read after both must see the one linearized last, so b then a.
  const ops = history(op(1, 0, 10, put('a')), op(2, 1, 11, put('b')), op(3, 12, 13, get('a')), op(3, 14, 15, get('a')));
  t.like(check(ops), { ok: true });
  // A read overlapping everything may see b, which forces b before a only if a then stays visible.
  const withMiddleRead = history(op(1, 0, 10, put('a')), op(2, 1, 11, put('b')), op(4, 2, 9, get('b')), op(3, 12, 13, get('a')));
  t.like(check(withMiddleRead), { ok: true });
  // Two later reads that disagree cannot both be explained.
  const flipFlop = history(op(1, 0, 10, put('a')), op(2, 1, 11, put('b')), op(3, 12, 13, get('a')), op(3, 14, 15, get('b')));
  t.like(check(flipFlop), { ok: false, key: 'k' });
});

test('equal timestamps count as concurrent; a strictly later call is ordered after', (t) => {
  // put b returns at 5 and the read is called at 5: the read may go first and still see a.
  const tie = history(op(1, 0, 1, put('a')), op(1, 2, 5, put('b')), op(2, 5, 6, get('a')));
  t.like(check(tie), { ok: true });
  const after = history(op(1, 0, 1, put('a')), op(1, 2, 5, put('b')), op(2, 6, 7, get('a')));
  t.like(check(after), { ok: false, key: 'k' });
});

test('a put with no reply whose value is read later is linearizable', (t) => {
  const ops = history(op(1, 0, 1, put('a')), op(2, 2, 0, noReply(put('b'))), op(1, 10, 11, get('b')), op(1, 12, 13, get('b')));
  t.like(check(ops), { ok: true });
});

test('a put with no reply that is never observed is linearizable', (t) => {
  const ops = history(op(1, 0, 1, put('a')), op(2, 2, 0, noReply(put('b'))), op(1, 10, 11, get('a')), op(1, 12, 13, get('a')));
  t.like(check(ops), { ok: true });
});

test('a put with no reply cannot take effect before it was called', (t) => {
  const ops = history(op(1, 0, 1, get('b')), op(2, 2, 0, noReply(put('b'))));
  t.like(check(ops), { ok: false, key: 'k' });
});

test('a put with no reply that was observed cannot be un-observed later', (t) => {
  const ops = history(op(1, 0, 1, put('a')), op(2, 2, 0, noReply(put('b'))), op(1, 10, 11, get('b')), op(1, 12, 13, get('a')));
  t.like(check(ops), { ok: false, key: 'k' });
});

test('a read of a value that was never written is a violation', (t) => {
  const ops = history(op(1, 0, 1, put('a')), op(2, 2, 3, get('z')));
  t.like(check(ops), { ok: false, key: 'k' });
  t.like(check(history(op(1, 0, 1, get('z')))), { ok: false, key: 'k' });
});

test('two concurrent cas with the same expected value cannot both succeed', (t) => {
  const bothWin = history(op(1, 0, 1, put('a')), op(1, 2, 6, cas('a', 'b', true)), op(2, 3, 7, cas('a', 'c', true)));
  t.like(check(bothWin), { ok: false, key: 'k' });
  const oneWins = history(op(1, 0, 1, put('a')), op(1, 2, 6, cas('a', 'b', true)), op(2, 3, 7, cas('a', 'c', false)), op(1, 8, 9, get('b')));
  t.like(check(oneWins), { ok: true });
  // The loser's reply and the final read must agree on who won.
  const wrongWinner = history(op(1, 0, 1, put('a')), op(1, 2, 6, cas('a', 'b', true)), op(2, 3, 7, cas('a', 'c', false)), op(1, 8, 9, get('c')));
  t.like(check(wrongWinner), { ok: false, key: 'k' });
});

test('cas on an absent key expects null, and a failed cas changes nothing', (t) => {
  const ops = history(op(1, 0, 1, cas(null, 'a', true)), op(1, 2, 3, cas(null, 'b', false)), op(1, 4, 5, get('a')));
  t.like(check(ops), { ok: true });
  t.like(check(history(op(1, 0, 1, cas(null, 'a', false)))), { ok: false, key: 'k' });
});

test('a cas with no reply may or may not have taken effect', (t) => {
  const took = history(op(1, 0, 1, put('a')), op(2, 2, 0, noReply(cas('a', 'b', true))), op(1, 5, 6, get('b')));
  t.like(check(took), { ok: true });
  const didNot = history(op(1, 0, 1, put('a')), op(2, 2, 0, noReply(cas('a', 'b', true))), op(1, 5, 6, get('a')));
  t.like(check(didNot), { ok: true });
});

test('keys are checked independently and a violation names its key', (t) => {
  const ops = history(
    op(1, 0, 1, put('a1'), 'a'),
    op(2, 0, 1, put('b1'), 'b'),
    op(1, 2, 3, put('a2'), 'a'),
    op(2, 2, 3, put('b2'), 'b'),
    op(1, 4, 5, get('a2'), 'a'),
    op(2, 4, 5, get('b1'), 'b'),
  );
  const result = check(ops);
  t.like(result, { ok: false, key: 'b' });
  if (result.ok !== false) return;
  t.true(result.trace.every((line) => !line.includes('"a')), 'the trace shows only the failing key');
  // Without the stale read on b, both keys pass. On one key, reading b1 after b2 would be stale;
  // a put on another key in between does not order anything on this one.
  t.deepEqual(check(ops.slice(0, 5)), { ok: true, keysChecked: 2, opsChecked: 5 });
  const crossKey = history(op(1, 0, 1, put('x1'), 'x'), op(1, 2, 3, put('y1'), 'y'), op(2, 4, 5, get(null), 'x'));
  t.like(check(crossKey), { ok: false, key: 'x' });
});

test('histories longer than 32 ops per key are tracked exactly', (t) => {
  const puts = Array.from({ length: 40 }, (_, i) => op(1 + (i % 3), 2 * i, 2 * i + 1, put(`v${i}`)));
  t.like(check(history(...puts, op(9, 100, 101, get('v39')))), { ok: true, opsChecked: 41 });
  t.like(check(history(...puts, op(9, 100, 101, get('v35')))), { ok: false, key: 'k' });
  // Concurrent puts beyond bit 32: all overlap, and the last read picks the 37th.
  const concurrent = Array.from({ length: 40 }, (_, i) => op(i, i, 200, put(`v${i}`)));
  t.like(check(history(...concurrent, op(99, 201, 202, get('v37')), op(99, 203, 204, get('v37')))), { ok: true });
});

test('a tiny step budget on a hard history gives unknown, and the full budget a verdict', (t) => {
  // 14 fully concurrent puts and a read of a value none of them wrote: proving that needs the
  // search to try every subset of the puts before the read.
  const puts = Array.from({ length: 14 }, (_, i) => op(i, 0, 100, put(`v${i}`)));
  const ops = history(...puts, op(99, 0, 100, get('nobody')));
  const result = check(ops, { maxStepsPerKey: 1000 });
  t.like(result, { ok: 'unknown', key: 'k' });
  t.like(check(ops), { ok: false, key: 'k' });
});

test('a definite violation on one key wins over an exhausted budget on another', (t) => {
  const puts = Array.from({ length: 14 }, (_, i) => op(i, 0, 100, put(`v${i}`), 'hard'));
  const ops = history(...puts, op(99, 0, 100, get('nobody'), 'hard'), op(1, 0, 1, get('z'), 'easy'));
  t.like(check(ops, { maxStepsPerKey: 1000 }), { ok: false, key: 'easy' });
});

test('pending reads cost the search nothing, even on a failing history', (t) => {
  // 40 reads without a reply overlap a stale read. Linearizing each one here or not would double
  // the configurations to explore per read; the checker places them at the end instead.
  const pendingReads = Array.from({ length: 40 }, (_, i) => op(10 + i, 2, 0, noReply(get(null))));
  const ops = history(op(1, 0, 1, put('a')), ...pendingReads, op(1, 3, 4, put('b')), op(2, 5, 6, get('a')));
  t.like(check(ops, { maxStepsPerKey: 10_000 }), { ok: false, key: 'k' });
  t.like(check(ops.slice(0, -1), { maxStepsPerKey: 10_000 }), { ok: true });
});

test('a history of pending ops only is linearizable', (t) => {
  const ops = history(op(1, 0, 0, noReply(get('x'))), op(2, 1, 0, noReply(put('a'))), op(3, 2, 0, noReply(cas('z', 'b', true))));
  t.deepEqual(check(ops), { ok: true, keysChecked: 1, opsChecked: 3 });
});

test('malformed histories and options are rejected', (t) => {
  const duplicate = [...history(op(1, 0, 1, put('a'))), ...history(op(1, 2, 3, put('b')))];
  t.throws(() => check(duplicate), { instanceOf: AssertionError });
  t.throws(() => check(history(op(1, 5, 4, put('a')))), { instanceOf: AssertionError });
  t.throws(() => check(history({ ...op(1, 0, 0, put('a')), ret: Number.POSITIVE_INFINITY })), { instanceOf: AssertionError });
  const error = t.throws(() => check([], { maxStepsPerKey: 0 }));
  t.is((error as Error & { code?: string }).code, 'INVALID_ARGUMENT');
});

// ---- Randomized: histories recorded from a register that really is linearizable. ----

/** mulberry32: a tiny seeded PRNG, so each generated history replays from its seed. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let z = a;
    z = Math.imul(z ^ (z >>> 15), z | 1);
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61);
    return ((z ^ (z >>> 14)) >>> 0) / 4294967296;
  };
}

interface Recording {
  id: number;
  clientId: number;
  key: string;
  input: RegisterInput;
  output: RegisterOutput | undefined;
  call: number;
  ret: number;
  applied: boolean;
}

/**
 * Simulates `clientCount` clients against one atomic register per key. Each op takes effect at a
 * single instant between its call and its return, so the history is linearizable by construction.
 * Some ops time out: the client moves on, and the op takes effect later or never.
 */
function simulateRegister(seed: number, opCount: number, clientCount: number, keys: readonly string[]): Op[] {
  const random = mulberry32(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const values = new Map<string, string | null>(keys.map((key) => [key, null]));
  const written = new Map<string, (string | null)[]>(keys.map((key) => [key, [null]]));
  const ops: Recording[] = [];
  const busy = new Map<number, Recording>();
  const orphans: Recording[] = [];
  const apply = (r: Recording): RegisterOutput => {
    const current = values.get(r.key) ?? null;
    r.applied = true;
    if (r.input.kind === 'get') return { kind: 'get', value: current };
    if (r.input.kind === 'cas' && r.input.expected !== current) return { kind: 'cas', ok: false };
    values.set(r.key, r.input.value);
    return r.input.kind === 'put' ? { kind: 'put' } : { kind: 'cas', ok: true };
  };
  let time = 0;
  while (ops.length < opCount || busy.size > 0) {
    time += random() < 0.3 ? 0 : 1; // ties on purpose
    if (orphans.length > 0 && random() < 0.05) {
      const orphan = orphans.splice(Math.floor(random() * orphans.length), 1)[0] as Recording;
      if (random() < 0.5) apply(orphan); // late effect; otherwise it never happens
    }
    const clientId = Math.floor(random() * clientCount);
    const r = busy.get(clientId);
    if (r === undefined) {
      if (ops.length >= opCount) continue;
      const key = pick(keys);
      const value = `${key}${ops.length}`;
      const roll = random();
      const input: RegisterInput =
        roll < 0.4 ? { kind: 'get' } : roll < 0.8 ? { kind: 'put', value } : { kind: 'cas', expected: random() < 0.5 ? (values.get(key) ?? null) : pick(written.get(key) ?? [null]), value };
      if (input.kind !== 'get') written.get(key)?.push(value);
      const started: Recording = { id: ops.length, clientId, key, input, output: undefined, call: time, ret: Number.POSITIVE_INFINITY, applied: false };
      ops.push(started);
      busy.set(clientId, started);
    } else if (random() < 0.01) {
      busy.delete(clientId); // timed out: the reply, if the op took effect already, is lost
      r.output = undefined;
      if (!r.applied) orphans.push(r);
    } else if (!r.applied) {
      r.output = apply(r);
    } else {
      r.ret = time;
      busy.delete(clientId);
    }
  }
  return ops.map(({ applied: _applied, ...rest }) => rest);
}

test('randomized histories from an atomic register pass, and one corrupted read fails', (t) => {
  for (let seed = 1; seed <= 20; seed++) {
    const ops = simulateRegister(seed, 400, 5, ['a', 'b']);
    t.true(ops.some((o) => o.output === undefined), `seed ${seed}: has pending ops`);
    const result = check(ops);
    t.deepEqual(result, { ok: true, keysChecked: 2, opsChecked: ops.length }, `seed ${seed}`);

    const reads = ops.filter((o) => o.input.kind === 'get' && o.output !== undefined);
    const victim = reads[Math.floor(reads.length / 2)];
    if (victim === undefined) return t.fail(`seed ${seed}: no completed reads`);
    const corrupted = ops.map((o) => (o === victim ? { ...o, output: { kind: 'get' as const, value: 'never-written' } } : o));
    t.like(check(corrupted), { ok: false, key: victim.key }, `seed ${seed}`);
  }
});
