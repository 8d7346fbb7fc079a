/** Config validation (src/raft/config.ts): bad settings fail at start-up, naming the setting. */
import test from 'ava';
import { MemoryStorage, RawNode, type RaftConfig } from '../../src/raft/index.ts';
import { resolveRaftConfig } from '../../src/raft/config.ts';
import type { InvalidArgumentError } from '../../src/util/errors.ts';
import { SeededRandom } from '../../src/util/random.ts';

const base = (): RaftConfig => ({ id: 1, storage: MemoryStorage.bootstrap([1, 2, 3]), random: new SeededRandom(1) });

test('defaults are filled in and explicit settings kept', (t) => {
  const resolved = resolveRaftConfig({ ...base(), electionTicks: 20, preVote: false });
  t.like(resolved, { electionTicks: 20, heartbeatTicks: 1, preVote: false, checkQuorum: true });
  t.true(resolved.maxSizePerMsg > 0 && resolved.maxInflightMsgs > 0);
});

const numeric = ['id', 'electionTicks', 'heartbeatTicks', 'maxSizePerMsg', 'maxInflightMsgs', 'maxInflightBytes', 'maxUncommittedEntriesSize', 'maxApplyBytesPerReady', 'learnerPromotionLagMax'] as const;

for (const field of numeric) {
  test(`${field} must be a positive integer: INVALID_ARGUMENT naming it`, (t) => {
    for (const bad of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      // heartbeatTicks must stay below electionTicks; give electionTicks room so only `field` is wrong.
      const config = { ...base(), electionTicks: field === 'electionTicks' ? bad : 50, [field]: bad };
      const error = t.throws<InvalidArgumentError>(() => new RawNode(config), undefined, `${field} = ${bad}`);
      t.is(error?.code, 'INVALID_ARGUMENT');
      t.is(error?.field, field);
    }
  });
}

test('electionTicks must exceed heartbeatTicks', (t) => {
  const error = t.throws<InvalidArgumentError>(() => new RawNode({ ...base(), electionTicks: 3, heartbeatTicks: 3 }));
  t.like(error, { code: 'INVALID_ARGUMENT', field: 'electionTicks' });
});

test('applied must be a non-negative integer', (t) => {
  const error = t.throws<InvalidArgumentError>(() => new RawNode({ ...base(), applied: -1 }));
  t.like(error, { code: 'INVALID_ARGUMENT', field: 'applied' });
});

test('storage without a membership is refused', (t) => {
  const error = t.throws<InvalidArgumentError>(() => new RawNode({ ...base(), storage: new MemoryStorage() }));
  t.like(error, { code: 'INVALID_ARGUMENT', field: 'storage' });
});

test('undefined optional settings fall back to the defaults', (t) => {
  const resolved = resolveRaftConfig({ ...base(), electionTicks: undefined as unknown as number });
  t.is(resolved.electionTicks, 10);
});
