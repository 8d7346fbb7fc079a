/**
 * A small cluster for the rolling-update controller in unit tests: a `MemoryClusterPort`, a
 * `ManualClock` (the wall clock is T0 plus its time), published artifact metadata, fake instances
 * that follow the blueprints (each version's instances become ACTIVE `startDelayMs` after its
 * blueprint changes, up to a cap the test sets), a fake health source, and the controller, which
 * can be replaced by a new instance at any moment to simulate a failover.
 */
import type { VersionHealth } from '../../src/invoker/metrics-aggregator.ts';
import { MemoryClusterPort } from '../../src/node/cluster-port.ts';
import { parseBlueprint } from '../../src/slices/blueprints.ts';
import { INSTANCE_PREFIX, BLUEPRINT_PREFIX, artifactKey, blueprintKey, instanceKey, parseBlueprintKey, parseInstanceKey, versionRoutingKey, type ArtifactBase } from '../../src/slices/keys.ts';
import { UpdateController, type CommittedStep, type UpdateControllerOptions } from '../../src/updates/controller.ts';
import { UpdateOperations } from '../../src/updates/operations.ts';
import { parseUpdateRecord, updateKey, type UpdateRecord, type UpdateState } from '../../src/updates/record.ts';
import { nodeId } from '../../src/util/ids.ts';
import { silentLogger } from '../../src/util/logger.ts';
import { ManualClock, flush } from '../helpers/manual-clock.ts';

export const BASE = 'org.example:greeter' as ArtifactBase;
export const T0 = 1_700_000_000_000;

/** Valid `artifact/` metadata for a greeter version. */
export function artifactMeta(version: string, minCompatibleVersion?: string, base: string = BASE): string {
  const [groupId, artifactId] = base.split(':') as [string, string];
  const manifest = { groupId, artifactId, version, entry: 'index.js', methods: ['hello'], ...(minCompatibleVersion === undefined ? {} : { minCompatibleVersion }) };
  return JSON.stringify({ groupId, artifactId, version, sha256: 'a'.repeat(64), size: 100, chunks: 1, chunkBytes: 1024, manifest });
}

/** The new version's health over a window. */
export function health(version: string, requestCount: number, errorRate: number, p99LatencyMs: number): VersionHealth {
  return { base: BASE, version, requestCount, errorCount: Math.round(requestCount * errorRate), errorRate, avgLatencyMs: p99LatencyMs / 2, p99LatencyMs, nodes: 1, collectedAt: 0, windowMs: 10_000 };
}

export interface HarnessOptions {
  readonly oldInstances?: number;
  readonly startDelayMs?: number;
  readonly controller?: Partial<UpdateControllerOptions>;
  /** Published versions and their minCompatibleVersion. */
  readonly published?: Readonly<Record<string, string | undefined>>;
}

export class UpdateHarness {
  readonly port = new MemoryClusterPort(1, true);
  readonly clock = new ManualClock();
  readonly wall = (): number => T0 + this.clock.nowMs();
  /** Health by version; undefined = no calls. */
  readonly healthByVersion = new Map<string, VersionHealth | undefined>();
  /** Most ACTIVE instances per version (unset = no cap). */
  readonly caps = new Map<string, number>();
  /** The windows the controllers asked the health source for. */
  readonly windowsAsked: number[] = [];
  /** Every step committed by every controller, in order. */
  readonly commits: CommittedStep[] = [];
  readonly ops: UpdateOperations;
  controller: UpdateController;
  controllers = 1;
  /** Fail over right after every committed step, inside the committing controller's flow. */
  failoverAfterEachCommit = false;
  private readonly startDelayMs: number;
  private syncPending: (() => void) | undefined;

  constructor(private readonly options: HarnessOptions = {}) {
    this.startDelayMs = options.startDelayMs ?? 1000;
    const published = options.published ?? { '1.0.0': undefined, '2.0.0': '1.0.0', '2.1.0': '2.0.0' };
    for (const [version, min] of Object.entries(published)) this.put(artifactKey(BASE, version), artifactMeta(version, min));
    this.put(blueprintKey(BASE, '1.0.0'), JSON.stringify({ instances: options.oldInstances ?? 4 }));
    this.syncInstances();
    this.port.watch(BLUEPRINT_PREFIX, 0, () => this.scheduleSync());
    this.ops = new UpdateOperations({ port: this.port, wallClockMs: this.wall, nodeDownAfterMs: 15_000, nodeInstancesMax: options.controller?.nodeInstancesMax ?? 64 });
    this.controller = this.makeController();
    this.controller.start();
  }

  private makeController(): UpdateController {
    return new UpdateController({
      port: this.port,
      clock: this.clock,
      wallClockMs: this.wall,
      logger: silentLogger,
      health: {
        snapshot: (_base, version, { windowMs }) => {
          this.windowsAsked.push(windowMs);
          return this.healthByVersion.get(version);
        },
      },
      onCommit: (event) => {
        this.commits.push(event);
        if (this.failoverAfterEachCommit) this.failover();
      },
      ...this.options.controller,
    });
  }

  /** A failover: this controller stops with its leadership, a new controller takes over on the same state. */
  failover(): void {
    this.controller.stop();
    this.port.setLeader(false);
    this.controller = this.makeController();
    this.controllers++;
    this.controller.start();
    this.port.setLeader(true);
  }

  /** Writes outside the Raft path (works whoever leads): test setup and fake node reports. */
  put(key: string, value: string): void {
    this.port.kv.apply({ clientId: 0, sequence: 0, command: { type: 'put', key, value } });
  }

  delete(key: string): void {
    this.port.kv.apply({ clientId: 0, sequence: 0, command: { type: 'delete', key } });
  }

  get(key: string): string | undefined {
    return this.port.kv.get(key)?.value;
  }

  record(id: string): UpdateRecord {
    const value = this.get(updateKey(id));
    if (value === undefined) throw new Error(`no record ${id}`);
    const parsed = parseUpdateRecord(value);
    if (!parsed.ok) throw new Error(parsed.reason);
    return parsed.value;
  }

  routing(): string | undefined {
    const value = this.get(versionRoutingKey(BASE));
    if (value === undefined) return undefined;
    const r = JSON.parse(value) as { newWeight: number; oldWeight: number };
    return `${r.newWeight}:${r.oldWeight}`;
  }

  blueprintCount(version: string): number | undefined {
    const value = this.get(blueprintKey(BASE, version));
    return value === undefined ? undefined : JSON.parse(value).instances;
  }

  activeInstances(version: string): number {
    return this.port.kv.range(INSTANCE_PREFIX, 0).kvs.filter((kv) => parseInstanceKey(kv.key)?.version.text === version).length;
  }

  private scheduleSync(): void {
    if (this.syncPending !== undefined) return;
    this.syncPending = this.clock.schedule(this.startDelayMs, () => {
      this.syncPending = undefined;
      this.syncInstances();
    });
  }

  /** Instances follow the blueprints: each version gets min(blueprint, cap) ACTIVE instances on node 1. */
  syncInstances(): void {
    const want = new Map<string, number>();
    for (const kv of this.port.kv.range(BLUEPRINT_PREFIX, 0).kvs) {
      const key = parseBlueprintKey(kv.key);
      const parsed = parseBlueprint(kv.value);
      if (key !== undefined && parsed.ok) want.set(key.version.text, Math.min(parsed.value.instances, this.caps.get(key.version.text) ?? Infinity));
    }
    const have = new Map<string, string[]>();
    for (const kv of this.port.kv.range(INSTANCE_PREFIX, 0).kvs) {
      const parts = parseInstanceKey(kv.key);
      if (parts !== undefined) have.set(parts.version.text, [...(have.get(parts.version.text) ?? []), kv.key]);
    }
    for (const [version, keys] of have) {
      const count = want.get(version) ?? 0;
      for (const key of keys.sort().slice(count)) this.delete(key);
    }
    for (const [version, count] of want) {
      for (let i = 0; i < count; i++) {
        const key = instanceKey(nodeId(1), BASE, version, `${version.replace(/[^A-Za-z0-9]/g, '-')}-i${String(i).padStart(3, '0')}`);
        if (this.port.kv.get(key) === undefined) this.put(key, JSON.stringify({ state: 'ACTIVE', nodeId: 1, address: '127.0.0.1:7001' }));
      }
    }
  }

  /** Lets the controller finish what it is doing at the current time. */
  async settle(): Promise<void> {
    await flush(500);
  }

  /** Advances time in `stepMs` steps, settling after each. */
  async advance(ms: number, stepMs = 250): Promise<void> {
    for (let done = 0; done < ms; done += stepMs) {
      await this.clock.advance(Math.min(stepMs, ms - done));
      await this.settle();
    }
  }

  /**
   * Advances until `predicate` holds for the record (checked after each step), calling `each`
   * first (an operator's actions); fails after `maxMs` of simulated time.
   */
  async until(id: string, predicate: (record: UpdateRecord) => boolean, maxMs = 3_600_000, each: (record: UpdateRecord) => Promise<void> | void = () => {}, stepMs = 250): Promise<UpdateRecord> {
    await this.settle();
    for (let elapsed = 0; ; elapsed += stepMs) {
      const record = this.record(id);
      if (predicate(record)) return record;
      if (elapsed > maxMs) throw new Error(`update ${id} never got there; it is ${record.state}${record.paused ? ` (paused: ${record.pauseReason})` : ''}, last step ${record.log.at(-1)?.step}`);
      await each(record);
      await this.clock.advance(stepMs);
      await this.settle();
    }
  }

  /** Steps `id`'s controller commits, in order. */
  stepsOf(id: string): string[] {
    return this.commits.filter((c) => c.updateId === id).map((c) => c.step);
  }

  static inState(...states: UpdateState[]): (record: UpdateRecord) => boolean {
    return (record) => states.includes(record.state);
  }
}
