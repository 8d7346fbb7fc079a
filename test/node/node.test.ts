import test from 'ava';
import { CutoverNode, type Member } from '../../src/node/node.ts';
import { MemoryStorage, type ConfState, type Entry, type Snapshot, type StorageUpdate, type WritableRaftStorage } from '../../src/raft/index.ts';
import { silentLogger } from '../../src/util/logger.ts';
import { SeededRandom } from '../../src/util/random.ts';
import { ManualClock } from '../helpers/manual-clock.ts';
import { MemoryHub } from '../helpers/memory-transport.ts';

interface Cluster {
  clock: ManualClock;
  hub: MemoryHub;
  nodes: Map<number, CutoverNode>;
  storages: Map<number, MemoryStorage>;
  members: Member[];
  start(id: number, settings?: Record<string, number>, forwardProposals?: boolean): Promise<CutoverNode>;
  leader(): CutoverNode;
}

async function cluster(ids: number[], settings: Record<string, number> = {}): Promise<Cluster> {
  const clock = new ManualClock();
  const hub = new MemoryHub();
  const random = new SeededRandom(42);
  const members = ids.map((id) => ({ id, address: `mem://${id}` }));
  const c: Cluster = {
    clock,
    hub,
    members,
    nodes: new Map(),
    storages: new Map(),
    async start(id, extra = {}, forwardProposals = true) {
      const storage = c.storages.get(id) ?? MemoryStorage.bootstrap(ids);
      c.storages.set(id, storage);
      const node = new CutoverNode({ id, initialMembers: members, storage, transport: hub.transport(id), clock, random: random.fork(), logger: silentLogger, settings: { ...settings, ...extra }, forwardProposals });
      await node.start();
      c.nodes.set(id, node);
      return node;
    },
    leader() {
      const found = [...c.nodes.values()].filter((n) => n.status().role === 'leader');
      if (found.length !== 1) throw new Error(`expected one leader, found ${found.length}`);
      return found[0]!;
    },
  };
  for (const id of ids) await c.start(id);
  await clock.advance(5000);
  return c;
}

test('a write through the leader is applied on every node and readable linearizably from a follower', async (t) => {
  const c = await cluster([1, 2, 3]);
  const leader = c.leader();
  const put = leader.propose({ type: 'put', key: 'k', value: 'v1' });
  await c.clock.advance(500);
  t.like(await put, { type: 'put', revision: 1 });
  const follower = [...c.nodes.values()].find((n) => n !== leader)!;
  const read = follower.get('k');
  await c.clock.advance(500);
  t.is((await read).kv?.value, 'v1');
  for (const node of c.nodes.values()) t.is(node.kv.get('k')?.value, 'v1');
});

test('a write on a follower is forwarded to the leader and settles when applied there', async (t) => {
  const c = await cluster([1, 2, 3]);
  const leader = c.leader();
  const follower = [...c.nodes.values()].find((n) => n !== leader)!;
  const put = follower.propose({ type: 'put', key: 'k', value: 'from-follower' }, { clientId: 9, sequence: 1 });
  await c.clock.advance(500);
  t.like(await put, { type: 'put', revision: 1 });
  t.is(follower.kv.get('k')?.value, 'from-follower');
  t.is(leader.kv.get('k')?.value, 'from-follower');
});

test('a restarted follower tags its forwarded writes with origin ids its earlier run never used', async (t) => {
  // Found by the simulator (node target): a restarted follower applies its log again, and an old
  // entry whose origin id matched a new forwarded write settled that write with the old outcome.
  const c = await cluster([1, 2, 3]);
  const leader = c.leader();
  const follower = [...c.nodes.values()].find((n) => n !== leader)!;
  const first = follower.propose({ type: 'put', key: 'k', value: 'first' }, { clientId: 9, sequence: 1 });
  await c.clock.advance(500);
  await first;
  await follower.stop();
  const restarted = await c.start(follower.id);
  await c.clock.advance(1000);
  const second = restarted.propose({ type: 'txn', compare: [], success: [{ type: 'put', key: 'k', value: 'second' }], failure: [] }, { clientId: 9, sequence: 2 });
  await c.clock.advance(500);
  t.like(await second, { type: 'txn', succeeded: true });
  const storage = c.storages.get(leader.id)!;
  const decoder = new TextDecoder();
  const origins = storage
    .entries(storage.firstIndex(), storage.lastIndex() + 1, Number.POSITIVE_INFINITY)
    .filter((entry) => entry.type === 'normal' && entry.data.length > 0)
    .map((entry) => (JSON.parse(decoder.decode(entry.data)) as { origin?: string }).origin)
    .filter((origin) => origin !== undefined);
  t.is(origins.length, 2);
  t.not(origins[0], origins[1]);
});

test('with forwarding off a follower answers NOT_LEADER with the leader id and address', async (t) => {
  const c = await cluster([1, 2, 3]);
  const leader = c.leader();
  const follower = [...c.nodes.values()].find((n) => n !== leader)!;
  await follower.stop();
  const strict = await c.start(follower.id, {}, false);
  await c.clock.advance(1000);
  const error = await t.throwsAsync(strict.propose({ type: 'put', key: 'k', value: 'v' }));
  t.like(error, { code: 'NOT_LEADER', leaderId: leader.id, leaderAddress: `mem://${leader.id}` });
});

test('a proposal that cannot commit fails with TIMEOUT; invalid input fails with INVALID_ARGUMENT', async (t) => {
  const c = await cluster([1, 2, 3], { requestTimeoutMs: 1000 });
  const leader = c.leader();
  c.hub.isolate(leader.id);
  const put = leader.propose({ type: 'put', key: 'k', value: 'v' });
  const settled = t.throwsAsync(put);
  await c.clock.advance(1500);
  t.like(await settled, { code: 'TIMEOUT' });
  await t.throwsAsync(leader.propose({ type: 'put', key: '', value: 'v' }), { any: true, instanceOf: Error, message: /operation\.key/ });
});

test('snapshots are taken past the threshold and a restarted node recovers its state from storage', async (t) => {
  const c = await cluster([1, 2, 3], { snapshotEntries: 20, compactionMarginEntries: 5 });
  const leader = c.leader();
  for (let i = 0; i < 50; i++) {
    const p = leader.propose({ type: 'put', key: `k${i % 7}`, value: String(i) });
    await c.clock.advance(50);
    await p;
  }
  t.true(leader.nodeStats().snapshotsTaken >= 2);
  const victim = [...c.nodes.values()].find((n) => n !== leader)!;
  await victim.stop();
  const before = JSON.stringify(leader.kv.range('', 0));
  const restarted = await c.start(victim.id);
  await c.clock.advance(2000);
  t.is(JSON.stringify(restarted.kv.range('', 0)), before);
});

test('an isolated follower catches up through a snapshot after compaction', async (t) => {
  const c = await cluster([1, 2, 3], { snapshotEntries: 10, compactionMarginEntries: 2 });
  const leader = c.leader();
  const lagging = [...c.nodes.values()].find((n) => n !== leader)!;
  c.hub.isolate(lagging.id);
  // Re-allow the two healthy nodes to talk.
  for (const n of c.nodes.values()) if (n !== lagging) for (const m of c.nodes.values()) if (m !== lagging) c.hub.cut.delete(`${n.id}->${m.id}`);
  for (let i = 0; i < 40; i++) {
    const p = leader.propose({ type: 'put', key: `k${i}`, value: String(i) });
    await c.clock.advance(50);
    await p;
  }
  c.hub.heal();
  await c.clock.advance(3000);
  t.is(lagging.kv.get('k39')?.value, '39');
  t.true(lagging.status().snapshotIndex > 0);
});

test('membership: add a learner, promote it, remove a member', async (t) => {
  const c = await cluster([1, 2, 3]);
  const leader = c.leader();
  // A new member starts from the membership it joins: the Raft core refuses storage with none.
  c.storages.set(4, MemoryStorage.bootstrap([1, 2, 3]));
  const learner = await c.start(4);
  const added = leader.addLearner(4, 'mem://4');
  await c.clock.advance(1000);
  t.deepEqual((await added).learners, [4]);
  const put = leader.propose({ type: 'put', key: 'x', value: '1' });
  await c.clock.advance(1000);
  await put;
  t.is(learner.kv.get('x')?.value, '1');
  const promoted = leader.promote(4);
  await c.clock.advance(1000);
  t.deepEqual((await promoted).voters, [1, 2, 3, 4]);
  const removedId = [1, 2, 3].find((id) => id !== leader.id)!;
  const removed = leader.removeMember(removedId);
  await c.clock.advance(1000);
  t.false((await removed).voters.includes(removedId));
  t.deepEqual(leader.members().voters.find((m) => m.id === 4), { id: 4, address: 'mem://4' });
});

test('stop rejects pending requests with NODE_STOPPED and refuses new ones', async (t) => {
  const c = await cluster([1, 2, 3]);
  const leader = c.leader();
  c.hub.isolate(leader.id);
  const pending = t.throwsAsync(leader.propose({ type: 'put', key: 'k', value: 'v' }));
  await leader.stop();
  t.like(await pending, { code: 'NODE_STOPPED' });
  await t.throwsAsync(leader.propose({ type: 'put', key: 'k', value: 'v' }), { any: true, instanceOf: Error, message: /stopping/ });
});

test('node settings are validated with a message naming the setting', (t) => {
  const error = t.throws(() => new CutoverNode({ id: 1, initialMembers: [], storage: MemoryStorage.bootstrap([1]), transport: new MemoryHub().transport(1), clock: new ManualClock(), random: new SeededRandom(1), logger: silentLogger, settings: { electionTicks: 1, heartbeatTicks: 1 } }));
  t.like(error, { code: 'INVALID_ARGUMENT', field: 'electionTicks' });
});

/** A MemoryStorage whose writes can be held: a held write is not visible (not durable) until released. */
class GatedStorage implements WritableRaftStorage {
  hold = false;
  private held: { update: StorageUpdate; resolve: () => void }[] = [];

  constructor(private readonly inner: MemoryStorage) {}

  get pending(): number {
    return this.held.length;
  }

  release(): void {
    this.hold = false;
    for (const { update, resolve } of this.held.splice(0)) {
      this.inner.save(update);
      resolve();
    }
  }

  save(update: StorageUpdate): void | Promise<void> {
    if (!this.hold) return this.inner.save(update);
    return new Promise<void>((resolve) => this.held.push({ update, resolve }));
  }

  initialState(): ReturnType<MemoryStorage['initialState']> {
    return this.inner.initialState();
  }
  entries(lo: number, hi: number, maxBytes: number): readonly Entry[] {
    return this.inner.entries(lo, hi, maxBytes);
  }
  term(index: number): number {
    return this.inner.term(index);
  }
  firstIndex(): number {
    return this.inner.firstIndex();
  }
  lastIndex(): number {
    return this.inner.lastIndex();
  }
  snapshot(): Snapshot {
    return this.inner.snapshot();
  }
  createSnapshot(index: number, confState: ConfState, data: Uint8Array): Snapshot {
    return this.inner.createSnapshot(index, confState, data);
  }
  compact(index: number): void {
    this.inner.compact(index);
  }
}

test("the leader's appends leave before its own write: the followers persist a write while the leader's is held, and it is answered once the leader's completes", async (t) => {
  const ids = [1, 2, 3];
  const clock = new ManualClock();
  const hub = new MemoryHub();
  const random = new SeededRandom(7);
  const members = ids.map((id) => ({ id, address: `mem://${id}` }));
  const storages = new Map<number, GatedStorage>();
  const nodes = new Map<number, CutoverNode>();
  for (const id of ids) {
    storages.set(id, new GatedStorage(MemoryStorage.bootstrap(ids)));
  }
  for (const id of ids) {
    const node = new CutoverNode({ id, initialMembers: members, storage: storages.get(id)!, transport: hub.transport(id), clock, random: random.fork(), logger: silentLogger });
    await node.start();
    nodes.set(id, node);
  }
  await clock.advance(5000);
  const leader = [...nodes.values()].find((n) => n.status().role === 'leader')!;
  const followers = ids.filter((id) => id !== leader.id);
  const leaderStorage = storages.get(leader.id)!;
  leaderStorage.hold = true;

  let settled = false;
  const put = leader.propose({ type: 'put', key: 'k', value: 'v' }).finally(() => (settled = true));
  const index = leader.status().lastIndex;
  await clock.advance(50);
  t.is(leaderStorage.pending, 1, "the leader's write is in flight");
  t.true(leaderStorage.lastIndex() < index, 'and not durable on the leader');
  for (const id of followers) t.is(storages.get(id)!.lastIndex(), index, `follower ${id} persisted the entry meanwhile`);
  t.false(settled, 'nothing is answered before the leader has written its Ready');

  leaderStorage.release();
  await clock.advance(50);
  t.like(await put, { type: 'put', revision: 1 });
  for (const node of nodes.values()) t.is(node.kv.get('k')?.value, 'v');
});
