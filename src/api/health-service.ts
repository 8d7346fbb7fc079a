/**
 * `cutover.v1.Health`: the health-check results of slice instances across the cluster. Each node
 * keeps its own raw results (a bounded local store, never replicated); a node asked for the
 * cluster's answers from its store and asks every other member for theirs (`local_only`), each
 * call bounded by `peerTimeoutMs`. A member that does not answer in time is named in
 * `unreachable` and the answer is given without it: a health view must not hang on a sick node.
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import path from 'node:path';
import { SUMMARY_BUCKETS_MAX, summarize, type VersionTrend } from '../health/summary.ts';
import type { CheckStatus, CheckType, HealthResultsStore, StoredResult } from '../health/types.ts';
import type { MemberActivity } from '../node/cluster-port.ts';
import { deadlineIn } from '../platform/wall-clock.ts';
import { requireArtifactBase, requireSemVer } from '../slices/keys.ts';
import { InvalidArgumentError } from '../util/errors.ts';
import { LOADER_OPTIONS, PROTO_ROOT } from './protos.ts';
import { unary } from './kv-service.ts';

export const HEALTH_PROTO_FILE = 'cutover/v1/health.proto';
export const HEALTH_SERVICE_NAME = 'cutover.v1.Health';

export const HEALTH_RESULTS_LIMIT_DEFAULT = 100;
export const HEALTH_RESULTS_LIMIT_MAX = 10_000;
export const TREND_BUCKET_SECONDS_DEFAULT = 60;
export const TREND_BUCKETS_DEFAULT = 30;
export const TREND_BUCKETS_MAX = SUMMARY_BUCKETS_MAX;
/** Results read per node for a summary. */
const SUMMARY_RESULTS_PER_NODE_MAX = 10_000;

export interface HealthServiceOptions {
  readonly nodeId: number;
  /** This node's results. */
  readonly store: HealthResultsStore;
  /** The members and their addresses (the port that serves this API). */
  readonly members: () => readonly MemberActivity[];
  readonly wallClockMs: () => number;
  /** Bound on asking one member. Default 2 s. */
  readonly peerTimeoutMs?: number;
}

interface PbResultsRequest {
  artifact: string;
  version: string;
  instance_id: string;
  since_ms: number;
  limit: number;
  local_only: boolean;
}

interface PbCheckResult {
  artifact: string;
  version: string;
  instance_id: string;
  node_id: number;
  check: string;
  type: string;
  status: string;
  at_ms: number;
  duration_ms: number;
  attempts: number;
  detail: string;
}

interface PbUnreachable {
  node_id: number;
  address: string;
  error: string;
}

interface PbResultsResponse {
  results: PbCheckResult[];
  unreachable: PbUnreachable[];
}

interface PbSummaryRequest {
  artifact: string;
  version: string;
  bucket_seconds: number;
  buckets: number;
}

function toPb(result: StoredResult): PbCheckResult {
  return {
    artifact: result.base,
    version: result.version,
    instance_id: result.instanceId,
    node_id: result.nodeId,
    check: result.check,
    type: result.type,
    status: result.status,
    at_ms: result.at,
    duration_ms: result.durationMs,
    attempts: result.attempts,
    detail: result.detail,
  };
}

function fromPb(pb: PbCheckResult): StoredResult {
  return {
    base: pb.artifact,
    version: pb.version,
    instanceId: pb.instance_id,
    nodeId: pb.node_id,
    check: pb.check,
    type: pb.type as CheckType,
    status: pb.status as CheckStatus,
    at: pb.at_ms,
    durationMs: pb.duration_ms,
    attempts: pb.attempts,
    detail: pb.detail,
  };
}

interface Query {
  readonly base?: string;
  readonly version?: string;
  readonly instanceId?: string;
  readonly sinceMs?: number;
  readonly limit: number;
}

function readQuery(request: PbResultsRequest): Query {
  const limit = request.limit === 0 ? HEALTH_RESULTS_LIMIT_DEFAULT : request.limit;
  if (limit > HEALTH_RESULTS_LIMIT_MAX) throw new InvalidArgumentError('limit', `must be at most ${HEALTH_RESULTS_LIMIT_MAX}`);
  return {
    ...(request.artifact === '' ? {} : { base: requireArtifactBase(request.artifact, 'artifact') }),
    ...(request.version === '' ? {} : { version: requireSemVer(request.version, 'version').text }),
    ...(request.instance_id === '' ? {} : { instanceId: request.instance_id }),
    ...(request.since_ms === 0 ? {} : { sinceMs: request.since_ms }),
    limit,
  };
}

type HealthClient = grpc.Client & {
  Results(request: PbResultsRequest, options: grpc.CallOptions, callback: (error: grpc.ServiceError | null, response?: PbResultsResponse) => void): grpc.ClientUnaryCall;
};

let clientConstructor: grpc.ServiceClientConstructor | undefined;
function healthClientConstructor(): grpc.ServiceClientConstructor {
  if (clientConstructor === undefined) {
    const definition = grpc.loadPackageDefinition(protoLoader.loadSync(path.join(PROTO_ROOT, HEALTH_PROTO_FILE), LOADER_OPTIONS));
    clientConstructor = ((definition['cutover'] as grpc.GrpcObject)['v1'] as grpc.GrpcObject)['Health'] as grpc.ServiceClientConstructor;
  }
  return clientConstructor;
}

/** The service and a `close()` for the clients it keeps to the other members. */
export function healthService(options: HealthServiceOptions): { readonly implementation: grpc.UntypedServiceImplementation; close(): void } {
  const peerTimeoutMs = options.peerTimeoutMs ?? 2000;
  const clients = new Map<string, HealthClient>();

  const clientOf = (address: string): HealthClient => {
    let client = clients.get(address);
    if (client === undefined) {
      const Client = healthClientConstructor();
      client = new Client(address, grpc.credentials.createInsecure()) as unknown as HealthClient;
      clients.set(address, client);
    }
    return client;
  };

  const askMember = (member: MemberActivity, request: PbResultsRequest): Promise<PbResultsResponse> =>
    new Promise((resolve, reject) => {
      clientOf(member.address).Results({ ...request, local_only: true }, { deadline: deadlineIn(peerTimeoutMs) }, (error, response) => {
        if (error !== null || response === undefined) reject(error ?? new Error('no answer'));
        else resolve(response);
      });
    });

  /** This node's results and every other member's (each at most `query.limit`), newest first, at most `mergedLimit`. */
  const clusterResults = async (request: PbResultsRequest, query: Query, mergedLimit = query.limit): Promise<{ results: StoredResult[]; unreachable: PbUnreachable[] }> => {
    const local = await options.store.recent(query);
    if (request.local_only) return { results: local, unreachable: [] };
    const others = options.members().filter((m) => m.id !== options.nodeId);
    const unreachable: PbUnreachable[] = [];
    const answers = await Promise.all(
      others.map((member) =>
        askMember(member, request).then(
          (response) => response.results.map(fromPb),
          (error: unknown) => {
            unreachable.push({ node_id: member.id, address: member.address, error: error instanceof Error ? error.message : String(error) });
            return [];
          },
        ),
      ),
    );
    const results = [...local, ...answers.flat()].sort((a, b) => b.at - a.at || a.instanceId.localeCompare(b.instanceId) || a.check.localeCompare(b.check));
    return { results: results.slice(0, mergedLimit), unreachable: unreachable.sort((a, b) => a.node_id - b.node_id) };
  };

  const implementation: grpc.UntypedServiceImplementation = {
    Results: unary(async (request: PbResultsRequest): Promise<PbResultsResponse> => {
      const { results, unreachable } = await clusterResults(request, readQuery(request));
      return { results: results.map(toPb), unreachable };
    }),
    Summary: unary(async (request: PbSummaryRequest) => {
      if (request.artifact === '') throw new InvalidArgumentError('artifact', 'is required (groupId:artifactId)');
      const base = requireArtifactBase(request.artifact, 'artifact');
      const version = request.version === '' ? undefined : requireSemVer(request.version, 'version').text;
      const bucketSeconds = request.bucket_seconds === 0 ? TREND_BUCKET_SECONDS_DEFAULT : request.bucket_seconds;
      const buckets = request.buckets === 0 ? TREND_BUCKETS_DEFAULT : request.buckets;
      if (buckets > TREND_BUCKETS_MAX) throw new InvalidArgumentError('buckets', `must be at most ${TREND_BUCKETS_MAX}`);
      if (bucketSeconds > 86_400) throw new InvalidArgumentError('bucket_seconds', 'must be at most 86400 (one day)');
      const nowMs = options.wallClockMs();
      const bucketMs = bucketSeconds * 1000;
      const sinceMs = Math.max(1, nowMs - bucketMs * buckets);
      const pbRequest: PbResultsRequest = { artifact: base, version: version ?? '', instance_id: '', since_ms: sinceMs, limit: SUMMARY_RESULTS_PER_NODE_MAX, local_only: false };
      const { results, unreachable } = await clusterResults(pbRequest, { base, ...(version === undefined ? {} : { version }), sinceMs, limit: SUMMARY_RESULTS_PER_NODE_MAX }, Number.POSITIVE_INFINITY);
      return { versions: summarize(results, { bucketMs, nowMs, buckets }).map(trendToPb), unreachable };
    }),
  };

  return {
    implementation,
    close: () => {
      for (const client of clients.values()) client.close();
      clients.clear();
    },
  };
}

function trendToPb(trend: VersionTrend): Record<string, unknown> {
  return {
    artifact: trend.artifact,
    version: trend.version,
    buckets: trend.buckets.map((b) => ({
      start_ms: b.startMs,
      success: b.success,
      failure: b.failure,
      timeout: b.timeout,
      error: b.error,
      success_rate: b.successRate,
      instances: b.instances,
      p50_duration_ms: b.p50DurationMs,
      max_duration_ms: b.maxDurationMs,
    })),
    instances: trend.instances.map((i) => ({ instance_id: i.instanceId, node_id: i.nodeId, check: i.check, status: i.status, at_ms: i.atMs, detail: i.detail })),
  };
}
