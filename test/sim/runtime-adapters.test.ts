import test from 'ava';
import { InvariantChecker } from '../../cluster-sim/checkers/invariants.ts';
import { SimDisk } from '../../cluster-sim/disk.ts';
import { EventQueue } from '../../cluster-sim/events.ts';
import { SimNetwork } from '../../cluster-sim/network.ts';
import { drawOptions } from '../../cluster-sim/options.ts';
import { SimClock } from '../../cluster-sim/runtime/sim-clock.ts';
import { SimStorage } from '../../cluster-sim/runtime/sim-storage.ts';
import { TransportHub, simAddress } from '../../cluster-sim/runtime/sim-transport.ts';
import { Trace } from '../../cluster-sim/trace.ts';
import { yieldToEventLoop } from '../../src/platform/yield.ts';
import { MemoryStorage } from '../../src/raft/storage.ts';
import type { Entry, Message } from '../../src/raft/types.ts';
import { SeededRandom } from '../../src/util/random.ts';

// The simulated clock, storage and transport the node target builds each CutoverNode on, and
// what a crash does to them: an abandoned node must never act again.

const options = drawOptions(1, { overrides: { lossRate: 0, duplicateRate: 0, diskWriteMinMs: 1, diskWriteMaxMs: 2 } });

function harness() {
  const queue = new EventQueue();
  const trace = new Trace(64);
  const checker = new InvariantChecker(() => queue.nowMs, false);
  const zombies: string[] = [];
  const run = (untilMs: number) => queue.runUntilSettled(untilMs, () => false, yieldToEventLoop);
  return { queue, trace, checker, zombies, onZombie: (what: string) => zombies.push(what), run };
}

const entry = (index: number, term: number): Entry => ({ index, term, type: 'normal', data: new TextEncoder().encode(`e${index}`) });

test('the clock runs timers at its drift rate, cancels them, and runs none after its node died', async (t) => {
  const h = harness();
  const clock = new SimClock(h.queue, 1.1, h.onZombie);
  const fired: number[] = [];
  clock.schedule(10, () => fired.push(h.queue.nowMs));
  const cancel = clock.schedule(20, () => fired.push(-1));
  cancel();
  clock.schedule(30, () => fired.push(-2));
  await h.run(20);
  t.deepEqual(fired, [11]);
  t.is(clock.nowMs(), 20 / 1.1);
  clock.kill();
  await h.run(100);
  t.deepEqual(fired, [11]);
  t.deepEqual(h.zombies, []);
  clock.schedule(1, () => fired.push(-3));
  await h.run(200);
  t.deepEqual(fired, [11]);
  t.is(h.zombies.length, 1);
});

test('storage: a save resolves when its simulated write completes; a crash abandons the write in flight', async (t) => {
  const h = harness();
  const counters = { snapshotsTaken: 0, snapshotsInstalled: 0 };
  const disk = new SimDisk([1, 2, 3]);
  const storage = new SimStorage(1, disk, { queue: h.queue, trace: h.trace, options, checker: h.checker, counters }, new SeededRandom(1), h.onZombie);
  const settled: string[] = [];
  const first = storage.save({ entries: [entry(1, 1)], hardState: { term: 1, vote: 1, commit: 0 } }).then(() => settled.push('first'));
  // Writes queue in call order; the second starts when the first is durable.
  void storage.save({ entries: [entry(2, 1)] }).then(() => settled.push('second'));
  await yieldToEventLoop();
  t.true(disk.writeInFlight);
  t.is(storage.lastIndex(), 0, 'nothing is visible before it is durable');
  await h.run(h.queue.nowMs + 2.5);
  await first;
  t.deepEqual(settled, ['first']);
  t.is(storage.lastIndex(), 1);
  t.true(disk.writeInFlight, 'the second write is in flight');
  storage.kill();
  disk.crash(false, new SeededRandom(2));
  await h.run(1000);
  t.deepEqual(settled, ['first'], 'the abandoned write never settles');
  disk.recover(false);
  t.is(disk.storage.lastIndex(), 1, 'the write in flight was lost');
  t.deepEqual(disk.storage.initialState().hardState, { term: 1, vote: 1, commit: 0 });
  void storage.save({ entries: [entry(2, 1)] });
  await yieldToEventLoop();
  await h.run(2000);
  t.is(disk.storage.lastIndex(), 1, 'a dead incarnation writes nothing');
  t.is(h.zombies.length, 1);
});

test('transport: failures are reported after send returns, to the incarnation that sent; a dead one neither sends nor receives', async (t) => {
  const h = harness();
  const hub = new TransportHub(h.queue, h.trace, h.checker);
  const network = new SimNetwork(h.queue, new SeededRandom(3), options, h.trace, (m) => hub.deliver(m), (m, why) => hub.undelivered(m, why));
  hub.connect(network);
  const events: string[] = [];
  const open = (id: number, name: string) => {
    const transport = hub.open(id, h.onZombie);
    for (const peer of [1, 2, 3]) transport.addPeer(peer, simAddress(peer));
    transport.setHandler({
      onMessage: (m) => events.push(`${name} got ${m.type} from ${m.from}`),
      onUnreachable: (peer) => events.push(`${name} unreachable ${peer}`),
      onSnapshotStatus: (peer, ok) => events.push(`${name} snapshot to ${peer} ${ok ? 'ok' : 'failed'}`),
    });
    return transport;
  };
  const one = open(1, 'n1');
  const two = open(2, 'n2');
  await Promise.all([one.start(), two.start()]);
  const message = (type: Message['type'], to: number): Message => ({ type, from: 1, to, term: 1, logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0 });
  network.partition([[1, 3]], 'cut 1->3');
  one.send([message('app', 3), message('app', 2)]);
  t.deepEqual(events, [], 'nothing is reported inside send()');
  await yieldToEventLoop();
  t.deepEqual(events, ['n1 unreachable 3'], 'but right after it');
  await h.run(h.queue.nowMs + 500);
  t.deepEqual(events, ['n1 unreachable 3', 'n2 got app from 1']);
  events.length = 0;
  // n2 crashes and a new incarnation takes over: messages to the dead one go to the new one only.
  two.kill();
  const twoAgain = open(2, 'n2b');
  await twoAgain.start();
  one.send([message('app', 2)]);
  await h.run(h.queue.nowMs + 500);
  t.deepEqual(events, ['n2b got app from 1']);
  two.send([message('app', 1)]);
  t.is(h.zombies.length, 1);
});

test('the checker lets a crash take the commit index back to the last one written with fsync, and no further', (t) => {
  const h = harness();
  const storage = MemoryStorage.bootstrap([1, 2, 3]);
  storage.save({ entries: [entry(1, 1), entry(2, 1), entry(3, 1)] });
  const hardState = (commit: number) => ({ term: 1, vote: 1, commit });
  h.checker.onPersisted(1, { entries: [], hardState: hardState(1) }, storage);
  h.checker.onPersisted(1, { entries: [], hardState: hardState(3), sync: false }, storage);
  const report = { recordsReplayed: 0, recordsDiscarded: 0, tornAccepted: 0 };
  h.checker.onRecovered(1, report, hardState(1));
  t.deepEqual(h.checker.violations, []);
  h.checker.onPersisted(1, { entries: [], hardState: hardState(2) }, storage);
  h.checker.onRecovered(1, report, hardState(1));
  t.deepEqual(
    h.checker.violations.map((v) => v.kind),
    ['durability'],
  );
});
