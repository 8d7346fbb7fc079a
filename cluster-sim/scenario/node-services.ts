/**
 * Pieces of the per-node wiring and the run loop that the node-target scenarios built on the
 * updates service share (updates/simulation.ts, health/simulation.ts): a node's cluster port as a
 * client sees it, the loggers the services get, the busy-loop guard, throttled checks, the leader
 * among the attached nodes and the update records on it. None of them draws randomness or
 * schedules events, so using them changes no run's trace.
 */
import type { ClusterPort } from '../../src/node/cluster-port.ts';
import type { CutoverNode } from '../../src/node/node.ts';
import { UPDATE_PREFIX, type UpdateRecord } from '../../src/updates/record.ts';
import type { Clock } from '../../src/util/clock.ts';
import { CutoverError } from '../../src/util/errors.ts';
import type { Logger } from '../../src/util/logger.ts';
import { SeededRandom } from '../../src/util/random.ts';
import type { InvariantChecker } from '../checkers/invariants.ts';
import type { EventQueue } from '../events.ts';
import { FaultScheduler } from '../faults.ts';
import { SimNetwork } from '../network.ts';
import type { SimOptions } from '../options.ts';
import { RuntimeNode, type Detach, type RuntimeEnvironment } from '../runtime/runtime-node.ts';
import { TransportHub } from '../runtime/sim-transport.ts';
import type { Trace } from '../trace.ts';

export interface SimClusterParts {
  readonly queue: EventQueue;
  readonly trace: Trace;
  readonly checker: InvariantChecker;
  readonly sim: SimOptions;
  readonly counters: { snapshotsTaken: number; snapshotsInstalled: number };
  /** The scenario's name, for the failure a KV client reply (which these scenarios never send) reports. */
  readonly scenario: string;
  fail(message: string): void;
  /** Builds the scenario's services on each incarnation's node and clock. */
  attach(id: number, node: CutoverNode, clock: Clock): Detach;
}

export interface SimCluster {
  /** The seed's root random, after the network's, every node's and the fault scheduler's forks. */
  readonly root: SeededRandom;
  readonly network: SimNetwork;
  readonly nodes: RuntimeNode[];
  readonly faults: FaultScheduler;
}

/**
 * The nodes of a scenario without KV clients, on one simulated network with the fault scheduler:
 * the root random of the seed is forked for the network, then each node, then the faults, in that
 * order (a run's trace depends on it); the scenario forks its own streams from `root` afterwards.
 */
export function buildSimCluster(parts: SimClusterParts): SimCluster {
  const { queue, trace, checker, sim } = parts;
  const root = new SeededRandom(sim.seed);
  const hub = new TransportHub(queue, trace, checker);
  const network = new SimNetwork(queue, root.fork(), sim, trace, (m) => hub.deliver(m), (m, why) => hub.undelivered(m, why));
  hub.connect(network);
  const env: RuntimeEnvironment = {
    queue,
    trace,
    options: sim,
    checker,
    counters: parts.counters,
    hub,
    reply: () => parts.fail(`a KV client reply arrived, but the ${parts.scenario} scenario has no KV clients`),
    fail: (message) => parts.fail(message),
    attach: (id, node, clock) => parts.attach(id, node, clock),
  };
  const nodes = Array.from({ length: sim.nodes }, (_, i) => new RuntimeNode(i + 1, env, root.fork()));
  const faults = new FaultScheduler(queue, root.fork(), sim, trace, network, nodes);
  return { root, network, nodes, faults };
}

/** How often a throttled check reads state, in simulated ms. */
export const CHECK_INTERVAL_MS = 50;
/** Events in a row at one simulated instant before the run is called a busy loop. */
export const SAME_INSTANT_EVENTS_MAX = 10_000;

/**
 * `port` as a client (the operator) sees it: its node may die between two calls of one operation
 * (a look, a command's read then write), and then every later call fails as a connection to a dead
 * node does, with CONNECT_FAILED, instead of reaching the dead incarnation (whose clock is dead).
 */
export function clientPort(port: ClusterPort, live: () => boolean): ClusterPort {
  const refused = (): Promise<never> => Promise.reject(new CutoverError('CONNECT_FAILED', `node ${port.nodeId} is down`));
  return {
    nodeId: port.nodeId,
    txn: (compare, success, failure) => (live() ? port.txn(compare, success, failure) : refused()),
    get: (key, options) => (live() ? port.get(key, options) : refused()),
    range: (prefix, options) => (live() ? port.range(prefix, options) : refused()),
    watch: (prefix, fromRevision, listener) => (live() ? port.watch(prefix, fromRevision, listener) : () => {}),
    revision: () => port.revision(),
    isLeader: () => live() && port.isLeader(),
    term: () => port.term(),
    onLeaderChange: (listener) => (live() ? port.onLeaderChange(listener) : () => {}),
    members: () => (live() ? port.members() : []),
  };
}

/** A logger that writes info, warn and error into the trace as `<component>-<level>` on `node`. */
export function traceLogger(trace: Trace, nowMs: () => number, node: number, component: string): Logger {
  const line =
    (level: string) =>
    (obj: object, msg?: string): void =>
      trace.record(nowMs(), node, `${component}-${level}`, `${msg ?? ''} ${JSON.stringify(obj, (_k, v: unknown) => (v instanceof Error ? v.message : v))}`);
  const logger: Logger = { debug: () => {}, info: line('info'), warn: line('warn'), error: line('error'), child: () => logger };
  return logger;
}

/** A logger that drops everything. */
export function quietLogger(): Logger {
  const quiet: Logger = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {}, child: () => quiet };
  return quiet;
}

/**
 * Simulated time that stops moving means a busy loop: something keeps scheduling itself at once
 * (a real node would spin its CPU), and the run would never end. `stuck()` reports it once through
 * `onStuck` and answers true, so the run stops instead of waiting it out.
 */
export class InstantGuard {
  private atMs = -1;
  private events = 0;

  constructor(
    private readonly nowMs: () => number,
    private readonly onStuck: (message: string) => void,
  ) {}

  stuck(): boolean {
    const now = this.nowMs();
    if (now !== this.atMs) {
      this.atMs = now;
      this.events = 0;
      return false;
    }
    if (++this.events <= SAME_INSTANT_EVENTS_MAX) return false;
    this.onStuck(`simulated time stuck at ${now.toFixed(3)} ms: more than ${SAME_INSTANT_EVENTS_MAX} events in a row at one instant (a busy loop)`);
    return true;
  }
}

/** `check` at most every CHECK_INTERVAL_MS of simulated time (it reads and parses state); true once `failed()`. */
export function throttledCheck(nowMs: () => number, failed: () => boolean, check: () => boolean): () => boolean {
  let nextMs = 0;
  let last = false;
  return () => {
    if (failed()) return true;
    if (nowMs() < nextMs) return last;
    nextMs = nowMs() + CHECK_INTERVAL_MS;
    last = check();
    return last;
  };
}

/** The started node that is leader in the highest term; undefined when there is none. */
export function leaderOf<A extends { readonly node: CutoverNode; readonly started: boolean }>(attached: Iterable<A>): A | undefined {
  let best: A | undefined;
  for (const a of attached) {
    const status = a.node.status();
    if (a.started && status.role === 'leader' && (best === undefined || status.term > best.node.status().term)) best = a;
  }
  return best;
}

/** The update records in `node`'s KV (the leader's, when read on the leader). */
export function updateRecordsOn(node: CutoverNode): UpdateRecord[] {
  return node.kv
    .range(UPDATE_PREFIX, 0)
    .kvs.map((kv) => JSON.parse(kv.value) as UpdateRecord)
    .filter((r) => typeof r.state === 'string');
}
