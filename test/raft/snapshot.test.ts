/**
 * Snapshots and log compaction (§7 of the Raft paper): a follower behind the leader's compacted
 * index is sent the snapshot, installs it, and its log continues from there.
 */
import test from 'ava';
import { MemoryStorage } from '../../src/raft/index.ts';
import { TestNetwork, appliedData, msg, text } from './harness.ts';

/** 3 peers; peer 3 misses 'a'..'e', then the leader snapshots and compacts its log. */
function compactedWhileAway(): { net: TestNetwork; snapshotIndex: number } {
  const net = new TestNetwork([1, 2, 3], { checkQuorum: true, electionTicks: 10 });
  net.elect(1);
  net.isolate(3);
  for (const s of ['a', 'b', 'c', 'd', 'e']) net.propose(1, s);
  const leader = net.peer(1);
  const { applied, confState } = leader.node.status();
  leader.storage.createSnapshot(applied, confState, text('state-at-' + applied));
  leader.storage.compact(applied);
  return { net, snapshotIndex: applied };
}

test('an isolated follower behind the compacted log receives the snapshot, restores it, and its log continues', (t) => {
  const { net, snapshotIndex } = compactedWhileAway();
  t.is(net.peer(1).storage.firstIndex(), snapshotIndex + 1);
  net.heal();
  net.tick(3);
  const follower = net.peer(3);
  t.true(net.sent.some((m) => m.type === 'snap' && m.to === 3 && m.snapshot?.metadata.index === snapshotIndex));
  t.deepEqual(follower.restoredSnapshots, [snapshotIndex]);
  t.deepEqual(follower.storage.snapshot().data, text('state-at-' + snapshotIndex));
  t.is(follower.storage.firstIndex(), snapshotIndex + 1);
  t.is(follower.node.status().applied, snapshotIndex);
  net.propose(1, 'f');
  net.tick(1);
  t.deepEqual(appliedData(follower), ['f'], 'entries after the snapshot are appended and applied');
  t.is(follower.node.status().commit, net.peer(1).node.status().commit);
  const leaderView = net.peer(1).node.status().progress.find((p) => p.id === 3);
  t.like(leaderView, { state: 'replicate', match: snapshotIndex + 1 });
});

test('a snapshot that is lost (reported as failed) is sent again', (t) => {
  const { net, snapshotIndex } = compactedWhileAway();
  let lost = 0;
  net.dropIf = (m) => m.type === 'snap' && lost++ === 0;
  net.tick(5);
  const snaps = net.sent.filter((m) => m.type === 'snap' && m.to === 3);
  t.true(snaps.length >= 2, `${snaps.length} snapshots sent`);
  t.deepEqual(net.peer(3).restoredSnapshots, [snapshotIndex]);
});

test('a snapshot no newer than the follower\'s commit index is ignored', (t) => {
  const net = new TestNetwork([1, 2, 3]);
  net.elect(1);
  for (const s of ['a', 'b']) net.propose(1, s);
  const follower = net.peer(2).node;
  const commit = follower.status().commit;
  const stale = { metadata: { index: commit - 1, term: 1, confState: { voters: [1, 2, 3], learners: [] } }, data: new Uint8Array(0) };
  follower.step(msg({ type: 'snap', from: 1, to: 2, term: 1, snapshot: stale }));
  t.like(net.take(2)[0], { type: 'appResp', index: commit, reject: false });
  t.false(follower.hasReady(), 'nothing to persist or apply');
});

test('a snapshot whose last entry the follower already has only advances its commit index', (t) => {
  const net = TestNetwork.withLogs({ 1: [1, 1, 1], 2: [1, 1, 1], 3: [] });
  const follower = net.peer(2).node;
  t.deepEqual([follower.status().lastIndex, follower.status().commit], [3, 0]);
  const covering = { metadata: { index: 2, term: 1, confState: { voters: [1, 2, 3], learners: [] } }, data: new Uint8Array(0) };
  follower.step(msg({ type: 'snap', from: 1, to: 2, term: 1, snapshot: covering }));
  const rd = follower.ready();
  t.is(rd.snapshot, undefined);
  t.deepEqual(rd.committedEntries.map((e) => e.index), [1, 2]);
  t.like(rd.messages[0], { type: 'appResp', index: 2 });
  follower.advance();
  t.is(follower.status().lastIndex, 3, 'the entries after the snapshot are kept');
});

test('a follower installing a snapshot gets it in a synced Ready and takes the snapshot\'s membership', (t) => {
  const net = new TestNetwork([1, 2, 3]);
  const follower = net.peer(2).node;
  follower.step(msg({ type: 'heartbeat', from: 1, to: 2, term: 2 }));
  net.take(2);
  const snapshot = { metadata: { index: 10, term: 2, confState: { voters: [1, 2, 3, 4], learners: [5] } }, data: text('s') };
  follower.step(msg({ type: 'snap', from: 1, to: 2, term: 2, snapshot }));
  const rd = follower.ready();
  t.is(rd.snapshot, snapshot);
  t.true(rd.mustSync, 'the snapshot alone requires a synced write (term and vote did not change)');
  t.deepEqual(rd.committedEntries, []);
  t.like(rd.hardState, { term: 2, commit: 10 });
  t.like(rd.messages[0], { type: 'appResp', to: 1, index: 10, reject: false });
  net.peer(2).storage.save({ entries: rd.entries, snapshot: rd.snapshot!, hardState: rd.hardState! });
  follower.advance();
  t.like(follower.status(), { applied: 10, commit: 10, lastIndex: 10, confState: { voters: [1, 2, 3, 4], learners: [5] } });
});

test('a member added after the leader\'s latest snapshot installs it, then learns its membership from the log', (t) => {
  const net = new TestNetwork([1, 2, 3]);
  net.elect(1);
  for (const s of ['a', 'b']) net.propose(1, s);
  const leader = net.peer(1);
  const { applied, confState } = leader.node.status();
  leader.storage.createSnapshot(applied, confState, text('state'));
  leader.storage.compact(applied);
  // The snapshot's membership does not include peer 4: it predates its addition.
  const joiner = net.addPeer(4, MemoryStorage.bootstrap([1, 2, 3]));
  leader.node.proposeConfChange({ type: 'addLearner', nodeId: 4 });
  net.settle();
  net.tick(3);
  t.deepEqual(joiner.restoredSnapshots, [applied]);
  net.propose(1, 'c');
  t.deepEqual(appliedData(joiner), ['c']);
  t.deepEqual(joiner.node.status().confState, { voters: [1, 2, 3], learners: [4] });
});

test('a follower restarted after installing a snapshot starts from it', (t) => {
  const { net, snapshotIndex } = compactedWhileAway();
  net.heal();
  net.tick(3);
  const restarted = net.restart(3);
  t.like(restarted.node.status(), { applied: snapshotIndex, commit: net.peer(1).node.status().commit });
  net.propose(1, 'g');
  t.deepEqual(appliedData(restarted), ['g']);
});
