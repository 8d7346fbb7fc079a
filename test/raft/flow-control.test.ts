/**
 * Flow control: the in-flight window (count and bytes), the per-message size limit, and the
 * uncommitted-bytes limit on proposals.
 */
import test from 'ava';
import { entrySize, type Message } from '../../src/raft/index.ts';
import type { CutoverError } from '../../src/util/errors.ts';
import { TestNetwork, type PeerOptions } from './harness.ts';

const PAYLOAD_BYTES = 100;
const ENTRY_BYTES = entrySize({ term: 1, index: 1, type: 'normal', data: new Uint8Array(PAYLOAD_BYTES) });

function cluster(options: PeerOptions): TestNetwork {
  const net = new TestNetwork([1, 2, 3], { checkQuorum: false, ...options });
  net.elect(1);
  return net;
}

/** Proposes `n` entries of PAYLOAD_BYTES on peer 1, settling after each. */
function proposeMany(net: TestNetwork, n: number, bytes = PAYLOAD_BYTES): void {
  for (let i = 0; i < n; i++) {
    net.peer(1).node.propose(new Uint8Array(bytes).fill(i));
    net.settle();
  }
}

const appendsTo = (messages: readonly Message[], to: number): Message[] => messages.filter((m) => m.type === 'app' && m.to === to && m.entries.length > 0);
const progressOf = (net: TestNetwork, id: number) => net.peer(1).node.status().progress.find((p) => p.id === id)!;

test('maxInflightMsgs bounds the unacknowledged appends to one follower', (t) => {
  const net = cluster({ maxInflightMsgs: 3 });
  net.dropIf = (m) => m.type === 'appResp' && m.from === 2;
  const mark = net.sent.length;
  proposeMany(net, 10);
  t.is(appendsTo(net.sent.slice(mark), 2).length, 3);
  t.like(progressOf(net, 2), { state: 'replicate', inflightCount: 3 });
  t.is(progressOf(net, 3).match, net.peer(1).node.status().lastIndex, 'the other follower is not held back');
  net.heal();
  net.tick(3);
  t.is(progressOf(net, 2).match, net.peer(1).node.status().lastIndex);
});

test('maxInflightBytes bounds the unacknowledged bytes to one follower (sending stops once the window reaches it)', (t) => {
  const bytesMax = 3 * ENTRY_BYTES - 10;
  const net = cluster({ maxInflightBytes: bytesMax, maxInflightMsgs: 100 });
  net.dropIf = (m) => m.type === 'appResp' && m.from === 2;
  const mark = net.sent.length;
  proposeMany(net, 10);
  t.is(appendsTo(net.sent.slice(mark), 2).length, 3);
  const { inflightBytes } = progressOf(net, 2);
  t.true(inflightBytes >= bytesMax && inflightBytes - ENTRY_BYTES < bytesMax, `in flight: ${inflightBytes} bytes`);
});

test('a window filled by appends that were all lost drains once the follower answers a heartbeat', (t) => {
  const net = cluster({ maxInflightMsgs: 2 });
  net.dropIf = (m) => m.type === 'app' && m.to === 2;
  proposeMany(net, 5);
  t.like(progressOf(net, 2), { state: 'replicate', inflightCount: 2 });
  net.heal();
  net.tick(5);
  t.is(progressOf(net, 2).match, net.peer(1).node.status().lastIndex);
  t.is(net.peer(2).node.status().commit, net.peer(1).node.status().commit);
});

test('maxSizePerMsg bounds the entries in one append, but every append carries at least one entry', (t) => {
  const sizeMax = 2 * ENTRY_BYTES + 10;
  const net = cluster({ maxSizePerMsg: sizeMax });
  net.isolate(2);
  proposeMany(net, 6);
  proposeMany(net, 1, 5 * sizeMax);
  net.heal();
  const mark = net.sent.length;
  net.tick(3);
  const appends = appendsTo(net.sent.slice(mark), 2);
  t.true(appends.length >= 4);
  for (const m of appends) {
    const bytes = m.entries.reduce((sum, e) => sum + entrySize(e), 0);
    t.true(bytes <= sizeMax || m.entries.length === 1, `${m.entries.length} entries, ${bytes} bytes`);
  }
  t.true(appends.some((m) => m.entries.length === 2), 'batches fill up to the limit');
  t.is(progressOf(net, 2).match, net.peer(1).node.status().lastIndex);
});

test('maxUncommittedEntriesSize drops proposals with PROPOSAL_DROPPED until entries commit', (t) => {
  const net = cluster({ maxUncommittedEntriesSize: 3 * ENTRY_BYTES - 10 });
  net.isolate(2, 3);
  proposeMany(net, 2);
  const error = t.throws<CutoverError>(() => net.peer(1).node.propose(new Uint8Array(PAYLOAD_BYTES)));
  t.is(error?.code, 'PROPOSAL_DROPPED');
  net.heal();
  net.tick(3);
  t.notThrows(() => proposeMany(net, 2));
});

test('maxUncommittedEntriesSize always admits one entry, however large', (t) => {
  const net = cluster({ maxUncommittedEntriesSize: ENTRY_BYTES });
  net.isolate(2, 3);
  t.notThrows(() => net.peer(1).node.propose(new Uint8Array(10 * PAYLOAD_BYTES)));
  const error = t.throws<CutoverError>(() => net.peer(1).node.propose(new Uint8Array(1)));
  t.is(error?.code, 'PROPOSAL_DROPPED');
});

test('maxApplyBytesPerReady bounds the committed entries handed out in one Ready', (t) => {
  const net = cluster({ maxApplyBytesPerReady: 2 * ENTRY_BYTES });
  net.isolate(2);
  proposeMany(net, 6);
  const follower = net.peer(2);
  net.heal();
  const sizes: number[] = [];
  const original = follower.node.ready.bind(follower.node);
  follower.node.ready = () => {
    const rd = original();
    if (rd.committedEntries.length > 0) sizes.push(rd.committedEntries.reduce((sum, e) => sum + entrySize(e), 0));
    return rd;
  };
  net.tick(3);
  t.true(sizes.length >= 3, `${sizes.length} Readies`);
  for (const size of sizes) t.true(size <= 2 * ENTRY_BYTES, `${size} bytes`);
  t.is(follower.applied.length, net.peer(1).applied.length);
});
