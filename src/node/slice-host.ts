/**
 * Everything a cluster node runs for slices, wired together over the node's `ClusterPort`:
 * - the routing table, fed from this node's own KV watches;
 * - the instance lifecycle for the instances assigned to this node;
 * - the invoker (local calls direct, remote ones over gRPC) and its metrics;
 * - the metrics pusher (1-second windows to the leader) and, on the leader, the aggregator that
 *   the rolling-update health gate reads;
 * - the leader-only placement controller;
 * - the health monitor running the declared checks of this node's instances, filing their raw
 *   results in the node's local store (only state changes go through Raft).
 * It also answers the peer Invoke service (remote calls and pushed windows).
 */
import type { InvokeHandler } from '../api/invoke-service.ts';
import { runRound } from '../health/checks.ts';
import { parseHealthSpec } from '../health/spec.ts';
import { HealthMonitor } from '../health/monitor.ts';
import type { HealthResultsStore, HealthSpec } from '../health/types.ts';
import { UPDATE_PREFIX, parseUpdateRecord, type UpdateRecord } from '../updates/record.ts';
import { Invoker } from '../invoker/invoker.ts';
import { MetricsAggregator } from '../invoker/metrics-aggregator.ts';
import { InvocationMetrics, MetricsPusher, parseMetricsWindow, type MetricsWindow } from '../invoker/metrics.ts';
import { RemoteInvoker, type RemoteCallRequest } from '../invoker/remote.ts';
import { RoutingTable } from '../invoker/routing-table.ts';
import { followRoutingTable } from '../invoker/table-feed.ts';
import { LocalArtifactCache } from '../slices/artifact-cache.ts';
import { InstanceManager, type InstanceManagerOptions } from '../slices/instance-manager.ts';
import { instanceKey, requireArtifactBase, requireSemVer, type ArtifactBase } from '../slices/keys.ts';
import { PlacementController } from '../slices/placement-controller.ts';
import { ArtifactSliceLoader } from '../slices/slice-loader.ts';
import type { Clock } from '../util/clock.ts';
import { InvalidArgumentError, NotLeaderError } from '../util/errors.ts';
import { nodeId } from '../util/ids.ts';
import type { Logger } from '../util/logger.ts';
import type { ClusterPort } from './cluster-port.ts';

export interface SliceHostSettings {
  /** Where verified artifact copies are unpacked (`{dataDir}/slices`). */
  readonly artifactDir: string;
  /** A member silent this long has its instances re-placed. */
  readonly nodeDownAfterMs: number;
  /** Most instances placed on one node. */
  readonly nodeInstancesMax: number;
  /** Deadline of a call that names none. */
  readonly invokeTimeoutMs: number;
  /** Period of the metrics windows pushed to the leader. */
  readonly metricsIntervalMs: number;
  /** Bounds of the instance lifecycle (see InstanceManagerOptions). */
  readonly instances?: Omit<InstanceManagerOptions, 'port' | 'loader' | 'clock' | 'logger' | 'address'>;
}

export const SLICE_HOST_DEFAULTS = {
  nodeDownAfterMs: 15_000,
  nodeInstancesMax: 64,
  invokeTimeoutMs: 30_000,
  metricsIntervalMs: 1000,
} as const;

export interface SliceHostOptions {
  readonly port: ClusterPort;
  readonly clock: Clock;
  readonly logger: Logger;
  /** This node's address for remote invokes (the address its gRPC server listens on). */
  readonly address: string;
  /** The leader this node knows (id 0 when none) and its invoke address. */
  readonly leader: () => { readonly id: number; readonly address: string | undefined };
  readonly settings: SliceHostSettings;
  /** Wall-clock epoch ms (check results and audit events are stamped with it). */
  readonly wallClockMs: () => number;
  /** Where this node files its raw health-check results; none keeps no results (tests). */
  readonly healthResults?: HealthResultsStore;
}

export class SliceHost implements InvokeHandler {
  readonly table = new RoutingTable();
  readonly metrics: InvocationMetrics;
  readonly aggregator: MetricsAggregator;
  readonly invoker: Invoker;
  readonly instances: InstanceManager;
  readonly remote: RemoteInvoker;
  readonly health: HealthMonitor;
  private readonly placement: PlacementController;
  private readonly pusher: MetricsPusher;
  private readonly port: ClusterPort;
  private readonly clock: Clock;
  private readonly log: Logger;
  private stopFeed: (() => void) | undefined;
  private stopLeaderWatch: (() => void) | undefined;

  constructor(private readonly options: SliceHostOptions) {
    const { port, clock, logger, settings } = options;
    this.port = port;
    this.clock = clock;
    this.log = logger.child({ component: 'slices' });
    this.metrics = new InvocationMetrics({ startMs: clock.nowMs() });
    this.aggregator = new MetricsAggregator({ clock });
    this.remote = new RemoteInvoker({ clock, logger });
    const checkDeps = { clock, wallClockMs: options.wallClockMs };
    this.health = new HealthMonitor({
      clock,
      wallClockMs: options.wallClockMs,
      runRound: (spec, target) => runRound(spec, target, checkDeps),
      logger,
      ...(options.healthResults === undefined ? {} : { store: options.healthResults }),
    });
    this.instances = new InstanceManager({
      port,
      clock,
      logger,
      address: options.address,
      healthChecks: this.health,
      healthSpecOf: (base, version) => this.updateHealthChecks(base, version),
      wallClockMs: options.wallClockMs,
      loader: new ArtifactSliceLoader(port, new LocalArtifactCache(settings.artifactDir)),
      ...settings.instances,
    });
    this.invoker = new Invoker({ table: this.table, localNodeId: port.nodeId, remote: this.remote, local: this.instances, metrics: this.metrics, clock, defaultTimeoutMs: settings.invokeTimeoutMs });
    this.placement = new PlacementController({ port, clock, logger, nodeDownAfterMs: settings.nodeDownAfterMs, nodeInstancesMax: settings.nodeInstancesMax });
    this.pusher = new MetricsPusher({
      nodeId: port.nodeId,
      metrics: this.metrics,
      clock,
      intervalMs: settings.metricsIntervalMs,
      send: (window) => this.sendWindow(window),
      onSendFailed: (error) => this.log.debug({ error: String(error) }, 'metrics window not delivered'),
    });
  }

  async start(): Promise<void> {
    this.stopFeed = await followRoutingTable(this.port, this.table);
    // Soft state: a node that loses leadership forgets the windows; the next leader rebuilds them.
    this.stopLeaderWatch = this.port.onLeaderChange((leader) => {
      if (leader !== this.port.nodeId) this.aggregator.clear();
    });
    await this.instances.start();
    this.placement.start();
    this.pusher.start();
  }

  async stop(): Promise<void> {
    this.pusher.stop();
    this.placement.stop();
    this.stopLeaderWatch?.();
    this.stopFeed?.();
    await this.instances.stop();
    this.health.close();
    this.remote.close();
  }

  invokeLocal(request: RemoteCallRequest, timeoutMs: number): Promise<unknown> {
    const base = requireArtifactBase(request.base, 'artifact');
    const version = requireSemVer(request.version, 'version').text;
    if (request.instanceId.length === 0) throw new InvalidArgumentError('instance_id', 'must not be empty');
    const key = instanceKey(nodeId(this.port.nodeId), base, version, request.instanceId);
    const started = this.clock.nowMs();
    return this.instances.invoke(key, request.method, request.payload, started + timeoutMs);
  }

  ingestMetrics(window: unknown): void {
    if (!this.port.isLeader()) {
      const leader = this.options.leader();
      throw new NotLeaderError(leader.id, 'metrics windows go to the leader', leader.address);
    }
    const parsed = parseMetricsWindow(window);
    if (!parsed.ok) throw new InvalidArgumentError('window', parsed.reason);
    this.aggregator.ingest(parsed.value);
  }

  /**
   * The health checks an update gave `base:version` (its override of the manifest's), from the
   * newest update record that deploys that version with one; undefined when none did. Read from
   * this node's applied state when an instance starts.
   */
  private async updateHealthChecks(base: ArtifactBase, version: string): Promise<HealthSpec | undefined> {
    const { kvs } = await this.port.range(UPDATE_PREFIX, { serializable: true });
    let newest: UpdateRecord | undefined;
    for (const kv of kvs) {
      const parsed = parseUpdateRecord(kv.value);
      if (!parsed.ok || parsed.value.base !== base || parsed.value.newVersion !== version || parsed.value.healthChecks === null) continue;
      if (newest === undefined || parsed.value.createdAt > newest.createdAt) newest = parsed.value;
    }
    return newest === undefined ? undefined : parseHealthSpec(newest.healthChecks);
  }

  /** The leader takes its own windows directly; the others push them over gRPC. */
  private async sendWindow(window: MetricsWindow): Promise<void> {
    if (this.port.isLeader()) {
      this.aggregator.ingest(window);
      return;
    }
    const address = this.options.leader().address;
    if (address === undefined) throw new Error('no leader known');
    await this.remote.pushMetrics(address, window, 2000);
  }
}
