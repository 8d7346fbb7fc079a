/**
 * The cutover.v1.RollingUpdates service (proto/cutover/v1/updates.proto): a thin layer over
 * `UpdateOperations` (Start, the pure commands committed as one CAS transaction each with bounded
 * retries, RollbackTo, reads) plus Health and Watch. Every node serves it:
 * - reads are linearizable reads of the store, so any node answers them;
 * - writes go through the port: a follower forwards them to the leader, or answers NOT_LEADER
 *   with the leader's id and address, as the node is configured;
 * - Health is answered by the leader only, because only the leader aggregates the cluster's call
 *   metrics (DESIGN decision 8); another node answers NOT_LEADER with the leader's address, which
 *   clients follow (DESIGN decision 9). Forwarding would hide which node's soft state answered.
 * - Watch streams this node's applied changes (its own KV watch), so it works on any node.
 */
import { status, type ServerWritableStream, type UntypedServiceImplementation } from '@grpc/grpc-js';
import type { VersionHealth } from '../invoker/metrics-aggregator.ts';
import type { WatchEvent } from '../kv/index.ts';
import type { ClusterPort } from '../node/cluster-port.ts';
import { INSTANCE_PREFIX, VERSION_ROUTING_PREFIX, parseVersionRoutingKey, requireArtifactBase, type ArtifactBase } from '../slices/keys.ts';
import { toServiceError } from '../transport/grpc-errors.ts';
import { approveStep, cancelUpdate, completeUpdate, pauseUpdate, promoteUpdate, resumeUpdate, rollbackUpdate, setRouting, type CommandOptions, type CommandResult } from '../updates/commands.ts';
import { MONITORED_STATES } from '../updates/decide.ts';
import { healthWindowMs, instanceFacts, type HealthSource } from '../updates/facts.ts';
import { evaluateHealth } from '../updates/health-gate.ts';
import { UpdateOperations, requireState, type CommandOutcome, type StoredUpdate } from '../updates/operations.ts';
import { recordSteps } from '../updates/plan.ts';
import { UPDATE_PREFIX, parseUpdateRecord, type Actor, type LogEntry, type UpdateRecord } from '../updates/record.ts';
import type { ReleaseRecord } from '../updates/release.ts';
import { formatRatio, parseRatio } from '../updates/request.ts';
import type { Clock } from '../util/clock.ts';
import { InvalidArgumentError, NotLeaderError } from '../util/errors.ts';
import { unary } from './kv-service.ts';

export interface UpdatesServiceOptions {
  readonly port: ClusterPort;
  /** The health source's clock (its `collectedAt` times are on it). */
  readonly clock: Clock;
  /** Wall-clock epoch ms, stamped on records. */
  readonly wallClockMs: () => number;
  /** The leader's metrics (SliceHost.aggregator). */
  readonly health: HealthSource;
  /** The aggregator's span: the longest window Health can ask for. */
  readonly healthWindowMsMax: number;
  /** The leader this node knows (id 0 when none) and its address, for NOT_LEADER. */
  readonly leader: () => { readonly id: number; readonly address: string | undefined };
  /** As the placement controller's, for Start's capacity check. */
  readonly nodeDownAfterMs: number;
  readonly nodeInstancesMax: number;
  /** Bytes buffered for a slow Watch client before its stream ends with RESOURCE_EXHAUSTED (default 8 MiB). */
  readonly watchBufferBytesMax?: number;
}

interface PbStart {
  artifact: string;
  version: string;
  instances?: number;
  strategy: string;
  canary_percentage?: number;
  steps: number[];
  batch_size?: number;
  batch_delay_seconds?: number;
  max_unavailable_percentage?: number;
  monitoring_seconds?: number;
  deploy_timeout_seconds?: number;
  health_preset: string;
  max_error_rate?: number;
  max_latency_ms?: number;
  min_request_count?: number;
  health_evaluation_interval_seconds?: number;
  auto_rollback_enabled?: boolean;
  failure_threshold?: number;
  require_manual_approval?: boolean;
  cleanup_policy: string;
  grace_period_seconds?: number;
  initiated_by: string;
  health_checks_json: string;
}

interface PbCommand {
  update_id: string;
  actor: string;
  reason: string;
}

const emptyToUndefined = (text: string): string | undefined => (text === '' ? undefined : text);

/** The start-request fields (`parseStartRequest` names) of a Start message; unset means default. */
export function startFields(req: PbStart): Record<string, unknown> {
  return {
    artifactBase: req.artifact,
    version: req.version,
    instances: req.instances,
    strategy: emptyToUndefined(req.strategy),
    canaryPercentage: req.canary_percentage,
    steps: req.steps.length === 0 ? undefined : req.steps,
    batchSize: req.batch_size,
    batchDelaySeconds: req.batch_delay_seconds,
    maxUnavailablePercentage: req.max_unavailable_percentage,
    monitoringSeconds: req.monitoring_seconds,
    deployTimeoutSeconds: req.deploy_timeout_seconds,
    healthPreset: emptyToUndefined(req.health_preset),
    maxErrorRate: req.max_error_rate,
    maxLatencyMs: req.max_latency_ms,
    minRequestCount: req.min_request_count,
    healthEvaluationIntervalSeconds: req.health_evaluation_interval_seconds,
    autoRollbackEnabled: req.auto_rollback_enabled,
    failureThreshold: req.failure_threshold,
    requireManualApproval: req.require_manual_approval,
    cleanupPolicy: emptyToUndefined(req.cleanup_policy),
    gracePeriodSeconds: req.grace_period_seconds,
    initiatedBy: emptyToUndefined(req.initiated_by),
    healthChecks: req.health_checks_json === '' ? undefined : jsonField('health_checks_json', req.health_checks_json),
  };
}

function jsonField(field: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new InvalidArgumentError(field, `must be JSON: ${error instanceof Error ? error.message : String(error)}`);
  }
}

function pbActor(actor: Actor): { kind: string; name: string } {
  return { kind: actor.kind, name: actor.name };
}

function pbTransition(entry: LogEntry): Record<string, unknown> {
  return { step: entry.step, at_ms: entry.at, actor: pbActor(entry.actor), reason: entry.reason };
}

/** The wire form of a stored record. */
export function pbUpdate({ record, modRevision }: StoredUpdate): Record<string, unknown> {
  const rollback = record.rollback;
  return {
    id: record.id,
    artifact: record.base,
    old_version: record.oldVersion,
    new_version: record.newVersion,
    state: record.state,
    paused: record.paused,
    pause_reason: record.pauseReason ?? '',
    strategy: record.strategy.kind,
    routing: record.routing === null ? '' : formatRatio(record.routing),
    step_index: record.stepIndex,
    steps_total: recordSteps(record).length,
    target_instances: record.instances.target ?? 0,
    max_error_rate: record.thresholds.maxErrorRate,
    max_latency_ms: record.thresholds.maxLatencyMs,
    consecutive_breaches: record.healthGate.consecutiveBreaches,
    failure_threshold: record.healthGate.failureThreshold,
    auto_rollback_enabled: record.healthGate.autoRollbackEnabled,
    cleanup_policy: record.cleanup.policy,
    grace_cleanup_at_ms: record.deadlines.graceCleanupAt ?? 0,
    next_step_at_ms: record.deadlines.nextStepAt ?? 0,
    monitoring_until_ms: record.deadlines.monitoringUntil ?? 0,
    rollback:
      rollback === null
        ? null
        : { reason: rollback.reason, initiated_at_ms: rollback.initiatedAt, initiated_by: pbActor(rollback.initiatedBy), current_failures: rollback.currentFailures, rolled_back_instances: [...rollback.rolledBackInstances], rolled_back_count: rollback.rolledBackCount },
    transitions: record.log.map(pbTransition),
    initiated_by: record.initiatedBy,
    created_at_ms: record.createdAt,
    updated_at_ms: record.updatedAt,
    revision: modRevision,
    record_json: JSON.stringify(record),
  };
}

function pbRelease(release: ReleaseRecord): Record<string, unknown> {
  return {
    revision: release.revision,
    artifact: release.base,
    version: release.version,
    previous_version: release.previousVersion,
    status: release.status,
    update_id: release.updateId,
    strategy: typeof release.settings.strategy === 'string' ? release.settings.strategy : '',
    settings_json: JSON.stringify(release.settings),
    started_at_ms: release.startedAt,
    finished_at_ms: release.finishedAt,
    duration_ms: release.finishedAt - release.startedAt,
    initiated_by: release.initiatedBy,
    reason: release.reason,
    rollback_of_revision: release.rollbackOfRevision ?? 0,
  };
}

function response(outcome: CommandOutcome | StoredUpdate, changed = true, detail = ''): Record<string, unknown> {
  return { update: pbUpdate(outcome), changed: 'changed' in outcome ? outcome.changed : changed, detail: 'step' in outcome ? outcome.step : detail };
}

function requireArtifact(text: string): ArtifactBase {
  return requireArtifactBase(text, 'artifact');
}

/** The transition-log entries `record` has that `previous` did not (by the count ever written). */
export function newEntries(previous: UpdateRecord | undefined, record: UpdateRecord): LogEntry[] {
  const written = (r: UpdateRecord): number => r.logDropped + r.log.length;
  const count = previous === undefined ? record.log.length : Math.max(0, written(record) - written(previous));
  return record.log.slice(Math.max(0, record.log.length - count));
}

function routingJson(value: string): { updateId?: unknown; oldVersion?: unknown; newVersion?: unknown; newWeight?: unknown; oldWeight?: unknown } | undefined {
  try {
    const json: unknown = JSON.parse(value);
    return typeof json === 'object' && json !== null && !Array.isArray(json) ? json : undefined;
  } catch {
    return undefined;
  }
}

function parsed(value: string | undefined): UpdateRecord | undefined {
  if (value === undefined) return undefined;
  const result = parseUpdateRecord(value);
  return result.ok ? result.value : undefined;
}

/** The cutover.v1.RollingUpdates service over one node's port. */
export function updatesService(options: UpdatesServiceOptions): UntypedServiceImplementation {
  const { port } = options;
  const ops = new UpdateOperations({ port, wallClockMs: options.wallClockMs, nodeDownAfterMs: options.nodeDownAfterMs, nodeInstancesMax: options.nodeInstancesMax });

  const command = (apply: (record: UpdateRecord, o: CommandOptions) => CommandResult) =>
    unary(async (req: PbCommand) => {
      const actor: Actor = { kind: 'user', name: req.actor === '' ? 'anonymous' : req.actor };
      const outcome = await ops.command(req.update_id, (record, nowMs) => apply(record, { actor, nowMs, ...(req.reason === '' ? {} : { reason: req.reason }) }));
      return response(outcome);
    });

  /** A version's figures with `collectedAt` moved from the aggregator's clock to the wall clock. */
  const pbHealth = (version: string, health: VersionHealth | undefined): Record<string, unknown> => {
    if (health === undefined) return { version, request_count: 0, error_count: 0, error_rate: 0, avg_latency_ms: 0, p99_latency_ms: 0, collected_at_ms: 0 };
    const collectedAt = Math.round(options.wallClockMs() - (options.clock.nowMs() - health.collectedAt));
    return { version, request_count: health.requestCount, error_count: health.errorCount, error_rate: health.errorRate, avg_latency_ms: health.avgLatencyMs, p99_latency_ms: health.p99LatencyMs, collected_at_ms: collectedAt };
  };

  return {
    Start: unary(async (req: PbStart) => response(await ops.start(startFields(req)))),
    SetRouting: unary(async (req: PbCommand & { ratio: string }) => {
      const ratio = parseRatio(req.ratio);
      const actor: Actor = { kind: 'user', name: req.actor === '' ? 'anonymous' : req.actor };
      return response(await ops.command(req.update_id, (record, nowMs) => setRouting(record, ratio, { actor, nowMs, ...(req.reason === '' ? {} : { reason: req.reason }) })));
    }),
    Get: unary(async (req: { update_id: string }) => response(await ops.get(req.update_id), false)),
    List: unary(async (req: { artifact: string; state: string; all: boolean }) => {
      const filter = { ...(req.artifact === '' ? {} : { base: requireArtifact(req.artifact) }), ...(req.state === '' ? {} : { state: requireState(req.state) }), all: req.all };
      const { updates, revision } = await ops.list(filter);
      return { updates: updates.map(pbUpdate), revision };
    }),
    Health: unary(async (req: { update_id: string }) => {
      if (!port.isLeader()) {
        const leader = options.leader();
        throw new NotLeaderError(leader.id, 'update health is aggregated by the leader; ask it', leader.address);
      }
      const { record } = await ops.get(req.update_id);
      const windowMs = healthWindowMs(record, options.healthWindowMsMax);
      const snapshot = (version: string): VersionHealth | undefined => options.health.snapshot(record.base, version, { windowMs });
      const [oldHealth, newHealth] = [snapshot(record.oldVersion), snapshot(record.newVersion)];
      // Instances failing their health checks count as the gate counts them (a breach without traffic).
      const instances = await port.range(INSTANCE_PREFIX, { serializable: true });
      const failing = instanceFacts(instances.kvs, record.base, record.newVersion).unhealthy ?? [];
      const evaluation = evaluateHealth(record, newHealth, options.wallClockMs(), MONITORED_STATES.includes(record.state) ? failing : []);
      return {
        update_id: record.id,
        old_version: pbHealth(record.oldVersion, oldHealth),
        new_version: pbHealth(record.newVersion, newHealth),
        window_ms: windowMs,
        verdict: evaluation.verdict,
        reasons: [...evaluation.reasons],
        collected_at_ms: options.wallClockMs(),
      };
    }),
    Complete: command(completeUpdate),
    Rollback: command(rollbackUpdate),
    Pause: command(pauseUpdate),
    Resume: command(resumeUpdate),
    Cancel: command(cancelUpdate),
    Promote: command(promoteUpdate),
    Approve: unary(async (req: PbCommand & { step_index?: number }) => {
      const actor: Actor = { kind: 'user', name: req.actor === '' ? 'anonymous' : req.actor };
      const outcome = await ops.command(req.update_id, (record, nowMs) =>
        approveStep(record, { actor, nowMs, ...(req.reason === '' ? {} : { reason: req.reason }), ...(req.step_index === undefined ? {} : { stepIndex: req.step_index }) }),
      );
      return response(outcome);
    }),
    History: unary(async (req: { artifact: string }) => ({ releases: (await ops.history(requireArtifact(req.artifact))).map(pbRelease) })),
    Statistics: unary(async (req: { artifact: string }) => {
      const stats = await ops.statistics(requireArtifact(req.artifact));
      return { artifact: stats.base, total: stats.total, successful: stats.successful, failed: stats.failed, cancelled: stats.cancelled, success_rate: stats.successRate, average_duration_seconds: stats.averageDurationSeconds };
    }),
    RollbackTo: unary(async (req: { artifact: string; target?: 'revision' | 'last_successful'; revision: number; last_successful: boolean; initiated_by: string; reason: string }) => {
      const base = requireArtifact(req.artifact);
      let target: { revision: number } | { lastSuccessful: true };
      if (req.target === 'revision') target = { revision: req.revision };
      else if (req.target === 'last_successful' && req.last_successful) target = { lastSuccessful: true };
      else throw new InvalidArgumentError('target', 'must name a revision (revision: N) or ask for last_successful: true');
      if ('revision' in target && target.revision < 1) throw new InvalidArgumentError('revision', `must be a revision number from History (1 or more), got ${target.revision}`);
      const started = await ops.rollbackTo(base, target, { ...(req.initiated_by === '' ? {} : { initiatedBy: req.initiated_by }), ...(req.reason === '' ? {} : { reason: req.reason }) });
      return response(started, true, `rolling back to revision ${started.target.revision} (${started.target.version})`);
    }),
    Watch: (call: ServerWritableStream<{ from_revision: number; update_id: string; artifact: string }, unknown>) => watch(port, call, options.watchBufferBytesMax ?? 8 * 1024 * 1024),
  };
}

/**
 * Streams transitions and routing changes. Past events (from `from_revision`) come from both
 * prefixes' histories and are sent in revision order; live ones in the order this node applies them.
 */
function watch(port: ClusterPort, call: ServerWritableStream<{ from_revision: number; update_id: string; artifact: string }, unknown>, bufferBytesMax: number): void {
  const { from_revision: fromRevision, update_id: updateId } = call.request;
  let cancels: (() => void)[] = [];
  let ended = false;
  const end = (): void => {
    for (const cancel of cancels) cancel();
    cancels = [];
  };
  const fail = (error: Error & { code?: number }): void => {
    if (ended) return;
    ended = true;
    end();
    // grpc-js sends the status from the stream's 'error' handler.
    call.emit('error', error);
  };
  call.on('cancelled', end);
  call.on('close', end);
  let artifact: ArtifactBase | undefined;
  try {
    artifact = call.request.artifact === '' ? undefined : requireArtifactBase(call.request.artifact, 'artifact');
  } catch (error) {
    fail(Object.assign(new Error(error instanceof Error ? error.message : String(error)), toServiceError(error)));
    return;
  }
  const wanted = (id: string, base: string): boolean => (updateId === '' || id === updateId) && (artifact === undefined || base === artifact);

  const toMessages = (events: readonly WatchEvent[]): { revision: number; message: Record<string, unknown> }[] => {
    const out: { revision: number; message: Record<string, unknown> }[] = [];
    for (const event of events) {
      if (event.kv.key.startsWith(UPDATE_PREFIX)) {
        const record = event.type === 'put' ? parsed(event.kv.value) : undefined;
        if (record === undefined || !wanted(record.id, record.base)) continue;
        for (const entry of newEntries(parsed(event.prev?.value), record)) {
          out.push({ revision: event.revision, message: { revision: event.revision, kind: 'TRANSITION', update_id: record.id, artifact: record.base, state: record.state, transition: pbTransition(entry), routing: null } });
        }
        continue;
      }
      const base = parseVersionRoutingKey(event.kv.key);
      const routing = event.type === 'put' ? routingJson(event.kv.value) : undefined;
      if (event.type === 'put' && routing === undefined) continue; // unreadable: the routing table ignores it too
      const id = typeof routing?.updateId === 'string' ? routing.updateId : '';
      if (base === undefined || (updateId !== '' && id !== updateId) || (artifact !== undefined && base !== artifact)) continue;
      const change = {
        artifact: base,
        update_id: id,
        old_version: typeof routing?.oldVersion === 'string' ? routing.oldVersion : '',
        new_version: typeof routing?.newVersion === 'string' ? routing.newVersion : '',
        ratio: routing === undefined ? '' : `${String(routing.newWeight)}:${String(routing.oldWeight)}`,
      };
      out.push({ revision: event.revision, message: { revision: event.revision, kind: 'ROUTING', update_id: id, artifact: base, state: '', transition: null, routing: change } });
    }
    return out;
  };

  let replay: { revision: number; message: Record<string, unknown> }[] | undefined = [];
  const send = (events: readonly WatchEvent[]): void => {
    if (ended) return;
    const messages = toMessages(events);
    if (replay !== undefined) {
      replay.push(...messages);
      return;
    }
    if (call.writableLength > bufferBytesMax) {
      fail(Object.assign(new Error(`watcher is more than ${bufferBytesMax} bytes behind; watch again from a later revision`), { code: status.RESOURCE_EXHAUSTED }));
      return;
    }
    for (const { message } of messages) call.write(message);
  };
  try {
    cancels.push(port.watch(UPDATE_PREFIX, fromRevision, send));
    cancels.push(port.watch(VERSION_ROUTING_PREFIX, fromRevision, send));
  } catch (error) {
    fail(Object.assign(new Error(error instanceof Error ? error.message : String(error)), toServiceError(error)));
    return;
  }
  const past = replay.sort((a, b) => a.revision - b.revision);
  replay = undefined;
  for (const { message } of past) call.write(message);
}
