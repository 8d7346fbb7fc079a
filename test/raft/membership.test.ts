/**
 * Membership changes through the log, one at a time (Ongaro's thesis §4.1 and §4.2.1), with
 * learners that catch up before they become voters, and a removed leader that steps down.
 */
import test from 'ava';
import { MemoryStorage, type ConfChange } from '../../src/raft/index.ts';
import type { CutoverError } from '../../src/util/errors.ts';
import { TestNetwork, appliedData, logTerms } from './harness.ts';

const ELECTION_TICKS = 10;

function cluster(options = {}): TestNetwork {
  const net = new TestNetwork([1, 2, 3], { checkQuorum: true, electionTicks: ELECTION_TICKS, ...options });
  net.elect(1);
  net.propose(1, 'a');
  return net;
}

/** Proposes `change` on the leader and lets it commit and apply everywhere. */
function change(net: TestNetwork, c: ConfChange): void {
  net.peer(net.leader()).node.proposeConfChange(c);
  net.settle();
  net.tick(2);
}

/** Starts peer `id` from the membership it joins and adds it as a learner. */
function addLearner(net: TestNetwork, id: number): void {
  net.addPeer(id, MemoryStorage.bootstrap(net.peer(net.leader()).node.status().confState.voters));
  change(net, { type: 'addLearner', nodeId: id });
}

test('an added learner receives the log and applies it, and every member sees it as a learner', (t) => {
  const net = cluster();
  addLearner(net, 4);
  net.propose(1, 'b');
  t.deepEqual(appliedData(net.peer(4)), ['a', 'b']);
  t.deepEqual(logTerms(net.peer(4)), logTerms(net.peer(1)));
  for (const peer of net.peers.values()) t.deepEqual(peer.node.status().confState, { voters: [1, 2, 3], learners: [4] }, `peer ${peer.id}`);
});

test('a learner does not count towards the commit quorum', (t) => {
  const net = cluster();
  addLearner(net, 4);
  net.isolate(2, 3);
  const index = net.propose(1, 'b');
  const status = net.peer(1).node.status();
  t.is(status.progress.find((p) => p.id === 4)?.match, index, 'the learner has the entry');
  t.true(status.commit < index, 'but leader + learner are not a quorum of three voters');
});

test('a learner never campaigns and is never asked for a vote', (t) => {
  const net = cluster();
  addLearner(net, 4);
  const mark = net.sent.length;
  net.isolate(1);
  net.tick(5 * ELECTION_TICKS, [2, 3, 4]);
  t.not(net.leader(), 0);
  t.is(net.peer(4).node.status().role, 'follower');
  const votes = net.sent.slice(mark).filter((m) => m.type === 'vote' || m.type === 'preVote');
  t.true(votes.length > 0);
  t.false(votes.some((m) => m.to === 4 || m.from === 4));
});

test('a learner is promoted only once caught up: PROPOSAL_DROPPED while it lags beyond learnerPromotionLagMax', (t) => {
  const net = cluster({ learnerPromotionLagMax: 3 });
  addLearner(net, 4);
  net.isolate(4);
  for (const s of ['b', 'c', 'd', 'e']) net.propose(1, s);
  const error = t.throws<CutoverError>(() => net.peer(1).node.proposeConfChange({ type: 'addNode', nodeId: 4 }));
  t.is(error?.code, 'PROPOSAL_DROPPED');
  net.heal();
  net.tick(2);
  change(net, { type: 'addNode', nodeId: 4 });
  for (const peer of net.peers.values()) t.deepEqual(peer.node.status().confState, { voters: [1, 2, 3, 4], learners: [] }, `peer ${peer.id}`);
  // Now a voter: with two of four voters cut off, nothing commits.
  net.isolate(3, 4);
  const index = net.propose(1, 'f');
  t.true(net.peer(1).node.status().commit < index);
});

test('a removed follower no longer counts, and the leader stops sending to it', (t) => {
  const net = cluster();
  change(net, { type: 'removeNode', nodeId: 3 });
  for (const id of [1, 2]) t.deepEqual(net.peer(id).node.status().confState, { voters: [1, 2], learners: [] });
  const mark = net.sent.length;
  net.isolate(3);
  net.propose(1, 'b');
  net.tick(3);
  t.deepEqual(appliedData(net.peer(2)), ['a', 'b'], 'committed by 1 and 2 alone');
  t.false(net.sent.slice(mark).some((m) => m.to === 3));
});

test('a removed leader steps down once the change is applied, and the others elect a leader', (t) => {
  const net = cluster();
  net.peer(1).node.proposeConfChange({ type: 'removeNode', nodeId: 1 });
  net.settle();
  t.like(net.peer(1).node.status(), { role: 'follower', confState: { voters: [2, 3], learners: [] } });
  const mark = net.sent.length;
  net.tick(4 * ELECTION_TICKS);
  const leader = net.leader();
  t.true(leader === 2 || leader === 3, `leader ${leader}`);
  t.false(net.sent.slice(mark).some((m) => m.from === 1 && (m.type === 'vote' || m.type === 'preVote')), 'the removed node never campaigns');
  net.propose(leader, 'b');
  t.deepEqual(appliedData(net.peer(leader === 2 ? 3 : 2)), ['a', 'b']);
});

test('only one membership change may be pending: a second is PROPOSAL_DROPPED until the first is applied', (t) => {
  const net = cluster();
  net.dropIf = (m) => m.type === 'app';
  net.peer(1).node.proposeConfChange({ type: 'addLearner', nodeId: 4 });
  const error = t.throws<CutoverError>(() => net.peer(1).node.proposeConfChange({ type: 'addLearner', nodeId: 5 }));
  t.is(error?.code, 'PROPOSAL_DROPPED');
  net.heal();
  net.tick(2);
  t.deepEqual(net.peer(1).node.status().confState.learners, [4]);
  t.notThrows(() => net.peer(1).node.proposeConfChange({ type: 'addLearner', nodeId: 5 }));
});

test('a new leader accepts no membership change before its earlier entries are applied', (t) => {
  // An earlier leader's entries (maybe a membership change) that this leader has not applied yet.
  const net = TestNetwork.withLogs({ 1: [1, 1], 2: [1, 1], 3: [1, 1] });
  net.dropIf = (m) => m.type === 'appResp';
  net.elect(1);
  const error = t.throws<CutoverError>(() => net.peer(1).node.proposeConfChange({ type: 'addLearner', nodeId: 4 }));
  t.is(error?.code, 'PROPOSAL_DROPPED');
});

test('invalid membership changes are refused with MEMBER_EXISTS, MEMBER_NOT_FOUND, LAST_VOTER and NOT_LEADER', (t) => {
  const net = cluster();
  const codeOf = (f: () => unknown): string | undefined => t.throws<CutoverError>(f)?.code;
  t.is(codeOf(() => net.peer(1).node.proposeConfChange({ type: 'addNode', nodeId: 2 })), 'MEMBER_EXISTS');
  t.is(codeOf(() => net.peer(1).node.proposeConfChange({ type: 'addLearner', nodeId: 2 })), 'MEMBER_EXISTS');
  t.is(codeOf(() => net.peer(1).node.proposeConfChange({ type: 'removeNode', nodeId: 9 })), 'MEMBER_NOT_FOUND');
  t.is(codeOf(() => net.peer(2).node.proposeConfChange({ type: 'addLearner', nodeId: 4 })), 'NOT_LEADER');
  const single = new TestNetwork([1]);
  single.elect(1);
  t.is(codeOf(() => single.peer(1).node.proposeConfChange({ type: 'removeNode', nodeId: 1 })), 'LAST_VOTER');
});

test('a member started without any membership is refused at start-up (it could not know the voters)', (t) => {
  const net = cluster();
  const error = t.throws<CutoverError & { field: string }>(() => net.addPeer(4, new MemoryStorage()));
  t.like(error, { code: 'INVALID_ARGUMENT', field: 'storage' });
});

test('a peer restarted after membership changes rebuilds the membership from its log', (t) => {
  const net = cluster();
  addLearner(net, 4);
  change(net, { type: 'addNode', nodeId: 4 });
  change(net, { type: 'removeNode', nodeId: 2 });
  const restarted = net.restart(3);
  net.tick(2);
  t.deepEqual(restarted.node.status().confState, { voters: [1, 3, 4], learners: [] });
});
