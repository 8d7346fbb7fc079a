/**
 * A stand-in for the future rolling-update controller: it drives `org.sim:svc{i}` through updates
 * (1.0.0 → 2.0.0 → 3.0.0 …), writing `version-routing/{base}` records
 * (`{updateId, oldVersion, newVersion, newWeight, oldWeight}`) and the blueprints of both
 * versions, each write one transaction through a random running node's `ClusterPort` (a follower
 * forwards it to the leader). A write that fails with a coded error (no leader, a timeout during
 * a partition, a stopping node) is tried again later; any other error is a bug and fails the run.
 *
 * After the heal it settles (`finish()`): every artifact gets a 1:3 (new:old) routing record and a
 * blueprint with instances for each version, written again until the leader's state shows them.
 */
import type { Operation } from '../../src/kv/index.ts';
import type { ClusterPort } from '../../src/node/cluster-port.ts';
import { formatBlueprint } from '../../src/slices/blueprints.ts';
import { artifactBase, blueprintKey, versionRoutingKey, type ArtifactBase } from '../../src/slices/keys.ts';
import type { SeededRandom } from '../../src/util/random.ts';
import type { EventQueue } from '../events.ts';
import type { Fail } from '../placement/actors.ts';
import type { Trace } from '../trace.ts';
import type { SlicesOptions } from './options.ts';

/** The weights (new:old) the stand-in steps through; the final state is 1:3. */
const WEIGHTS: readonly (readonly [number, number])[] = [
  [0, 1],
  [1, 3],
  [1, 1],
  [3, 1],
  [1, 0],
  [2, 6],
  [1, 9],
];
export const FINAL_WEIGHTS = [1, 3] as const;
/** Instances per version in the final state. */
export const FINAL_INSTANCES = 2;
/** How often the settling stand-in looks whether its final state is in place. */
const FINISH_CHECK_INTERVAL_MS = 200;
/** Pause after a failed write before it is tried again. */
const RETRY_DELAY_MS = 150;
/**
 * A write unanswered for this long is given up as failed (its outcome unknown) and tried again:
 * a node that crashed never answers. Longer than the node's own request timeout (at most 5 s).
 */
const WRITE_ABANDON_MS = 6000;

/** One artifact's update as the stand-in sees it. */
interface Rollout {
  readonly base: ArtifactBase;
  update: number;
  oldMajor: number;
}

const version = (major: number): string => `${major}.0.0`;

/** The routing record the stand-in writes (exported for the checks and tests). */
export function routingValue(updateId: string, oldVersion: string, newVersion: string, newWeight: number, oldWeight: number): string {
  return JSON.stringify({ updateId, oldVersion, newVersion, newWeight, oldWeight });
}

export class RolloutActor {
  readonly stats = { sent: 0, ok: 0, failed: 0, malformed: 0, updates: 0 };
  private readonly rollouts: Rollout[];
  private mode: 'idle' | 'writing' | 'finishing' | 'stopped' = 'idle';
  private inFlight = false;
  /** A failed step, written again before any new one. */
  private retry: Operation[] | undefined;

  constructor(
    private readonly queue: EventQueue,
    private readonly random: SeededRandom,
    private readonly options: SlicesOptions,
    private readonly trace: Trace,
    /** Ports of the running nodes. */
    private readonly ports: () => readonly ClusterPort[],
    private readonly fail: Fail,
  ) {
    this.rollouts = Array.from({ length: options.artifacts }, (_, i) => ({ base: artifactBase('org.sim', `svc${i}`), update: 1, oldMajor: 1 }));
  }

  /** The artifacts it drives. */
  get bases(): readonly ArtifactBase[] {
    return this.rollouts.map((r) => r.base);
  }

  start(): void {
    this.mode = 'writing';
    // The first write comes early, so that every seed routes something.
    this.queue.after(100 + this.random.nextFloat() * 200, () => this.act());
  }

  /**
   * Stops the random writes and settles: writes the final state until `inPlace()` (the caller
   * reads the leader's state) says it is there, then checks again from time to time, since a
   * write proposed earlier may still land after it.
   */
  finish(inPlace: () => boolean): void {
    this.mode = 'finishing';
    const check = (): void => {
      if (this.mode !== 'finishing') return;
      if (!this.inFlight && !inPlace()) this.write(this.finalOperations(), 'final');
      this.queue.after(FINISH_CHECK_INTERVAL_MS, check);
    };
    check();
  }

  stop(): void {
    this.mode = 'stopped';
  }

  /** Every artifact's final routing record and blueprints, as the leader's state must show them. */
  finalOperations(): Operation[] {
    const [newWeight, oldWeight] = FINAL_WEIGHTS;
    return this.rollouts.flatMap((r) => {
      const [oldVersion, newVersion] = [version(r.oldMajor), version(r.oldMajor + 1)];
      return [
        { type: 'put', key: versionRoutingKey(r.base), value: routingValue(`u${r.update}`, oldVersion, newVersion, newWeight, oldWeight) },
        { type: 'put', key: blueprintKey(r.base, oldVersion), value: formatBlueprint({ instances: FINAL_INSTANCES }) },
        { type: 'put', key: blueprintKey(r.base, newVersion), value: formatBlueprint({ instances: FINAL_INSTANCES }) },
      ] satisfies Operation[];
    });
  }

  private act(): void {
    if (this.mode !== 'writing') return;
    if (!this.inFlight) {
      const operations = this.retry ?? this.randomOperations();
      this.retry = undefined;
      this.write(operations, 'step');
    }
    this.queue.after(-this.options.rolloutIntervalMeanMs * Math.log(1 - this.random.nextFloat()), () => this.act());
  }

  /** One random step of one artifact's update. */
  private randomOperations(): Operation[] {
    const r = this.rollouts[this.random.nextInt(0, this.rollouts.length)]!;
    const draw = this.random.nextFloat();
    const instances = (): string => formatBlueprint({ instances: this.random.nextInt(0, this.options.versionInstancesMax + 1) });
    if (draw < 0.1) {
      // The next update: the new version becomes the old one, the one before it goes away.
      const retired = version(r.oldMajor);
      r.oldMajor++;
      r.update++;
      this.stats.updates++;
      return [
        { type: 'delete', key: blueprintKey(r.base, retired) },
        { type: 'put', key: blueprintKey(r.base, version(r.oldMajor + 1)), value: instances() },
        { type: 'put', key: versionRoutingKey(r.base), value: routingValue(`u${r.update}`, version(r.oldMajor), version(r.oldMajor + 1), 0, 1) },
      ];
    }
    if (draw < 0.15) return [{ type: 'delete', key: versionRoutingKey(r.base) }];
    if (draw < 0.5) {
      const major = this.random.nextFloat() < 0.5 ? r.oldMajor : r.oldMajor + 1;
      return [{ type: 'put', key: blueprintKey(r.base, version(major)), value: instances() }];
    }
    const [newWeight, oldWeight] = WEIGHTS[this.random.nextInt(0, WEIGHTS.length)]!;
    let value = routingValue(`u${r.update}`, version(r.oldMajor), version(r.oldMajor + 1), newWeight, oldWeight);
    if (this.random.nextFloat() < this.options.malformedRate) {
      // Data another writer got wrong: both weights 0, or a version that is not SemVer.
      value = this.random.nextFloat() < 0.5 ? routingValue(`u${r.update}`, version(r.oldMajor), version(r.oldMajor + 1), 0, 0) : routingValue(`u${r.update}`, `v${r.oldMajor}`, version(r.oldMajor + 1), 1, 1);
      this.stats.malformed++;
    }
    const operations: Operation[] = [{ type: 'put', key: versionRoutingKey(r.base), value }];
    // Sometimes the blueprints of both versions in the same transaction.
    if (this.random.nextFloat() < 0.3) for (const major of [r.oldMajor, r.oldMajor + 1]) operations.push({ type: 'put', key: blueprintKey(r.base, version(major)), value: instances() });
    return operations;
  }

  private write(operations: Operation[], what: string): void {
    const ports = this.ports();
    if (ports.length === 0) {
      if (what === 'step') this.retry = operations;
      return;
    }
    const port = ports[this.random.nextInt(0, ports.length)]!;
    this.stats.sent++;
    this.inFlight = true;
    this.trace.record(this.queue.nowMs, port.nodeId, `rollout-${what}`, operations.map((o) => (o.type === 'put' ? `${o.key}=${o.value}` : `${o.type} ${'key' in o ? o.key : ''}`)).join(' '));
    let settled = false;
    const failed = (why: string): void => {
      settled = true;
      this.stats.failed++;
      this.trace.record(this.queue.nowMs, port.nodeId, 'rollout-failed', why);
      if (what === 'step' && this.mode === 'writing') this.retry = operations;
      this.queue.after(RETRY_DELAY_MS, () => (this.inFlight = false));
    };
    this.queue.after(WRITE_ABANDON_MS, () => {
      if (!settled) failed('no answer');
    });
    port.txn([], operations).then(
      () => {
        if (settled) return;
        settled = true;
        this.stats.ok++;
        this.inFlight = false;
      },
      (error: unknown) => {
        const code = (error as { code?: unknown }).code;
        if (typeof code !== 'string') this.fail(`a rollout write on node ${port.nodeId} failed with an error no caller should see: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
        else if (!settled) failed(code);
      },
    );
  }
}
