/**
 * How each strategy moves traffic in ROUTING, as data: a list of routing steps computed from the
 * record's strategy settings and its target instance count, and pure functions that say whether
 * the next step may be applied now. `decide.ts` turns an applicable step into one KV transaction.
 *
 * Every strategy shares Aether's two-stage model: DEPLOYING starts new instances (writing their
 * blueprint and a routing record in the same transaction), DEPLOYED means they are ACTIVE, and the
 * steps below then move the `new:old` weights. A step is
 * - its ratio (what `version-routing/` says once it is applied),
 * - the new instances that must be ACTIVE before it is applied ("readiness before traffic"),
 * - the new blueprint count written with it (only ROLLING grows it step by step),
 * - how long to hold it before the next one (the last step's hold is the monitoring window), and
 * - whether it needs an operator's Approve first.
 *
 * Strategies (N = target new instances):
 * - MANUAL: no steps. The operator sets the ratio (`commands.ts`); Complete needs 1:0.
 * - CANARY: the canary share, then the weight steps (default 25, 50, 75%), then 100%, each held
 *   for batchDelay. The full new set is deployed first: weights are exact regardless of instance
 *   counts (DESIGN decision 6), so a 10% share needs no 10% of instances.
 * - ROLLING: the new set grows in batches of b = min(batchSize, max(1, ⌊N × maxUnavailable% ⌋))
 *   instances; step k routes n_k : (N − n_k) with n_k = min(k·b, N) new instances ACTIVE, i.e. each
 *   instance carries the same share, and starts the next batch. A batch not yet ACTIVE is the
 *   capacity "unavailable" during the update, so at most maxUnavailable% of the set is starting at
 *   any time. Traffic, not instances, is what ROLLING replaces batch by batch: the old version keeps
 *   its instances until cleanup, so a rollback is instant at every step (Aether's promise) and the
 *   cleanup policy means the same for every strategy. The price is surge capacity for the new set.
 * - BLUE_GREEN: the full new set deployed at 0%, one switch to 100%.
 * - RECREATE: DEPLOYING already stops the old set (its blueprint goes to 0) and routes 1:0, so
 *   there is never mixed routing; the one step (100%) only starts the monitoring window. Calls
 *   fail between the old set draining and the new one becoming ACTIVE: that is RECREATE.
 * - STAGED: the explicit percentages, then 100%, each applied only after an Approve; no hold
 *   between stages (the approval is the gate).
 * With requireManualApproval every step of every strategy needs an Approve.
 */
import type { BlueprintRecord } from '../slices/blueprints.ts';
import { reduceRatio, type Ratio } from './request.ts';
import type { StrategySettings, UpdateRecord } from './record.ts';

/** One step of a plan. */
export interface RoutingStep {
  /** 0-based position in the plan; `record.stepIndex` counts the steps applied. */
  readonly index: number;
  /** The weights once applied, in lowest terms. */
  readonly ratio: Ratio;
  /** New instances that must be ACTIVE before the step is applied. */
  readonly requiredActive: number;
  /** The new version's blueprint count written with the step. */
  readonly newInstancesAfter: number;
  /** Hold after applying before the next step may be; for the last step, the monitoring window. */
  readonly holdMs: number;
  readonly needsApproval: boolean;
}

/** Weights of `percent`% new, in lowest terms (10 → 1:9, 100 → 1:0). */
export function ratioOfPercent(percent: number): Ratio {
  return reduceRatio({ newWeight: percent, oldWeight: 100 - percent });
}

/** The instances an update runs at 100%: the request's count, or the old version's. */
export function resolveTarget(requested: number | null, oldBlueprint: BlueprintRecord): number {
  return requested ?? oldBlueprint.instances;
}

/** ROLLING's batch: min(batchSize, max(1, ⌊target × maxUnavailable% ⌋)). */
export function rollingBatch(strategy: StrategySettings, target: number): number {
  return Math.min(strategy.batchSize, Math.max(1, Math.floor((target * strategy.maxUnavailablePercentage) / 100)), target);
}

/** New instances written by the DEPLOYING transaction (and ACTIVE at DEPLOYED). */
export function deployInstances(strategy: StrategySettings, target: number): number {
  return strategy.kind === 'ROLLING' ? rollingBatch(strategy, target) : target;
}

/** The weights written by the DEPLOYING transaction: 0:1, or 1:0 for RECREATE. */
export function initialRouting(strategy: StrategySettings): Ratio {
  return strategy.kind === 'RECREATE' ? { newWeight: 1, oldWeight: 0 } : { newWeight: 0, oldWeight: 1 };
}

/** The old version's blueprint count while the update runs: 0 for RECREATE, unchanged otherwise. */
export function oldInstancesDuring(strategy: StrategySettings, old: BlueprintRecord): number {
  return strategy.kind === 'RECREATE' ? 0 : old.instances;
}

function percentSteps(strategy: StrategySettings, target: number, percents: readonly number[], holdMs: number, approval: boolean): RoutingStep[] {
  return percents.map((percent, index) => ({
    index,
    ratio: ratioOfPercent(percent),
    requiredActive: target,
    newInstancesAfter: target,
    holdMs: index === percents.length - 1 ? strategy.monitoringMs : holdMs,
    needsApproval: approval,
  }));
}

function rollingSteps(strategy: StrategySettings, target: number): RoutingStep[] {
  const batch = rollingBatch(strategy, target);
  const count = Math.ceil(target / batch);
  const steps: RoutingStep[] = [];
  for (let index = 0; index < count; index++) {
    const active = Math.min((index + 1) * batch, target);
    steps.push({
      index,
      ratio: reduceRatio({ newWeight: active, oldWeight: target - active }),
      requiredActive: active,
      newInstancesAfter: Math.min(active + batch, target),
      holdMs: index === count - 1 ? strategy.monitoringMs : strategy.batchDelayMs,
      needsApproval: strategy.requireManualApproval,
    });
  }
  return steps;
}

/** The routing steps of `strategy` for `target` new instances (`target` ≥ 1). */
export function planSteps(strategy: StrategySettings, target: number): RoutingStep[] {
  const approval = strategy.requireManualApproval;
  switch (strategy.kind) {
    case 'MANUAL':
      return [];
    case 'CANARY':
      return percentSteps(strategy, target, [strategy.canaryPercentage, ...strategy.steps, 100], strategy.batchDelayMs, approval);
    case 'ROLLING':
      return rollingSteps(strategy, target);
    case 'BLUE_GREEN':
    case 'RECREATE':
      return percentSteps(strategy, target, [100], 0, approval);
    case 'STAGED':
      return percentSteps(strategy, target, [...strategy.steps, 100], 0, true);
  }
}

/** The plan of a deployed record (empty before DEPLOYING, when the target is not known). */
export function recordSteps(record: UpdateRecord): RoutingStep[] {
  return record.instances.target === null ? [] : planSteps(record.strategy, record.instances.target);
}

/** The next step to apply, or undefined when all are applied (or there are none). */
export function nextRoutingStep(record: UpdateRecord): RoutingStep | undefined {
  return recordSteps(record)[record.stepIndex];
}

/** True when an Approve of step `index` is recorded. */
export function isApproved(record: UpdateRecord, index: number): boolean {
  return record.approvals.some((approval) => approval.step === index);
}

/** What ROUTING does next, as `routingProgress` sees it. */
export type RoutingProgress =
  | { readonly kind: 'apply'; readonly step: RoutingStep; readonly of: number }
  | { readonly kind: 'complete' }
  | { readonly kind: 'wait'; readonly for: 'hold' | 'approval' | 'instances' | 'monitoring' | 'operator'; readonly until: number | null; readonly detail: string };

/**
 * Whether ROUTING can move now, given the new instances ACTIVE: apply the next step, complete
 * (every step applied and the monitoring window over; never for MANUAL), or wait — for a deadline
 * (`until`), an Approve, new instances, or the operator (MANUAL). Ignores the pause flag and the
 * health gate, which `decide.ts` checks first.
 */
export function routingProgress(record: UpdateRecord, newActive: number, nowMs: number): RoutingProgress {
  const steps = recordSteps(record);
  const step = steps[record.stepIndex];
  if (step === undefined) {
    if (record.strategy.kind === 'MANUAL') return { kind: 'wait', for: 'operator', until: null, detail: 'MANUAL: the operator sets the routing and completes at 1:0' };
    const until = record.deadlines.monitoringUntil;
    if (until !== null && nowMs < until) return { kind: 'wait', for: 'monitoring', until, detail: `monitoring 100% until ${until}` };
    return { kind: 'complete' };
  }
  const label = `step ${step.index + 1}/${steps.length}`;
  const holdUntil = record.deadlines.nextStepAt;
  if (holdUntil !== null && nowMs < holdUntil) return { kind: 'wait', for: 'hold', until: holdUntil, detail: `${label} not before ${holdUntil}` };
  if (step.needsApproval && !isApproved(record, step.index)) return { kind: 'wait', for: 'approval', until: null, detail: `${label} waits for an Approve` };
  if (newActive < step.requiredActive) return { kind: 'wait', for: 'instances', until: null, detail: `${label} waits for ${step.requiredActive} new instances ACTIVE (${newActive} are)` };
  return { kind: 'apply', step, of: steps.length };
}
