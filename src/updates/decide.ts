/**
 * The reconciler's pure core: given the stored update record, what the controller observed
 * (facts) and the wall-clock time, `nextStep` says what to do — wait (until when), or commit ONE
 * step: the new record plus the KV writes that step implies.
 *
 * One step, one transaction (DESIGN decision 4). A `Commit` always contains the new record, and
 * `commitTxn` turns it into a single KV transaction guarded by the record's modRevision:
 *
 *   compare: rolling-update/{id} modRevision = <revision the record was read at>
 *   success: put rolling-update/{id} <new record>, then the step's writes (routing, blueprints)
 *
 * So a step's effects and the record's advance past it commit together or not at all. A leader
 * that crashes before the commit leaves the old record, and the next leader computes the same step
 * from it; one that crashes after leaves the advanced record, and the next leader computes the
 * step after it. Two leaders (an old one that does not know it lost) cannot both commit: the
 * second compare fails. Writes are absolute (put this routing, put this blueprint count, delete
 * that blueprint), never relative, so applying one is the same whatever state the key was in.
 *
 * Idempotence: every commit changes what `nextStep` reads — the state, the step index, a deadline
 * or a count — so calling `nextStep` on the committed record never yields the same step again, with
 * fresh facts or with the facts from before the commit. Facts only gate steps (instances ACTIVE,
 * validation done, health). The one exception is the routing repair, whose fact is the very key it
 * rewrites: the controller reads facts at or after the record's revision (one Range, or a watch
 * mirror that has caught up with the commit), and then the repair is not repeated either.
 *
 * Ordering within an update:
 * - DEPLOYING is entered by the transaction that writes the new blueprint AND a routing record
 *   (0:1; RECREATE: 1:0 and the old blueprint at 0). Without a routing record every invoker would
 *   send all calls to the highest version with ACTIVE instances, i.e. to the new one as soon as one
 *   instance started; with 0:1 the new instances get nothing until a routing step.
 * - DEPLOYED is committed only when the facts show the new instances ACTIVE, never before.
 * - A rollback first commits routing 0:1 (with the transition to ROLLING_BACK, and the old
 *   blueprint restored where RECREATE had stopped it); only a later step, once the old version is
 *   ACTIVE again, deletes the new blueprint and enters ROLLED_BACK.
 * - Completion commits 1:0 with the transition to COMPLETING; the old blueprint is deleted by the
 *   step that enters COMPLETED, at the cleanup deadline (IMMEDIATE: at once; GRACE_PERIOD: after
 *   the grace period; MANUAL: never by us). Until then a rollback is as quick as from ROUTING.
 * - The routing record is kept after COMPLETED (1:0): removing it could hand calls back to the old
 *   version wherever it still runs (MANUAL cleanup, a downgrade, instances still draining).
 *
 * Priorities in a state: terminal → nothing; then the health gate (states where the new version
 * can get calls); then repairing a routing record that differs from the record's; then the state's
 * own progress. Pause blocks forward progress only: recognising facts (instances ACTIVE), deadlines
 * that protect (deploy timeout, restore timeout) and the whole rollback path run while paused.
 */
import type { VersionHealth } from '../invoker/metrics-aggregator.ts';
import type { RoutingRecord } from '../invoker/records.ts';
import type { Compare, Operation } from '../kv/types.ts';
import type { BlueprintRecord } from '../slices/blueprints.ts';
import { formatBlueprint } from '../slices/blueprints.ts';
import { blueprintKey, versionRoutingKey } from '../slices/keys.ts';
import { evaluateHealth } from './health-gate.ts';
import { deployInstances, initialRouting, oldInstancesDuring, recordSteps, resolveTarget, routingProgress, type RoutingStep } from './plan.ts';
import { CONTROLLER, HEALTH_GATE, ROLLED_BACK_IDS_MAX, effectiveNow, formatUpdateRecord, isTerminal, updateKey, withLogEntry, type Actor, type UpdateRecord, type UpdateState } from './record.ts';
import { formatRatio, reduceRatio, type Ratio } from './request.ts';
import { byController, pause, transition } from './transitions.ts';
import { updateEventWrites } from './update-events.ts';

/** What the controller observed of one version's instances. */
export interface InstanceFacts {
  /** Instances reported ACTIVE. */
  readonly active: number;
  /** Ids of every instance reported, in any state: what a rollback stops. */
  readonly reported: readonly string[];
  /** Instances reported UNHEALTHY (failing their declared health checks), each with its reason. */
  readonly unhealthy?: readonly string[];
}

/** The controller's pre-deploy validation (issue 5 item 2), run while the record is VALIDATING. */
export type ValidationOutcome = { readonly ok: true; /** The old version's blueprint now. */ readonly oldBlueprint: BlueprintRecord } | { readonly ok: false; readonly blockers: readonly string[] };

/** What the controller observed, read at (or after) the record's revision. */
export interface UpdateFacts {
  /** VALIDATING only: undefined until the controller has validated. */
  readonly validation?: ValidationOutcome | undefined;
  readonly newInstances: InstanceFacts;
  readonly oldInstances: InstanceFacts;
  /** The new version's cluster-wide health over the last evaluation window; undefined = no calls. */
  readonly health: VersionHealth | undefined;
  /** The stored `version-routing/` record of the artifact, undefined when absent or unreadable. */
  readonly routing: RoutingRecord | undefined;
}

/** A KV write a step implies. */
export type KvWrite = { readonly type: 'put'; readonly key: string; readonly value: string } | { readonly type: 'delete'; readonly key: string };

/** Nothing to do now; call again at `wakeAt` (epoch ms), on a watch event, or on new facts. */
export interface Wait {
  readonly kind: 'wait';
  /** null: nothing is due by time, only by facts (or never, for a terminal record). */
  readonly wakeAt: number | null;
  readonly reason: string;
}

/** One step: the new record and the writes that go with it, committed as one transaction. */
export interface Commit {
  readonly kind: 'commit';
  /** What the step is, as logged (`DEPLOYING -> DEPLOYED`, `route 1:3 (step 2/5)`, …). */
  readonly step: string;
  /** The record the step was computed from: the log entries `record` adds to it become audit events. */
  readonly from: UpdateRecord;
  readonly record: UpdateRecord;
  readonly writes: readonly KvWrite[];
  /** The health gate's evidence (metrics, thresholds, reasons) for the events of its decisions. */
  readonly evidence?: Readonly<Record<string, unknown>>;
}

export type Action = Wait | Commit;

/** The states in which the new version can receive calls, so the health gate runs. */
export const MONITORED_STATES: readonly UpdateState[] = ['DEPLOYED', 'ROUTING', 'COMPLETING'];

/**
 * The one transaction that commits `commit`, guarded by the record's modRevision as read (0 for a
 * record that does not exist yet): the new record, the step's writes, and the audit events of the
 * log entries the step adds (`update-events.ts`; deterministic ids, so a retry puts the same keys).
 * Asserts the new record is valid (a bug otherwise).
 */
export function commitTxn(commit: Commit, recordModRevision: number): { readonly compare: Compare[]; readonly success: Operation[]; readonly failure: Operation[] } {
  const key = updateKey(commit.record.id);
  return {
    compare: [{ key, target: 'modRevision', op: '=', value: recordModRevision }],
    success: [{ type: 'put', key, value: formatUpdateRecord(commit.record) }, ...commit.writes, ...updateEventWrites(commit.from, commit.record, commit.evidence)],
    failure: [],
  };
}

/** The `version-routing/` value this update writes for `ratio` (what `parseRoutingRecord` reads). */
export function routingValue(record: UpdateRecord, ratio: Ratio): string {
  return JSON.stringify({ updateId: record.id, oldVersion: record.oldVersion, newVersion: record.newVersion, newWeight: ratio.newWeight, oldWeight: ratio.oldWeight });
}

function routingWrite(record: UpdateRecord, ratio: Ratio): KvWrite {
  return { type: 'put', key: versionRoutingKey(record.base), value: routingValue(record, ratio) };
}

/** `old`'s placement constraints with `instances` instances. */
function blueprintLike(old: BlueprintRecord, instances: number): BlueprintRecord {
  return old.perNodeMax === undefined ? { instances } : { instances, perNodeMax: old.perNodeMax };
}

function blueprintWrite(record: UpdateRecord, version: string, blueprint: BlueprintRecord): KvWrite {
  return { type: 'put', key: blueprintKey(record.base, version), value: formatBlueprint(blueprint) };
}

function sameRatio(a: Ratio, b: Ratio): boolean {
  const [x, y] = [reduceRatio(a), reduceRatio(b)];
  return x.newWeight === y.newWeight && x.oldWeight === y.oldWeight;
}

function wait(wakeAt: number | null, reason: string): Wait {
  return { kind: 'wait', wakeAt, reason };
}

function commit(from: UpdateRecord, step: string, record: UpdateRecord, writes: readonly KvWrite[] = []): Commit {
  return { kind: 'commit', step, from, record, writes };
}

function earliest(...times: (number | null)[]): number | null {
  const set = times.filter((t): t is number => t !== null);
  return set.length === 0 ? null : Math.min(...set);
}

/** New instances the update has asked for so far (the new blueprint's count); 0 before DEPLOYING. */
export function askedInstances(record: UpdateRecord): number {
  const target = record.instances.target;
  if (target === null) return 0;
  if (record.stepIndex === 0) return deployInstances(record.strategy, target);
  return recordSteps(record)[record.stepIndex - 1]?.newInstancesAfter ?? target;
}

// ---------------------------------------------------------------------------------------------
// Steps shared with operator commands

/**
 * Enter ROLLING_BACK: routing 0:1 (and, for RECREATE, the old blueprint back to its count) in the
 * same transaction, with the rollback info and a restore deadline. Nothing is written when nothing
 * was deployed yet (from VALIDATING).
 */
export function enterRollingBack(record: UpdateRecord, actor: Actor, reason: string, nowMs: number): Commit {
  const at = effectiveNow(record, nowMs);
  const next = transition(record, 'ROLLING_BACK', { actor, reason, nowMs: at });
  const old = record.instances.old;
  if (record.routing === null || old === null) return commit(record, `${record.state} -> ROLLING_BACK`, next);
  const back: Ratio = { newWeight: 0, oldWeight: 1 };
  const writes = [routingWrite(record, back)];
  if (oldInstancesDuring(record.strategy, old) !== old.instances) writes.push(blueprintWrite(record, record.oldVersion, old));
  const rolling: UpdateRecord = { ...next, routing: back, deadlines: { ...next.deadlines, restoreUntil: at + record.strategy.deployTimeoutMs } };
  return commit(record, `${record.state} -> ROLLING_BACK`, rolling, writes);
}

/**
 * Enter COMPLETING: routing 1:0 (written only if the record's routing is not already all-new) and
 * the cleanup deadline of the policy (IMMEDIATE: now; GRACE_PERIOD: now + grace; MANUAL: none).
 */
export function enterCompleting(record: UpdateRecord, actor: Actor, reason: string, nowMs: number): Commit {
  const at = effectiveNow(record, nowMs);
  const next = transition(record, 'COMPLETING', { actor, reason, nowMs: at });
  const all: Ratio = { newWeight: 1, oldWeight: 0 };
  const writes = record.routing !== null && sameRatio(record.routing, all) ? [] : [routingWrite(record, all)];
  const { policy, gracePeriodMs } = record.cleanup;
  const graceCleanupAt = policy === 'MANUAL' ? null : at + (policy === 'GRACE_PERIOD' ? gracePeriodMs : 0);
  const completing: UpdateRecord = { ...next, routing: all, deadlines: { nextStepAt: null, monitoringUntil: null, deployUntil: null, restoreUntil: null, graceCleanupAt } };
  return commit(record, `${record.state} -> COMPLETING`, completing, writes);
}

// ---------------------------------------------------------------------------------------------
// nextStep

/**
 * The next step of `record` given `facts`, at `nowMs` (wall-clock epoch ms): a `Wait` or one
 * `Commit` to apply with `commitTxn` on the record's modRevision. Pure and deterministic.
 */
export function nextStep(record: UpdateRecord, facts: UpdateFacts, nowMs: number): Action {
  const at = effectiveNow(record, nowMs);
  if (isTerminal(record.state)) return wait(null, `${record.state} is terminal`);
  if (MONITORED_STATES.includes(record.state)) {
    const gate = healthStep(record, facts, at);
    if (gate !== undefined) return gate;
  }
  const repair = routingRepair(record, facts, at);
  if (repair !== undefined) return repair;
  switch (record.state) {
    case 'PENDING':
      return record.paused ? pausedWait(record, at) : commit(record, 'PENDING -> VALIDATING', transition(record, 'VALIDATING', byController('picked up by the controller', at)));
    case 'VALIDATING':
      return validating(record, facts, at);
    case 'DEPLOYING':
      return deploying(record, facts, at);
    case 'DEPLOYED':
      return deployed(record, facts, at);
    case 'ROUTING':
      return routing(record, facts, at);
    case 'COMPLETING':
      return completing(record, at);
    case 'ROLLING_BACK':
      return rollingBack(record, facts, at);
    default:
      return wait(null, `${record.state} is terminal`);
  }
}

/**
 * When the health gate must look again: one interval from now, or sooner when a breach was
 * counted less than an interval ago, at the moment the next one can be counted. (A pass in
 * between, woken by an unrelated change, must not push the next counted breach later.)
 */
function healthWake(record: UpdateRecord, at: number): number | null {
  if (!MONITORED_STATES.includes(record.state)) return null;
  const { intervalMs, lastBreachAt } = record.healthGate;
  const nextCountable = lastBreachAt === null ? null : lastBreachAt + intervalMs;
  return nextCountable !== null && nextCountable > at ? nextCountable : at + intervalMs;
}

function pausedWait(record: UpdateRecord, at: number, ...deadlines: (number | null)[]): Wait {
  return wait(earliest(healthWake(record, at), ...deadlines), `paused: ${record.pauseReason ?? ''}`);
}

/** The health gate's step, when it changes anything durable. */
function healthStep(record: UpdateRecord, facts: UpdateFacts, at: number): Commit | undefined {
  const evaluation = evaluateHealth(record, facts.health, at, facts.newInstances.unhealthy);
  const gate = record.healthGate;
  if (evaluation.verdict === 'healthy') {
    if (gate.consecutiveBreaches === 0) return undefined;
    const reset = { ...record, healthGate: { ...gate, consecutiveBreaches: 0, lastBreachAt: null } };
    return commit(record, 'health recovered', withLogEntry(reset, { step: 'health recovered', at, actor: HEALTH_GATE, reason: `healthy after ${gate.consecutiveBreaches} consecutive breaches` }));
  }
  if (!evaluation.breach || (!evaluation.counted && record.paused)) return undefined;
  const counted: UpdateRecord = { ...record, healthGate: { ...gate, consecutiveBreaches: evaluation.consecutiveBreaches, lastBreachAt: evaluation.counted ? at : gate.lastBreachAt } };
  const why = `${evaluation.consecutiveBreaches}/${gate.failureThreshold} consecutive breaches: ${evaluation.reasons.join('; ')}`;
  const evidence = healthEvidence(record, facts, evaluation.reasons, evaluation.consecutiveBreaches);
  if (evaluation.decision === 'rollback') return { ...enterRollingBack(counted, HEALTH_GATE, `automatic rollback after ${why}`, at), from: record, evidence };
  if (!record.paused) return { ...commit(record, 'health breach: pause', pause(counted, { actor: HEALTH_GATE, reason: `health breach ${why}`, nowMs: at })), evidence };
  return { ...commit(record, 'health breach', withLogEntry(counted, { step: 'health breach', at, actor: HEALTH_GATE, reason: why })), evidence };
}

/**
 * What the health gate judged, for the audit events of its decisions: the failing metrics and the
 * thresholds they broke, and the new instances failing their health checks (at most 20 listed).
 */
function healthEvidence(record: UpdateRecord, facts: UpdateFacts, reasons: readonly string[], consecutiveBreaches: number): Record<string, unknown> {
  const { maxErrorRate, maxLatencyMs, minRequestCount } = record.thresholds;
  const health = facts.health;
  const metrics =
    health === undefined ? null : { requestCount: health.requestCount, errorCount: health.errorCount, errorRate: health.errorRate, avgLatencyMs: health.avgLatencyMs, p99LatencyMs: health.p99LatencyMs, windowMs: health.windowMs };
  const unhealthy = facts.newInstances.unhealthy ?? [];
  return {
    reasons: [...reasons],
    consecutiveBreaches,
    failureThreshold: record.healthGate.failureThreshold,
    thresholds: { maxErrorRate, maxLatencyMs, minRequestCount },
    metrics,
    failingChecks: { count: unhealthy.length, instances: unhealthy.slice(0, 20) },
  };
}

/** Re-put the routing record when the stored one differs from what this update last wrote. */
function routingRepair(record: UpdateRecord, facts: UpdateFacts, at: number): Commit | undefined {
  const ratio = record.routing;
  if (ratio === null) return undefined;
  const stored = facts.routing;
  const matches =
    stored !== undefined &&
    stored.updateId === record.id &&
    stored.newVersion.text === record.newVersion &&
    stored.oldVersion.text === record.oldVersion &&
    sameRatio({ newWeight: stored.newWeight, oldWeight: stored.oldWeight }, ratio);
  if (matches) return undefined;
  const found = stored === undefined ? 'none' : `${stored.updateId} ${stored.newVersion.text}:${stored.oldVersion.text} ${stored.newWeight}:${stored.oldWeight}`;
  const repaired = withLogEntry(record, { step: 'repair routing', at, actor: CONTROLLER, reason: `version-routing was ${found}; rewritten as ${formatRatio(ratio)}` });
  return commit(record, 'repair routing', repaired, [routingWrite(record, ratio)]);
}

function validating(record: UpdateRecord, facts: UpdateFacts, at: number): Action {
  const outcome = facts.validation;
  if (outcome === undefined) return wait(null, 'waiting for validation');
  if (!outcome.ok) return commit(record, 'VALIDATING -> FAILED', transition(record, 'FAILED', byController(`validation blocked: ${outcome.blockers.join('; ')}`, at)));
  const target = resolveTarget(record.instances.requested, outcome.oldBlueprint);
  if (target < 1) return commit(record, 'VALIDATING -> FAILED', transition(record, 'FAILED', byController(`nothing to deploy: ${record.oldVersion} runs 0 instances and the request names no count`, at)));
  if (record.paused) return pausedWait(record, at);
  const old = outcome.oldBlueprint;
  const deployed = transition(record, 'DEPLOYING', byController(`validation passed; starting ${deployInstances(record.strategy, target)} of ${target} new instances`, at));
  const ratio = initialRouting(record.strategy);
  const next: UpdateRecord = {
    ...deployed,
    instances: { ...record.instances, target, old },
    routing: ratio,
    deadlines: { ...deployed.deadlines, deployUntil: at + record.strategy.deployTimeoutMs },
  };
  const writes = [blueprintWrite(record, record.newVersion, blueprintLike(old, deployInstances(record.strategy, target))), routingWrite(record, ratio)];
  if (oldInstancesDuring(record.strategy, old) !== old.instances) writes.push(blueprintWrite(record, record.oldVersion, blueprintLike(old, oldInstancesDuring(record.strategy, old))));
  return commit(record, 'VALIDATING -> DEPLOYING', next, writes);
}

function deploying(record: UpdateRecord, facts: UpdateFacts, at: number): Action {
  const asked = askedInstances(record);
  const active = facts.newInstances.active;
  if (active >= asked) {
    const next = transition(record, 'DEPLOYED', byController(`${active} new instances ACTIVE`, at));
    return commit(record, 'DEPLOYING -> DEPLOYED', { ...next, deadlines: { ...next.deadlines, deployUntil: null } });
  }
  const until = record.deadlines.deployUntil;
  if (until !== null && at >= until) return enterRollingBack(record, CONTROLLER, `deploy timed out: ${active} of ${asked} new instances ACTIVE after ${record.strategy.deployTimeoutMs} ms`, at);
  return wait(until, `waiting for ${asked} new instances ACTIVE (${active} are)`);
}

/**
 * DEPLOYED -> ROUTING only while the new instances asked for are still ACTIVE: one may have gone
 * (a failed health check, its node lost) since DEPLOYED was committed, possibly by a leader that
 * has died since. Wait for them (the health gate still runs); placement replaces lost ones, but
 * not one that FAILED (a restart that failed its start-up checks), so the wait is bounded: the
 * step that first sees the loss stores a deadline (`deployUntil`, the deploy timeout from then),
 * and the update rolls back at it (found by cluster-sim/health seed 779: an update waited in
 * DEPLOYED for ever behind a FAILED new instance). Instances back in time clear it.
 */
function deployed(record: UpdateRecord, facts: UpdateFacts, at: number): Action {
  if (record.paused) return pausedWait(record, at, record.deadlines.deployUntil);
  const asked = askedInstances(record);
  const active = facts.newInstances.active;
  if (active >= asked) {
    const routing = transition(record, 'ROUTING', byController(`${active} new instances ACTIVE; routing starts`, at));
    return commit(record, 'DEPLOYED -> ROUTING', { ...routing, deadlines: { ...routing.deadlines, deployUntil: null } });
  }
  const until = record.deadlines.deployUntil;
  if (until === null) {
    const next = withLogEntry({ ...record, deadlines: { ...record.deadlines, deployUntil: at + record.strategy.deployTimeoutMs } }, { step: 'new instances lost', at, actor: CONTROLLER, reason: `${active} of ${asked} new instances ACTIVE after DEPLOYED; waiting up to ${record.strategy.deployTimeoutMs} ms for them` });
    return commit(record, 'new instances lost', next);
  }
  if (at >= until) return enterRollingBack(record, CONTROLLER, `${active} of ${asked} new instances ACTIVE ${record.strategy.deployTimeoutMs} ms after they were found lost in DEPLOYED`, at);
  return wait(earliest(healthWake(record, at), until), `DEPLOYED: waiting for ${asked} new instances ACTIVE again (${active} are) before routing, until ${until}`);
}

function routing(record: UpdateRecord, facts: UpdateFacts, at: number): Action {
  const active = facts.newInstances.active;
  const deployUntil = record.deadlines.deployUntil;
  if (deployUntil !== null) {
    // A ROLLING batch was started by the last step: note it ACTIVE, or roll back when it is late.
    const asked = askedInstances(record);
    if (active >= asked) {
      const next = { ...record, deadlines: { ...record.deadlines, deployUntil: null } };
      return commit(record, 'new instances ACTIVE', withLogEntry(next, { step: 'new instances ACTIVE', at, actor: CONTROLLER, reason: `${active} of ${asked} new instances ACTIVE` }));
    }
    if (at >= deployUntil) return enterRollingBack(record, CONTROLLER, `deploy timed out: ${active} of ${asked} new instances ACTIVE after ${record.strategy.deployTimeoutMs} ms`, at);
  }
  if (record.paused) return pausedWait(record, at, deployUntil);
  const progress = routingProgress(record, active, at);
  if (progress.kind === 'complete') return enterCompleting(record, CONTROLLER, 'every routing step applied and the monitoring window passed healthy', at);
  if (progress.kind === 'wait') return wait(earliest(progress.until, deployUntil, healthWake(record, at)), progress.detail);
  return applyStep(record, progress.step, progress.of, at);
}

function applyStep(record: UpdateRecord, step: RoutingStep, of: number, at: number): Commit {
  const last = step.index === of - 1;
  const asked = askedInstances(record);
  const grows = step.newInstancesAfter > asked;
  const old = record.instances.old;
  const writes: KvWrite[] = [];
  if (record.routing === null || !sameRatio(record.routing, step.ratio)) writes.push(routingWrite(record, step.ratio));
  if (grows && old !== null) writes.push(blueprintWrite(record, record.newVersion, blueprintLike(old, step.newInstancesAfter)));
  const label = `route ${formatRatio(step.ratio)} (step ${step.index + 1}/${of})`;
  const next: UpdateRecord = {
    ...record,
    routing: step.ratio,
    stepIndex: step.index + 1,
    deadlines: {
      ...record.deadlines,
      nextStepAt: last ? null : at + step.holdMs,
      monitoringUntil: last ? at + step.holdMs : null,
      deployUntil: grows ? at + record.strategy.deployTimeoutMs : record.deadlines.deployUntil,
    },
  };
  const approval = record.approvals.find((a) => a.step === step.index);
  const reason = approval === undefined ? 'hold passed, health holds' : `approved by ${approval.by.name}`;
  return commit(record, label, withLogEntry(next, { step: label, at, actor: CONTROLLER, reason: grows ? `${reason}; starting new instances up to ${step.newInstancesAfter}` : reason }), writes);
}

function completing(record: UpdateRecord, at: number): Action {
  // The cleanup deadline is forward progress, which a pause blocks: it is no reason to wake. Once
  // past, it made the controller wake at once, again and again, until the pause was lifted.
  if (record.paused) return pausedWait(record, at);
  if (record.cleanup.policy === 'MANUAL') return commit(record, 'COMPLETING -> COMPLETED', transition(record, 'COMPLETED', byController(`cleanup policy MANUAL: ${record.oldVersion} is kept until an operator removes it`, at)));
  const cleanupAt = record.deadlines.graceCleanupAt;
  if (cleanupAt !== null && at < cleanupAt) return wait(earliest(cleanupAt, healthWake(record, at)), `old version ${record.oldVersion} removed at ${cleanupAt} (${record.cleanup.policy})`);
  const done = transition(record, 'COMPLETED', byController(`cleanup policy ${record.cleanup.policy}: removing ${record.oldVersion}`, at));
  return commit(record, 'COMPLETING -> COMPLETED', done, [{ type: 'delete', key: blueprintKey(record.base, record.oldVersion) }]);
}

function rollingBack(record: UpdateRecord, facts: UpdateFacts, at: number): Action {
  const old = record.instances.old;
  if (record.routing === null || old === null) return commit(record, 'ROLLING_BACK -> ROLLED_BACK', transition(record, 'ROLLED_BACK', byController('nothing was deployed', at)));
  const active = facts.oldInstances.active;
  const until = record.deadlines.restoreUntil;
  if (active >= old.instances) return finishRollback(record, facts, at, `${active} old instances ACTIVE`);
  if (until !== null && at >= until) {
    if (active > 0) return finishRollback(record, facts, at, `only ${active} of ${old.instances} old instances ACTIVE by the restore deadline`);
    return commit(record, 'ROLLING_BACK -> FAILED', transition(record, 'FAILED', byController(`no ${record.oldVersion} instance ACTIVE by the restore deadline; ${record.newVersion} kept running behind routing 0:1`, at)));
  }
  return wait(until, `waiting for ${old.instances} old instances ACTIVE (${active} are) before stopping ${record.newVersion}`);
}

function finishRollback(record: UpdateRecord, facts: UpdateFacts, at: number, why: string): Commit {
  const done = transition(record, 'ROLLED_BACK', byController(`${why}; stopping ${record.newVersion}`, at));
  const reported = facts.newInstances.reported;
  const rollback = done.rollback === null ? null : { ...done.rollback, rolledBackInstances: reported.slice(0, ROLLED_BACK_IDS_MAX), rolledBackCount: reported.length };
  return commit(record, 'ROLLING_BACK -> ROLLED_BACK', { ...done, rollback }, [{ type: 'delete', key: blueprintKey(record.base, record.newVersion) }]);
}
