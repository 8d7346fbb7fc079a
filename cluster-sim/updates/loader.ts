/**
 * The in-memory slices of the updates scenario: every version of `org.sim:upd{i}` loads to a
 * factory of instances with async start/stop/health on the incarnation's clock and one method,
 * `call`, which answers `{ node, version }`. A version is healthy or bad (`VersionBehaviour`,
 * decided by the seed): a bad one fails a share of its calls or answers late, on the simulated
 * clock, so the health gate reads real numbers through the invoker's metrics.
 */
import type { LoadedSlice, SliceContext, SliceInstance, SliceLoader } from '../../src/slices/instance-manager.ts';
import type { ArtifactBase } from '../../src/slices/keys.ts';
import type { Clock } from '../../src/util/clock.ts';
import type { SeededRandom } from '../../src/util/random.ts';
import type { UpdatesOptions } from './options.ts';

export interface VersionBehaviour {
  readonly errorRate: number;
  readonly addedLatencyMs: number;
}

export const HEALTHY: VersionBehaviour = { errorRate: 0, addedLatencyMs: 0 };

/** What one call answers. */
export interface CallReply {
  readonly node: number;
  readonly version: string;
}

export class UpdatesSliceLoader implements SliceLoader {
  constructor(
    private readonly clock: Clock,
    private readonly random: SeededRandom,
    private readonly options: UpdatesOptions,
    private readonly behaviour: (base: string, version: string) => VersionBehaviour,
  ) {}

  load(base: ArtifactBase, version: string): Promise<LoadedSlice> {
    const behaviour = this.behaviour(base, version);
    return Promise.resolve({ methods: ['call'], health: true, factory: (context) => this.instance(context, behaviour) });
  }

  private instance(context: SliceContext, behaviour: VersionBehaviour): SliceInstance {
    let unhealthyInARow = 0;
    return {
      start: () => this.delay(this.options.startMsMax),
      stop: () => this.delay(this.options.stopMsMax),
      health: () => {
        // Never unhealthy twice in a row (the manager's healthAttempts is 3): an instance that
        // goes FAILED is not replaced by placement, which is not what this scenario tests.
        if (unhealthyInARow === 0 && this.random.nextFloat() < this.options.healthFailRate) {
          unhealthyInARow++;
          return Promise.resolve({ healthy: false });
        }
        unhealthyInARow = 0;
        return Promise.resolve(true);
      },
      call: async (): Promise<CallReply> => {
        const ms = 1 + this.random.nextFloat() * 4 + behaviour.addedLatencyMs;
        await new Promise<void>((resolve) => this.clock.schedule(ms, resolve));
        if (behaviour.errorRate > 0 && this.random.nextFloat() < behaviour.errorRate) throw new Error(`injected failure of ${context.version}`);
        return { node: context.nodeId as number, version: context.version };
      },
    };
  }

  private delay(maxMs: number): Promise<void> {
    if (maxMs === 0) return Promise.resolve();
    const ms = this.random.nextFloat() * maxMs;
    return new Promise((resolve) => this.clock.schedule(ms, resolve));
  }
}
