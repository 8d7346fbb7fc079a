import type { ServerReadableStream, sendUnaryData, UntypedServiceImplementation } from '@grpc/grpc-js';
import type { Invoker } from '../invoker/invoker.ts';
import { parseInstanceRecord } from '../invoker/records.ts';
import type { ClusterPort } from '../node/cluster-port.ts';
import { getArtifactMeta, listArtifacts, publishArtifact, type ArtifactMeta } from '../slices/artifact-store.ts';
import { formatBlueprint, parseBlueprint, requireBlueprint, type BlueprintRecord } from '../slices/blueprints.ts';
import {
  ASSIGNMENT_PREFIX,
  BLUEPRINT_PREFIX,
  INSTANCE_PREFIX,
  blueprintKey,
  instanceKeyOfAssignment,
  parseAssignmentKey,
  parseBlueprintKey,
  parseInstanceKey,
  requireArtifactBase,
  requireSemVer,
  versionRoutingKey,
  type ArtifactBase,
} from '../slices/keys.ts';
import { CutoverError, InvalidArgumentError } from '../util/errors.ts';
import { toServiceError } from '../transport/grpc-errors.ts';
import { eventId, eventWrite, type EventAction, type EventActor } from '../events/event.ts';
import { eventSource } from '../events/source.ts';
import type { Operation } from '../kv/types.ts';
import { unary } from './kv-service.ts';
import { requestActor, unaryWithMetadata } from './request-actor.ts';

export interface SlicesServiceOptions {
  readonly port: ClusterPort;
  readonly invoker: Invoker;
  /** Largest artifact accepted by Publish, in bytes. */
  readonly artifactBytesMax: number;
  /** Wall-clock milliseconds, stamped on published artifacts. */
  readonly wallClockMs: () => number;
}

interface PbBlueprint {
  artifact: string;
  version: string;
  instances: number;
  per_node_max: number;
}

function pbBlueprint(base: string, version: string, record: BlueprintRecord): PbBlueprint {
  return { artifact: base, version, instances: record.instances, per_node_max: record.perNodeMax ?? 0 };
}

function pbArtifact(meta: ArtifactMeta, blueprint: BlueprintRecord | undefined): Record<string, unknown> {
  return {
    artifact: `${meta.groupId}:${meta.artifactId}`,
    version: meta.version,
    sha256: meta.sha256,
    size: meta.size,
    methods: [...meta.manifest.methods],
    min_compatible_version: meta.manifest.minCompatibleVersion ?? '',
    published_at_ms: meta.publishedAt,
    desired_instances: blueprint?.instances ?? 0,
    deployed: blueprint !== undefined,
  };
}

/** An optional artifact filter: empty means all. */
function optionalBase(text: string | undefined): ArtifactBase | undefined {
  return text === undefined || text === '' ? undefined : requireArtifactBase(text);
}

function requireCount(instances: unknown): number {
  return requireBlueprint({ instances }).instances;
}

/**
 * The cutover.v1.Slices service: artifacts, blueprints, instances and single calls. Publish,
 * Deploy, Scale and Undeploy write their audit event (`slice.published`, `slice.deployed`,
 * `slice.scaled`, `slice.undeployed`) in the same transaction as the change; the operator is the
 * `x-cutover-actor` metadata (see request-actor.ts). Ids: `{at}-{verb}.{artifact}:{version}.r{n}`
 * with n the store revision this node had applied when it read what the change compares, so a
 * retried transaction puts the same key.
 */
export function slicesService(options: SlicesServiceOptions): UntypedServiceImplementation {
  const { port, invoker } = options;

  /** The put of a slice event, stamped now. */
  function sliceEvent(action: EventAction, actor: EventActor, target: { base: string; version?: string }, reason: string, details: Record<string, unknown>): Operation {
    const at = options.wallClockMs();
    const verb = action.slice('slice.'.length);
    const source = eventSource(verb, target.version === undefined ? target.base : `${target.base}:${target.version}`, `r${port.revision()}`);
    return eventWrite({ id: eventId(at, source), at, actor, action, target: { artifact: target.base, ...(target.version === undefined ? {} : { version: target.version }) }, reason, details });
  }

  /** Blueprints by `base/version`, read linearizably. */
  async function blueprints(base?: ArtifactBase): Promise<Map<string, { base: ArtifactBase; version: string; record: BlueprintRecord; modRevision: number }>> {
    const { kvs } = await port.range(base === undefined ? BLUEPRINT_PREFIX : `${BLUEPRINT_PREFIX}${base}/`);
    const out = new Map<string, { base: ArtifactBase; version: string; record: BlueprintRecord; modRevision: number }>();
    for (const kv of kvs) {
      const key = parseBlueprintKey(kv.key);
      const record = parseBlueprint(kv.value);
      if (key !== undefined && record.ok) out.set(`${key.base}/${key.version.text}`, { base: key.base, version: key.version.text, record: record.value, modRevision: kv.modRevision });
    }
    return out;
  }

  return {
    Publish: (call: ServerReadableStream<{ chunk: Buffer; expected_sha256: string }, unknown>, callback: sendUnaryData<unknown>): void => {
      const chunks: Buffer[] = [];
      let size = 0;
      let expectedSha256: string | undefined;
      let failed = false;
      const fail = (error: unknown): void => {
        if (failed) return;
        failed = true;
        call.destroy();
        callback(toServiceError(error));
      };
      call.on('data', (message: { chunk: Buffer; expected_sha256: string }) => {
        if (failed) return;
        if (chunks.length === 0 && message.expected_sha256 !== '') expectedSha256 = message.expected_sha256;
        size += message.chunk.length;
        if (size > options.artifactBytesMax) return fail(new CutoverError('ARTIFACT_TOO_LARGE', `the artifact exceeds the limit of ${options.artifactBytesMax} bytes`));
        chunks.push(message.chunk);
      });
      call.on('error', fail);
      call.on('end', () => {
        if (failed) return;
        const bytes = Buffer.concat(chunks, size);
        let actor: EventActor;
        try {
          actor = requestActor(call.metadata);
        } catch (error) {
          fail(error);
          return;
        }
        const publishWrites = (meta: ArtifactMeta): Operation[] => {
          const base = `${meta.groupId}:${meta.artifactId}`;
          return [sliceEvent('slice.published', actor, { base, version: meta.version }, `published ${base}:${meta.version} (${meta.size} bytes)`, { sha256: meta.sha256, size: meta.size, methods: [...meta.manifest.methods] })];
        };
        publishArtifact(port, bytes, { maxBytes: options.artifactBytesMax, nowMs: options.wallClockMs(), publishWrites, ...(expectedSha256 === undefined ? {} : { expectedSha256 }) }).then(
          async ({ meta, created }) => {
            const blueprint = (await blueprints(`${meta.groupId}:${meta.artifactId}` as ArtifactBase)).get(`${meta.groupId}:${meta.artifactId}/${meta.version}`);
            callback(null, { artifact: pbArtifact(meta, blueprint?.record), created });
          },
          (error: unknown) => {
            failed = true;
            callback(toServiceError(error));
          },
        );
      });
    },

    List: unary(async (req: { artifact: string }) => {
      const base = optionalBase(req.artifact);
      const [metas, deployed] = await Promise.all([listArtifacts(port, base), blueprints(base)]);
      return { versions: metas.map((meta) => pbArtifact(meta, deployed.get(`${meta.groupId}:${meta.artifactId}/${meta.version}`)?.record)) };
    }),

    Deploy: unaryWithMetadata(async (req: { artifact: string; version: string; instances: number; per_node_max: number }, metadata) => {
      const actor = requestActor(metadata);
      const base = requireArtifactBase(req.artifact, 'artifact');
      const version = requireSemVer(req.version, 'version').text;
      const record = requireBlueprint({ instances: req.instances, ...(req.per_node_max > 0 ? { perNodeMax: req.per_node_max } : {}) });
      if (record.instances === 0) throw new InvalidArgumentError('instances', 'must be at least 1 to deploy');
      if ((await getArtifactMeta(port, base, version)) === undefined) throw new CutoverError('ARTIFACT_NOT_FOUND', `${base}:${version} is not published; publish it first`);
      const existing = [...(await blueprints(base)).values()];
      const same = existing.find((b) => b.version === version);
      if (same !== undefined) throw new CutoverError('ALREADY_DEPLOYED', `${base}:${version} is already deployed with ${same.record.instances} instance(s); use Scale to change the count`);
      if (existing.length > 0) {
        throw new CutoverError('VERSION_RUNNING', `${base} already runs ${existing.map((b) => b.version).join(', ')}; move it to ${version} with a rolling update`);
      }
      const key = blueprintKey(base, version);
      // The compare makes a concurrent Deploy of the same version fail instead of overwriting.
      const event = sliceEvent('slice.deployed', actor, { base, version }, `deployed ${base}:${version} with ${record.instances} instance(s)`, { instances: record.instances, ...(record.perNodeMax === undefined ? {} : { perNodeMax: record.perNodeMax }) });
      const result = await port.txn([{ key, target: 'exists', op: '=', value: false }], [{ type: 'put', key, value: formatBlueprint(record) }, event]);
      if (!result.succeeded) throw new CutoverError('ALREADY_DEPLOYED', `${base}:${version} was deployed concurrently`);
      return { blueprint: pbBlueprint(base, version, record), revision: result.revision };
    }),

    Scale: unaryWithMetadata(async (req: { artifact: string; version: string; instances: number }, metadata) => {
      const actor = requestActor(metadata);
      const base = requireArtifactBase(req.artifact, 'artifact');
      const version = requireSemVer(req.version, 'version').text;
      const instances = requireCount(req.instances);
      const current = (await blueprints(base)).get(`${base}/${version}`);
      if (current === undefined) throw new CutoverError('NOT_DEPLOYED', `${base}:${version} is not deployed`);
      const record: BlueprintRecord = { ...current.record, instances };
      const key = blueprintKey(base, version);
      const event = sliceEvent('slice.scaled', actor, { base, version }, `scaled ${base}:${version} from ${current.record.instances} to ${instances} instance(s)`, { from: current.record.instances, to: instances });
      const result = await port.txn([{ key, target: 'modRevision', op: '=', value: current.modRevision }], [{ type: 'put', key, value: formatBlueprint(record) }, event]);
      if (!result.succeeded) throw new CutoverError('CONFLICT', `${base}:${version}'s blueprint changed concurrently; retry`);
      return { blueprint: pbBlueprint(base, version, record), revision: result.revision };
    }),

    Undeploy: unaryWithMetadata(async (req: { artifact: string; version: string }, metadata) => {
      const actor = requestActor(metadata);
      const base = requireArtifactBase(req.artifact, 'artifact');
      const version = req.version === '' ? undefined : requireSemVer(req.version, 'version').text;
      const all = [...(await blueprints(base)).values()];
      const removed = version === undefined ? all : all.filter((b) => b.version === version);
      if (removed.length === 0) throw new CutoverError('NOT_DEPLOYED', `${base}${version === undefined ? '' : `:${version}`} is not deployed`);
      const everything = removed.length === all.length;
      const versions = removed.map((b) => b.version);
      const event = sliceEvent('slice.undeployed', actor, { base, ...(version === undefined ? {} : { version }) }, `undeployed ${base} ${versions.join(', ')}`, { versions, routingRemoved: everything });
      const result = await port.txn(
        removed.map((b) => ({ key: blueprintKey(base, b.version), target: 'modRevision' as const, op: '=' as const, value: b.modRevision })),
        [...removed.map((b) => ({ type: 'delete' as const, key: blueprintKey(base, b.version) })), ...(everything ? [{ type: 'delete' as const, key: versionRoutingKey(base) }] : []), event],
      );
      if (!result.succeeded) throw new CutoverError('CONFLICT', `${base}'s blueprints changed concurrently; retry`);
      return { removed: removed.map((b) => pbBlueprint(base, b.version, b.record)), revision: result.revision };
    }),

    Instances: unary(async (req: { artifact: string }) => {
      const base = optionalBase(req.artifact);
      const [records, assignments] = await Promise.all([port.range(INSTANCE_PREFIX), port.range(ASSIGNMENT_PREFIX)]);
      const assigned = new Set(assignments.kvs.map((kv) => instanceKeyOfAssignment(kv.key)));
      const reported = new Set<string>();
      const instances = [];
      for (const kv of records.kvs) {
        const parts = parseInstanceKey(kv.key);
        if (parts === undefined || (base !== undefined && parts.base !== base)) continue;
        reported.add(kv.key);
        const parsed = parseInstanceRecord(kv.value, parts.nodeId);
        const reason = parsed.ok ? (JSON.parse(kv.value) as { reason?: unknown }).reason : undefined;
        instances.push({
          artifact: parts.base,
          version: parts.version.text,
          instance_id: parts.instanceId,
          node_id: parts.nodeId,
          address: parsed.ok ? parsed.value.address : '',
          state: parsed.ok ? parsed.value.state : 'MALFORMED',
          reason: typeof reason === 'string' ? reason : parsed.ok ? '' : parsed.reason,
          assigned: assigned.has(kv.key),
        });
      }
      const pending = [];
      for (const kv of assignments.kvs) {
        const parts = parseAssignmentKey(kv.key);
        if (parts === undefined || (base !== undefined && parts.base !== base) || reported.has(instanceKeyOfAssignment(kv.key))) continue;
        pending.push({ artifact: parts.base, version: parts.version.text, instance_id: parts.instanceId, node_id: parts.nodeId, address: '', state: 'ASSIGNED', reason: '', assigned: true });
      }
      return { instances, pending, revision: Math.max(records.revision, assignments.revision) };
    }),

    Invoke: unary(async (req: { artifact: string; method: string; payload_json: string; timeout_ms: number }) => {
      let payload: unknown;
      try {
        payload = req.payload_json === '' ? {} : JSON.parse(req.payload_json);
      } catch (error) {
        throw new CutoverError('INVALID_PAYLOAD', `payload_json is not JSON: ${(error as Error).message}`);
      }
      const reply = await invoker.invoke(req.artifact, req.method, payload, req.timeout_ms > 0 ? { timeoutMs: req.timeout_ms } : undefined);
      return { payload_json: JSON.stringify(reply ?? null) };
    }),
  };
}
