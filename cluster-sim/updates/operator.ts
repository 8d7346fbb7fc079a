/**
 * The operator of the updates scenario, through `UpdateOperations` over a random running node's
 * `ClusterPort` (a follower forwards writes, as the gRPC service's would). Per artifact
 * `org.sim:upd{i}`: it publishes artifact metadata for each version before starting an update to
 * it (valid metadata; the in-memory loader never fetches chunks), deploys 1.0.0 with a blueprint,
 * then starts updates to 2.0.0, 3.0.0, … one at a time, cycling through every strategy. While an
 * update runs it plays its part: MANUAL gets SetRouting 1:3, 1:1, 1:0 then Complete; STAGED and
 * manual-approval CANARY get Approve for each waiting step; and, as drawn per update, a pause
 * (resumed after 1–3 s), a rollback or an early cancel. Coded errors (no leader, timeouts,
 * conflicts, refusals) are retried at the next look; an error without a code fails the run.
 *
 * `settle()` (after the heal): no more pauses, rollbacks or cancels, and no new updates; paused
 * updates are resumed (or, paused by the health gate without auto-rollback, rolled back), so every
 * update can finish. `finalUpdate()` then starts one clean update per artifact whose outcome is
 * known in advance (healthy: COMPLETED; bad, with auto-rollback: ROLLED_BACK).
 */
import type { ClusterPort } from '../../src/node/cluster-port.ts';
import { formatBlueprint } from '../../src/slices/blueprints.ts';
import { BLUEPRINT_PREFIX, artifactBase, artifactKey, blueprintKey, parseBlueprintKey, versionRoutingKey, type ArtifactBase } from '../../src/slices/keys.ts';
import { approveStep, cancelUpdate, completeUpdate, pauseUpdate, resumeUpdate, rollbackUpdate, setRouting, type CommandOptions, type CommandResult } from '../../src/updates/commands.ts';
import { UpdateOperations } from '../../src/updates/operations.ts';
import { isTerminal, type UpdateRecord } from '../../src/updates/record.ts';
import { STRATEGIES, type Strategy } from '../../src/updates/request.ts';
import type { SeededRandom } from '../../src/util/random.ts';
import type { EventQueue } from '../events.ts';
import type { Trace } from '../trace.ts';
import type { UpdatesRunOptions } from './options.ts';

const ACTOR = { kind: 'user', name: 'sim-operator' } as const;
/** An operation unanswered this long is abandoned (a crashed node never answers). */
const ABANDON_MS = 7000;
/** How long the final MANUAL update stays at each ratio (as the final updates' monitoring window). */
const FINAL_MANUAL_HOLD_MS = 5000;

export interface OperatorStats {
  started: number;
  commands: number;
  refused: number;
  abandoned: number;
  byStrategy: Record<string, number>;
}

interface Plan {
  pauseAt: 'none' | 'DEPLOYING' | 'ROUTING';
  resumeAtMs: number;
  rollback: boolean;
  cancel: boolean;
  paused: boolean;
}

interface ArtifactState {
  readonly base: ArtifactBase;
  /** The highest version published / started. */
  next: number;
  deployed: boolean;
  current: string | undefined;
  plans: Map<string, Plan>;
  /** The clean final update's id, once started. */
  finalId: string | undefined;
  finalVersion: string | undefined;
}

export class UpdatesOperator {
  readonly stats: OperatorStats = { started: 0, commands: 0, refused: 0, abandoned: 0, byStrategy: {} };
  readonly artifacts: ArtifactState[];
  private mode: 'run' | 'settle' | 'final' | 'stopped' = 'run';
  private busy = false;
  private strategyTurn = 0;

  constructor(
    private readonly queue: EventQueue,
    private readonly random: SeededRandom,
    private readonly options: UpdatesRunOptions,
    private readonly trace: Trace,
    private readonly ports: () => ClusterPort[],
    private readonly wallClockMs: () => number,
    private readonly fail: (message: string) => void,
    private readonly isBad: (base: string, version: string) => boolean,
  ) {
    this.artifacts = Array.from({ length: options.updates.artifacts }, (_, i) => ({ base: artifactBase('org.sim', `upd${i}`), next: 1, deployed: false, current: undefined, plans: new Map(), finalId: undefined, finalVersion: undefined }));
    this.strategyTurn = this.random.nextInt(0, STRATEGIES.length);
  }

  start(): void {
    this.schedule();
  }

  settle(): void {
    if (this.mode === 'run') this.mode = 'settle';
  }

  finalUpdate(): void {
    this.mode = 'final';
  }

  stop(): void {
    this.mode = 'stopped';
  }

  private schedule(): void {
    this.queue.after(this.options.updates.operatorIntervalMs * (0.5 + this.random.nextFloat()), () => {
      if (this.mode === 'stopped') return;
      if (!this.busy) {
        this.busy = true;
        void this.look().finally(() => {
          this.busy = false;
        });
      }
      this.schedule();
    });
  }

  private port(): ClusterPort | undefined {
    const ports = this.ports();
    return ports.length === 0 ? undefined : ports[this.random.nextInt(0, ports.length)];
  }

  private operations(port: ClusterPort): UpdateOperations {
    const p = this.options.placement;
    return new UpdateOperations({ port, wallClockMs: this.wallClockMs, nodeDownAfterMs: p.nodeDownAfterMs, nodeInstancesMax: p.nodeInstancesMax });
  }

  /** Runs `op`, giving up after ABANDON_MS; coded errors are refusals, others fail the run. */
  private async attempt<T>(what: string, op: () => Promise<T>): Promise<T | undefined> {
    const timeout = new Promise<'abandoned'>((resolve) => this.queue.after(ABANDON_MS, () => resolve('abandoned')));
    try {
      const result = await Promise.race([op(), timeout]);
      if (result === 'abandoned') {
        this.stats.abandoned++;
        return undefined;
      }
      return result;
    } catch (error) {
      const code = (error as { code?: unknown } | undefined)?.code;
      if (typeof code !== 'string') {
        this.fail(`operator: ${what} failed without a code: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
        return undefined;
      }
      this.stats.refused++;
      this.trace.record(this.queue.nowMs, 0, 'operator-refused', `${what}: ${code} ${(error as Error).message.slice(0, 200)}`);
      return undefined;
    }
  }

  private async look(): Promise<void> {
    for (const artifact of this.artifacts) {
      if (this.mode === 'stopped') return;
      const port = this.port();
      if (port === undefined) return;
      if (!artifact.deployed) {
        await this.deployFirst(port, artifact);
        continue;
      }
      const ops = this.operations(port);
      const listed = await this.attempt('list', () => ops.list({ base: artifact.base, all: true }));
      if (listed === undefined) continue;
      this.adoptLostStart(artifact, listed.updates.map((u) => u.record));
      const active = listed.updates.find((u) => !isTerminal(u.record.state));
      if (active !== undefined) await this.drive(ops, artifact, active.record);
      else if (this.mode === 'run') await this.startNext(ops, port, artifact);
      else if (this.mode === 'final' && artifact.finalId === undefined && (await this.removeKeptVersions(port, artifact))) await this.startNext(ops, port, artifact);
    }
  }

  /** Publishes 1.0.0 and writes its blueprint. */
  private async deployFirst(port: ClusterPort, artifact: ArtifactState): Promise<void> {
    if (!(await this.publish(port, artifact.base, '1.0.0'))) return;
    const key = blueprintKey(artifact.base, '1.0.0');
    const done = await this.attempt('deploy 1.0.0', () => port.txn([], [{ type: 'put', key, value: formatBlueprint({ instances: this.options.updates.initialInstances }) }]));
    if (done !== undefined) {
      artifact.deployed = true;
      artifact.current = '1.0.0';
    }
  }

  /**
   * Before the final update, what an operator does with versions kept by MANUAL cleanup: removes
   * their blueprints, except the two versions the routing record names (the last update's own,
   * which only its steps may remove). Left alone they fill the nodes (at most nodeInstancesMax
   * each), and the final update would fail validation for capacity (seeds 627, 666). True once
   * nothing is left to remove.
   */
  private async removeKeptVersions(port: ClusterPort, artifact: ArtifactState): Promise<boolean> {
    const read = await this.attempt('read routing', async () => ({ routing: await port.get(versionRoutingKey(artifact.base)) }));
    if (read === undefined) return false;
    // No routing record: no update ever deployed, so nothing was kept.
    if (read.routing === undefined) return true;
    const blueprints = await this.attempt('list blueprints', () => port.range(`${BLUEPRINT_PREFIX}${artifact.base}/`));
    if (blueprints === undefined) return false;
    const named = JSON.parse(read.routing.value) as { oldVersion: string; newVersion: string };
    const kept = blueprints.kvs.filter((kv) => {
      const version = parseBlueprintKey(kv.key)?.version.text;
      return version !== undefined && version !== named.oldVersion && version !== named.newVersion;
    });
    if (kept.length === 0) return true;
    const removed = await this.attempt('remove kept versions', () => port.txn([], kept.map((kv) => ({ type: 'delete' as const, key: kv.key }))));
    if (removed === undefined) return false;
    this.trace.record(this.queue.nowMs, 0, 'operator-remove-kept', kept.map((kv) => kv.key).join(' '));
    return true;
  }

  /** Writes valid metadata for `version` unless present (what `publishArtifact` leaves, minus chunks the in-memory loader never reads). */
  private async publish(port: ClusterPort, base: ArtifactBase, version: string): Promise<boolean> {
    const [groupId, artifactId] = base.split(':') as [string, string];
    const key = artifactKey(base, version);
    const meta = {
      groupId,
      artifactId,
      version,
      sha256: '0'.repeat(64),
      size: 100,
      chunks: 1,
      chunkBytes: 1024,
      manifest: { groupId, artifactId, version, entry: 'index.js', methods: ['call'], health: true },
      publishedBy: ACTOR.name,
    };
    const result = await this.attempt(`publish ${version}`, () => port.txn([{ key, target: 'exists', op: '=', value: false }], [{ type: 'put', key, value: JSON.stringify(meta) }]));
    return result !== undefined;
  }

  private requestFields(artifact: ArtifactState, version: string, strategy: Strategy, clean: boolean): Record<string, unknown> {
    const pick = <T>(values: readonly T[]): T => values[this.random.nextInt(0, values.length)]!;
    const u = this.options.updates;
    const cleanupPolicy = pick(['IMMEDIATE', 'GRACE_PERIOD', 'GRACE_PERIOD', 'MANUAL'] as const);
    const fields: Record<string, unknown> = {
      artifactBase: artifact.base,
      version,
      strategy,
      batchSize: pick([1, 2]),
      batchDelaySeconds: pick([0, 1, 2]),
      // The clean final update's outcome must be known in advance: a bad version must get traffic
      // long enough for its first breach (a metrics push, then an evaluation) before completion,
      // which that breach's pause then blocks. With 0-3 s it could complete unjudged.
      monitoringSeconds: clean ? pick([5, 10]) : pick([0, 1, 3]),
      deployTimeoutSeconds: pick([20, 40]),
      maxErrorRate: u.maxErrorRate,
      maxLatencyMs: u.maxLatencyMs,
      minRequestCount: 5,
      healthEvaluationIntervalSeconds: 1,
      autoRollbackEnabled: clean || this.random.nextFloat() >= u.noAutoRollbackRate,
      failureThreshold: pick([2, 3]),
      cleanupPolicy,
      initiatedBy: ACTOR.name,
    };
    if (cleanupPolicy === 'GRACE_PERIOD') fields.gracePeriodSeconds = pick([1, 3]);
    if (strategy === 'CANARY') {
      fields.canaryPercentage = pick([10, 25]);
      if (this.random.nextFloat() < 0.3) fields.requireManualApproval = true;
    }
    if (strategy === 'STAGED') fields.steps = pick([[25, 50], [10, 50, 100], [50]]);
    return fields;
  }

  /**
   * A start whose answer was lost (abandoned, or its node crashed after the commit) still started
   * its version: count it as started, or the next start would ask for that version again, now
   * current (SAME_VERSION), forever.
   */
  private adoptLostStart(artifact: ArtifactState, records: readonly UpdateRecord[]): void {
    const version = `${artifact.next + 1}.0.0`;
    const lost = records.find((r) => r.newVersion === version);
    if (lost === undefined) return;
    artifact.next++;
    this.strategyTurn++;
    this.stats.started++;
    this.stats.byStrategy[lost.strategy.kind] = (this.stats.byStrategy[lost.strategy.kind] ?? 0) + 1;
    this.trace.record(this.queue.nowMs, 0, 'operator-adopt', `${lost.id} ${lost.strategy.kind} ${lost.oldVersion} -> ${version}: started, its answer lost`);
  }

  private async startNext(ops: UpdateOperations, port: ClusterPort, artifact: ArtifactState): Promise<void> {
    const clean = this.mode === 'final';
    const version = `${artifact.next + 1}.0.0`;
    if (!(await this.publish(port, artifact.base, version)) && !(await this.attempt('check', () => port.get(artifactKey(artifact.base, version))))) return;
    const strategy = STRATEGIES[this.strategyTurn % STRATEGIES.length]!;
    const fields = this.requestFields(artifact, version, strategy, clean);
    const started = await this.attempt(`start ${version} ${strategy}`, () => ops.start(fields));
    if (started === undefined) {
      // The start may have been committed and its answer lost; the next list tells.
      return;
    }
    this.strategyTurn++;
    artifact.next++;
    this.stats.started++;
    this.stats.byStrategy[strategy] = (this.stats.byStrategy[strategy] ?? 0) + 1;
    if (clean) {
      artifact.finalId = started.record.id;
      artifact.finalVersion = version;
    }
    this.trace.record(this.queue.nowMs, 0, 'operator-start', `${started.record.id} ${strategy} ${started.record.oldVersion} -> ${version}${this.isBad(artifact.base, version) ? ' (bad)' : ''}${clean ? ' (final)' : ''}`);
  }

  private plan(record: UpdateRecord): Plan {
    let plan = this.plansOf(record.base).get(record.id);
    if (plan === undefined) {
      const u = this.options.updates;
      const clean = this.mode !== 'run';
      plan = {
        pauseAt: clean || this.random.nextFloat() >= u.pauseRate ? 'none' : this.random.nextFloat() < 0.5 ? 'DEPLOYING' : 'ROUTING',
        resumeAtMs: 0,
        rollback: !clean && this.random.nextFloat() < u.rollbackRate,
        cancel: !clean && this.random.nextFloat() < u.cancelRate,
        paused: false,
      };
      this.plansOf(record.base).set(record.id, plan);
    }
    return plan;
  }

  private plansOf(base: string): Map<string, Plan> {
    return this.artifacts.find((a) => a.base === base)!.plans;
  }

  private async command(ops: UpdateOperations, record: UpdateRecord, what: string, fn: (r: UpdateRecord, o: CommandOptions) => CommandResult): Promise<boolean> {
    this.stats.commands++;
    const outcome = await this.attempt(`${what} ${record.id}`, () => ops.command(record.id, (r, nowMs) => fn(r, { actor: ACTOR, nowMs, reason: `sim operator: ${what}` })));
    if (outcome?.changed === true) this.trace.record(this.queue.nowMs, 0, 'operator-command', `${what} ${record.id}: ${outcome.step}`);
    return outcome !== undefined;
  }

  /** What the operator does to a running update. */
  private async drive(ops: UpdateOperations, artifact: ArtifactState, record: UpdateRecord): Promise<void> {
    const plan = this.plan(record);
    if (this.mode === 'run') {
      if (plan.cancel && (record.state === 'PENDING' || record.state === 'VALIDATING')) {
        await this.command(ops, record, 'cancel', cancelUpdate);
        return;
      }
      if (plan.rollback && record.state === 'ROUTING') {
        if (await this.command(ops, record, 'rollback', rollbackUpdate)) plan.rollback = false;
        return;
      }
      if (plan.pauseAt === record.state && !plan.paused && !record.paused) {
        if (await this.command(ops, record, 'pause', pauseUpdate)) {
          plan.paused = true;
          plan.resumeAtMs = this.queue.nowMs + 1000 + this.random.nextFloat() * 2000;
        }
        return;
      }
    }
    if (record.paused && record.state !== 'ROLLING_BACK') {
      const byGate = record.pauseReason?.startsWith('health breach') === true;
      if (byGate) {
        // Paused by the gate: with auto-rollback the gate finishes it; without, the operator decides.
        // A gate pause stays until an operator acts when the traffic to judge stops (0:1, say):
        // after the heal the operator rolls back (no auto-rollback) or resumes, and the gate judges again.
        if (!record.healthGate.autoRollbackEnabled && (this.mode !== 'run' || this.random.nextFloat() < 0.2)) await this.command(ops, record, 'rollback (health)', rollbackUpdate);
        else if (record.healthGate.autoRollbackEnabled && this.mode !== 'run' && this.random.nextFloat() < 0.1) await this.command(ops, record, 'resume (health)', resumeUpdate);
        return;
      }
      if (this.mode !== 'run' || this.queue.nowMs >= plan.resumeAtMs) await this.command(ops, record, 'resume', resumeUpdate);
      return;
    }
    if (record.state !== 'ROUTING') return;
    if (record.strategy.kind === 'MANUAL') {
      const r = record.routing;
      if (r === null) return;
      // The clean final update holds each ratio (MANUAL has no monitoring window), so that a bad
      // version gets traffic long enough to be judged before the operator completes it.
      if (this.mode === 'final' && this.wallClockMs() - record.updatedAt < FINAL_MANUAL_HOLD_MS) return;
      const ladder = [
        { newWeight: 1, oldWeight: 3 },
        { newWeight: 1, oldWeight: 1 },
        { newWeight: 1, oldWeight: 0 },
      ];
      const current = r.newWeight / (r.newWeight + r.oldWeight);
      const next = ladder.find((x) => x.newWeight / (x.newWeight + x.oldWeight) > current);
      if (next !== undefined) await this.command(ops, record, `set routing ${next.newWeight}:${next.oldWeight}`, (rec, o) => setRouting(rec, next, o));
      else await this.command(ops, record, 'complete', completeUpdate);
      return;
    }
    if (record.strategy.kind === 'STAGED' || record.strategy.requireManualApproval) {
      const step = record.stepIndex;
      if (!record.approvals.some((a) => a.step === step)) await this.command(ops, record, `approve step ${step}`, (rec, o) => approveStep(rec, { ...o, stepIndex: step }));
    }
    void artifact;
  }
}
