import test from 'ava';
import { ClassicLevel } from 'classic-level';
import { ProcessCluster } from './harness.ts';
import { sleep, waitFor } from '../../src/platform/wait.ts';
import { monotonicClock } from '../../src/platform/clock.ts';

// Real processes share two cores: run these one at a time.
test.serial('a write through any node is readable from every node', async (t) => {
  const cluster = await ProcessCluster.start(3);
  t.teardown(() => cluster.destroy());
  const leader = await cluster.waitForLeader();
  const follower = [1, 2, 3].find((id) => id !== leader)!;
  await cluster.call(follower, 'KV', 'Put', { key: 'via-follower', value: 'f' });
  await cluster.call(leader, 'KV', 'Put', { key: 'via-leader', value: 'l' });
  for (const id of [1, 2, 3]) {
    t.like(await cluster.call(id, 'KV', 'Get', { key: 'via-follower' }), { found: true, kv: { value: 'f' } }, `node ${id}`);
    t.like(await cluster.call(id, 'KV', 'Get', { key: 'via-leader' }), { found: true, kv: { value: 'l' } }, `node ${id}`);
  }
});

test.serial('kill -9 of the leader: a new leader serves writes within 3 s; the killed node catches up through a snapshot', async (t) => {
  const cluster = await ProcessCluster.start(3, { snapshotEntries: 50, compactionMarginEntries: 10 });
  t.teardown(() => cluster.destroy());
  const leader = await cluster.waitForLeader();
  const survivor = [1, 2, 3].find((id) => id !== leader)!;
  await cluster.call(leader, 'KV', 'Put', { key: 'before', value: '1' });
  await cluster.kill(leader);
  const killedAt = monotonicClock.nowMs();
  await waitFor('a write after failover', async () => {
    await cluster.call(survivor, 'KV', 'Put', { key: 'after', value: '2' }, 500);
    return true;
  }, { attempts: 300, intervalMs: 10 });
  const failoverMs = monotonicClock.nowMs() - killedAt;
  t.log(`failover to first acknowledged write: ${failoverMs.toFixed(0)} ms`);
  t.true(failoverMs < 3000, `failover took ${failoverMs} ms`);
  // Enough writes to snapshot and compact past what the killed node has.
  for (let i = 0; i < 150; i++) await cluster.call(survivor, 'KV', 'Put', { key: `bulk/${i}`, value: String(i) });
  cluster.launch(leader);
  await waitFor('the restarted node to catch up', async () => {
    const got = await cluster.call(leader, 'KV', 'Get', { key: 'bulk/149', serializable: true }, 500);
    return got.found === true ? true : undefined;
  }, { attempts: 200, intervalMs: 50 });
  const status = await cluster.call(leader, 'Cluster', 'Status', {});
  t.true(Number(status.snapshot_index) > 0, 'caught up through a snapshot');
  t.like(await cluster.call(leader, 'KV', 'Get', { key: 'before', serializable: true }), { found: true, kv: { value: '1' } });
});

test.serial('stop every node and start them again: every acknowledged write is there', async (t) => {
  const cluster = await ProcessCluster.start(3, { snapshotEntries: 40 });
  t.teardown(() => cluster.destroy());
  const acknowledged: string[] = [];
  for (let i = 0; i < 100; i++) {
    const id = (i % 3) + 1;
    await cluster.call(id, 'KV', 'Put', { key: `k/${i}`, value: `v${i}` });
    acknowledged.push(`k/${i}`);
  }
  for (const id of [1, 2, 3]) t.is(await cluster.stop(id), 0, `node ${id} exits cleanly`);
  for (const id of [1, 2, 3]) cluster.launch(id);
  await cluster.waitForLeader();
  const range = await cluster.call(1, 'KV', 'Range', { prefix: 'k/' });
  t.deepEqual((range.kvs as { key: string }[]).map((kv) => kv.key).sort(), acknowledged.sort());
});

test.serial('a corrupted log record stops the node with an error naming the directory and key', async (t) => {
  const cluster = await ProcessCluster.start(3);
  t.teardown(() => cluster.destroy());
  for (let i = 0; i < 5; i++) await cluster.call(1, 'KV', 'Put', { key: `c/${i}`, value: 'x' });
  const victim = 3;
  await cluster.stop(victim);
  const db = new ClassicLevel<Uint8Array, Uint8Array>(cluster.node(victim).dataDir, { keyEncoding: 'view', valueEncoding: 'view', createIfMissing: false });
  await db.open();
  let corrupted = '';
  for await (const [key, value] of db.iterator({ gte: new TextEncoder().encode('raft/entry/'), lt: new TextEncoder().encode('raft/entry0'), limit: 3 })) {
    const copy = value.slice();
    copy[copy.length - 1] = copy[copy.length - 1]! ^ 0xff;
    await db.put(key, copy, { sync: true });
    corrupted = new TextDecoder().decode(key.slice(0, 11));
  }
  await db.close();
  t.not(corrupted, '', 'found an entry record to corrupt');
  const node = cluster.launch(victim);
  const code = await node.exit;
  node.process = undefined;
  t.not(code, 0);
  const log = cluster.log(victim);
  t.regex(log, /STORAGE_CORRUPT/);
  t.true(log.includes(cluster.node(victim).dataDir), 'names the data directory');
});

test.serial('a 3-node cluster grows to 5 through learners and shrinks back', async (t) => {
  const cluster = await ProcessCluster.start(3);
  t.teardown(() => cluster.destroy());
  await cluster.call(1, 'KV', 'Put', { key: 'grow', value: 'yes' });
  const members = () => cluster.call(1, 'Cluster', 'ListMembers', {}).then((r) => r.members as { id: number; learner: boolean }[]);
  for (const id of [4, 5]) {
    const node = await cluster.prepareNode(id);
    const leader = await cluster.waitForLeader();
    await cluster.call(leader, 'Cluster', 'AddMember', { id, address: node.address });
    const voters = (await members()).filter((m) => !m.learner).map((m) => `${m.id}=${cluster.node(m.id).address}`);
    cluster.launch(id, `${voters.join(',')},${id}=${node.address}`, true);
    await waitFor(`node ${id} to catch up`, async () => ((await cluster.call(id, 'KV', 'Get', { key: 'grow', serializable: true }, 500)).found === true ? true : undefined), { attempts: 200 });
    await waitFor(`node ${id} promoted`, async () => {
      await cluster.call(await cluster.waitForLeader(), 'Cluster', 'PromoteMember', { id }, 1000);
      return true;
    }, { attempts: 50, intervalMs: 100 });
  }
  // ListMembers reads node 1's applied state: wait for it to apply the last promotion.
  await waitFor('five voters on node 1', async () => ((await members()).filter((m) => !m.learner).length === 5 ? true : undefined));
  await cluster.call(await cluster.waitForLeader(), 'KV', 'Put', { key: 'five', value: '5' });
  t.like(await cluster.call(5, 'KV', 'Get', { key: 'five' }), { found: true });
  for (const id of [5, 4]) {
    const leader = await cluster.waitForLeader();
    await cluster.call(leader, 'Cluster', 'RemoveMember', { id });
    await cluster.stop(id);
    await sleep(100);
  }
  await waitFor('three members on node 1', async () => ((await members()).length === 3 ? true : undefined));
  t.deepEqual((await members()).map((m) => m.id).sort(), [1, 2, 3]);
  await cluster.call(await cluster.waitForLeader(), 'KV', 'Put', { key: 'three', value: '3' });
  t.like(await cluster.call(2, 'KV', 'Get', { key: 'three' }), { found: true });
});
