/**
 * Routing-change propagation on a real local cluster: three `cutover node` processes on
 * 127.0.0.1 (started like bench/kv does, see bench/kv/cutover-cluster.ts), a KV Watch stream on
 * `version-routing/org.example:greeter` opened on every node beforehand, then `changes` routing
 * changes written one at a time with KV Put on the leader. For each change, the time from the
 * Put's acknowledgement (its reply reaching this process) until each node's watch delivered the
 * event, all on this process's monotonic clock.
 *
 * A node's invoker sees the change in the same apply that emits the watch event (its table is fed
 * by the node's own watch, src/invoker/table-feed.ts), so a watch delivery here is an upper bound
 * on when that node routes by the new weights: it adds the stream's hop to this process.
 * A delivery can come before the acknowledgement (the leader applies, then answers; the two
 * messages race), which shows as a negative time.
 */
import os from 'node:os';
import { CutoverCluster } from '../kv/cutover-cluster.ts';
import { cutoverServiceClient, unaryCall, type UnaryClient } from '../kv/cutover-client.ts';
import { KvClient } from '../../src/client/kv-client.ts';
import type { WatchEvent } from '../../src/kv/types.ts';
import { monotonicClock } from '../../src/platform/clock.ts';
import { sleep } from '../../src/platform/wait.ts';
import { realClock } from '../../src/platform/scheduler.ts';
import { spreadOf, type Spread } from './stats.ts';

const KEY = 'version-routing/org.example:greeter';
const PUT_TIMEOUT_MS = 5000;
/** A change not seen by every node within this is counted as missed. */
const DELIVERY_TIMEOUT_MS = 5000;
const WARMUP_CHANGES = 10;

export interface PropagationOptions {
  readonly changes: number;
  /** Pause between one change being everywhere and the next Put. */
  readonly gapMs: number;
  /** Parent of the cluster's temporary data directory. */
  readonly dataParent: string;
}

export interface PropagationResult {
  readonly changes: number;
  /** Per change: the slowest node's delivery after the acknowledgement, ms. */
  readonly allNodes: Spread;
  /** Per node (member order), with whether it was the leader. */
  readonly perNode: readonly { readonly node: number; readonly leader: boolean; readonly spread: Spread }[];
  /** Put round trip: sent → acknowledged, ms. */
  readonly putAck: Spread;
  /** Deliveries that came before the acknowledgement (all nodes together). */
  readonly beforeAck: number;
  /** Changes some node did not deliver within DELIVERY_TIMEOUT_MS (left out of the figures). */
  readonly missed: number;
  readonly putErrors: number;
}

/** Delivery times per node, keyed by revision, and waiters for them. */
class Deliveries {
  private readonly times: Map<number, number>[];
  private readonly waiters = new Map<number, () => void>();

  constructor(private readonly nodes: number) {
    this.times = Array.from({ length: nodes }, () => new Map());
  }

  record(node: number, events: readonly WatchEvent[]): void {
    const now = monotonicClock.nowMs();
    for (const event of events) {
      if (event.kv.key !== KEY) continue;
      this.times[node]!.set(event.revision, now);
      if (this.seenEverywhere(event.revision)) this.waiters.get(event.revision)?.();
    }
  }

  /** Resolves true once every node delivered `revision`, false after `timeoutMs`. */
  waitEverywhere(revision: number, timeoutMs: number): Promise<boolean> {
    if (this.seenEverywhere(revision)) return Promise.resolve(true);
    return new Promise((resolve) => {
      const cancel = realClock.schedule(timeoutMs, () => {
        this.waiters.delete(revision);
        resolve(false);
      });
      this.waiters.set(revision, () => {
        cancel();
        this.waiters.delete(revision);
        resolve(true);
      });
    });
  }

  timeOf(node: number, revision: number): number | undefined {
    return this.times[node]!.get(revision);
  }

  private seenEverywhere(revision: number): boolean {
    for (let node = 0; node < this.nodes; node++) if (!this.times[node]!.has(revision)) return false;
    return true;
  }
}

function routingValue(change: number): string {
  const newWeight = (change % 3) + 1;
  return JSON.stringify({ updateId: `bench-propagation-${change}`, oldVersion: '1.0.0', newVersion: '2.0.0', newWeight, oldWeight: 4 - newWeight });
}

/** Starts the cluster, measures, and stops it (also on failure). */
export async function measurePropagation(options: PropagationOptions, progress: (line: string) => void): Promise<PropagationResult> {
  const cluster = await CutoverCluster.create({ size: 3, dataParent: options.dataParent || os.tmpdir(), cpuProfileDir: undefined });
  const watchers: KvClient[] = [];
  const clients: UnaryClient[] = [];
  let failed = true;
  // Ctrl-C must not leave node processes behind.
  const onSignal = (): void => {
    void cluster.destroy(false).finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    progress(`propagation: starting a 3-node cluster in ${cluster.root}`);
    await cluster.start();
    await cluster.waitHealthy(20_000);
    let leader = await cluster.leader();
    progress(`propagation: leader is node ${leader + 1}; opening a watch on every node`);
    for (const endpoint of cluster.endpoints) clients.push(cutoverServiceClient('KV', endpoint));
    const cluster0 = cutoverServiceClient('Cluster', cluster.endpoints[leader]!);
    const status = await unaryCall(cluster0, 'Status', {}, 5000);
    cluster0.close();
    const fromRevision = Number(status.revision) + 1;
    const deliveries = new Deliveries(cluster.endpoints.length);
    let watchError: Error | undefined;
    cluster.endpoints.forEach((endpoint, node) => {
      const watcher = new KvClient(endpoint, { messageBytesMax: 16 * 1024 * 1024, keepaliveIntervalMs: 10_000, keepaliveTimeoutMs: 5000 });
      watchers.push(watcher);
      watcher.watch(KEY, fromRevision, {
        onEvents: (events) => deliveries.record(node, events),
        onEnd: (error) => {
          watchError = error;
        },
      });
    });

    const perNode: number[][] = cluster.endpoints.map(() => []);
    const allNodes: number[] = [];
    const putAck: number[] = [];
    let beforeAck = 0;
    let missed = 0;
    let putErrors = 0;
    for (let change = 0; change < WARMUP_CHANGES + options.changes; change++) {
      if (watchError !== undefined) throw new Error(`propagation: a watch ended: ${watchError.message}`);
      const measured = change >= WARMUP_CHANGES;
      const sent = monotonicClock.nowMs();
      let revision: number;
      try {
        const reply = await unaryCall(clients[leader]!, 'Put', { key: KEY, value: routingValue(change) }, PUT_TIMEOUT_MS);
        revision = Number(reply.revision);
      } catch (error) {
        putErrors++;
        progress(`propagation: Put failed (${error instanceof Error ? error.message : String(error)}); looking for the leader again`);
        leader = await cluster.leader();
        continue;
      }
      const acked = monotonicClock.nowMs();
      const everywhere = await deliveries.waitEverywhere(revision, DELIVERY_TIMEOUT_MS);
      if (!measured) continue;
      if (!everywhere) {
        missed++;
        continue;
      }
      putAck.push(acked - sent);
      let slowest = Number.NEGATIVE_INFINITY;
      for (let node = 0; node < perNode.length; node++) {
        const delay = deliveries.timeOf(node, revision)! - acked;
        if (delay < 0) beforeAck++;
        perNode[node]!.push(delay);
        slowest = Math.max(slowest, delay);
      }
      allNodes.push(slowest);
      if ((change - WARMUP_CHANGES + 1) % 50 === 0) progress(`propagation: ${change - WARMUP_CHANGES + 1}/${options.changes} changes`);
      if (options.gapMs > 0) await sleep(options.gapMs);
    }
    failed = false;
    return {
      changes: allNodes.length,
      allNodes: spreadOf(allNodes),
      perNode: perNode.map((delays, node) => ({ node: node + 1, leader: node === leader, spread: spreadOf(delays) })),
      putAck: spreadOf(putAck),
      beforeAck,
      missed,
      putErrors,
    };
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    for (const watcher of watchers) watcher.close();
    for (const client of clients) client.close();
    await cluster.destroy(failed);
    if (failed) progress(`propagation: node logs kept in ${cluster.root}`);
  }
}
