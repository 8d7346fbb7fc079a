/**
 * Pre-vote (Ongaro's thesis §9.6): a node first asks whether it could win, without raising its
 * term, so a node that was partitioned away cannot disrupt a working leader when it returns.
 */
import test from 'ava';
import { TestNetwork, appliedData, msg } from './harness.ts';

test('a pre-candidate changes neither its term nor its vote, and asks for term+1', (t) => {
  const net = TestNetwork.withLogs({ 1: [1, 1], 2: [], 3: [] }, { preVote: true });
  net.peer(1).node.campaign();
  t.like(net.peer(1).node.status(), { role: 'preCandidate', term: 1, vote: 0 });
  const sent = net.take(1);
  t.deepEqual(sent.map((m) => [m.type, m.to, m.term, m.index, m.logTerm]).sort(), [
    ['preVote', 2, 2, 2, 1],
    ['preVote', 3, 2, 2, 1],
  ]);
});

test('granting a pre-vote changes neither the voter\'s term nor its vote', (t) => {
  const net = new TestNetwork([1, 2, 3], { preVote: true });
  net.peer(1).node.step(msg({ type: 'preVote', from: 2, to: 1, term: 1 }));
  t.like(net.take(1)[0], { type: 'preVoteResp', to: 2, term: 1, reject: false });
  t.like(net.peer(1).node.status(), { term: 0, vote: 0 });
});

test('a pre-vote is refused when the candidate\'s log is not up to date (§5.4.1 applies)', (t) => {
  const net = TestNetwork.withLogs({ 1: [1, 1], 2: [1], 3: [] }, { preVote: true });
  net.peer(1).node.step(msg({ type: 'preVote', from: 2, to: 1, term: 2, index: 1, logTerm: 1 }));
  t.like(net.take(1)[0], { type: 'preVoteResp', to: 2, reject: true });
});

test('a majority of pre-votes starts a real election in term+1', (t) => {
  const net = new TestNetwork([1, 2, 3], { preVote: true });
  net.peer(1).node.campaign();
  net.take(1);
  net.peer(1).node.step(msg({ type: 'preVoteResp', from: 2, to: 1, term: 1 }));
  t.like(net.peer(1).node.status(), { role: 'candidate', term: 1, vote: 1 });
  t.deepEqual(net.take(1).map((m) => [m.type, m.to, m.term]).sort(), [
    ['vote', 2, 1],
    ['vote', 3, 1],
  ]);
});

test('a pre-candidate that is refused by a majority goes back to follower in its own term', (t) => {
  const net = new TestNetwork([1, 2, 3], { preVote: true });
  net.peer(1).node.step(msg({ type: 'heartbeat', from: 2, to: 1, term: 3 }));
  net.peer(1).node.campaign();
  net.take(1);
  for (const from of [2, 3]) net.peer(1).node.step(msg({ type: 'preVoteResp', from, to: 1, term: 3, reject: true }));
  t.like(net.peer(1).node.status(), { role: 'follower', term: 3 });
});

test('a partitioned node that rejoins does not raise the term or disrupt the leader', (t) => {
  const net = new TestNetwork([1, 2, 3], { preVote: true, checkQuorum: true });
  net.elect(1);
  const term = net.peer(1).node.status().term;
  net.isolate(3);
  net.tick(50);
  t.like(net.peer(3).node.status(), { term, role: 'preCandidate' });
  net.propose(1, 'while-away');
  net.heal();
  net.tick(20);
  for (const peer of net.peers.values()) t.like(peer.node.status(), { term, leader: 1 }, `peer ${peer.id}`);
  t.deepEqual(appliedData(net.peer(3)), ['while-away']);
});

test('without pre-vote the same rejoining node does disrupt the leader (the check can fail)', (t) => {
  const net = new TestNetwork([1, 2, 3], { preVote: false, checkQuorum: false });
  net.elect(1);
  const term = net.peer(1).node.status().term;
  net.isolate(3);
  net.tick(50);
  t.true(net.peer(3).node.status().term > term + 1, 'the isolated node kept raising its term');
  net.propose(1, 'while-away');
  net.heal();
  net.tick(60);
  t.true(net.peer(1).node.status().term > term, 'the cluster had to move to a higher term');
  t.true([...net.leaders.keys()].some((k) => k > term), 'a new election took place');
});
