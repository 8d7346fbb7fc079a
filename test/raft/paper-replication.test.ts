/**
 * §5.3 and §5.5 of the Raft paper (extended version): log replication, and follower crashes.
 * Each test quotes the sentence it checks.
 */
import test from 'ava';
import type { CutoverError, NotLeaderError } from '../../src/util/errors.ts';
import { TestNetwork, appliedData, entries, logTerms, msg, text, type PeerOptions } from './harness.ts';

const PAPER: PeerOptions = { preVote: false, checkQuorum: false };

/** A leader (peer 1) whose followers are in replicate state, with nothing pending. */
function steadyCluster(size: number, options: PeerOptions = PAPER): TestNetwork {
  const net = new TestNetwork(Array.from({ length: size }, (_, i) => i + 1), options);
  net.elect(1);
  return net;
}

test('§5.3 "The leader appends the command to its log as a new entry, then issues AppendEntries RPCs in parallel to each of the other servers to replicate the entry."', (t) => {
  const net = steadyCluster(3);
  const before = net.peer(1).node.status();
  const { index, term } = net.peer(1).node.propose(text('x'));
  t.deepEqual([index, term], [before.lastIndex + 1, before.term]);
  t.is(net.peer(1).node.status().lastIndex, index);
  const sent = net.take(1);
  t.is(net.peer(1).storage.lastIndex(), index, 'the entry was in the Ready that carried the messages');
  t.deepEqual(sent.map((m) => [m.type, m.to, m.index, m.logTerm, m.commit]).sort(), [
    ['app', 2, before.lastIndex, term, before.commit],
    ['app', 3, before.lastIndex, term, before.commit],
  ]);
  for (const m of sent) t.deepEqual(m.entries.map((e) => [e.index, e.term, new TextDecoder().decode(e.data)]), [[index, term, 'x']]);
});

test('§5.3 "A log entry is committed once the leader that created the entry has replicated it on a majority of the servers"', (t) => {
  const cases: { size: number; acks: number[]; committed: boolean }[] = [
    { size: 1, acks: [], committed: true },
    { size: 3, acks: [], committed: false },
    { size: 3, acks: [2], committed: true },
    { size: 3, acks: [2, 3], committed: true },
    { size: 5, acks: [2], committed: false },
    { size: 5, acks: [2, 3], committed: true },
    { size: 5, acks: [2, 3, 4, 5], committed: true },
  ];
  for (const c of cases) {
    const net = steadyCluster(c.size);
    const leader = net.peer(1).node;
    const { index } = leader.propose(text('x'));
    net.take(1);
    for (const from of c.acks) leader.step(msg({ type: 'appResp', from, to: 1, term: 1, index }));
    t.is(leader.status().commit === index, c.committed, JSON.stringify(c));
  }
});

test('§5.3 "The leader keeps track of the highest index it knows to be committed, and it includes that index in future AppendEntries RPCs (including heartbeats)"', (t) => {
  const net = steadyCluster(3);
  const first = net.propose(1, 'a');
  t.is(net.peer(1).node.status().commit, first);
  net.peer(1).node.propose(text('b'));
  for (const m of net.take(1)) {
    t.is(m.commit, first, 'append carries the commit index');
    net.deliver(m);
  }
  net.settle();
  net.peer(1).node.tick();
  const beats = net.take(1).filter((m) => m.type === 'heartbeat');
  t.is(beats.length, 2);
  for (const m of beats) t.is(m.commit, first + 1, 'heartbeat carries the commit index');
});

test('§5.3 "This also commits all preceding entries in the leader\'s log, including entries created by previous leaders."', (t) => {
  const net = TestNetwork.withLogs({ 1: [1, 1, 2], 2: [1, 1, 2], 3: [1] }, PAPER);
  net.elect(1);
  const term = net.peer(1).node.status().term;
  for (const id of [1, 2, 3]) {
    t.deepEqual(net.peer(id).applied.map((e) => [e.index, e.term]), [
      [1, 1],
      [2, 1],
      [3, 2],
      [4, term],
    ], `peer ${id}`);
  }
});

test('§5.3 "Once a follower learns that a log entry is committed, it applies the entry to its local state machine (in log order)."', (t) => {
  const net = new TestNetwork([1, 2, 3], PAPER);
  const follower = net.peer(2).node;
  follower.step(msg({ type: 'app', from: 1, to: 2, term: 1, index: 0, logTerm: 0, entries: entries([1, 1, 1]), commit: 2 }));
  let rd = follower.ready();
  t.deepEqual(rd.committedEntries, [], 'not before they are durable here');
  net.peer(2).storage.save({ entries: rd.entries });
  follower.advance();
  rd = follower.ready();
  t.deepEqual(rd.committedEntries.map((e) => e.index), [1, 2]);
  follower.advance();
  follower.step(msg({ type: 'heartbeat', from: 1, to: 2, term: 1, commit: 3 }));
  rd = follower.ready();
  t.deepEqual(rd.committedEntries.map((e) => e.index), [3]);
  follower.advance();
  t.is(follower.status().applied, 3);
});

test('§5.3 (Figure 2) "If leaderCommit > commitIndex, set commitIndex = min(leaderCommit, index of last new entry)"', (t) => {
  const net = new TestNetwork([1, 2, 3], PAPER);
  const follower = net.peer(2).node;
  follower.step(msg({ type: 'app', from: 1, to: 2, term: 1, index: 0, logTerm: 0, entries: entries([1, 1, 1]) }));
  // The leader has committed 3, but this message only vouches for entries up to index 1.
  follower.step(msg({ type: 'app', from: 1, to: 2, term: 1, index: 0, logTerm: 0, entries: entries([1]), commit: 3 }));
  t.is(follower.status().commit, 1);
});

test('§5.3 "If the follower does not find an entry in its log with the same index and term, then it refuses the new entries."', (t) => {
  const cases: { index: number; logTerm: number; reject: boolean }[] = [
    { index: 0, logTerm: 0, reject: false },
    { index: 1, logTerm: 1, reject: false },
    { index: 2, logTerm: 2, reject: false },
    { index: 1, logTerm: 2, reject: true },
    { index: 2, logTerm: 1, reject: true },
    { index: 3, logTerm: 2, reject: true },
  ];
  for (const c of cases) {
    const net = TestNetwork.withLogs({ 1: [], 2: [1, 2], 3: [] }, PAPER);
    net.peer(2).node.step(msg({ type: 'app', from: 1, to: 2, term: 2, index: c.index, logTerm: c.logTerm, entries: entries([2], c.index + 1) }));
    const [resp] = net.take(2);
    t.like(resp, { type: 'appResp', to: 1, reject: c.reject, index: c.reject ? c.index : c.index + 1 }, JSON.stringify(c));
  }
});

test('§5.3 "conflicting entries in follower logs will be overwritten with entries from the leader\'s log" (Figure 2: "If an existing entry conflicts with a new one ... delete the existing entry and all that follow it")', (t) => {
  const cases: { index: number; logTerm: number; terms: number[]; want: number[] }[] = [
    { index: 2, logTerm: 2, terms: [3], want: [1, 2, 3] },
    { index: 1, logTerm: 1, terms: [3, 4], want: [1, 3, 4] },
    { index: 0, logTerm: 0, terms: [1], want: [1, 2] },
    { index: 0, logTerm: 0, terms: [3], want: [3] },
  ];
  for (const c of cases) {
    const net = TestNetwork.withLogs({ 1: [], 2: [1, 2], 3: [] }, PAPER);
    net.peer(2).node.step(msg({ type: 'app', from: 1, to: 2, term: 4, index: c.index, logTerm: c.logTerm, entries: entries(c.terms, c.index + 1) }));
    net.take(2);
    t.deepEqual(logTerms(net.peer(2)), c.want, JSON.stringify(c));
  }
});

test('§5.3 "the leader handles inconsistencies by forcing the followers\' logs to duplicate its own" (the followers of Figure 7)', (t) => {
  const leaderLog = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6];
  const followers: Record<string, number[]> = {
    a: [1, 1, 1, 4, 4, 5, 5, 6, 6],
    b: [1, 1, 1, 4],
    c: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],
    d: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],
    e: [1, 1, 1, 4, 4, 4, 4],
    f: [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],
  };
  for (const [name, log] of Object.entries(followers)) {
    // Peer 3 holds the leader's log too, so the leader wins even when peer 2's log is newer.
    const net = TestNetwork.withLogs({ 1: leaderLog, 2: log, 3: leaderLog }, PAPER, 7);
    net.elect(1);
    t.deepEqual(logTerms(net.peer(2)), [...leaderLog, 8], `follower (${name})`);
  }
});

test('§5.3 "When a leader first comes to power, it initializes all nextIndex values to the index just after the last one in its log"', (t) => {
  const net = TestNetwork.withLogs({ 1: [1, 1, 2], 2: [1], 3: [1] }, PAPER);
  net.peer(1).node.campaign();
  net.take(1);
  net.peer(1).node.step(msg({ type: 'voteResp', from: 2, to: 1, term: 3 }));
  const appends = net.take(1);
  t.deepEqual(appends.map((m) => [m.to, m.index, m.logTerm]).sort(), [
    [2, 3, 2],
    [3, 3, 2],
  ]);
});

test('§5.3 "If desired, the protocol can be optimized to reduce the number of rejected AppendEntries RPCs ... the follower can include the term of the conflicting entry and the first index it stores for that term."', (t) => {
  const run = (leaderLog: number[], followerLog: number[]): number => {
    const net = TestNetwork.withLogs({ 1: leaderLog, 2: followerLog, 3: leaderLog }, PAPER);
    net.elect(1);
    t.deepEqual(logTerms(net.peer(2)), logTerms(net.peer(1)));
    return net.sent.filter((m) => m.type === 'appResp' && m.from === 2 && m.reject).length;
  };
  const longRun = (term: number, n: number): number[] => Array.from({ length: n }, () => term);
  // A follower with 50 conflicting entries of a stale term: one rejection skips them all.
  t.is(run([1, 1, ...longRun(3, 40)], [1, 1, ...longRun(2, 50)]), 1);
  // A follower 45 entries behind: its hint points straight at its last entry.
  t.is(run([1, ...longRun(2, 50)], [1, 2, 2, 2, 2]), 1);
  // Diverging runs of several terms take one round trip per term at most.
  t.true(run([1, 2, 2, 5, 5, 5, 5], [1, 2, 3, 3, 4, 4, 4, 4, 4]) <= 2);
});

test('§5.3 a proposal on a follower fails with NOT_LEADER and names the leader', (t) => {
  const net = steadyCluster(3);
  const error = t.throws<NotLeaderError>(() => net.peer(2).node.propose(text('x')));
  t.is(error?.code, 'NOT_LEADER');
  t.is(error?.leaderId, 1);
  const candidate = new TestNetwork([1, 2, 3], PAPER);
  candidate.peer(1).node.campaign();
  const noLeader = t.throws<NotLeaderError>(() => candidate.peer(1).node.propose(text('x')));
  t.like(noLeader, { code: 'NOT_LEADER', leaderId: 0 } as Partial<CutoverError>);
});

test('§5.5 "if a follower receives an AppendEntries request that includes log entries already present in its log, it ignores those entries in the new request."', (t) => {
  const net = TestNetwork.withLogs({ 1: [], 2: [1, 1, 1], 3: [] }, PAPER);
  const follower = net.peer(2).node;
  // A delayed duplicate of an old append: it must not truncate the entries after it.
  follower.step(msg({ type: 'app', from: 1, to: 2, term: 1, index: 0, logTerm: 0, entries: entries([1]) }));
  const [resp] = net.take(2);
  t.like(resp, { type: 'appResp', reject: false, index: 1 });
  t.deepEqual(logTerms(net.peer(2)), [1, 1, 1]);
  t.is(follower.status().lastIndex, 3);
});

test('§5.5 "If a follower or candidate crashes ... Raft handles these failures by retrying indefinitely; if the crashed server restarts, then the RPC will complete successfully."', (t) => {
  const net = steadyCluster(3);
  net.isolate(3);
  for (const s of ['a', 'b', 'c']) net.propose(1, s);
  net.tick(5);
  t.deepEqual(appliedData(net.peer(1)), ['a', 'b', 'c']);
  net.restart(3);
  net.heal();
  net.tick(3);
  t.deepEqual(appliedData(net.peer(3)), ['a', 'b', 'c']);
  t.deepEqual(logTerms(net.peer(3)), logTerms(net.peer(1)));
});
