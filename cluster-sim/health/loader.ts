/**
 * The slices of the health scenario and their scripted checks. Every version of `org.sim:hc0`
 * loads to in-memory instances with one method, `call`, answering `{ node, version, instanceId }`
 * (calls always succeed: only the checks of a bad version fail, so a call that fails is the
 * routing's fault, not the version's). Each version declares health checks in its manifest
 * (`LoadedSlice.healthChecks`: an http and a tcp check, ALL, the run's policy), so the real
 * `InstanceManager` gates ACTIVE on them and watches them while the instance runs, through a real
 * `HealthMonitor` whose `runRound` is `scriptedRound`: a deterministic answer on the simulated
 * clock from the version's `HealthBehaviour` and the time since that instance started.
 */
import { parseHealthSpec } from '../../src/health/spec.ts';
import type { CheckTarget, HealthSpec, RoundResult } from '../../src/health/types.ts';
import type { LoadedSlice, SliceContext, SliceInstance, SliceLoader } from '../../src/slices/instance-manager.ts';
import type { ArtifactBase } from '../../src/slices/keys.ts';
import type { Clock } from '../../src/util/clock.ts';
import type { SeededRandom } from '../../src/util/random.ts';
import type { HealthBehaviour, HealthOptions } from './options.ts';

/** What one call answers. */
export interface CallReply {
  readonly node: number;
  readonly version: string;
  readonly instanceId: string;
}

/** The sim instance as the scripted round sees it (`CheckTarget.instance`). */
interface ScriptedInstance extends SliceInstance {
  readonly behaviour: HealthBehaviour;
  /** Clock ms when start() finished; undefined before. */
  startedAtMs: number | undefined;
}

/** The checks every version declares: the run's policy, an http and a tcp check, all must pass. */
export function declaredChecks(options: HealthOptions): HealthSpec {
  return parseHealthSpec({
    mode: 'ALL',
    checks: [
      { type: 'http', name: 'healthz', path: '/healthz', port: 8080, timeoutSeconds: 1 },
      { type: 'tcp', name: 'port', host: '127.0.0.1', port: 8080, timeoutSeconds: 1 },
    ],
    policy: {
      intervalSeconds: options.intervalMs / 1000,
      initialDelaySeconds: options.initialDelayMs / 1000,
      successThreshold: options.successThreshold,
      failureThreshold: options.failureThreshold,
      monitoringDurationSeconds: options.monitoringSeconds,
    },
  });
}

/** Whether `behaviour` passes `sinceStartMs` after its instance started. */
export function scriptedPass(behaviour: HealthBehaviour, sinceStartMs: number, options: HealthOptions): boolean {
  switch (behaviour) {
    case 'healthy':
      return true;
    case 'sick':
      return sinceStartMs < options.sickAfterMs;
    case 'flapping':
      return Math.floor(sinceStartMs / options.flapPeriodMs) % 2 === 0;
    case 'never':
      return false;
  }
}

export class HealthSliceLoader implements SliceLoader {
  private readonly spec: HealthSpec;

  constructor(
    private readonly clock: Clock,
    private readonly random: SeededRandom,
    private readonly options: HealthOptions,
    private readonly behaviour: (version: string) => HealthBehaviour,
  ) {
    this.spec = declaredChecks(options);
  }

  load(_base: ArtifactBase, version: string): Promise<LoadedSlice> {
    const behaviour = this.behaviour(version);
    return Promise.resolve({ methods: ['call'], health: false, healthChecks: this.spec, factory: (context) => this.instance(context, behaviour) });
  }

  /** The monitor's `runRound`: every check of `spec` answers by the script, 1-20 ms later. */
  scriptedRound(wallClockMs: () => number): (spec: HealthSpec, target: CheckTarget) => Promise<RoundResult> {
    return (spec, target) => {
      const instance = target.instance as ScriptedInstance | undefined;
      const at = wallClockMs();
      const startMs = this.clock.nowMs();
      const durationMs = 1 + Math.floor(this.random.nextFloat() * 20);
      return new Promise((resolve, reject) => {
        this.clock.schedule(durationMs, () => {
          if (instance === undefined || instance.startedAtMs === undefined) return reject(new Error('no started instance to check'));
          const pass = scriptedPass(instance.behaviour, startMs - instance.startedAtMs, this.options);
          const results = spec.checks.map((check) => ({
            check: check.name,
            type: check.type,
            status: pass ? ('success' as const) : ('failure' as const),
            at,
            durationMs,
            attempts: 1,
            detail: pass ? `ok in ${durationMs} ms` : check.type === 'http' ? `HTTP 503 in ${durationMs} ms` : `connect ECONNREFUSED 127.0.0.1:8080`,
          }));
          resolve({ pass, results });
        });
      });
    };
  }

  private instance(context: SliceContext, behaviour: HealthBehaviour): ScriptedInstance {
    const instance: ScriptedInstance = {
      behaviour,
      startedAtMs: undefined,
      start: async () => {
        await this.delay(100);
        instance.startedAtMs = this.clock.nowMs();
      },
      stop: () => this.delay(50),
      call: async (): Promise<CallReply> => {
        await this.delay(5);
        return { node: context.nodeId, version: context.version, instanceId: context.instanceId };
      },
    };
    return instance;
  }

  private delay(maxMs: number): Promise<void> {
    const ms = 1 + this.random.nextFloat() * maxMs;
    return new Promise((resolve) => this.clock.schedule(ms, resolve));
  }
}
