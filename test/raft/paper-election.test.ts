/**
 * §5.1–5.2 of the Raft paper (extended version): terms and leader election. Each test quotes the
 * sentence it checks. Pre-vote and check-quorum are off here, since the paper's election has
 * neither (they have their own tests in prevote.test.ts and check-quorum.test.ts).
 */
import test from 'ava';
import type { Role } from '../../src/raft/index.ts';
import { TestNetwork, msg, type PeerOptions } from './harness.ts';

const PAPER: PeerOptions = { preVote: false, checkQuorum: false, electionTicks: 10, heartbeatTicks: 1 };
const ELECTION_TICKS = 10;

/** Ticks one node (without delivering anything) until it leaves the follower role. */
function ticksUntilCampaign(net: TestNetwork, id: number): number {
  const node = net.peer(id).node;
  for (let ticks = 1; ticks <= 10 * ELECTION_TICKS; ticks++) {
    node.tick();
    if (node.status().role !== 'follower') return ticks;
  }
  throw new Error(`peer ${id} never campaigned`);
}

test('§5.2 "When servers start up, they begin as followers."', (t) => {
  const net = new TestNetwork([1, 2, 3], PAPER);
  for (const peer of net.peers.values()) {
    const status = peer.node.status();
    t.is(status.role, 'follower');
    t.is(status.term, 0);
    t.is(status.leader, 0);
  }
});

test('§5.1 "If one server\'s current term is smaller than the other\'s, then it updates its current term to the larger value" (follower)', (t) => {
  const net = new TestNetwork([1, 2, 3], PAPER);
  net.peer(1).node.step(msg({ type: 'app', from: 2, to: 1, term: 5 }));
  t.like(net.peer(1).node.status(), { term: 5, role: 'follower', leader: 2 });
  net.peer(1).node.step(msg({ type: 'vote', from: 3, to: 1, term: 7 }));
  t.like(net.peer(1).node.status(), { term: 7, role: 'follower', leader: 0 });
});

test('§5.1 "If a candidate or leader discovers that its term is out of date, it immediately reverts to follower state."', (t) => {
  for (const role of ['candidate', 'leader'] as const) {
    const net = new TestNetwork([1, 2, 3], PAPER);
    if (role === 'leader') net.elect(1);
    else {
      net.peer(1).node.campaign();
      net.take(1);
    }
    t.is(net.peer(1).node.status().role, role);
    const term = net.peer(1).node.status().term;
    net.peer(1).node.step(msg({ type: 'heartbeat', from: 2, to: 1, term: term + 1 }));
    t.like(net.peer(1).node.status(), { role: 'follower', term: term + 1, leader: 2 }, role);
  }
});

test('§5.1 "If a server receives a request with a stale term number, it rejects the request."', (t) => {
  const net = new TestNetwork([1, 2, 3], PAPER);
  net.peer(1).node.step(msg({ type: 'heartbeat', from: 2, to: 1, term: 3 }));
  net.take(1);
  net.peer(1).node.step(msg({ type: 'vote', from: 3, to: 1, term: 2, index: 10, logTerm: 2 }));
  net.peer(1).node.step(msg({ type: 'app', from: 3, to: 1, term: 2, entries: [{ term: 2, index: 1, type: 'normal', data: new Uint8Array(1) }] }));
  t.like(net.peer(1).node.status(), { term: 3, vote: 0, leader: 2, lastIndex: 0 });
  t.deepEqual(net.take(1), [], 'no vote granted and nothing appended');
});

test('§5.2 "Leaders send periodic heartbeats (AppendEntries RPCs that carry no log entries) to all followers in order to maintain their authority."', (t) => {
  const net = new TestNetwork([1, 2, 3], { ...PAPER, heartbeatTicks: 2 });
  net.elect(1);
  net.peer(1).node.tick();
  t.deepEqual(net.take(1), [], 'nothing before heartbeatTicks');
  net.peer(1).node.tick();
  const beats = net.take(1);
  t.deepEqual(beats.map((m) => [m.type, m.to, m.entries.length]).sort(), [
    ['heartbeat', 2, 0],
    ['heartbeat', 3, 0],
  ]);
});

test('§5.2 "A server remains in follower state as long as it receives valid RPCs from a leader or candidate."', (t) => {
  const net = new TestNetwork([1, 2, 3], PAPER);
  net.elect(1);
  const term = net.peer(1).node.status().term;
  net.tick(10 * ELECTION_TICKS);
  for (const id of [2, 3]) t.like(net.peer(id).node.status(), { role: 'follower', term, leader: 1 });
});

test('§5.2 "If a follower receives no communication over a period of time called the election timeout, then it ... begins an election"; "a follower increments its current term and transitions to candidate state. It then votes for itself and issues RequestVote RPCs in parallel to each of the other servers"', (t) => {
  const net = TestNetwork.withLogs({ 1: [1, 1, 2], 2: [1], 3: [1] }, PAPER);
  ticksUntilCampaign(net, 1);
  t.like(net.peer(1).node.status(), { role: 'candidate', term: 3, vote: 1 });
  const votes = net.take(1);
  t.deepEqual(votes.map((m) => [m.type, m.to, m.term, m.index, m.logTerm]).sort(), [
    ['vote', 2, 3, 3, 2],
    ['vote', 3, 3, 3, 2],
  ]);
});

test('§5.2 "A candidate wins an election if it receives votes from a majority of the servers in the full cluster for the same term."', (t) => {
  const cases: { size: number; grants: number[]; rejects: number[]; role: Role }[] = [
    { size: 1, grants: [], rejects: [], role: 'leader' },
    { size: 3, grants: [2], rejects: [], role: 'leader' },
    { size: 3, grants: [2, 3], rejects: [], role: 'leader' },
    { size: 3, grants: [], rejects: [], role: 'candidate' },
    { size: 3, grants: [], rejects: [2, 3], role: 'follower' },
    { size: 5, grants: [2, 3], rejects: [], role: 'leader' },
    { size: 5, grants: [2], rejects: [3], role: 'candidate' },
    { size: 5, grants: [2], rejects: [3, 4, 5], role: 'follower' },
  ];
  for (const c of cases) {
    const ids = Array.from({ length: c.size }, (_, i) => i + 1);
    const net = new TestNetwork(ids, PAPER);
    const node = net.peer(1).node;
    node.campaign();
    net.take(1);
    for (const from of c.grants) node.step(msg({ type: 'voteResp', from, to: 1, term: 1 }));
    for (const from of c.rejects) node.step(msg({ type: 'voteResp', from, to: 1, term: 1, reject: true }));
    t.is(node.status().role, c.role, JSON.stringify(c));
  }
});

test('§5.2 "Each server will vote for at most one candidate in a given term, on a first-come-first-served basis"', (t) => {
  const cases: { voted: number; from: number; granted: boolean }[] = [
    { voted: 0, from: 2, granted: true },
    { voted: 0, from: 3, granted: true },
    { voted: 2, from: 2, granted: true },
    { voted: 3, from: 3, granted: true },
    { voted: 2, from: 3, granted: false },
    { voted: 3, from: 2, granted: false },
  ];
  for (const c of cases) {
    const net = new TestNetwork([1, 2, 3], PAPER);
    const node = net.peer(1).node;
    if (c.voted !== 0) node.step(msg({ type: 'vote', from: c.voted, to: 1, term: 1 }));
    net.take(1);
    node.step(msg({ type: 'vote', from: c.from, to: 1, term: 1 }));
    const [resp] = net.take(1);
    t.like(resp, { type: 'voteResp', to: c.from, term: 1, reject: !c.granted }, JSON.stringify(c));
    t.is(node.status().vote, c.voted === 0 ? c.from : c.voted);
  }
});

test('§5.2 "Once a candidate wins an election, it becomes leader. It then sends heartbeat messages to all of the other servers to establish its authority"', (t) => {
  const net = new TestNetwork([1, 2, 3], PAPER);
  net.peer(1).node.campaign();
  net.take(1);
  net.peer(1).node.step(msg({ type: 'voteResp', from: 2, to: 1, term: 1 }));
  t.is(net.peer(1).node.status().role, 'leader');
  const sent = net.take(1);
  t.deepEqual(sent.map((m) => [m.type, m.to, m.term]).sort(), [
    ['app', 2, 1],
    ['app', 3, 1],
  ]);
  // Our AppendEntries carry the leader's no-op entry of its new term (§8).
  for (const m of sent) t.deepEqual(m.entries.map((e) => [e.index, e.term, e.data.length]), [[1, 1, 0]]);
});

test('§5.2 "If the leader\'s term (included in its RPC) is at least as large as the candidate\'s current term, then the candidate recognizes the leader as legitimate and returns to follower state."', (t) => {
  for (const termDelta of [0, 1]) {
    const net = new TestNetwork([1, 2, 3], PAPER);
    net.peer(1).node.campaign();
    net.take(1);
    net.peer(1).node.step(msg({ type: 'app', from: 2, to: 1, term: 1 + termDelta }));
    t.like(net.peer(1).node.status(), { role: 'follower', leader: 2, term: 1 + termDelta });
  }
});

test('§5.2 "If the term in the RPC is smaller than the candidate\'s current term, then the candidate rejects the RPC and continues in candidate state."', (t) => {
  const net = new TestNetwork([1, 2, 3], PAPER);
  net.peer(1).node.campaign();
  net.peer(1).node.campaign();
  net.take(1);
  t.like(net.peer(1).node.status(), { role: 'candidate', term: 2 });
  net.peer(1).node.step(msg({ type: 'app', from: 2, to: 1, term: 1, entries: [{ term: 1, index: 1, type: 'normal', data: new Uint8Array(0) }] }));
  t.like(net.peer(1).node.status(), { role: 'candidate', term: 2, leader: 0, lastIndex: 0 });
});

test('§5.2 "each candidate will time out and start a new election by incrementing its term and initiating another round of RequestVote RPCs"', (t) => {
  const net = new TestNetwork([1, 2, 3], PAPER);
  ticksUntilCampaign(net, 1);
  t.like(net.peer(1).node.status(), { role: 'candidate', term: 1 });
  net.take(1);
  const node = net.peer(1).node;
  for (let i = 0; i < 2 * ELECTION_TICKS && node.status().term === 1; i++) node.tick();
  t.like(node.status(), { role: 'candidate', term: 2, vote: 1 });
  t.deepEqual(net.take(1).map((m) => [m.type, m.to, m.term]).sort(), [
    ['vote', 2, 2],
    ['vote', 3, 2],
  ]);
});

test('§5.2 "Raft uses randomized election timeouts ... chosen randomly from a fixed interval" ([electionTicks, 2·electionTicks))', (t) => {
  const seen = new Set<number>();
  for (let seed = 1; seed <= 60; seed++) {
    const ticks = ticksUntilCampaign(new TestNetwork([1, 2, 3], PAPER, seed), 1);
    t.true(ticks >= ELECTION_TICKS && ticks < 2 * ELECTION_TICKS, `seed ${seed}: ${ticks} ticks`);
    seen.add(ticks);
  }
  t.true(seen.size >= ELECTION_TICKS / 2, `only ${seen.size} distinct timeouts`);
});

test('§5.2 "in most cases only a single server will time out"', (t) => {
  const runs = 200;
  let conflicts = 0;
  for (let seed = 1; seed <= runs; seed++) {
    const net = new TestNetwork([1, 2, 3, 4, 5], PAPER, seed);
    let timedOut = 0;
    for (let tick = 0; timedOut === 0; tick++) {
      for (const peer of net.peers.values()) peer.node.tick();
      timedOut = [...net.peers.values()].filter((p) => p.node.status().role !== 'follower').length;
    }
    if (timedOut > 1) conflicts++;
  }
  // For five uniform draws from ten values the minimum is shared with probability about 0.23.
  t.true(conflicts / runs < 0.3, `${conflicts} of ${runs} runs had simultaneous timeouts`);
});

test('§5.2 a candidate that wins through the network leads, and the others follow it in its term', (t) => {
  const net = new TestNetwork([1, 2, 3, 4, 5], PAPER);
  net.campaign(3);
  t.is(net.leader(), 3);
  for (const peer of net.peers.values()) t.like(peer.node.status(), { term: 1, leader: 3 });
});
