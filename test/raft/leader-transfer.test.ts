/**
 * Leader transfer (Ongaro's thesis §3.10): the leader catches the target up, then tells it to
 * campaign at once (timeoutNow); the transfer is abandoned after an election timeout.
 */
import test from 'ava';
import type { CutoverError } from '../../src/util/errors.ts';
import { TestNetwork, appliedData, text } from './harness.ts';

const ELECTION_TICKS = 10;

function cluster(): TestNetwork {
  const net = new TestNetwork([1, 2, 3], { checkQuorum: true, preVote: true, electionTicks: ELECTION_TICKS });
  net.elect(1);
  net.propose(1, 'a');
  return net;
}

test('a caught-up target is told to campaign at once and wins the next term', (t) => {
  const net = cluster();
  const term = net.peer(1).node.status().term;
  net.peer(1).node.transferLeader(2);
  net.settle();
  t.is(net.leader(), 2);
  t.is(net.peer(2).node.status().term, term + 1, 'a transfer campaign skips pre-vote');
  t.true(net.sent.some((m) => m.type === 'timeoutNow' && m.from === 1 && m.to === 2));
  for (const id of [1, 3]) t.like(net.peer(id).node.status(), { role: 'follower', leader: 2 });
});

test('a lagging target is caught up first, then told to campaign', (t) => {
  const net = cluster();
  net.isolate(3);
  for (const s of ['b', 'c', 'd']) net.propose(1, s);
  net.heal();
  const mark = net.sent.length;
  net.peer(1).node.transferLeader(3);
  net.tick(2);
  t.is(net.leader(), 3);
  const after = net.sent.slice(mark);
  const catchUp = after.findIndex((m) => m.type === 'app' && m.to === 3 && m.entries.length > 0);
  const timeoutNow = after.findIndex((m) => m.type === 'timeoutNow' && m.to === 3);
  t.true(catchUp >= 0 && timeoutNow > catchUp, `catch-up at ${catchUp}, timeoutNow at ${timeoutNow}`);
  t.deepEqual(appliedData(net.peer(3)), ['a', 'b', 'c', 'd']);
});

test('proposals during a transfer are dropped with PROPOSAL_DROPPED', (t) => {
  const net = cluster();
  net.isolate(3);
  net.peer(1).node.transferLeader(3);
  net.settle();
  t.is(net.peer(1).node.status().leadTransferee, 3);
  const error = t.throws<CutoverError>(() => net.peer(1).node.propose(text('x')));
  t.is(error?.code, 'PROPOSAL_DROPPED');
});

test('a transfer that does not finish within an election timeout is abandoned', (t) => {
  const net = cluster();
  net.isolate(3);
  net.peer(1).node.transferLeader(3);
  net.tick(ELECTION_TICKS - 1, [1, 2]);
  t.is(net.peer(1).node.status().leadTransferee, 3, 'still transferring just before the timeout');
  net.tick(1, [1, 2]);
  t.like(net.peer(1).node.status(), { role: 'leader', leadTransferee: 0 });
  net.propose(1, 'b');
  t.deepEqual(appliedData(net.peer(2)), ['a', 'b']);
});

test('a transfer requested on a follower is forwarded to the leader', (t) => {
  const net = cluster();
  net.peer(2).node.transferLeader(3);
  net.settle();
  t.true(net.sent.some((m) => m.type === 'transferLeader' && m.from === 2 && m.to === 1 && m.index === 3));
  t.is(net.leader(), 3);
});

test('transferring to the leader itself is a no-op; to a non-member or a learner is INVALID_ARGUMENT', (t) => {
  const net = cluster();
  net.peer(1).node.transferLeader(1);
  net.settle();
  t.like(net.peer(1).node.status(), { role: 'leader', leadTransferee: 0 });
  const notMember = t.throws<CutoverError & { field: string }>(() => net.peer(1).node.transferLeader(9));
  t.like(notMember, { code: 'INVALID_ARGUMENT', field: 'target' });
  net.peer(1).node.proposeConfChange({ type: 'addLearner', nodeId: 4 });
  net.settle();
  const learner = t.throws<CutoverError & { field: string }>(() => net.peer(1).node.transferLeader(4));
  t.like(learner, { code: 'INVALID_ARGUMENT', field: 'target' });
});

test('a transfer with no leader known fails with NOT_LEADER', (t) => {
  const net = new TestNetwork([1, 2, 3]);
  const error = t.throws<CutoverError & { leaderId: number }>(() => net.peer(2).node.transferLeader(3));
  t.like(error, { code: 'NOT_LEADER', leaderId: 0 });
});
