/**
 * The actors of the placement scenario besides the controllers themselves:
 * - `BlueprintOperator`: an operator who writes and deletes blueprints through whichever node is
 *   up (a follower forwards the write to its leader), at random times during the safety phase;
 * - `InstanceReporter`: a stand-in for the node side of placement (each node watches its
 *   `assignment/{id}/` keys and reports `instance/{id}/…`). It only reconciles keys, with the same
 *   compare-and-swap rule as the real instance manager: a report is written only while its
 *   assignment exists, and removed once the assignment is gone. It gives the leader reports of
 *   down nodes to delete, which is what the scenario checks;
 * - `traceLogger`: the controllers' log lines as trace events, so a failing seed shows its plans.
 */
import type { CommandResult, Operation } from '../../src/kv/index.ts';
import type { CutoverNode } from '../../src/node/node.ts';
import { formatBlueprint } from '../../src/slices/blueprints.ts';
import { artifactBase, assignmentNodePrefix, blueprintKey, instanceKeyOfAssignment, instanceNodePrefix, ASSIGNMENT_PREFIX, INSTANCE_PREFIX } from '../../src/slices/keys.ts';
import type { Clock } from '../../src/util/clock.ts';
import { nodeId as toNodeId } from '../../src/util/ids.ts';
import type { Logger } from '../../src/util/logger.ts';
import type { SeededRandom } from '../../src/util/random.ts';
import type { EventQueue } from '../events.ts';
import type { Trace } from '../trace.ts';
import type { PlacementOptions } from './options.ts';

/** Something only a bug can cause: the run reports it and stops. */
export type Fail = (message: string) => void;

/** Calls `write` and sorts its failure: a coded error is operation, anything else a bug. */
function settle(write: Promise<CommandResult>, onDone: (ok: boolean) => void, fail: Fail, what: string): void {
  write.then(
    () => onDone(true),
    (error: unknown) => {
      if (typeof (error as { code?: unknown }).code === 'string') onDone(false);
      else fail(`${what} failed with an error no caller should see: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    },
  );
}

/** The blueprint keys the operator uses. */
export function blueprintKeys(options: PlacementOptions): { base: ReturnType<typeof artifactBase>; version: string; key: string }[] {
  return Array.from({ length: options.blueprints }, (_, i) => {
    const base = artifactBase('org.sim', options.oneArtifact ? 'app' : `app${i}`);
    const version = options.oneArtifact ? `1.0.${i}` : '1.0.0';
    return { base, version, key: blueprintKey(base, version) };
  });
}

/** Writes random blueprints through random up nodes until `stop()`. */
export class BlueprintOperator {
  readonly stats = { sent: 0, ok: 0, failed: 0 };
  private active = false;

  constructor(
    private readonly queue: EventQueue,
    private readonly random: SeededRandom,
    private readonly options: PlacementOptions,
    private readonly trace: Trace,
    private readonly upNodes: () => readonly CutoverNode[],
    private readonly fail: Fail,
  ) {}

  start(): void {
    this.active = true;
    // The first write comes early, so that every seed has something to place.
    this.queue.after(200 + this.random.nextFloat() * 300, () => this.act());
  }

  stop(): void {
    this.active = false;
  }

  private act(): void {
    if (!this.active) return;
    this.write();
    this.queue.after(-this.options.operatorIntervalMeanMs * Math.log(1 - this.random.nextFloat()), () => this.act());
  }

  private write(): void {
    const nodes = this.upNodes();
    if (nodes.length === 0) return;
    const node = nodes[this.random.nextInt(0, nodes.length)]!;
    const keys = blueprintKeys(this.options);
    const { key } = keys[this.random.nextInt(0, keys.length)]!;
    let operation: Operation;
    if (this.random.nextFloat() < this.options.deleteRate) operation = { type: 'delete', key };
    else {
      const instances = this.random.nextInt(0, this.options.instancesMax + 1);
      const perNodeMax = this.random.nextFloat() < this.options.perNodeMaxRate ? this.random.nextInt(1, 4) : undefined;
      operation = { type: 'put', key, value: formatBlueprint(perNodeMax === undefined ? { instances } : { instances, perNodeMax }) };
    }
    this.stats.sent++;
    this.trace.record(this.queue.nowMs, node.id, 'blueprint-write', operation.type === 'put' ? `${key} ${operation.value}` : `delete ${key}`);
    settle(node.propose(operation), (ok) => (ok ? this.stats.ok++ : this.stats.failed++), this.fail, `blueprint write on node ${node.id}`);
  }
}

/** Reports at most this many instances per round, so one round stays small. */
const REPORT_WRITES_PER_ROUND_MAX = 8;

/** Keeps `instance/{node}/…` in line with `assignment/{node}/…` on one node incarnation. */
export class InstanceReporter {
  private stopped = false;
  private cancel: () => void = () => {};

  constructor(
    private readonly node: CutoverNode,
    private readonly clock: Clock,
    private readonly intervalMs: number,
    private readonly fail: Fail,
  ) {}

  start(): void {
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    this.cancel();
  }

  private schedule(): void {
    if (this.stopped) return;
    this.cancel = this.clock.schedule(this.intervalMs, () => void this.round());
  }

  /** One reconciliation from the local state, one write at a time; then the next round. */
  private async round(): Promise<void> {
    const id = toNodeId(this.node.id);
    const assigned = this.node.kv.range(assignmentNodePrefix(id), 0).kvs.map((kv) => kv.key);
    const reported = new Set(this.node.kv.range(instanceNodePrefix(id), 0).kvs.map((kv) => kv.key));
    const wanted = new Set(assigned.map(instanceKeyOfAssignment));
    const writes: { compare: { exists: boolean; key: string }; operation: Operation }[] = [];
    for (const key of assigned) {
      const report = instanceKeyOfAssignment(key);
      if (!reported.has(report)) writes.push({ compare: { key, exists: true }, operation: { type: 'put', key: report, value: JSON.stringify({ state: 'ACTIVE', nodeId: this.node.id, address: `sim-${this.node.id}:1` }) } });
    }
    for (const report of reported) {
      if (!wanted.has(report)) writes.push({ compare: { key: ASSIGNMENT_PREFIX + report.slice(INSTANCE_PREFIX.length), exists: false }, operation: { type: 'delete', key: report } });
    }
    for (const write of writes.slice(0, REPORT_WRITES_PER_ROUND_MAX)) {
      if (this.stopped) return;
      const done = await new Promise<boolean>((resolve) => {
        const txn = this.node.propose({ type: 'txn', compare: [{ key: write.compare.key, target: 'exists', op: '=', value: write.compare.exists }], success: [write.operation], failure: [] });
        settle(txn, resolve, this.fail, `instance report on node ${this.node.id}`);
      });
      if (!done) break;
    }
    this.schedule();
  }
}

/** A Logger whose info, warn and error lines become trace events of `node`. */
export function traceLogger(trace: Trace, queue: EventQueue, node: number, onPlan: (fields: Record<string, unknown>) => void): Logger {
  const line =
    (level: string) =>
    (obj: object, msg?: string): void => {
      const fields = obj as Record<string, unknown>;
      if (msg === 'placement plan committed') onPlan(fields);
      trace.record(queue.nowMs, node, `placement-${level}`, `${msg ?? ''} ${JSON.stringify(fields, (key, value: unknown) => (key === 'err' && value instanceof Error ? `${(value as { code?: string }).code ?? value.name}: ${value.message}` : value))}`);
    };
  const logger: Logger = { debug: () => {}, info: line('info'), warn: line('warn'), error: line('error'), child: () => logger };
  return logger;
}
