import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { CutoverNode } from '../node/node.ts';

/** What the ops endpoint reads from the rest of the process. */
export interface OpsSources {
  readonly node: CutoverNode;
  /** Queue depth per peer id (from the transport). */
  readonly peerQueueDepth: () => ReadonlyMap<number, number>;
}

/**
 * Prometheus metrics of one node. `observeSyncWrite` is fed by the storage's sync hook, which
 * exists before the node does; `attach` adds the gauges read from the node and transport.
 */
export class NodeMetrics {
  readonly registry = new Registry();
  private readonly syncWrite: Histogram;

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    this.syncWrite = new Histogram({ name: 'cutover_storage_sync_write_seconds', help: 'Latency of synced storage batches', buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1], registers: [this.registry] });
  }

  attach(sources: OpsSources): void {
    const { node } = sources;
    const registers = [this.registry];
    const status = () => node.status();
    new Gauge({ name: 'cutover_raft_term', help: 'Current Raft term', registers, collect() { this.set(status().term); } });
    new Gauge({ name: 'cutover_raft_is_leader', help: '1 when this node is the leader', registers, collect() { this.set(status().role === 'leader' ? 1 : 0); } });
    new Gauge({ name: 'cutover_raft_commit_index', help: 'Committed log index', registers, collect() { this.set(status().commit); } });
    new Gauge({ name: 'cutover_raft_applied_index', help: 'Applied log index', registers, collect() { this.set(status().appliedIndex); } });
    new Gauge({ name: 'cutover_raft_apply_lag_entries', help: 'Committed entries not yet applied', registers, collect() { const s = status(); this.set(s.commit - s.appliedIndex); } });
    new Counter({ name: 'cutover_proposals_total', help: 'Proposals made on this node', registers, collect() { this.reset(); this.inc(node.nodeStats().proposals); } });
    new Counter({ name: 'cutover_proposals_failed_total', help: 'Proposals that failed on this node', registers, collect() { this.reset(); this.inc(node.nodeStats().proposalsFailed); } });
    new Counter({ name: 'cutover_leader_changes_total', help: 'Leader changes seen by this node', registers, collect() { this.reset(); this.inc(node.nodeStats().leaderChanges); } });
    new Gauge({
      name: 'cutover_peer_queue_depth',
      help: 'Messages queued for a peer',
      labelNames: ['peer'],
      registers,
      collect() {
        this.reset();
        for (const [peer, depth] of sources.peerQueueDepth()) this.set({ peer: String(peer) }, depth);
      },
    });
  }

  observeSyncWrite(durationMs: number): void {
    this.syncWrite.observe(durationMs / 1000);
  }
}

/**
 * Serves GET /metrics (Prometheus text), /healthz (the process is up) and /readyz (200 once the
 * node knows a leader, 503 otherwise). Resolves with the bound server.
 */
export function startOpsHttp(listen: string, metrics: NodeMetrics, node: CutoverNode): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.method !== 'GET') {
      res.writeHead(405).end();
      return;
    }
    if (req.url === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    } else if (req.url === '/readyz') {
      const leader = node.leaderInfo().id;
      res.writeHead(leader === 0 ? 503 : 200, { 'content-type': 'text/plain' }).end(leader === 0 ? 'no leader known\n' : `leader ${leader}\n`);
    } else if (req.url === '/metrics') {
      metrics.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
        (error: Error) => res.writeHead(500).end(`${error.message}\n`),
      );
    } else {
      res.writeHead(404).end();
    }
  });
  const separator = listen.lastIndexOf(':');
  const host = listen.slice(0, separator).replace(/^\[|\]$/g, '');
  const port = Number(listen.slice(separator + 1));
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, () => resolve(server));
  });
}
