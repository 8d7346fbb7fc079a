/**
 * What `Invoker.invoke` adds to a call of a local instance, compared with calling the instance's
 * async method directly, in ns per call.
 *
 * The set-up is a node's, in one process: the real `InstanceManager` on a `MemoryClusterPort`
 * (node 1), with an in-memory `SliceLoader` that hands it the example slice's own module
 * (examples/slices/greeter/1.0.0, imported once), assigned one instance, which goes through
 * STARTING → HEALTH_CHECKING → ACTIVE as on a node. The `RoutingTable` follows the port's KV by
 * watch (`followRoutingTable`, as `SliceHost` does), and the `Invoker` has the node's
 * `InvocationMetrics` and the real clock. The baseline calls `hello` on the very instance object
 * the manager built.
 *
 * Each loop awaits one call at a time (`await invoke(...)` N times), so a figure is the latency of
 * a call through the whole promise chain, not a throughput of overlapping calls. Loops are
 * interleaved (direct, invoker, manager alone, direct, ...) and each figure is the median of the
 * runs.
 */
import { Invoker } from '../../src/invoker/invoker.ts';
import { InvocationMetrics } from '../../src/invoker/metrics.ts';
import { RemoteInvoker } from '../../src/invoker/remote.ts';
import { RoutingTable } from '../../src/invoker/routing-table.ts';
import { followRoutingTable } from '../../src/invoker/table-feed.ts';
import { MemoryClusterPort } from '../../src/node/cluster-port.ts';
import { realClock } from '../../src/platform/scheduler.ts';
import { waitFor } from '../../src/platform/wait.ts';
import { InstanceManager, type LoadedSlice, type SliceContext, type SliceInstance } from '../../src/slices/instance-manager.ts';
import { assignmentKey, instanceKey } from '../../src/slices/keys.ts';
import { nodeId } from '../../src/util/ids.ts';
import { silentLogger } from '../../src/util/logger.ts';
import { GREETER } from './routing.ts';
import { median } from './stats.ts';

const ARTIFACT = 'org.example:greeter';
const VERSION = '1.0.0';
const GREETER_MODULE = new URL('../../examples/slices/greeter/1.0.0/index.js', import.meta.url).href;

/** One call path's medians over the runs. */
export interface PathFigures {
  /** Median wall-clock ns per call. */
  readonly wallNs: number;
  /** Median CPU ns per call (this process, all threads): what other load on the machine distorts least. */
  readonly cpuNs: number;
  readonly wallRangeNs: readonly [number, number];
}

export interface LocalInvokeResult {
  readonly callsPerRun: number;
  readonly runs: number;
  /** `await instance.hello(payload)`. */
  readonly direct: PathFigures;
  /** `await invoker.invoke('org.example:greeter', 'hello', payload)`: the overhead is this less `direct`. */
  readonly invoker: PathFigures;
  /** `await instanceManager.invoke(key, 'hello', payload, deadline)`: the manager's share of it. */
  readonly manager: PathFigures;
}

type Hello = (this: SliceInstance, payload: unknown) => Promise<unknown>;

/** Runs the measurement described in the module comment. */
export async function measureLocalInvoke(callsPerRun: number, runs: number): Promise<LocalInvokeResult> {
  const module = (await import(GREETER_MODULE)) as { default: (context: SliceContext) => SliceInstance };
  let built: SliceInstance | undefined;
  const loaded: LoadedSlice = {
    methods: ['hello'],
    health: true,
    factory: (context) => {
      built = module.default(context);
      return built;
    },
  };
  const port = new MemoryClusterPort(1);
  const manager = new InstanceManager({ port, loader: { load: () => Promise.resolve(loaded) }, clock: realClock, logger: silentLogger, address: '127.0.0.1:7001' });
  const table = new RoutingTable();
  const remote = new RemoteInvoker({ clock: realClock });
  const metrics = new InvocationMetrics({ startMs: realClock.nowMs() });
  const invoker = new Invoker({ table, localNodeId: 1, remote, local: manager, metrics, clock: realClock });
  await manager.start();
  const stopFeed = await followRoutingTable(port, table);
  try {
    await port.txn([], [{ type: 'put', key: assignmentKey(nodeId(1), GREETER, VERSION, 'i-1'), value: JSON.stringify({ nodeId: 1 }) }]);
    await waitFor('the local greeter instance to be ACTIVE', () => (manager.status()[0]?.state === 'ACTIVE' ? true : undefined), { timeoutMs: 10_000 });
    const instance = built;
    if (instance === undefined) throw new Error('local invoke bench: the factory was not called');
    const hello = instance['hello'] as Hello;
    const key = instanceKey(nodeId(1), GREETER, VERSION, 'i-1');
    const payload = { name: 'Ada' };
    const check = (await invoker.invoke(ARTIFACT, 'hello', payload)) as { version?: string };
    if (check.version !== VERSION) throw new Error(`local invoke bench: unexpected reply ${JSON.stringify(check)}`);

    const direct = async (n: number): Promise<void> => {
      for (let i = 0; i < n; i++) await hello.call(instance, payload);
    };
    const viaInvoker = async (n: number): Promise<void> => {
      for (let i = 0; i < n; i++) await invoker.invoke(ARTIFACT, 'hello', payload);
    };
    const viaManager = async (n: number): Promise<void> => {
      const deadlineAt = realClock.nowMs() + 3_600_000;
      for (let i = 0; i < n; i++) await manager.invoke(key, 'hello', payload, deadlineAt);
    };
    /** Wall-clock and CPU ns per call of one run of `loop`. */
    const timed = async (loop: (n: number) => Promise<void>): Promise<[number, number]> => {
      const cpuStarted = process.cpuUsage();
      const started = process.hrtime.bigint();
      await loop(callsPerRun);
      const wallNs = Number(process.hrtime.bigint() - started) / callsPerRun;
      const cpu = process.cpuUsage(cpuStarted);
      return [wallNs, ((cpu.user + cpu.system) * 1000) / callsPerRun];
    };
    // Warm-up: every path, until the JIT has settled.
    for (const loop of [direct, viaInvoker, viaManager]) await loop(Math.max(50_000, callsPerRun >> 1));
    const paths = { direct, invoker: viaInvoker, manager: viaManager };
    const samples = { direct: { wall: [] as number[], cpu: [] as number[] }, invoker: { wall: [] as number[], cpu: [] as number[] }, manager: { wall: [] as number[], cpu: [] as number[] } };
    for (let run = 0; run < runs; run++) {
      for (const name of ['direct', 'invoker', 'manager'] as const) {
        const [wallNs, cpuNs] = await timed(paths[name]);
        samples[name].wall.push(wallNs);
        samples[name].cpu.push(cpuNs);
      }
    }
    const figures = (name: keyof typeof samples): PathFigures => ({ wallNs: median(samples[name].wall), cpuNs: median(samples[name].cpu), wallRangeNs: [Math.min(...samples[name].wall), Math.max(...samples[name].wall)] });
    return { callsPerRun, runs, direct: figures('direct'), invoker: figures('invoker'), manager: figures('manager') };
  } finally {
    stopFeed();
    await manager.stop();
    remote.close();
  }
}
