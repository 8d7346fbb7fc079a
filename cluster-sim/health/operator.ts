/**
 * The operator of the health scenario, through `UpdateOperations` over a random running node's
 * `ClusterPort` (a follower forwards writes). For `org.sim:hc0` it creates the two notification
 * channels (`alpha`, `beta`: cluster-wide, every notifying action), publishes and deploys 1.0.0,
 * then starts updates to 2.0.0, 3.0.0, … one at a time (CANARY, ROLLING and BLUE_GREEN in turn,
 * auto-rollback on, the run's monitoring window), never acting on a running update while faults
 * run: the health gate and the controller decide every outcome. After the heal it resumes an
 * update the gate paused (a pause lasts until an operator acts; the gate then judges again); the
 * clean update only once the gate has judged it healthy again since its breach. `finalUpdate()` starts one more update (the clean
 * one, after the heal) and records its id. Coded errors are retried at the next look; an error
 * without a code fails the run.
 */
import type { ClusterPort } from '../../src/node/cluster-port.ts';
import { channelKey, validateChannel } from '../../src/notify/channel.ts';
import { formatBlueprint } from '../../src/slices/blueprints.ts';
import { artifactBase, artifactKey, blueprintKey } from '../../src/slices/keys.ts';
import { resumeUpdate } from '../../src/updates/commands.ts';
import { UpdateOperations } from '../../src/updates/operations.ts';
import { isTerminal, type UpdateRecord } from '../../src/updates/record.ts';
import type { SeededRandom } from '../../src/util/random.ts';
import type { EventQueue } from '../events.ts';
import type { Trace } from '../trace.ts';
import type { HealthRunOptions } from './options.ts';
import type { SimReceiver } from './receiver.ts';

const ACTOR = 'sim-operator';
/** An operation unanswered this long is abandoned (a crashed node never answers). */
const ABANDON_MS = 7000;
const STRATEGIES = ['CANARY', 'ROLLING', 'BLUE_GREEN'] as const;

export const BASE = artifactBase('org.sim', 'hc0');

export interface HealthOperatorStats {
  started: number;
  refused: number;
  abandoned: number;
}

export class HealthOperator {
  readonly stats: HealthOperatorStats = { started: 0, refused: 0, abandoned: 0 };
  /** Versions started, by update id. */
  readonly started = new Map<string, string>();
  channelsMade = false;
  deployed = false;
  /** The highest version started (1 = only 1.0.0 deployed). */
  next = 1;
  finalId: string | undefined;
  private mode: 'run' | 'idle' | 'final' | 'stopped' = 'run';
  private busy = false;
  /** The final start was asked for (a lost answer to it is the final update). */
  private finalTried = false;

  constructor(
    private readonly queue: EventQueue,
    private readonly random: SeededRandom,
    private readonly options: HealthRunOptions,
    private readonly trace: Trace,
    private readonly receivers: readonly SimReceiver[],
    private readonly ports: () => ClusterPort[],
    private readonly wallClockMs: () => number,
    private readonly fail: (message: string) => void,
  ) {}

  start(): void {
    this.schedule();
  }

  /** No new updates (after the heal, until `finalUpdate`). */
  idle(): void {
    if (this.mode === 'run') this.mode = 'idle';
  }

  finalUpdate(): void {
    this.mode = 'final';
  }

  stop(): void {
    this.mode = 'stopped';
  }

  private schedule(): void {
    this.queue.after(this.options.health.operatorIntervalMs * (0.5 + this.random.nextFloat()), () => {
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
    const ports = this.ports();
    if (ports.length === 0) return;
    const port = ports[this.random.nextInt(0, ports.length)]!;
    if (!this.channelsMade) return this.makeChannels(port);
    if (!this.deployed) return this.deployFirst(port);
    const ops = new UpdateOperations({ port, wallClockMs: this.wallClockMs, nodeDownAfterMs: this.options.placement.nodeDownAfterMs, nodeInstancesMax: this.options.placement.nodeInstancesMax });
    const listed = await this.attempt('list', () => ops.list({ base: BASE, all: true }));
    if (listed === undefined) return;
    const records = listed.updates.map((u) => u.record);
    this.adoptLostStart(records);
    // A pause by the health gate lasts until an operator acts (health-gate.ts): after the heal,
    // a breach that the faults caused (lost calls, slow links) is resumed, and the gate judges again.
    const pausedByGate = records.find((r) => !isTerminal(r.state) && r.paused && r.state !== 'ROLLING_BACK' && r.pauseReason?.startsWith('health breach') === true);
    // The clean update is resumed only once the gate judged it healthy again (no breach counted):
    // a flapping version's breaches may never be consecutive, and its pause would last for ever;
    // a sick version's second breach must find it paused, as the gate left it, to roll it back.
    const resumable = pausedByGate !== undefined && (this.mode === 'idle' || (this.mode === 'final' && pausedByGate.id === this.finalId && pausedByGate.healthGate.consecutiveBreaches === 0));
    if (pausedByGate !== undefined && resumable) {
      const resumed = await this.attempt(`resume ${pausedByGate.id}`, () => ops.command(pausedByGate.id, (r, nowMs) => resumeUpdate(r, { actor: { kind: 'user', name: ACTOR }, nowMs, reason: 'sim operator: resume after the heal' })));
      if (resumed?.changed === true) this.trace.record(this.queue.nowMs, 0, 'operator-resume', `${pausedByGate.id}: ${resumed.step}`);
      return;
    }
    const wants = this.mode === 'run' ? this.next - 1 < this.options.health.updates : this.mode === 'final' && this.finalId === undefined;
    if (!wants || records.some((r) => !isTerminal(r.state))) return;
    if (this.mode === 'final') this.finalTried = true;
    await this.startNext(ops, port);
  }

  private async makeChannels(port: ClusterPort): Promise<void> {
    const writes = this.receivers.map((r) => {
      const record = validateChannel({ name: r.name, type: 'webhook', url: r.url, secret: `secret-of-${r.name}-0123456789`, updatedBy: ACTOR, updatedAt: this.wallClockMs() });
      return { type: 'put' as const, key: channelKey(r.name), value: JSON.stringify(record) };
    });
    const done = await this.attempt('channels', () => port.txn([], writes));
    if (done !== undefined) this.channelsMade = true;
  }

  private async deployFirst(port: ClusterPort): Promise<void> {
    if (!(await this.publish(port, '1.0.0'))) return;
    const done = await this.attempt('deploy 1.0.0', () => port.txn([], [{ type: 'put', key: blueprintKey(BASE, '1.0.0'), value: formatBlueprint({ instances: this.options.health.initialInstances }) }]));
    if (done !== undefined) this.deployed = true;
  }

  /** Valid metadata for `version` unless present (the in-memory loader never reads chunks). */
  private async publish(port: ClusterPort, version: string): Promise<boolean> {
    const meta = {
      groupId: 'org.sim',
      artifactId: 'hc0',
      version,
      sha256: '0'.repeat(64),
      size: 100,
      chunks: 1,
      chunkBytes: 1024,
      manifest: { groupId: 'org.sim', artifactId: 'hc0', version, entry: 'index.js', methods: ['call'], health: false },
      publishedBy: ACTOR,
    };
    const key = artifactKey(BASE, version);
    const result = await this.attempt(`publish ${version}`, () => port.txn([{ key, target: 'exists', op: '=', value: false }], [{ type: 'put', key, value: JSON.stringify(meta) }]));
    if (result !== undefined) return true;
    return (await this.attempt('check', () => port.get(key))) !== undefined;
  }

  /** A start whose answer was lost still started its version (see the updates scenario's operator). */
  private adoptLostStart(records: readonly UpdateRecord[]): void {
    const version = `${this.next + 1}.0.0`;
    const lost = records.find((r) => r.newVersion === version);
    if (lost === undefined) return;
    this.next++;
    this.stats.started++;
    this.started.set(lost.id, version);
    if (this.finalTried && this.finalId === undefined) this.finalId = lost.id;
    this.trace.record(this.queue.nowMs, 0, 'operator-adopt', `${lost.id} -> ${version}: started, its answer lost`);
  }

  private async startNext(ops: UpdateOperations, port: ClusterPort): Promise<void> {
    const version = `${this.next + 1}.0.0`;
    if (!(await this.publish(port, version))) return;
    const strategy = STRATEGIES[this.next % STRATEGIES.length]!;
    const fields: Record<string, unknown> = {
      artifactBase: BASE,
      version,
      strategy,
      batchSize: 1,
      batchDelaySeconds: 1,
      monitoringSeconds: this.options.health.monitoringSeconds,
      deployTimeoutSeconds: 30,
      maxErrorRate: 0.05,
      maxLatencyMs: 1500,
      minRequestCount: 5,
      healthEvaluationIntervalSeconds: 1,
      autoRollbackEnabled: true,
      failureThreshold: 2,
      cleanupPolicy: 'IMMEDIATE',
      initiatedBy: ACTOR,
    };
    if (strategy === 'CANARY') fields.canaryPercentage = 25;
    const started = await this.attempt(`start ${version} ${strategy}`, () => ops.start(fields));
    if (started === undefined) return;
    this.next++;
    this.stats.started++;
    this.started.set(started.record.id, version);
    if (this.mode === 'final') this.finalId = started.record.id;
    this.trace.record(this.queue.nowMs, 0, 'operator-start', `${started.record.id} ${strategy} ${started.record.oldVersion} -> ${version}${this.mode === 'final' ? ' (final)' : ''}`);
  }
}
