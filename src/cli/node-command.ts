import { randomInt } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { NodeMetrics, startOpsHttp } from '../api/ops-http.ts';
import path from 'node:path';
import { addInvokeService } from '../api/invoke-service.ts';
import { addManagementApi } from '../api/server.ts';
import { nodeClusterPort } from '../node/cluster-port.ts';
import { CutoverNode } from '../node/node.ts';
import { SliceHost } from '../node/slice-host.ts';
import { EventsHost } from '../node/events-host.ts';
import { NotifyHost } from '../node/notify-host.ts';
import { UpdatesHost } from '../node/updates-host.ts';
import { registerNotifyMetrics } from '../notify/metrics-prometheus.ts';
import { registerInvocationMetrics } from '../invoker/metrics-prometheus.ts';
import { realClock } from '../platform/scheduler.ts';
import { epochMs } from '../platform/wall-clock.ts';
import { LevelRaftStorage } from '../storage/index.ts';
import { GrpcTransport, peerServerChannelOptions, type TransportLimits, type TransportTimeouts } from '../transport/index.ts';
import { InvalidArgumentError } from '../util/errors.ts';
import type { Logger } from '../util/logger.ts';
import { SeededRandom } from '../util/random.ts';
import { LevelHealthResultsStore } from '../storage/health-results.ts';
import type { NodeConfig } from './node-config.ts';

const TRANSPORT_LIMITS: TransportLimits = {
  sendQueueMessagesMax: 4096,
  batchMessagesMax: 256,
  messageBytesMax: 16 * 1024 * 1024,
  snapshotChunkBytes: 1024 * 1024,
  snapshotBytesMax: 1024 * 1024 * 1024,
  inboundSnapshotsMax: 2,
};
const TRANSPORT_TIMEOUTS: TransportTimeouts = { snapshotSendMs: 60_000, stopGraceMs: 2000, keepaliveIntervalMs: 10_000, keepaliveTimeoutMs: 5000 };

/**
 * `cutover node`: opens the LevelDB storage, serves the peer transport, forwarding and the
 * management API on one port, runs the node until SIGINT/SIGTERM, then shuts down in order
 * (stop accepting, finish the current Ready, close the database).
 */
export async function runNode(config: NodeConfig): Promise<void> {
  // A Raft message must always fit one gRPC message, with room for framing and the batch.
  if (config.settings.maxSizePerMsg > TRANSPORT_LIMITS.messageBytesMax / 2) {
    throw new InvalidArgumentError('settings.maxSizePerMsg', `must be at most ${TRANSPORT_LIMITS.messageBytesMax / 2} bytes (half the transport's message limit)`);
  }
  const logger = pino({ level: config.logLevel, base: { nodeId: config.id } }) as unknown as Logger;
  const metrics = new NodeMetrics();
  const storage = await LevelRaftStorage.open({ dataDir: config.dataDir, logger, onSyncWrite: (ms) => metrics.observeSyncWrite(ms) });
  // Raw health-check results stay on this node, in their own bounded database.
  const healthResults = await LevelHealthResultsStore.open({ dir: path.join(config.dataDir, 'health'), wallClockMs: epochMs, logger });
  if (storage.isEmpty()) await storage.bootstrap(initialMembership(config));
  const server = new grpc.Server({ ...peerServerChannelOptions({ limits: TRANSPORT_LIMITS, timeouts: TRANSPORT_TIMEOUTS }) });
  // Each process draws a fresh seed for election jitter; the simulator seeds its own.
  const random = new SeededRandom(randomInt(0, 2 ** 32));
  const transport = new GrpcTransport({ nodeId: config.id, listen: { server }, clock: realClock, random: random.fork(), logger, limits: TRANSPORT_LIMITS, reconnect: { initialMs: 50, maxMs: 2000 }, timeouts: TRANSPORT_TIMEOUTS });
  const node = new CutoverNode({
    id: config.id,
    initialMembers: config.peers,
    storage,
    transport,
    clock: realClock,
    random,
    logger,
    settings: config.settings,
    forwardProposals: config.forwardWrites,
  });
  const slices = new SliceHost({
    port: nodeClusterPort(node),
    clock: realClock,
    wallClockMs: epochMs,
    healthResults,
    logger,
    address: config.listen,
    leader: () => node.leaderInfo(),
    settings: {
      artifactDir: path.join(config.dataDir, 'slices'),
      nodeDownAfterMs: config.slices.nodeDownAfterMs,
      nodeInstancesMax: config.slices.nodeInstancesMax,
      invokeTimeoutMs: config.slices.invokeTimeoutMs,
      metricsIntervalMs: 1000,
      instances: { drainTimeoutMs: config.slices.drainTimeoutMs },
    },
  });
  const capacity = { nodeDownAfterMs: config.slices.nodeDownAfterMs, nodeInstancesMax: config.slices.nodeInstancesMax };
  const updates = new UpdatesHost({ port: nodeClusterPort(node), clock: realClock, wallClockMs: epochMs, logger, aggregator: slices.aggregator, ...capacity });
  const eventsHost = new EventsHost({ port: nodeClusterPort(node), clock: realClock, wallClockMs: epochMs, logger });
  const notify = new NotifyHost({ port: nodeClusterPort(node), clock: realClock, wallClockMs: epochMs, random: random.fork(), logger });
  const detachApi = addManagementApi(server, node, {
    watchBufferBytesMax: 8 * 1024 * 1024,
    slices: { port: nodeClusterPort(node), invoker: slices.invoker, artifactBytesMax: config.slices.artifactBytesMax, wallClockMs: epochMs },
    updates: { port: nodeClusterPort(node), clock: realClock, wallClockMs: epochMs, health: slices.aggregator, healthWindowMsMax: 60_000, leader: () => node.leaderInfo(), ...capacity },
    health: { nodeId: config.id, store: healthResults, members: () => node.memberActivity(), wallClockMs: epochMs },
    notifications: { port: nodeClusterPort(node), clock: realClock, wallClockMs: epochMs },
    events: { port: nodeClusterPort(node) },
  });
  addInvokeService(server, slices);
  await bind(server, config.listen);
  await node.start();
  await slices.start();
  updates.start();
  eventsHost.start();
  notify.start();
  metrics.attach({ node, peerQueueDepth: () => new Map(transport.stats().peers.map((p) => [p.peer, p.queueDepth])) });
  registerInvocationMetrics(metrics.registry, { metrics: slices.metrics, aggregator: slices.aggregator, isLeader: () => node.isLeader(), windowMs: 60_000 });
  registerNotifyMetrics(metrics.registry, notify);
  const ops = config.metricsListen === '' ? undefined : await startOpsHttp(config.metricsListen, metrics, node);
  logger.info({ listen: config.listen, metrics: config.metricsListen, dataDir: config.dataDir }, 'cutover node serving');

  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
    // Started by `cutover local`: stdin closes when the launcher goes away.
    if (process.env.CUTOVER_EXIT_WITH_PARENT === '1') {
      process.stdin.on('end', resolve);
      process.stdin.on('close', resolve);
      process.stdin.resume();
    }
  });
  logger.info({}, 'shutting down');
  ops?.close();
  updates.stop();
  eventsHost.stop();
  // Before the node stops: the dispatcher writes its final cursor while the node can still write.
  await notify.stop();
  await slices.stop();
  await node.stop();
  detachApi();
  await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
  await healthResults.close();
  await storage.close();
  logger.info({}, 'stopped');
}

/**
 * The membership a new data directory starts from. A joining node starts as a learner of the
 * current voters, so it can never campaign on a membership the cluster does not have; it learns
 * the real one from the leader's log or snapshot.
 */
function initialMembership(config: NodeConfig): { voters: number[]; learners: number[] } {
  const ids = config.peers.map((p) => p.id);
  if (!config.join) return { voters: ids, learners: [] };
  return { voters: ids.filter((id) => id !== config.id), learners: [config.id] };
}

function bind(server: grpc.Server, listen: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(listen, grpc.ServerCredentials.createInsecure(), (error, port) => (error ? reject(error) : resolve(port)));
  });
}
