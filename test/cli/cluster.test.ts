/**
 * `cutover cluster …` with the real binary against a real 3-node cluster (node processes on
 * 127.0.0.1): status and members as JSON, a leadership transfer, a learner added, promoted and
 * removed, and leader following after the node the CLI contacts first is killed.
 */
import test from 'ava';
import { waitFor } from '../../src/platform/wait.ts';
import { ProcessCluster } from '../process/harness.ts';
import { CliRunner } from './cli-harness.ts';

interface MemberStatus {
  id: number;
  address: string;
  learner: boolean;
  reachable: boolean;
  role: string;
  term: number;
  applied_index: number;
  match: number;
}
interface ClusterStatus {
  leader_id: number;
  leader_address: string;
  term: number;
  members: MemberStatus[];
}
interface Members {
  members: { id: number; address: string; learner: boolean }[];
}

let cluster: ProcessCluster;

test.before(async () => {
  cluster = await ProcessCluster.start(3);
});

test.after.always(async () => {
  await cluster?.destroy();
});

/** A CLI whose endpoints list node `first` first, then the others. */
function cliStartingAt(first: number): CliRunner {
  const ids = [first, ...[...cluster.nodes.keys()].filter((id) => id !== first && id <= 3)];
  return new CliRunner(ids.map((id) => cluster.node(id).address).join(','));
}

test.serial('cluster status and members: every member\'s view, as JSON and as a table', async (t) => {
  const leader = await cluster.waitForLeader();
  const follower = [1, 2, 3].find((id) => id !== leader)!;
  const cli = cliStartingAt(follower);
  t.teardown(() => cli.dispose());
  // Asked of a follower, status still names the leader and has the leader's match indexes.
  const status = await waitFor('every member applied', async () => {
    const s = await cli.json<ClusterStatus>(['cluster', 'status']);
    return s.members.every((m) => m.reachable && m.match > 0) ? s : undefined;
  }, { attempts: 40, intervalMs: 100 });
  t.is(status.leader_id, leader);
  t.is(status.leader_address, cluster.node(leader).address);
  t.deepEqual(status.members.map((m) => [m.id, m.role]), [1, 2, 3].map((id) => [id, id === leader ? 'leader' : 'follower']));
  const table = await cli.ok(['cluster', 'status']);
  t.regex(table, new RegExp(`^leader node ${leader} at 127\\.0\\.0\\.1:\\d+, term \\d+\\nID\\s+ADDRESS\\s+ROLE\\s+TERM\\s+COMMIT\\s+APPLIED\\s+MATCH\\s+REVISION\\n`));
  const members = await cli.json<Members>(['cluster', 'members']);
  t.deepEqual(members.members.map((m) => [m.id, m.address, m.learner]), [1, 2, 3].map((id) => [id, cluster.node(id).address, false]));
});

test.serial('cluster transfer-leader waits until the target leads', async (t) => {
  const leader = await cluster.waitForLeader();
  const [follower, target] = [1, 2, 3].filter((id) => id !== leader) as [number, number];
  const cli = cliStartingAt(follower);
  t.teardown(() => cli.dispose());
  t.deepEqual(Object.keys(await cli.json(['cluster', 'transfer-leader', String(target)])), ['leader_id', 'term']);
  t.is(await cluster.waitForLeader(), target);
  t.regex(await cli.ok(['cluster', 'transfer-leader', String(leader)]), new RegExp(`^node ${leader} is the leader \\(term \\d+\\)\\n$`));
});

test.serial('cluster add-learner (sent to a follower: follows the NOT_LEADER hint), promote and remove a fourth node', async (t) => {
  const leader = await cluster.waitForLeader();
  const follower = [1, 2, 3].find((id) => id !== leader)!;
  const cli = cliStartingAt(follower);
  t.teardown(() => cli.dispose());
  const node = await cluster.prepareNode(4);
  const result = await cli.run(['cluster', 'add-learner', '4', node.address, '-o', 'json', '--debug']);
  t.is(result.code, 0, result.stderr);
  t.regex(result.stderr, new RegExp(`${cluster.node(follower).address} is not the leader; following to ${cluster.node(leader).address}`.replaceAll('.', '\\.')));
  const added = JSON.parse(result.stdout) as Members;
  t.deepEqual(added.members.find((m) => m.id === 4), { id: 4, address: node.address, learner: true });
  cluster.launch(4, [1, 2, 3].map((id) => `${id}=${cluster.node(id).address}`).join(','), true);
  // A learner is promoted once it has caught up; until then the leader refuses (exit 1).
  const promoted = await waitFor('the learner to be promoted', async () => {
    const result = await cli.run(['cluster', 'promote', '4', '-o', 'json']);
    return result.code === 0 ? (JSON.parse(result.stdout) as Members) : undefined;
  }, { attempts: 80, intervalMs: 250 });
  t.false(promoted.members.find((m) => m.id === 4)!.learner);
  t.regex(await cli.ok(['cluster', 'members']), /\n {1}4 {2}127\.0\.0\.1:\d+ {2}voter\n/);
  const duplicate = await cli.run(['cluster', 'add-learner', '4', node.address]);
  t.is(duplicate.code, 1);
  t.regex(duplicate.stderr, /\[MEMBER_EXISTS\] — see the members with `cutover cluster members`/);
  const removed = await cli.json<Members>(['cluster', 'remove', '4']);
  t.deepEqual(removed.members.map((m) => m.id).sort(), [1, 2, 3]);
  await cluster.kill(4);
});

test.serial('leader following: the node the CLI contacts first is killed (the leader); commands go on', async (t) => {
  const leader = await cluster.waitForLeader();
  const cli = cliStartingAt(leader);
  t.teardown(() => cli.dispose());
  const before = await cli.json<{ revision: number }>(['kv', 'put', 'follow/before', '1']);
  // A watch on the node about to die: it sees the first put, then resumes on another node.
  const watch = cli.start(['kv', 'watch', 'follow/', '--rev', String(before.revision), '--count', '2', '-o', 'json', '--timeout', '20s', '--debug']);
  await waitFor('the watch to print the first put', () => watch.stdout().includes('follow/before'), { attempts: 100, intervalMs: 100 });
  await cluster.kill(leader);
  // Writes and reads go to the next endpoint; a leader-only change follows the new leader.
  t.true((await cli.json<{ revision: number }>(['kv', 'put', 'follow/after', '2', '--timeout', '20s'])).revision > 0);
  const watched = await watch.done;
  t.is(watched.code, 0, watched.stderr);
  t.regex(watched.stderr, /trying 127\.0\.0\.1:\d+/, 'the watch moved to another node');
  t.deepEqual(watched.stdout.trim().split('\n').map((line) => (JSON.parse(line) as { kv: { key: string } }).kv.key), ['follow/before', 'follow/after']);
  t.like(await cli.json(['kv', 'get', 'follow/before']), { found: true, kv: { value: '1' } });
  const status = await waitFor('a new leader', async () => {
    const s = await cli.json<ClusterStatus>(['cluster', 'status']);
    return s.leader_id !== 0 && s.leader_id !== leader ? s : undefined;
  }, { attempts: 40, intervalMs: 250 });
  const killed = status.members.find((m) => m.id === leader)!;
  t.false(killed.reachable);
  t.is(killed.role, 'unreachable');
  t.regex(await cli.ok(['cluster', 'status']), new RegExp(`\\n +${leader} +127\\.0\\.0\\.1:\\d+ +unreachable +- +- +-`));
  const survivor = [1, 2, 3].find((id) => id !== leader && id !== status.leader_id)!;
  const added = await cli.run(['cluster', 'add-learner', '5', '127.0.0.1:1', '-o', 'json', '--debug', '--timeout', '20s']);
  t.is(added.code, 0, added.stderr);
  t.regex(added.stderr, /unreachable/, 'tried the killed node first');
  t.true((JSON.parse(added.stdout) as Members).members.some((m) => m.id === 5 && m.learner));
  t.true((await cli.json<Members>(['cluster', 'remove', '5'])).members.every((m) => m.id !== 5));
  const transferred = await cli.run(['cluster', 'transfer-leader', String(survivor), '-o', 'json', '--timeout', '20s']);
  t.is(transferred.code, 0, transferred.stderr);
  t.like(JSON.parse(transferred.stdout), { leader_id: survivor });
});
