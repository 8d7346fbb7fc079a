/**
 * The sequential specification of one key of the KV store (src/kv), as the node target's clients
 * use it: put, get, delete, and compare-and-set (a txn whose compare is on the value, or on
 * existence when the expected value is "absent"). It checks what the store answers about the key
 * itself: a put's previous value, a get's value and version, whether a txn's compare succeeded,
 * whether a delete found the key. Revisions are global across keys, so a per-key model cannot
 * check them (linearizability is checked key by key).
 */
import { assert, unreachable } from '../../src/util/assert.ts';
import type { HistoryOp, Model } from './linearizability.ts';

/** What a client asked for. `cas` puts `value` iff the current value equals `expected` (null = absent). */
export type KvInput = { kind: 'put'; value: string } | { kind: 'get' } | { kind: 'cas'; expected: string | null; value: string } | { kind: 'delete' };

/** What the client was told. The `kind` always matches the input's. */
export type KvOutput =
  | { kind: 'put'; prev: string | null }
  | { kind: 'get'; value: string | null; version: number }
  | { kind: 'cas'; succeeded: boolean }
  | { kind: 'delete'; deleted: boolean };

/** One key: absent, or its value and version (puts since it was created; 1 after the first). */
export type KvKeyState = { readonly value: string; readonly version: number } | null;

/**
 * The KV model. A put answers the value it replaced; a get the current value and version (0 when
 * absent); a cas whether it swapped; a delete whether the key existed. An unknown output (no
 * reply) is accepted for every input, as the `Model` contract requires.
 */
export const kvModel: Model<KvKeyState, KvInput, KvOutput> = keyModel(true);

/**
 * The KV model without versions (a get's version is not checked; every state has version 0).
 * Weaker, but much cheaper to search when many writes went unanswered: each of them that may have
 * applied, unseen, shifts every later version, so under `kvModel` the search must find out which
 * of them applied, while here an overwritten one leaves no trace.
 */
export const kvValueModel: Model<KvKeyState, KvInput, KvOutput> = keyModel(false);

function keyModel(versions: boolean): Model<KvKeyState, KvInput, KvOutput> {
  const put = (state: KvKeyState, value: string): KvKeyState => ({ value, version: versions ? (state?.version ?? 0) + 1 : 0 });
  return {
    init: () => null,

    step(state, input, output) {
      // A reply of another kind than its request is a recorder bug, not a consistency violation.
      assert(output === undefined || output.kind === input.kind, `kv: ${input.kind} request got a ${output?.kind} reply`);
      const current = state?.value ?? null;
      switch (input.kind) {
        case 'put':
          return { ok: output === undefined || (output.kind === 'put' && output.prev === current), state: put(state, input.value) };
        case 'get': {
          const ok = output === undefined || (output.kind === 'get' && output.value === current && (!versions || output.version === (state?.version ?? 0)));
          return { ok, state };
        }
        case 'cas': {
          const swapped = current === input.expected;
          const ok = output === undefined || (output.kind === 'cas' && output.succeeded === swapped);
          return { ok, state: swapped ? put(state, input.value) : state };
        }
        case 'delete':
          return { ok: output === undefined || (output.kind === 'delete' && output.deleted === (state !== null)), state: null };
        default:
          return unreachable(input, 'kv: unknown input kind');
      }
    },

    // JSON keeps null apart from every [value, version] pair.
    key: (state) => (state === null ? 'null' : JSON.stringify([state.value, state.version])),

    describeOp: describeKvOp,
  };
}

/** `put "x" (prev null)`, `get -> "x" v2`, `cas null => "x" -> ok`, `delete -> found`; `?` without a reply. */
export function describeKvOp(op: HistoryOp<KvInput, KvOutput>): string {
  const { input, output } = op;
  switch (input.kind) {
    case 'put':
      return `put ${JSON.stringify(input.value)} -> ${output?.kind === 'put' ? `prev ${JSON.stringify(output.prev)}` : '?'}`;
    case 'get':
      return `get -> ${output?.kind === 'get' ? `${JSON.stringify(output.value)} v${output.version}` : '?'}`;
    case 'cas':
      return `cas ${JSON.stringify(input.expected)} => ${JSON.stringify(input.value)} -> ${output?.kind === 'cas' ? (output.succeeded ? 'ok' : 'failed') : '?'}`;
    case 'delete':
      return `delete -> ${output?.kind === 'delete' ? (output.deleted ? 'found' : 'absent') : '?'}`;
    default:
      return unreachable(input, 'kv: unknown input kind');
  }
}
