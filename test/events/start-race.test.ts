/**
 * Issue 7 item 6: two operators starting an update of the same artifact at once, through two
 * different nodes of a 3-node in-process cluster (real Raft, followers forwarding their writes),
 * get exactly one update; the other gets UPDATE_ACTIVE (ALREADY_EXISTS) naming it. The guard is the
 * `active-update/{artifact}` key, created in the Start transaction under an "absent" compare
 * (operations.ts); repeated rounds (each winner cancelled before the next) exercise the race
 * with either node winning. Exactly one `update.started` event exists per round.
 */
import path from 'node:path';
import test from 'ava';
import { EVENT_PREFIX, parseEvent } from '../../src/events/event.ts';
import { nodeClusterPort, type ClusterPort } from '../../src/node/cluster-port.ts';
import { CutoverNode } from '../../src/node/node.ts';
import { realClock } from '../../src/platform/scheduler.ts';
import { waitFor } from '../../src/platform/wait.ts';
import { epochMs } from '../../src/platform/wall-clock.ts';
import { MemoryStorage } from '../../src/raft/index.ts';
import { packArtifact } from '../../src/slices/artifact-package.ts';
import { publishArtifact } from '../../src/slices/artifact-store.ts';
import { formatBlueprint } from '../../src/slices/blueprints.ts';
import { blueprintKey, requireArtifactBase } from '../../src/slices/keys.ts';
import { cancelUpdate } from '../../src/updates/commands.ts';
import { UpdateOperations } from '../../src/updates/operations.ts';
import { silentLogger } from '../../src/util/logger.ts';
import { SeededRandom } from '../../src/util/random.ts';
import { MemoryHub } from '../helpers/memory-transport.ts';
import { EXAMPLES_DIR } from '../slices/artifact-fixtures.ts';

const GREETER = requireArtifactBase('org.example:greeter');
const ROUNDS = 8;

async function startCluster(t: { teardown: (fn: () => Promise<void>) => void }): Promise<CutoverNode[]> {
  const hub = new MemoryHub();
  const random = new SeededRandom(11);
  const ids = [1, 2, 3];
  const members = ids.map((id) => ({ id, address: `127.0.0.1:${7100 + id}` }));
  const nodes = ids.map(
    (id) => new CutoverNode({ id, initialMembers: members, storage: MemoryStorage.bootstrap(ids), transport: hub.transport(id), clock: realClock, random: random.fork(), logger: silentLogger, settings: { tickMs: 10 }, forwardProposals: true }),
  );
  for (const node of nodes) await node.start();
  t.teardown(async () => {
    for (const node of nodes) await node.stop();
  });
  await waitFor('a leader', () => (nodes.some((n) => n.isLeader()) ? true : undefined), { attempts: 400 });
  return nodes;
}

function operations(port: ClusterPort): UpdateOperations {
  return new UpdateOperations({ port, wallClockMs: epochMs, nodeDownAfterMs: 15_000, nodeInstancesMax: 64 });
}

/**
 * Holds each port's first transaction until both have reached theirs (or `release()`), so both
 * Starts propose after both have read "no active update": the guard, not luck, must decide.
 * Counts the transactions that lost their compare.
 */
class Barrier {
  private arrived = 0;
  private open!: () => void;
  readonly opened = new Promise<void>((resolve) => (this.open = resolve));
  lostCompares = 0;

  wrap(port: ClusterPort): ClusterPort {
    let first = true;
    return {
      ...port,
      txn: async (compare, success, failure) => {
        if (first) {
          first = false;
          if (++this.arrived === 2) this.open();
          await this.opened;
        }
        const result = await port.txn(compare, success, failure);
        if (!result.succeeded) this.lostCompares++;
        return result;
      },
    };
  }

  release(): void {
    this.open();
  }
}

test('two operators starting an update of one artifact at once, through two nodes, get one update; the other ALREADY_EXISTS naming it', async (t) => {
  const nodes = await startCluster(t);
  const leader = nodes.find((n) => n.isLeader())!;
  const port = nodeClusterPort(leader);
  for (const version of ['1.0.0', '2.0.0']) await publishArtifact(port, (await packArtifact(path.join(EXAMPLES_DIR, version))).bytes);
  await port.txn([], [{ type: 'put', key: blueprintKey(GREETER, '1.0.0'), value: formatBlueprint({ instances: 1 }) }]);
  const followers = nodes.filter((n) => n !== leader);
  const winners = new Set<number>();
  for (let round = 0; round < ROUNDS; round++) {
    // Round by round: the two followers, or a follower and the leader.
    const pair = round % 2 === 0 ? [followers[0]!, followers[1]!] : [followers[round % 4 === 1 ? 0 : 1]!, leader];
    const barrier = new Barrier();
    const [a, b] = pair.map((n) => operations(barrier.wrap(nodeClusterPort(n))));
    const starts = [a!.start({ artifactBase: GREETER, version: '2.0.0', initiatedBy: 'alice' }), b!.start({ artifactBase: GREETER, version: '2.0.0', initiatedBy: 'bob' })];
    for (const start of starts) start.then(() => barrier.release(), () => barrier.release());
    const outcomes = await Promise.allSettled(starts);
    t.is(barrier.lostCompares, 1, `round ${round}: both proposed; the guard refused one`);
    const won = outcomes.flatMap((o, i) => (o.status === 'fulfilled' ? [{ i, id: o.value.record.id }] : []));
    const lost = outcomes.flatMap((o) => (o.status === 'rejected' ? [o.reason as { code: string; message: string }] : []));
    t.is(won.length, 1, `round ${round}: exactly one update`);
    t.is(lost.length, 1, `round ${round}: one refusal`);
    const winner = won[0]!;
    winners.add(pair[winner.i]!.id);
    t.is(lost[0]?.code, 'UPDATE_ACTIVE', lost[0]?.message);
    t.true(lost[0]?.message.includes(winner.id), `the refusal names ${winner.id}: ${lost[0]?.message}`);
    const { updates } = await operations(port).list({ base: GREETER });
    t.deepEqual(
      updates.map((u) => u.record.id),
      [winner.id],
      'one active update',
    );
    const started = (await port.range(EVENT_PREFIX)).kvs.map((kv) => parseEvent(kv.key, kv.value, kv.modRevision)).filter((p) => p.ok && p.value.action === 'update.started' && p.value.target.updateId === winner.id);
    t.is(started.length, 1, 'one update.started event');
    await operations(port).command(winner.id, (record, nowMs) => cancelUpdate(record, { actor: { kind: 'user', name: 'test' }, nowMs }));
  }
  t.log(`winning nodes over ${ROUNDS} rounds: ${[...winners].join(', ')}`);
});
