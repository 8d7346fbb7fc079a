/**
 * §5.4 of the Raft paper (extended version): safety. The election restriction, the commit rule of
 * Figure 8, leader completeness, durable votes, and a commit index that never moves backwards.
 * (The network in harness.ts also checks election safety, state-machine safety and commit
 * monotonicity on every Ready of every test.)
 */
import test from 'ava';
import type { Message } from '../../src/raft/index.ts';
import { InvariantViolation, TestNetwork, appliedData, logTerms, msg, storageWithLog, text, type PeerOptions } from './harness.ts';

const PAPER: PeerOptions = { preVote: false, checkQuorum: false };

test('§5.4.1 "the voter denies its vote if its own log is more up-to-date than that of the candidate" ("If the logs have last entries with different terms, then the log with the later term is more up-to-date. If the logs end with the same term, then whichever log is longer is more up-to-date.")', (t) => {
  const cases: { voterLog: number[]; index: number; logTerm: number; granted: boolean }[] = [
    // Same last term: the longer log wins; equal length is up to date.
    { voterLog: [1], index: 1, logTerm: 1, granted: true },
    { voterLog: [1], index: 2, logTerm: 1, granted: true },
    { voterLog: [1, 1], index: 1, logTerm: 1, granted: false },
    // Different last terms: the later term wins, whatever the lengths.
    { voterLog: [1], index: 1, logTerm: 2, granted: true },
    { voterLog: [1, 1, 1], index: 1, logTerm: 2, granted: true },
    { voterLog: [2], index: 1, logTerm: 1, granted: false },
    { voterLog: [2], index: 5, logTerm: 1, granted: false },
  ];
  for (const c of cases) {
    const net = TestNetwork.withLogs({ 1: c.voterLog, 2: [], 3: [] }, PAPER, 2);
    net.peer(1).node.step(msg({ type: 'vote', from: 2, to: 1, term: 3, index: c.index, logTerm: c.logTerm }));
    const [resp] = net.take(1);
    t.like(resp, { type: 'voteResp', term: 3, reject: !c.granted }, JSON.stringify(c));
  }
});

test('§5.4.2 "Only log entries from the leader\'s current term are committed by counting replicas; once an entry from the current term has been committed in this way, then all prior entries are committed indirectly"', (t) => {
  const net = TestNetwork.withLogs({ 1: [1, 1], 2: [1, 1], 3: [1, 1] }, PAPER);
  const leader = net.peer(1).node;
  leader.campaign();
  leader.step(msg({ type: 'voteResp', from: 2, to: 1, term: 2 }));
  net.take(1);
  t.like(leader.status(), { role: 'leader', term: 2, lastIndex: 3 });
  // A majority holds index 2 (term 1), but it is not of the current term.
  leader.step(msg({ type: 'appResp', from: 2, to: 1, term: 2, index: 2 }));
  t.is(leader.status().commit, 0);
  // Once the no-op of term 2 is on a majority, it commits, and every entry before it with it.
  leader.step(msg({ type: 'appResp', from: 2, to: 1, term: 2, index: 3 }));
  t.is(leader.status().commit, 3);
});

/**
 * Figure 8, built message by message. Terms are one lower than the paper's (our first term is 1)
 * and every new leader appends a no-op, which plays the part of S5's entry in (b).
 * Returns the network after (c): S1 leads term 3 and index 2 (term 1, "X") sits on S1, S3, S4.
 */
function figure8UpToC(options: PeerOptions): TestNetwork {
  // One entry per append, so the leader can get X to a follower without its own no-op.
  const net = new TestNetwork([1, 2, 3, 4, 5], { ...PAPER, maxSizePerMsg: 1, ...options });
  // (a) S1 leads term 1; its no-op (index 1) commits everywhere, X (index 2) only reaches S2.
  net.elect(1);
  net.dropIf = (m) => m.from === 1 && m.type === 'app' && m.to !== 2;
  net.peer(1).node.propose(text('X'));
  net.settle();
  // (b) S1 crashes; S5 wins term 2 with the votes of S3 and S4 (S2 refuses: S5 lacks X). Its
  // no-op at index 2 reaches nobody.
  net.dropIf = (m) => m.from === 1 || m.to === 1 || (m.from === 5 && m.type === 'app');
  net.elect(5);
  // (c) S5 crashes; S1 restarts and wins term 3. It gets X onto S3 and S4, but its own no-op
  // (index 3) lands nowhere (an append carrying it is dropped whenever the receiver would take
  // it), and no follower hears of a commit of index 2.
  net.restart(1);
  const wouldAppendNoop = (m: Message): boolean => m.entries.some((e) => e.index === 3) && net.peer(m.to).node.status().lastIndex >= 2;
  net.dropIf = (m) => m.from === 5 || m.to === 5 || (m.from === 1 && (m.commit >= 2 || wouldAppendNoop(m)));
  net.elect(1);
  return net;
}

test('§5.4.2 Figure 8: "Raft never commits log entries from previous terms by counting replicas"', (t) => {
  const net = figure8UpToC({});
  const s1 = net.peer(1).node.status();
  t.like(s1, { role: 'leader', term: 3, lastIndex: 3 });
  const matches = Object.fromEntries(s1.progress.map((p) => [p.id, p.match]));
  t.true([1, 3, 4].every((id) => (matches[id] ?? 0) >= 2), `X is on a majority: ${JSON.stringify(matches)}`);
  t.is(s1.commit, 1, 'X (term 1) is not committed by counting');
  // (d) S1 crashes; S5 restarts and wins term 4 (its last term, 2, beats their 1). Overwriting
  // X is then legal, because X was never committed.
  net.isolate(1);
  net.restart(5);
  net.elect(5);
  t.is(net.peer(5).node.status().term, 4);
  net.heal();
  net.tick(3);
  for (const peer of net.peers.values()) {
    t.deepEqual(logTerms(peer), [1, 2, 4], `peer ${peer.id}`);
    t.false(appliedData(peer).includes('X'), `peer ${peer.id} never applied X`);
  }
});

test('§5.4.2 Figure 8 with unsafe.commitPreviousTermByCount: X is committed by counting, then overwritten (the check can fail)', (t) => {
  const net = figure8UpToC({ unsafe: { commitPreviousTermByCount: true } });
  t.is(net.peer(1).node.status().commit, 2, 'X (term 1) was committed by counting replicas');
  t.deepEqual(appliedData(net.peer(1)), ['X']);
  const violation = t.throws<InvariantViolation>(() => {
    net.isolate(1);
    net.restart(5);
    net.elect(5);
  });
  t.true(violation instanceof InvariantViolation);
  t.is(violation?.invariant, 'stateMachineSafety');
});

test('§5.4 "the leader for any given term contains all of the entries committed in previous terms (the Leader Completeness Property)"', (t) => {
  const net = new TestNetwork([1, 2, 3], PAPER);
  net.elect(1);
  net.isolate(3);
  net.propose(1, 'a');
  net.propose(1, 'b');
  t.deepEqual(appliedData(net.peer(1)), ['a', 'b']);
  // S1 crashes. S3 missed the committed entries, so S2 refuses it; only S2 can win.
  net.isolate(1);
  net.campaign(3);
  net.campaign(3);
  t.not(net.peer(3).node.status().role, 'leader');
  net.elect(2);
  net.tick(2);
  for (const id of [2, 3]) t.deepEqual(appliedData(net.peer(id)), ['a', 'b'], `peer ${id}`);
});

test('§5 (Figure 2) "Persistent state on all servers (Updated on stable storage before responding to RPCs): currentTerm, votedFor": a restarted server does not vote twice in a term', (t) => {
  const net = new TestNetwork([1, 2, 3], PAPER);
  const voter = net.peer(1).node;
  voter.step(msg({ type: 'vote', from: 2, to: 1, term: 1 }));
  const rd = voter.ready();
  t.like(rd.hardState, { term: 1, vote: 2 });
  t.true(rd.mustSync, 'the vote is synced before the response goes out');
  t.true(rd.messages.some((m) => m.type === 'voteResp' && !m.reject));
  net.peer(1).storage.save({ entries: rd.entries, hardState: rd.hardState! });
  voter.advance();

  const restarted = net.restart(1).node;
  t.like(restarted.status(), { term: 1, vote: 2, role: 'follower' });
  restarted.step(msg({ type: 'vote', from: 3, to: 1, term: 1 }));
  t.like(net.take(1)[0], { type: 'voteResp', to: 3, reject: true });
  // The same candidate may ask again (its first answer may have been lost).
  restarted.step(msg({ type: 'vote', from: 2, to: 1, term: 1 }));
  t.like(net.take(1)[0], { type: 'voteResp', to: 2, reject: false });

  // The check can fail: a server that lost its vote grants a second one in the same term.
  const amnesiac = net.addPeer(1, storageWithLog([1, 2, 3], [], { term: 1, vote: 0, commit: 0 })).node;
  amnesiac.step(msg({ type: 'vote', from: 3, to: 1, term: 1 }));
  t.like(net.take(1)[0], { type: 'voteResp', to: 3, reject: false });
});

test('§5.4 the commit index never moves backwards (stale appends, stale heartbeats, stale snapshots, restarts)', (t) => {
  const net = new TestNetwork([1, 2, 3], PAPER);
  net.elect(1);
  for (const s of ['a', 'b', 'c']) net.propose(1, s);
  const follower = net.peer(2).node;
  t.is(follower.status().commit, 4);
  follower.step(msg({ type: 'heartbeat', from: 1, to: 2, term: 1, commit: 1 }));
  follower.step(msg({ type: 'app', from: 1, to: 2, term: 1, index: 1, logTerm: 1, commit: 2 }));
  const staleSnapshot = { metadata: { index: 2, term: 1, confState: { voters: [1, 2, 3], learners: [] } }, data: new Uint8Array(0) };
  follower.step(msg({ type: 'snap', from: 1, to: 2, term: 1, snapshot: staleSnapshot }));
  t.is(follower.status().commit, 4);
  net.settle();
  t.is(net.restart(2).node.status().commit, 4);
  t.is(net.restart(1).node.status().commit, 4);
});

test('§5.3 (Figure 3) Leader Append-Only: "a leader never overwrites or deletes entries in its log; it only appends new entries"', (t) => {
  const net = new TestNetwork([1, 2, 3], PAPER);
  net.elect(1);
  net.propose(1, 'a');
  net.peer(1).node.propose(text('b'));
  net.take(1);
  const before = logTerms(net.peer(1));
  // A stale leader's append (older term) that conflicts with our log changes nothing.
  net.peer(1).node.step(msg({ type: 'app', from: 2, to: 1, term: 0, index: 1, logTerm: 1, entries: [{ term: 0, index: 2, type: 'normal', data: text('z') }] }));
  net.take(1);
  t.deepEqual(logTerms(net.peer(1)), before);
  t.is(net.peer(1).node.status().lastIndex, 3);
});
