/**
 * The sequential specification of one key of the KV store, as the simulator's workload uses it:
 * a register that can be written, read, and compare-and-set.
 */
import { assert, unreachable } from '../../src/util/assert.ts';
import type { HistoryOp, Model } from './linearizability.ts';

/** What a client asked for. `cas` writes `value` iff the current value equals `expected` (null = absent). */
export type RegisterInput = { kind: 'put'; value: string } | { kind: 'get' } | { kind: 'cas'; expected: string | null; value: string };
/** What the client was told. The `kind` always matches the input's. */
export type RegisterOutput = { kind: 'put' } | { kind: 'get'; value: string | null } | { kind: 'cas'; ok: boolean };

/**
 * The register model. State: the current value, null = absent. A get must return the current
 * value; a cas's `ok` must say whether it swapped. An unknown output (no reply) is accepted for
 * every input, as the `Model` contract requires.
 */
export const registerModel: Model<string | null, RegisterInput, RegisterOutput> = {
  init: () => null,

  step(state, input, output) {
    // A reply of another kind than its request is a recorder bug, not a consistency violation.
    assert(output === undefined || output.kind === input.kind, `register: ${input.kind} request got a ${output?.kind} reply`);
    switch (input.kind) {
      case 'put':
        return { ok: true, state: input.value };
      case 'get':
        return { ok: output === undefined || (output.kind === 'get' && output.value === state), state };
      case 'cas': {
        const swapped = state === input.expected;
        const ok = output === undefined || (output.kind === 'cas' && output.ok === swapped);
        return { ok, state: swapped ? input.value : state };
      }
      default:
        return unreachable(input, 'register: unknown input kind');
    }
  },

  // JSON keeps null ("null") apart from every string value ("\"...\"").
  key: (state) => JSON.stringify(state),

  describeOp: describeRegisterOp,
};

/** `put "x"`, `get -> "x"`, `cas null => "x" -> ok`; `?` when there was no reply. */
function describeRegisterOp(op: HistoryOp<RegisterInput, RegisterOutput>): string {
  const { input, output } = op;
  switch (input.kind) {
    case 'put':
      return `put ${JSON.stringify(input.value)}${output === undefined ? ' -> ?' : ''}`;
    case 'get':
      return `get -> ${output?.kind === 'get' ? JSON.stringify(output.value) : '?'}`;
    case 'cas':
      return `cas ${JSON.stringify(input.expected)} => ${JSON.stringify(input.value)} -> ${output?.kind === 'cas' ? (output.ok ? 'ok' : 'failed') : '?'}`;
    default:
      return unreachable(input, 'register: unknown input kind');
  }
}
