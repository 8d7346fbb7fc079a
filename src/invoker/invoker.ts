/**
 * The slice invoker: how every call reaches an instance. It asks the routing table for a version
 * and an instance (exact smooth weighted round-robin, then round-robin preferring local ones),
 * calls a local instance directly or a remote one over gRPC, retries once on another instance of
 * the same version when the request was certainly not sent, and records each call's outcome and
 * latency for the health gate.
 *
 * The same class serves a cluster node (with its local instances) and an embedded client (no
 * local instances, `localNodeId` 0): only the table's feed differs.
 */
import { parseArtifactBase, type ArtifactBase } from '../slices/keys.ts';
import type { Clock } from '../util/clock.ts';
import { CutoverError, InvalidArgumentError } from '../util/errors.ts';
import { nodeId, type NodeId } from '../util/ids.ts';
import type { RouteOk } from './decisions.ts';
import type { RemoteCaller } from './remote.ts';
import type { RoutingTable } from './routing-table.ts';

/** The instances this process hosts, as the invoker calls them. */
export interface LocalInstances {
  /**
   * Calls `method` on the instance stored under `instanceKey` (`instance/…`). Rejects with
   * INSTANCE_NOT_FOUND when this process does not run it, INSTANCE_NOT_ACTIVE when it is not
   * ACTIVE (both: the call did not start, the invoker may retry), UNKNOWN_METHOD, SLICE_ERROR or
   * INVOKE_DEADLINE_EXCEEDED (at `deadlineAt`, clock ms).
   */
  invoke(instanceKey: string, method: string, payload: unknown, deadlineAt: number): Promise<unknown>;
}

/** Where the invoker records each call (see `InvocationMetrics`). */
export interface CallRecorder {
  record(base: string, version: string, latencyMs: number, ok: boolean): void;
}

export interface InvokerOptions {
  readonly table: RoutingTable;
  /** The node this invoker runs on; 0 for an embedded client that hosts no instance. */
  readonly localNodeId: number;
  readonly remote: RemoteCaller;
  readonly local?: LocalInstances;
  readonly metrics?: CallRecorder;
  readonly clock: Clock;
  /** Deadline of a call that names none. Default 30 s. */
  readonly defaultTimeoutMs?: number;
}

export interface InvokeOptions {
  /** The call's deadline, from now. Default: the invoker's `defaultTimeoutMs`. */
  readonly timeoutMs?: number;
}

/** Longest deadline a caller may ask for: one day. */
export const INVOKE_TIMEOUT_MAX_MS = 24 * 60 * 60 * 1000;
/** Longest method name accepted. */
const METHOD_LENGTH_MAX = 128;
/** Validated artifact names kept, so the call path does not re-parse them. */
const BASE_CACHE_MAX = 1024;

/** Failures after which the request certainly did not reach the instance: retried once. */
const NOT_SENT_CODES = new Set(['CONNECT_FAILED', 'INSTANCE_NOT_FOUND', 'INSTANCE_NOT_ACTIVE']);

export class Invoker {
  private readonly table: RoutingTable;
  private readonly localNodeId: NodeId;
  private readonly remote: RemoteCaller;
  private readonly local: LocalInstances | undefined;
  private readonly metrics: CallRecorder | undefined;
  private readonly clock: Clock;
  private readonly defaultTimeoutMs: number;
  private readonly bases = new Map<string, ArtifactBase>();
  private retries = 0;

  constructor(options: InvokerOptions) {
    this.table = options.table;
    if (!Number.isSafeInteger(options.localNodeId) || options.localNodeId < 0) throw new InvalidArgumentError('localNodeId', 'must be a node id, or 0 for an embedded client');
    this.localNodeId = nodeId(options.localNodeId);
    this.remote = options.remote;
    this.local = options.local;
    this.metrics = options.metrics;
    this.clock = options.clock;
    this.defaultTimeoutMs = options.defaultTimeoutMs ?? 30_000;
    checkTimeout(this.defaultTimeoutMs, 'defaultTimeoutMs');
  }

  /**
   * Calls `method` of the artifact `groupId:artifactId` with `payload` (JSON-serialisable for
   * remote calls) and resolves with the instance's answer. Errors carry a code: INVALID_ARGUMENT,
   * UNKNOWN_SLICE, NO_ACTIVE_INSTANCE, UNKNOWN_METHOD, INVALID_PAYLOAD, INVOKE_DEADLINE_EXCEEDED,
   * SLICE_ERROR, CONNECT_FAILED (no instance could be reached), UNAVAILABLE_AFTER_SEND.
   */
  invoke(artifact: string, method: string, payload: unknown, options?: InvokeOptions): Promise<unknown> {
    const base = this.base(artifact);
    if (base === undefined) return Promise.reject(new InvalidArgumentError('artifact', `must be groupId:artifactId like org.example:greeter, got ${JSON.stringify(artifact)}`));
    if (typeof method !== 'string' || method.length === 0 || method.length > METHOD_LENGTH_MAX) {
      return Promise.reject(new InvalidArgumentError('method', `must be a non-empty string of at most ${METHOD_LENGTH_MAX} characters`));
    }
    const timeoutMs = options?.timeoutMs ?? this.defaultTimeoutMs;
    if (timeoutMs !== this.defaultTimeoutMs && !isTimeout(timeoutMs)) return Promise.reject(timeoutError(timeoutMs, 'timeoutMs'));
    const decision = this.table.route(base, this.localNodeId);
    if (!decision.ok) return Promise.reject(new CutoverError(decision.code, decision.message));
    const started = this.clock.nowMs();
    return this.send(decision, method, payload, started, started + timeoutMs, true);
  }

  /** Calls retried after a failure before sending (a status figure). */
  retryCount(): number {
    return this.retries;
  }

  private send(decision: RouteOk, method: string, payload: unknown, started: number, deadlineAt: number, mayRetry: boolean): Promise<unknown> {
    const call = this.dispatch(decision, method, payload, deadlineAt);
    return call.then(
      (reply) => {
        this.metrics?.record(decision.base, decision.version, this.clock.nowMs() - started, true);
        return reply;
      },
      (error: unknown) => {
        if (mayRetry && isNotSent(error)) {
          const retry = this.table.routeRetry(decision, this.localNodeId);
          if (retry.ok && this.clock.nowMs() < deadlineAt) {
            this.retries++;
            return this.send(retry, method, payload, started, deadlineAt, false);
          }
        }
        this.metrics?.record(decision.base, decision.version, this.clock.nowMs() - started, false);
        throw error;
      },
    );
  }

  private dispatch(decision: RouteOk, method: string, payload: unknown, deadlineAt: number): Promise<unknown> {
    const { instance } = decision;
    if (decision.local && this.local !== undefined) return this.local.invoke(instance.key, method, payload, deadlineAt);
    const timeoutMs = Math.max(1, deadlineAt - this.clock.nowMs());
    return this.remote.call(instance.address, { base: decision.base, version: instance.version, instanceId: instance.instanceId, method, payload }, timeoutMs);
  }

  private base(artifact: string): ArtifactBase | undefined {
    const cached = this.bases.get(artifact);
    if (cached !== undefined) return cached;
    const base = typeof artifact === 'string' ? parseArtifactBase(artifact) : undefined;
    if (base === undefined) return undefined;
    if (this.bases.size >= BASE_CACHE_MAX) this.bases.clear();
    this.bases.set(artifact, base);
    return base;
  }
}

function isNotSent(error: unknown): boolean {
  return error instanceof CutoverError && NOT_SENT_CODES.has(error.code);
}

function isTimeout(ms: unknown): boolean {
  return typeof ms === 'number' && Number.isFinite(ms) && ms > 0 && ms <= INVOKE_TIMEOUT_MAX_MS;
}

function timeoutError(ms: unknown, field: string): InvalidArgumentError {
  return new InvalidArgumentError(field, `must be a number of milliseconds in (0, ${INVOKE_TIMEOUT_MAX_MS}], got ${String(ms)}`);
}

function checkTimeout(ms: number, field: string): void {
  if (!isTimeout(ms)) throw timeoutError(ms, field);
}
