/**
 * ReadIndex (Ongaro's thesis §6.4): a linearizable read is served at the leader's commit index
 * once a heartbeat round confirms it still leads, and only after an entry of its own term has
 * committed.
 */
import test from 'ava';
import { MemoryStorage } from '../../src/raft/index.ts';
import type { NotLeaderError } from '../../src/util/errors.ts';
import { TestNetwork, text } from './harness.ts';

const ELECTION_TICKS = 10;

function cluster(size = 3): TestNetwork {
  const net = new TestNetwork(Array.from({ length: size }, (_, i) => i + 1), { checkQuorum: true, electionTicks: ELECTION_TICKS });
  net.elect(1);
  net.propose(1, 'a');
  net.propose(1, 'b');
  return net;
}

test('the read state\'s index is the leader\'s commit index when the read was asked', (t) => {
  const net = cluster();
  const commit = net.peer(1).node.status().commit;
  net.peer(1).node.readIndex('r1');
  // A proposal that commits before the quorum answers does not move this read's index.
  net.peer(1).node.propose(text('c'));
  net.settle();
  t.deepEqual(net.peer(1).readStates, [{ index: commit, context: 'r1' }]);
});

test('the read waits for a heartbeat round: no answer before a quorum acknowledged it', (t) => {
  const net = cluster(5);
  net.dropIf = (m) => m.type === 'heartbeatResp' && m.from !== 2;
  net.peer(1).node.readIndex('r');
  net.settle();
  t.deepEqual(net.peer(1).readStates, [], 'one follower of four is not a quorum');
  net.heal();
  net.peer(1).node.readIndex('r2');
  net.settle();
  t.deepEqual(net.peer(1).readStates.map((r) => r.context), ['r', 'r2'], 'a later confirmed round answers earlier reads too');
});

test('after an election the leader answers only once an entry of its term has committed', (t) => {
  const net = new TestNetwork([1, 2, 3], { checkQuorum: true, electionTicks: ELECTION_TICKS });
  // The new leader's no-op cannot commit while every append response is lost.
  net.dropIf = (m) => m.type === 'appResp';
  net.elect(1);
  net.peer(1).node.readIndex('r');
  net.tick(2);
  t.deepEqual(net.peer(1).readStates, []);
  net.heal();
  net.tick(2);
  const { commit, term } = net.peer(1).node.status();
  t.is(net.peer(1).storage.term(commit), term);
  t.deepEqual(net.peer(1).readStates, [{ index: commit, context: 'r' }]);
});

test('an isolated leader never answers a read, even after it steps down and the partition heals', (t) => {
  const net = cluster();
  net.isolate(1);
  net.peer(1).node.readIndex('r');
  net.tick(3 * ELECTION_TICKS);
  net.heal();
  net.tick(3 * ELECTION_TICKS);
  t.deepEqual(net.peer(1).readStates, []);
});

test('a read asked on a follower is forwarded to the leader and answered to the follower', (t) => {
  const net = cluster();
  const commit = net.peer(1).node.status().commit;
  net.peer(2).node.readIndex('f');
  net.settle();
  t.deepEqual(net.peer(2).readStates, [{ index: commit, context: 'f' }]);
  t.deepEqual(net.peer(1).readStates, []);
  t.true(net.sent.some((m) => m.type === 'readIndex' && m.from === 2 && m.to === 1));
});

test('a single-voter cluster answers a read at once', (t) => {
  const net = new TestNetwork([1]);
  net.elect(1);
  net.propose(1, 'a');
  net.peer(1).node.readIndex('r');
  net.settle();
  t.deepEqual(net.peer(1).readStates, [{ index: 2, context: 'r' }]);
});

test('a read with no leader known fails with NOT_LEADER', (t) => {
  const net = new TestNetwork([1, 2, 3]);
  const error = t.throws<NotLeaderError>(() => net.peer(1).node.readIndex('r'));
  t.is(error?.code, 'NOT_LEADER');
  t.is(error?.leaderId, 0);
});

test('learners\' acknowledgements do not count towards the read quorum', (t) => {
  const net = new TestNetwork([1, 2, 3], { checkQuorum: true, electionTicks: ELECTION_TICKS });
  net.elect(1);
  net.peer(1).node.proposeConfChange({ type: 'addLearner', nodeId: 4 });
  net.settle();
  // The new member starts from the membership it joins (see membership.test.ts).
  net.addPeer(4, MemoryStorage.bootstrap([1, 2, 3]));
  net.tick(2);
  // Only the learner answers heartbeats now: one voter (the leader) plus a learner is not a quorum.
  net.dropIf = (m) => m.type === 'heartbeatResp' && m.from !== 4;
  net.peer(1).node.readIndex('r');
  net.settle();
  t.true(net.sent.some((m) => m.type === 'heartbeatResp' && m.from === 4 && m.context === 'r'));
  t.deepEqual(net.peer(1).readStates, []);
});
