/**
 * Rollback → 0 % new on every node. Each round starts a MANUAL update of greeter 1.0.0 → 2.0.0,
 * waits for DEPLOYED, routes 1:1 with SetRouting and waits until every viewpoint routes 1:1; then
 * it sends Rollback to the leader and times, from the Rollback reply arriving here, when each
 * viewpoint routes 0:1 (0 % of calls to 2.0.0). It then waits for ROLLED_BACK before the next
 * round. (MANUAL goes DEPLOYED → ROUTING at 0:1 on its own; SetRouting is allowed in both.) Viewpoints, per node:
 * - a KV Watch on `version-routing/org.example:greeter` opened on that node: the node's own
 *   invoker is fed by the same apply that emits this event (src/invoker/table-feed.ts), so the
 *   delivery here is an upper bound on when the node itself routes 0:1;
 * - an embedded client connected to that node only (`connect({ endpoints: [node] })`): its
 *   `RoutingTable`, checked after each batch its feed applies, is what routes its calls.
 * All times are on this process's monotonic clock; the leader's events can arrive before the
 * Rollback reply (negative times).
 */
import { connect, type CutoverClient } from '../../src/index.ts';
import { KvClient } from '../../src/client/kv-client.ts';
import type { WatchEvent } from '../../src/kv/types.ts';
import { monotonicClock } from '../../src/platform/clock.ts';
import { sleep, waitFor } from '../../src/platform/wait.ts';
import { spreadOf, type Spread } from '../invoker/stats.ts';
import { GREETER, type UpdatesCluster } from './cluster.ts';

const KEY = `version-routing/${GREETER}`;

export interface RollbackResult {
  readonly rounds: number;
  /** Per round: the slowest node's watch delivery of 0:1 after the Rollback reply, ms. */
  readonly nodesWatch: Spread;
  /** Per round: the slowest pinned embedded client's table at 0:1 after the reply, ms. */
  readonly clients: Spread;
  /** Per round: the slower of the two above. */
  readonly everyViewpoint: Spread;
  /** Rollback sent → reply, ms. */
  readonly rollbackRpc: Spread;
  /** Per round: Rollback reply → ROLLED_BACK seen by polling Get (every 50 ms), ms. */
  readonly rolledBack: Spread;
  readonly missed: number;
}

/** Per viewpoint: when it first showed each (update id, ratio). */
class Views {
  private readonly seen: Map<string, number>[];
  constructor(count: number) {
    this.seen = Array.from({ length: count }, () => new Map());
  }

  /** 0:1 counts only after 1:1: a MANUAL update routes 0:1 on its own when it starts routing. */
  note(viewpoint: number, updateId: string, newWeight: number, oldWeight: number): void {
    const seen = this.seen[viewpoint]!;
    const key = `${updateId} ${newWeight > 0 ? 1 : 0}:${oldWeight > 0 ? 1 : 0}`;
    if (key.endsWith(' 0:1') && !seen.has(`${updateId} 1:1`)) return;
    if (!seen.has(key)) seen.set(key, monotonicClock.nowMs());
  }

  at(viewpoint: number, updateId: string, ratio: '1:1' | '0:1'): number | undefined {
    return this.seen[viewpoint]!.get(`${updateId} ${ratio}`);
  }

  everywhere(updateId: string, ratio: '1:1' | '0:1'): boolean {
    return this.seen.every((_, v) => this.at(v, updateId, ratio) !== undefined);
  }
}

function onWatchEvents(views: Views, viewpoint: number, events: readonly WatchEvent[]): void {
  for (const event of events) {
    if (event.kv.key !== KEY || event.type !== 'put') continue;
    try {
      const value = JSON.parse(event.kv.value) as { updateId: string; newWeight: number; oldWeight: number };
      views.note(viewpoint, value.updateId, value.newWeight, value.oldWeight);
    } catch {
      /* not ours */
    }
  }
}

/** Hooks `client`'s table so that `views` learns its greeter routing after every change it applies. */
function followClient(views: Views, viewpoint: number, client: CutoverClient): void {
  const table = client.table;
  const check = (): void => {
    const routing = table.snapshot().artifacts.find((a) => a.base === GREETER)?.routing;
    if (routing !== undefined) views.note(viewpoint, routing.updateId, routing.newWeight, routing.oldWeight);
  };
  const applyEvents = table.applyEvents.bind(table);
  const load = table.load.bind(table);
  table.applyEvents = (events) => {
    applyEvents(events);
    check();
  };
  table.load = (kvs, revision) => {
    load(kvs, revision);
    check();
  };
}

export async function measureRollbacks(cluster: UpdatesCluster, rounds: number, progress: (line: string) => void): Promise<RollbackResult> {
  const nodes = cluster.endpoints.length;
  // Viewpoints 0..n-1: node watches; n..2n-1: pinned clients.
  const views = new Views(2 * nodes);
  const watchers: KvClient[] = [];
  const clients: CutoverClient[] = [];
  try {
    const leader = await cluster.leader();
    const status = await cluster.call(leader, 'Cluster', 'Status', {});
    const fromRevision = Number(status.revision) + 1;
    cluster.endpoints.forEach((endpoint, node) => {
      const watcher = new KvClient(endpoint, { messageBytesMax: 16 * 1024 * 1024, keepaliveIntervalMs: 10_000, keepaliveTimeoutMs: 5000 });
      watchers.push(watcher);
      watcher.watch(KEY, fromRevision, { onEvents: (events) => onWatchEvents(views, node, events), onEnd: () => {} });
    });
    for (let node = 0; node < nodes; node++) {
      const client = await connect({ endpoints: [cluster.endpoints[node]!], metricsIntervalMs: 0 });
      clients.push(client);
      followClient(views, nodes + node, client);
    }
    const nodesWatch: number[] = [];
    const pinned: number[] = [];
    const every: number[] = [];
    const rpc: number[] = [];
    const rolledBack: number[] = [];
    let missed = 0;
    for (let round = 0; round < rounds; round++) {
      const started = (await cluster.call(leader, 'RollingUpdates', 'Start', { artifact: GREETER, version: '2.0.0', strategy: 'MANUAL', instances: 3, cleanup_policy: 'IMMEDIATE', initiated_by: 'bench' })).update as { id: string };
      const id = started.id;
      await cluster.untilState(id, ['DEPLOYED', 'ROUTING'], 60_000);
      await cluster.call(leader, 'RollingUpdates', 'SetRouting', { update_id: id, ratio: '1:1', actor: 'bench' });
      await waitFor(`every viewpoint at 1:1 for ${id}`, () => views.everywhere(id, '1:1') || undefined, { attempts: 1000, intervalMs: 5 });
      // Let the 1:1 settle (the clients' channels to the new instances, say) before the rollback.
      await sleep(100);
      const sent = monotonicClock.nowMs();
      await cluster.call(leader, 'RollingUpdates', 'Rollback', { update_id: id, actor: 'bench', reason: 'benchmark' });
      const acked = monotonicClock.nowMs();
      try {
        await waitFor(`every viewpoint at 0:1 for ${id}`, () => views.everywhere(id, '0:1') || undefined, { attempts: 2000, intervalMs: 1 });
      } catch {
        missed++;
      }
      const done = await cluster.untilState(id, ['ROLLED_BACK', 'FAILED'], 60_000);
      if (done.state !== 'ROLLED_BACK') throw new Error(`update ${id} ended ${done.state}`);
      rolledBack.push(monotonicClock.nowMs() - acked);
      if (!views.everywhere(id, '0:1')) continue;
      const delay = (v: number): number => views.at(v, id, '0:1')! - acked;
      const w = Math.max(...Array.from({ length: nodes }, (_, n) => delay(n)));
      const c = Math.max(...Array.from({ length: nodes }, (_, n) => delay(nodes + n)));
      nodesWatch.push(w);
      pinned.push(c);
      every.push(Math.max(w, c));
      rpc.push(acked - sent);
      if ((round + 1) % 10 === 0 || round + 1 === rounds) progress(`rollback: ${round + 1}/${rounds} rounds, last: watch ${w.toFixed(1)} ms, clients ${c.toFixed(1)} ms, rpc ${(acked - sent).toFixed(1)} ms`);
    }
    return { rounds, nodesWatch: spreadOf(nodesWatch), clients: spreadOf(pinned), everyViewpoint: spreadOf(every), rollbackRpc: spreadOf(rpc), rolledBack: spreadOf(rolledBack), missed };
  } finally {
    for (const watcher of watchers) watcher.close();
    for (const client of clients) await client.close();
  }
}
