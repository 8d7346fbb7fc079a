/**
 * The RawNode driver contract (types.ts, `Ready`): what a Ready carries, when `mustSync` is set,
 * and that nothing new is handed out between `ready()` and `advance()`.
 */
import test from 'ava';
import { MemoryStorage, RawNode, type Ready } from '../../src/raft/index.ts';
import { AssertionError } from '../../src/util/assert.ts';
import { SeededRandom } from '../../src/util/random.ts';
import { TestNetwork, msg, text } from './harness.ts';

function node(voters = [1, 2, 3]): { raw: RawNode; storage: MemoryStorage } {
  const storage = MemoryStorage.bootstrap(voters);
  return { raw: new RawNode({ id: 1, storage, random: new SeededRandom(1), preVote: false }), storage };
}

/** Persists a Ready as the contract says, then advances. */
function persist(raw: RawNode, storage: MemoryStorage, rd: Ready): void {
  storage.save({ entries: rd.entries, ...(rd.hardState ? { hardState: rd.hardState } : {}), ...(rd.snapshot ? { snapshot: rd.snapshot } : {}) });
  raw.advance();
}

test('a fresh node has nothing ready', (t) => {
  const { raw } = node();
  t.false(raw.hasReady());
});

test('hasReady is false between ready() and advance(), whatever happens meanwhile, and true again after', (t) => {
  const { raw, storage } = node([1]);
  raw.campaign();
  t.true(raw.hasReady());
  const rd = raw.ready();
  t.false(raw.hasReady());
  raw.propose(text('x'));
  raw.tick();
  raw.step(msg({ type: 'heartbeatResp', from: 2, to: 1, term: 1 }));
  t.false(raw.hasReady());
  persist(raw, storage, rd);
  t.true(raw.hasReady());
  const next = raw.ready();
  t.deepEqual(next.entries.map((e) => new TextDecoder().decode(e.data)), ['x'], 'only what was not handed out before');
});

test('ready() called twice without advance() is a programmer error', (t) => {
  const { raw } = node([1]);
  raw.campaign();
  raw.ready();
  t.throws(() => raw.ready(), { instanceOf: AssertionError });
});

test('advance() without ready() is a programmer error', (t) => {
  const { raw } = node();
  t.throws(() => raw.advance(), { instanceOf: AssertionError });
});

test('mustSync is set when the term or vote changes, or entries must be persisted', (t) => {
  const { raw, storage } = node();
  raw.campaign();
  const campaign = raw.ready();
  t.like(campaign.hardState, { term: 1, vote: 1 });
  t.deepEqual(campaign.entries, []);
  t.true(campaign.mustSync, 'term and vote changed');
  persist(raw, storage, campaign);
  raw.step(msg({ type: 'voteResp', from: 2, to: 1, term: 1 }));
  const won = raw.ready();
  t.is(won.entries.length, 1, 'the no-op');
  t.true(won.mustSync);
  persist(raw, storage, won);
  raw.step(msg({ type: 'appResp', from: 2, to: 1, term: 1, index: 1 }));
  const committed = raw.ready();
  t.like(committed.hardState, { term: 1, vote: 1, commit: 1 });
  t.false(committed.mustSync, 'a commit index change alone need not be synced');
  persist(raw, storage, committed);
});

test('a Ready carries softState only when the role or leader changed', (t) => {
  const { raw, storage } = node();
  raw.campaign();
  const campaign = raw.ready();
  t.deepEqual(campaign.softState, { leader: 0, role: 'candidate' });
  persist(raw, storage, campaign);
  raw.step(msg({ type: 'voteResp', from: 2, to: 1, term: 1 }));
  const won = raw.ready();
  t.deepEqual(won.softState, { leader: 1, role: 'leader' });
  persist(raw, storage, won);
  raw.propose(text('x'));
  const proposal = raw.ready();
  t.is(proposal.softState, undefined);
  t.is(proposal.hardState, undefined, 'nor hardState when it did not change');
  persist(raw, storage, proposal);
  raw.step(msg({ type: 'heartbeat', from: 3, to: 1, term: 2 }));
  t.deepEqual(raw.ready().softState, { leader: 3, role: 'follower' });
});

test('committed entries are handed out once, in order, and applied moves on advance()', (t) => {
  const { raw, storage } = node([1]);
  raw.campaign();
  for (const s of ['a', 'b']) raw.propose(text(s));
  const written = raw.ready();
  t.deepEqual(written.entries.map((e) => e.index), [1, 2, 3]);
  t.deepEqual(written.committedEntries, [], 'a lone voter commits its entries once advance() reports them durable');
  persist(raw, storage, written);
  const rd = raw.ready();
  t.deepEqual(rd.committedEntries.map((e) => e.index), [1, 2, 3]);
  t.is(raw.status().applied, 0);
  persist(raw, storage, rd);
  t.is(raw.status().applied, 3);
  t.false(raw.hasReady());
});

test('messages and read states are handed out once', (t) => {
  const net = new TestNetwork([1, 2, 3]);
  net.elect(1);
  const leader = net.peer(1).node;
  leader.tick();
  const rd = leader.ready();
  t.true(rd.earlyMessages.length > 0);
  t.true(rd.earlyMessages.every((m) => m.type === 'heartbeat'), 'heartbeats may go before the write');
  leader.advance();
  t.false(leader.hasReady());
});

test('entries truncated while a Ready is in flight are handed out again in their new form', (t) => {
  const net = new TestNetwork([1, 2, 3]);
  const follower = net.peer(2).node;
  follower.step(msg({ type: 'app', from: 1, to: 2, term: 1, entries: [1, 2, 3].map((index) => ({ term: 1, index, type: 'normal' as const, data: text(`a${index}`) })) }));
  const rd = follower.ready();
  // A new leader overwrites index 2 and 3 before the first Ready is persisted.
  follower.step(msg({ type: 'app', from: 3, to: 2, term: 2, index: 1, logTerm: 1, entries: [{ term: 2, index: 2, type: 'normal', data: text('b2') }] }));
  persist(follower, net.peer(2).storage, rd);
  const next = follower.ready();
  // (Entry 1 may be handed out again: rewriting an identical entry is harmless.)
  t.deepEqual(next.entries.map((e) => [e.index, e.term]).slice(-1), [[2, 2]]);
  persist(follower, net.peer(2).storage, next);
  t.deepEqual([1, 2].map((i) => net.peer(2).storage.term(i)), [1, 2]);
  t.is(net.peer(2).storage.lastIndex(), 2);
});

test('status() reports per-peer progress only on the leader', (t) => {
  const net = new TestNetwork([1, 2, 3]);
  net.elect(1);
  net.propose(1, 'a');
  t.deepEqual(net.peer(2).node.status().progress, []);
  const progress = net.peer(1).node.status().progress;
  t.deepEqual(progress.map((p) => [p.id, p.match, p.state]), [
    [1, 2, 'replicate'],
    [2, 2, 'replicate'],
    [3, 2, 'replicate'],
  ]);
});

test('reportUnreachable sends a replicating follower back to probe', (t) => {
  const net = new TestNetwork([1, 2, 3]);
  net.elect(1);
  net.peer(1).node.reportUnreachable(2);
  t.is(net.peer(1).node.status().progress.find((p) => p.id === 2)?.state, 'probe');
});

test('a restarted node starts from its storage: term, vote, commit, and applied at the snapshot', (t) => {
  const storage = MemoryStorage.bootstrap([1, 2, 3]);
  storage.save({ entries: [1, 2, 3].map((index) => ({ term: 2, index, type: 'normal' as const, data: new Uint8Array(0) })), hardState: { term: 3, vote: 2, commit: 3 } });
  storage.createSnapshot(2, { voters: [1, 2, 3], learners: [] }, new Uint8Array(0));
  const raw = new RawNode({ id: 1, storage, random: new SeededRandom(1) });
  t.like(raw.status(), { term: 3, vote: 2, commit: 3, applied: 2, lastIndex: 3, role: 'follower' });
  const rd = raw.ready();
  t.deepEqual(rd.committedEntries.map((e) => e.index), [3]);
  t.is(rd.hardState, undefined);
});
