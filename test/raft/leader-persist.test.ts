/**
 * The leader writes its log in parallel with its followers (Raft thesis §10.2.1): its appends are
 * early messages (Ready.earlyMessages), sent before its own write, and its own log counts toward
 * the commit quorum only once `advance()` has reported the write durable. Followers still persist
 * before they acknowledge. These tests pin down both halves, and what happens when a leader
 * crashes between sending and persisting.
 */
import test from 'ava';
import { EARLY_MESSAGE_TYPES, MemoryStorage, RawNode, type Message, type Ready } from '../../src/raft/index.ts';
import { SeededRandom } from '../../src/util/random.ts';
import { TestNetwork, appliedData, logTerms, msg, text, type PeerOptions } from './harness.ts';

const PAPER: PeerOptions = { preVote: false, checkQuorum: false };

/** Writes a Ready's durable part as the contract says (step 1), without advancing. */
function write(storage: MemoryStorage, rd: Ready): void {
  storage.save({ entries: rd.entries, ...(rd.hardState ? { hardState: rd.hardState } : {}), ...(rd.snapshot ? { snapshot: rd.snapshot } : {}) });
}

/** A 3-node network with peer 1 leading and nothing pending. */
function steady(size = 3): TestNetwork {
  const net = new TestNetwork(
    Array.from({ length: size }, (_, i) => i + 1),
    PAPER,
  );
  net.elect(1);
  return net;
}

/** The leader proposes `data` and hands out the Ready that carries it; nothing is written yet. */
function proposeUnwritten(net: TestNetwork, data: string): { index: number; rd: Ready } {
  const leader = net.peer(1).node;
  const { index } = leader.propose(text(data));
  const rd = leader.ready();
  return { index, rd };
}

/** Delivers `messages` addressed to `to`, lets every peer handle its Readies, and returns what `to` sent back to 1. */
function roundTrip(net: TestNetwork, messages: readonly Message[], to: number): Message[] {
  for (const m of messages) if (m.to === to) net.deliver(m);
  return net.take(to).filter((m) => m.to === 1);
}

test("a leader's appends are early messages; a follower's acknowledgement waits for its write", (t) => {
  const net = steady();
  const { index, rd } = proposeUnwritten(net, 'x');
  t.deepEqual(rd.entries.map((e) => e.index), [index]);
  const apps = rd.earlyMessages.filter((m) => m.type === 'app');
  t.deepEqual(apps.map((m) => m.to).sort(), [2, 3], 'one append per follower goes before the write');
  for (const m of apps) t.deepEqual(m.entries.map((e) => e.index), [index]);
  t.false(rd.messages.some((m) => m.type === 'app'));

  const follower = net.peer(2).node;
  const app = apps.find((m) => m.to === 2)!;
  follower.step(app);
  const frd = follower.ready();
  t.deepEqual(frd.entries.map((e) => e.index), [index]);
  t.deepEqual(frd.earlyMessages, [], 'nothing of the follower leaves before its write');
  t.like(frd.messages[0], { type: 'appResp', to: 1, index, reject: false });
});

test('the leader does not count an entry toward the commit before advance() reports it durable', (t) => {
  const net = steady();
  const leader = net.peer(1).node;
  const commitBefore = leader.status().commit;
  const { index, rd } = proposeUnwritten(net, 'x');
  // Follower 2 persists and acknowledges while the leader's own write is still in flight.
  const acks = roundTrip(net, rd.earlyMessages, 2);
  t.true(acks.some((m) => m.type === 'appResp' && m.index === index && !m.reject));
  for (const m of acks) leader.step(m);
  t.is(leader.status().commit, commitBefore, 'one durable copy of three is no quorum: the leader\'s unwritten copy does not count');
  t.is(leader.status().progress.find((p) => p.id === 1)?.match, index - 1, 'the leader\'s own match stops at what it has persisted');

  write(net.peer(1).storage, rd);
  leader.advance();
  t.is(leader.status().progress.find((p) => p.id === 1)?.match, index);
  t.is(leader.status().commit, index, 'durable on the leader and on follower 2: committed');
  // The commit goes out in the next Ready, and the leader applies the entry from it.
  const next = leader.ready();
  t.deepEqual(next.committedEntries.map((e) => e.index), [index]);
  t.true(next.earlyMessages.some((m) => m.type === 'app' && m.commit === index), 'the new commit index is announced');
  leader.advance();
});

test('two followers\' durable copies commit an entry before the leader\'s own write completes', (t) => {
  const net = steady();
  const leader = net.peer(1).node;
  const { index, rd } = proposeUnwritten(net, 'x');
  for (const to of [2, 3]) for (const m of roundTrip(net, rd.earlyMessages, to)) leader.step(m);
  t.is(leader.status().commit, index, 'a majority (2 of 3) persisted it: the leader\'s fsync is off the critical path');
  t.is(leader.status().progress.find((p) => p.id === 1)?.match, index - 1);
  // The leader still applies it only from a Ready handed out after its write.
  t.false(leader.hasReady());
  write(net.peer(1).storage, rd);
  leader.advance();
  t.deepEqual(leader.ready().committedEntries.map((e) => e.index), [index]);
  leader.advance();
});

test('a leader that crashes after sending but before persisting: an entry only one follower holds is never committed, and a new leader may replace it', (t) => {
  const net = steady();
  const leader = net.peer(1).node;
  const commitBefore = leader.status().commit;
  const { index, rd } = proposeUnwritten(net, 'x');
  // The append reaches follower 2 only; 2 persists and acknowledges.
  for (const m of roundTrip(net, rd.earlyMessages, 2)) leader.step(m);
  t.is(net.peer(2).storage.lastIndex(), index, 'follower 2 holds the entry durably');
  t.is(leader.status().commit, commitBefore, 'not committed on the strength of the leader\'s unwritten copy');
  t.false(leader.hasReady(), 'and nothing more leaves the leader before its write completes');

  // The leader crashes before its write: it restarts without the entry.
  const restarted = net.restart(1).node;
  t.is(net.peer(1).storage.lastIndex(), index - 1);
  t.is(restarted.status().commit, commitBefore);

  // Peer 3 (which never saw the entry) wins with the restarted peer 1's vote and overwrites it.
  net.elect(3);
  net.propose(3, 'y');
  net.settle();
  for (const id of [1, 2, 3]) {
    t.false(appliedData(net.peer(id)).includes('x'), `peer ${id} never applied x`);
    t.true(appliedData(net.peer(id)).includes('y'), `peer ${id} applied y`);
  }
  t.deepEqual(logTerms(net.peer(2)), logTerms(net.peer(3)), 'follower 2 dropped the uncommitted entry for the new leader\'s');
  t.deepEqual(logTerms(net.peer(1)), logTerms(net.peer(3)));
});

test('a crashed leader whose append reached a majority of followers: the entry is committed and survives', (t) => {
  const net = steady();
  const leader = net.peer(1).node;
  const { index, rd } = proposeUnwritten(net, 'x');
  for (const to of [2, 3]) for (const m of roundTrip(net, rd.earlyMessages, to)) leader.step(m);
  t.is(leader.status().commit, index);
  net.restart(1);
  net.elect(2);
  net.settle();
  for (const id of [1, 2, 3]) t.true(appliedData(net.peer(id)).includes('x'), `peer ${id} applied x`);
});

test('a lone voter commits its entries only after advance(), and its appends to learners wait while its term is not durable', (t) => {
  const storage = MemoryStorage.bootstrap([1], [2]);
  const raw = new RawNode({ id: 1, storage, random: new SeededRandom(1), preVote: false });
  raw.campaign();
  const won = raw.ready();
  t.like(won.softState, { role: 'leader' });
  t.like(won.hardState, { term: 1, vote: 1 });
  t.deepEqual(won.earlyMessages, [], 'the term is not durable yet: nothing leaves early');
  t.true(won.messages.some((m) => m.type === 'app' && m.to === 2), 'the append to the learner waits for the write');
  t.deepEqual(won.committedEntries, []);
  t.is(raw.status().commit, 0);
  write(storage, won);
  raw.advance();
  t.is(raw.status().commit, 1, 'the no-op commits once durable');

  raw.ready(); // the commit of the no-op
  raw.advance();
  raw.step(msg({ type: 'appResp', from: 2, to: 1, term: 1, index: 1 })); // the learner caught up
  raw.propose(text('a'));
  const next = raw.ready();
  t.is(next.hardState, undefined);
  t.true(next.earlyMessages.some((m) => m.type === 'app' && m.to === 2), 'with the term durable, appends go early');
  t.is(raw.status().commit, 1);
  write(storage, next);
  raw.advance();
  t.is(raw.status().commit, 2);
});

test('a node elected while its last Ready is still being written counts those entries only after advance()', (t) => {
  const storage = MemoryStorage.bootstrap([1, 2, 3]);
  const raw = new RawNode({ id: 1, storage, random: new SeededRandom(1), preVote: false, checkQuorum: false });
  raw.step(msg({ type: 'app', from: 2, to: 1, term: 1, entries: [1, 2, 3].map((index) => ({ term: 1, index, type: 'normal' as const, data: text(`e${index}`) })) }));
  const rd = raw.ready();
  // The write is in flight; the RawNode API still lets the driver campaign and step.
  raw.campaign();
  raw.step(msg({ type: 'voteResp', from: 2, to: 1, term: 2 }));
  t.is(raw.status().role, 'leader');
  t.is(raw.status().progress.find((p) => p.id === 1)?.match, 0, 'entries 1-3 are not durable yet');
  write(storage, rd);
  raw.advance();
  t.is(raw.status().progress.find((p) => p.id === 1)?.match, 3);
  // The no-op (index 4) is not durable either: follower 2's ack alone commits nothing.
  raw.step(msg({ type: 'appResp', from: 2, to: 1, term: 2, index: 4 }));
  t.is(raw.status().commit, 0);
});

test('every early message is of a type that vouches for nothing unwritten', (t) => {
  const early = new Set(['app', 'heartbeat', 'snap', 'timeoutNow', 'readIndexResp', 'prop', 'readIndex', 'transferLeader']);
  t.deepEqual([...EARLY_MESSAGE_TYPES].sort(), [...early].sort());
  const net = new TestNetwork([1, 2, 3], { preVote: true, checkQuorum: true });
  const seen = new Set<string>();
  const late = new Set<string>();
  // Watch every Ready of a busy run with elections, proposals, forwarded proposals and reads.
  net.onReady = (_id, rd) => {
    for (const m of rd.earlyMessages) seen.add(m.type);
    for (const m of rd.messages) late.add(m.type);
  };
  net.elect(1);
  net.propose(1, 'a');
  net.peer(2).node.proposeOrForward(text('b'));
  net.peer(3).node.readIndex('r');
  net.settle();
  net.tick(3);
  for (const type of seen) t.true(early.has(type), `${type} left early`);
  for (const type of ['vote', 'voteResp', 'appResp', 'heartbeatResp']) t.false(seen.has(type), `${type} never leaves early`);
  t.true(seen.has('app') && seen.has('prop') && seen.has('readIndex'));
  t.true(late.has('appResp') && late.has('voteResp'));
});
