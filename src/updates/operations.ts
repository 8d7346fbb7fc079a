/**
 * What an operator does to rolling updates, over the `ClusterPort` (the gRPC service is a thin
 * layer over this): Start, the commands of `commands.ts`, RollbackTo a release revision, and the
 * reads (Get, List, History, Statistics). Works on any node: reads are linearizable, writes go
 * through the Raft log (a follower forwards them or answers NOT_LEADER, as the port does).
 *
 * Start checks what it can before writing (the validation of `validation.ts`, with the capacity
 * part only on the leader, whose view of the members means something) and refuses with the first
 * blocker's code; the controller validates again in VALIDATING, when the state may have changed.
 * The record and the `active-update/{base}` key are created by one transaction that requires the
 * key absent (or still holding the stale entry of a finished update, by its modRevision), so of two
 * concurrent Starts on one artifact one gets ALREADY_EXISTS naming the other's id. The same
 * transaction writes the `update.started` audit event (`update-events.ts`).
 *
 * Commands read the record, apply the pure command, and commit its `Commit` with `commitTxn` as
 * ONE transaction on the record's modRevision; a failed compare (the controller or another operator
 * moved the record) re-reads and retries, at most `commandAttemptsMax` times, then CONFLICT. A
 * command that finishes the update (Cancel) writes its release revision in the same transaction;
 * every command's audit events are in it too (`commitTxn`).
 */
import type { KeyValue } from '../kv/types.ts';
import type { ClusterPort } from '../node/cluster-port.ts';
import { ASSIGNMENT_PREFIX, BLUEPRINT_PREFIX, INSTANCE_PREFIX, requireArtifactBase, versionRoutingKey, type ArtifactBase } from '../slices/keys.ts';
import { CutoverError, InvalidArgumentError } from '../util/errors.ts';
import type { CommandResult } from './commands.ts';
import { commitTxn } from './decide.ts';
import { UPDATE_PREFIX, UPDATE_STATES, createUpdateRecord, formatUpdateRecord, isTerminal, parseUpdateRecord, requireUpdateId, updateKey, withLogEntry, type UpdateRecord, type UpdateState } from './record.ts';
import {
  activeUpdateKey,
  finishes,
  formatActiveUpdate,
  nextRevision,
  parseActiveUpdate,
  readReleases,
  releasesPrefix,
  releaseStatistics,
  rollbackTarget,
  terminalTxnParts,
  type ReleaseRecord,
  type ReleaseStatistics,
  type RollbackTarget,
} from './release.ts';
import { parseStartRequest, type StartRequest } from './request.ts';
import { updateEventWrites } from './update-events.ts';
import { UpdateValidationError, currentVersion, lookupArtifact, validateUpdate, type ArtifactLookup } from './validation.ts';

export interface UpdateOperationsOptions {
  readonly port: ClusterPort;
  /** Wall-clock epoch ms, stamped on records. */
  readonly wallClockMs: () => number;
  /** As the placement controller's, for the capacity check. */
  readonly nodeDownAfterMs: number;
  readonly nodeInstancesMax: number;
  /** Attempts of a command whose compare keeps failing (default 5). */
  readonly commandAttemptsMax?: number;
}

/** A record as stored, with the revision of its last change. */
export interface StoredUpdate {
  readonly record: UpdateRecord;
  readonly modRevision: number;
}

/** A command's outcome: the record after it, and whether it changed anything. */
export interface CommandOutcome extends StoredUpdate {
  readonly changed: boolean;
  /** What was committed, or why nothing was. */
  readonly step: string;
}

/** List filters; all optional. */
export interface ListFilter {
  readonly base?: ArtifactBase;
  readonly state?: UpdateState;
  /** Include finished updates (default: only active ones). */
  readonly all?: boolean;
}

/** Most records a List returns. */
export const LIST_MAX = 1000;

/** Parses a state filter; throws INVALID_ARGUMENT naming `state`. */
export function requireState(text: unknown): UpdateState {
  if (typeof text !== 'string' || !(UPDATE_STATES as readonly string[]).includes(text)) throw new InvalidArgumentError('state', `must be one of ${UPDATE_STATES.join(', ')}, got ${JSON.stringify(text)}`);
  return text as UpdateState;
}

/** An update id made from the artifact, the version and a KV revision: readable and, per artifact, unique. */
export function makeUpdateId(base: ArtifactBase, version: string, revision: number): string {
  const artifactId = base.slice(base.indexOf(':') + 1);
  const id = `${artifactId}-${version.replace(/[^A-Za-z0-9_.-]/g, '_')}-r${revision}`;
  return id.length <= 128 ? id : `${id.slice(0, 100)}-r${revision}`;
}

export class UpdateOperations {
  private readonly port: ClusterPort;
  private readonly wallClockMs: () => number;
  private readonly attemptsMax: number;

  constructor(private readonly options: UpdateOperationsOptions) {
    this.port = options.port;
    this.wallClockMs = options.wallClockMs;
    this.attemptsMax = options.commandAttemptsMax ?? 5;
    if (!Number.isSafeInteger(this.attemptsMax) || this.attemptsMax < 1) throw new InvalidArgumentError('commandAttemptsMax', 'must be a positive integer');
  }

  /** The stored record; UPDATE_NOT_FOUND when there is none, UPDATE_CORRUPT when unreadable. */
  async get(id: string): Promise<StoredUpdate> {
    const key = updateKey(requireUpdateId(id));
    const kv = await this.port.get(key);
    if (kv === undefined) throw new CutoverError('UPDATE_NOT_FOUND', `no rolling update ${id}`);
    return { record: this.parse(kv), modRevision: kv.modRevision };
  }

  private parse(kv: KeyValue): UpdateRecord {
    const parsed = parseUpdateRecord(kv.value);
    if (!parsed.ok) throw new CutoverError('UPDATE_CORRUPT', `${kv.key}: ${parsed.reason}`);
    return parsed.value;
  }

  /** Updates by id order, filtered; unreadable records are skipped (and counted in `invalid`). */
  async list(filter: ListFilter = {}): Promise<{ readonly updates: StoredUpdate[]; readonly invalid: number; readonly revision: number }> {
    const { kvs, revision } = await this.port.range(UPDATE_PREFIX);
    const updates: StoredUpdate[] = [];
    let invalid = 0;
    for (const kv of kvs) {
      const parsed = parseUpdateRecord(kv.value);
      if (!parsed.ok) {
        invalid++;
        continue;
      }
      const record = parsed.value;
      if (filter.base !== undefined && record.base !== filter.base) continue;
      if (filter.state !== undefined && record.state !== filter.state) continue;
      if (filter.all !== true && filter.state === undefined && isTerminal(record.state)) continue;
      if (updates.length < LIST_MAX) updates.push({ record, modRevision: kv.modRevision });
    }
    return { updates, invalid, revision };
  }

  /**
   * Starts an update from start-request fields (`parseStartRequest`). Refuses with
   * INVALID_ARGUMENT, NOT_DEPLOYED, UPDATE_ACTIVE (ALREADY_EXISTS, naming the active update),
   * or the first validation blocker's code with every blocker listed.
   */
  async start(fields: unknown, origin: { readonly rollbackOfRevision?: number; readonly reason?: string } = {}): Promise<StoredUpdate> {
    const request = parseStartRequest(fields);
    const base = request.base;
    for (let attempt = 0; attempt < this.attemptsMax; attempt++) {
      const [blueprints, assignments, instances, routing, active] = await Promise.all([
        this.port.range(BLUEPRINT_PREFIX),
        this.port.range(ASSIGNMENT_PREFIX),
        this.port.range(INSTANCE_PREFIX),
        this.port.get(versionRoutingKey(base)),
        this.port.get(activeUpdateKey(base)),
      ]);
      const current = currentVersion(base, blueprints.kvs, routing?.value);
      if (!current.ok) throw new CutoverError('NOT_DEPLOYED', current.reason);
      const stale = await this.staleActive(base, request.newVersion, active);
      const id = makeUpdateId(base, request.newVersion, Math.max(blueprints.revision, instances.revision));
      const [newArtifact, oldArtifact] = await Promise.all([lookupArtifact(this.port, base, request.newVersion), lookupArtifact(this.port, base, current.version)]);
      const result = validateUpdate(
        { id, base, oldVersion: current.version, newVersion: request.newVersion, strategy: request.strategy, requestedInstances: request.instances },
        {
          blueprints: blueprints.kvs,
          assignments: assignments.kvs,
          instanceKeys: instances.kvs.map((kv) => kv.key),
          routingValue: routing?.value,
          activeUpdateValue: stale ? undefined : active?.value,
          members: this.port.isLeader() ? this.port.members() : undefined,
          nodeDownAfterMs: this.options.nodeDownAfterMs,
          nodeInstancesMax: this.options.nodeInstancesMax,
          newArtifact,
          oldArtifact,
        },
      );
      if (!result.ok) throw new UpdateValidationError({ base, oldVersion: current.version, newVersion: request.newVersion }, result.blockers);
      const nowMs = this.wallClockMs();
      let record = createUpdateRecord(withMonitoringOfChecks(request, fields, newArtifact), { id, oldVersion: current.version, nowMs });
      if (origin.rollbackOfRevision !== undefined) {
        record = withLogEntry(record, { step: `rollback to revision ${origin.rollbackOfRevision}`, at: nowMs, actor: { kind: 'user', name: request.initiatedBy }, reason: origin.reason ?? `restoring ${request.newVersion} with the settings of revision ${origin.rollbackOfRevision}` });
      }
      const key = updateKey(id);
      const activeKey = activeUpdateKey(base);
      const txn = await this.port.txn(
        [{ key, target: 'exists', op: '=', value: false }, active === undefined ? { key: activeKey, target: 'exists', op: '=', value: false } : { key: activeKey, target: 'modRevision', op: '=', value: active.modRevision }],
        [
          { type: 'put', key, value: formatUpdateRecord(record) },
          { type: 'put', key: activeKey, value: formatActiveUpdate({ updateId: id, rollbackOfRevision: origin.rollbackOfRevision ?? null }) },
          ...updateEventWrites(undefined, record),
        ],
      );
      if (txn.succeeded) return { record, modRevision: txn.revision };
      // Someone else started one (or the id was taken): look again; an active one is refused above.
    }
    throw new CutoverError('CONFLICT', `starting an update of ${base} kept conflicting with concurrent changes; retry`);
  }

  /**
   * True when `active` names an update that is finished or gone (a key left behind): Start may
   * replace it. Throws UPDATE_ACTIVE (ALREADY_EXISTS) when it names a running one.
   */
  private async staleActive(base: ArtifactBase, newVersion: string, active: KeyValue | undefined): Promise<boolean> {
    if (active === undefined) return false;
    const parsed = parseActiveUpdate(active.value);
    if (!parsed.ok) return true;
    const kv = await this.port.get(updateKey(parsed.value.updateId));
    const record = kv === undefined ? undefined : parseUpdateRecord(kv.value);
    if (record?.ok === true && !isTerminal(record.value.state)) {
      throw new UpdateValidationError({ base, newVersion }, [{ code: 'UPDATE_ACTIVE', message: `update ${parsed.value.updateId} of ${base} is ${record.value.state}; one update per artifact at a time (pause, complete, roll back or cancel it first)` }]);
    }
    return true;
  }

  /**
   * Applies a pure command to the stored record and commits it as one transaction on its
   * modRevision, re-reading on a failed compare (at most `commandAttemptsMax` attempts).
   */
  async command(id: string, command: (record: UpdateRecord, nowMs: number) => CommandResult): Promise<CommandOutcome> {
    for (let attempt = 0; attempt < this.attemptsMax; attempt++) {
      const { record, modRevision } = await this.get(id);
      const result = command(record, this.wallClockMs());
      if (result.kind === 'noop') return { record, modRevision, changed: false, step: result.reason };
      const txn = commitTxn(result, modRevision);
      const compare = [...txn.compare];
      const success = [...txn.success];
      if (finishes(record.state, result.record.state)) {
        const [releases, active] = await Promise.all([this.port.range(releasesPrefix(record.base)), this.port.get(activeUpdateKey(record.base))]);
        const parts = terminalTxnParts(result.record, nextRevision(record.base, releases.kvs), active);
        compare.push(...parts.compare);
        success.push(...parts.success);
      }
      const outcome = await this.port.txn(compare, success, txn.failure);
      if (outcome.succeeded) return { record: result.record, modRevision: outcome.revision, changed: true, step: result.step };
    }
    throw new CutoverError('CONFLICT', `update ${id} kept changing while the command was applied (${this.attemptsMax} attempts); retry`);
  }

  /** The release history of `base`, oldest first. */
  async history(base: ArtifactBase): Promise<ReleaseRecord[]> {
    const { kvs } = await this.port.range(releasesPrefix(requireArtifactBase(base)));
    return readReleases(kvs);
  }

  async statistics(base: ArtifactBase): Promise<ReleaseStatistics> {
    return releaseStatistics(base, await this.history(base));
  }

  /**
   * Starts an update back to a release revision's version with that revision's settings (Helm's
   * rollback: a new update, later a new revision; history is never rewritten).
   */
  async rollbackTo(base: ArtifactBase, target: RollbackTarget, options: { readonly initiatedBy?: string; readonly reason?: string } = {}): Promise<StoredUpdate & { readonly target: ReleaseRecord }> {
    const [releases, blueprints, routing] = await Promise.all([this.history(base), this.port.range(BLUEPRINT_PREFIX), this.port.get(versionRoutingKey(base))]);
    const current = currentVersion(base, blueprints.kvs, routing?.value);
    if (!current.ok) throw new CutoverError('NOT_DEPLOYED', current.reason);
    const release = rollbackTarget(releases, target, current.version);
    const fields = { ...release.settings, artifactBase: base, version: release.version, ...(options.initiatedBy === undefined ? {} : { initiatedBy: options.initiatedBy }) };
    const started = await this.start(fields, { rollbackOfRevision: release.revision, ...(options.reason === undefined ? {} : { reason: options.reason }) });
    return { ...started, target: release };
  }
}

/**
 * The monitoring window after the last step defaults to the health checks' own
 * `monitoringDurationSeconds` (the update's override, else the new version's manifest) when the
 * request does not set `monitoringSeconds`: the checks say how long a new version must be watched.
 */
function withMonitoringOfChecks(request: StartRequest, fields: unknown, newArtifact: ArtifactLookup): StartRequest {
  if (typeof fields === 'object' && fields !== null && (fields as Record<string, unknown>).monitoringSeconds != null) return request;
  const checks = request.healthChecks ?? (newArtifact.kind === 'found' ? newArtifact.meta.manifest.healthChecks : undefined);
  const seconds = (checks?.policy as { monitoringDurationSeconds?: unknown } | undefined)?.monitoringDurationSeconds;
  return typeof seconds === 'number' && Number.isFinite(seconds) && seconds >= 0 ? { ...request, monitoringSeconds: Math.ceil(seconds) } : request;
}
