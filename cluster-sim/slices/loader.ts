/**
 * An in-memory `SliceLoader` for the simulator: no artifact, no dynamic import. Every version
 * loads to a factory whose instances have async `start()`, `stop()` and `health()` that take a
 * random simulated time on the incarnation's clock (a crash kills the clock, so a step in
 * progress never finishes, like a process that died), and one method, `call`.
 *
 * `health()` sometimes answers unhealthy, but never `healthAttempts` times in a row for one
 * instance: the InstanceManager would mark it FAILED, and placement (rightly) does not replace
 * failed instances, so the scenario's "every instance ACTIVE after the heal" would not hold for a
 * reason that is not a bug.
 */
import type { LoadedSlice, SliceContext, SliceInstance, SliceLoader } from '../../src/slices/instance-manager.ts';
import type { ArtifactBase } from '../../src/slices/keys.ts';
import type { Clock } from '../../src/util/clock.ts';
import type { SeededRandom } from '../../src/util/random.ts';
import type { SlicesOptions } from './options.ts';

/** What the loaders of one run did, summed over every node and incarnation. */
export interface LoaderStats {
  loads: number;
  starts: number;
  stops: number;
  healthChecks: number;
  unhealthy: number;
}

/** One incarnation's loader. */
export class MemorySliceLoader implements SliceLoader {
  constructor(
    private readonly clock: Clock,
    private readonly random: SeededRandom,
    private readonly options: SlicesOptions,
    private readonly stats: LoaderStats,
  ) {}

  async load(_base: ArtifactBase, _version: string): Promise<LoadedSlice> {
    this.stats.loads++;
    await this.delay(this.options.loadMsMax);
    return { methods: ['call'], health: true, factory: (context) => this.instance(context) };
  }

  private instance(context: SliceContext): SliceInstance {
    let unhealthyInARow = 0;
    return {
      start: async () => {
        this.stats.starts++;
        await this.delay(this.options.startMsMax);
      },
      stop: async () => {
        this.stats.stops++;
        await this.delay(this.options.stopMsMax);
      },
      health: async () => {
        this.stats.healthChecks++;
        await this.delay(this.options.healthMsMax);
        if (unhealthyInARow + 1 < this.options.healthAttempts && this.random.nextFloat() < this.options.healthFailRate) {
          unhealthyInARow++;
          this.stats.unhealthy++;
          return { healthy: false };
        }
        unhealthyInARow = 0;
        return true;
      },
      call: (payload: unknown) => ({ nodeId: context.nodeId, instanceId: context.instanceId, version: context.version, payload }),
    };
  }

  /** Up to `maxMs` of simulated time; 0 resolves at once (in a microtask, as a fast slice would). */
  private delay(maxMs: number): Promise<void> {
    if (maxMs === 0) return Promise.resolve();
    const ms = this.random.nextFloat() * maxMs;
    return new Promise((resolve) => this.clock.schedule(ms, resolve));
  }
}
