/**
 * Operator commands on an update (Pause, Resume, Approve, SetRouting, Promote, Complete, Rollback,
 * Cancel) as pure functions of the stored record. Each returns a `Commit` with the same shape as
 * the controller's steps, so the API commits it with `commitTxn` as ONE transaction on the
 * record's modRevision (and retries on a conflict by re-reading), or a `Noop` when the record is
 * already where the command would put it, so that a retried command is harmless.
 *
 * Rollback commits routing 0:1 in the command's own transaction: traffic leaves the new version as
 * soon as Rollback is acknowledged, without waiting for the controller.
 *
 * Refusals (all FAILED_PRECONDITION in the status table, except INVALID_ARGUMENT):
 * - INVALID_TRANSITION: the state machine does not allow it (`InvalidTransitionError`, from and to);
 * - UPDATE_NOT_ROUTING: SetRouting, Promote or Approve in a state where routing does not move;
 * - STRATEGY_MISMATCH: SetRouting on a non-MANUAL update, Promote on a MANUAL one;
 * - ROUTING_INCOMPLETE: Complete before routing is all-new (1:0);
 * - NOTHING_TO_APPROVE: Approve when the next step needs none, or of another step than the next;
 * - INVALID_ARGUMENT: a malformed actor name or reason.
 */
import { formatBlueprint } from '../slices/blueprints.ts';
import { blueprintKey, versionRoutingKey } from '../slices/keys.ts';
import { CutoverError, InvalidArgumentError } from '../util/errors.ts';
import { askedInstances, enterCompleting, enterRollingBack, routingValue, type Commit, type KvWrite } from './decide.ts';
import { isApproved, recordSteps } from './plan.ts';
import { APPROVALS_MAX, REASON_LENGTH_MAX, effectiveNow, withLogEntry, type Actor, type UpdateRecord } from './record.ts';
import { formatRatio, isPlainText, reduceRatio, type Ratio } from './request.ts';
import { InvalidTransitionError, canTransition, pause, resume, transition } from './transitions.ts';

/** The command changes nothing; `reason` says why. */
export interface Noop {
  readonly kind: 'noop';
  readonly reason: string;
}

export type CommandResult = Commit | Noop;

/** Who asks, why, and when (wall-clock epoch ms). */
export interface CommandOptions {
  readonly actor: Actor;
  readonly nowMs: number;
  /** Free text for the log, at most REASON_LENGTH_MAX characters. */
  readonly reason?: string;
}

function noop(reason: string): Noop {
  return { kind: 'noop', reason };
}

function checked(options: CommandOptions, fallback: string): { actor: Actor; reason: string; nowMs: number } {
  const { actor, reason = fallback, nowMs } = options;
  if (!isPlainText(actor.name)) throw new InvalidArgumentError('actor', `must be 1-128 characters without control characters, got ${JSON.stringify(actor.name)}`);
  if (typeof reason !== 'string' || reason.length > REASON_LENGTH_MAX) throw new InvalidArgumentError('reason', `must be text of at most ${REASON_LENGTH_MAX} characters`);
  return { actor, reason, nowMs };
}

function changed(record: UpdateRecord, next: UpdateRecord, step: string, reason: string, writes: readonly KvWrite[] = []): CommandResult {
  return next === record ? noop(reason) : { kind: 'commit', step, from: record, record: next, writes };
}

/** Pause: sets the flag with the operator's reason. */
export function pauseUpdate(record: UpdateRecord, options: CommandOptions): CommandResult {
  const o = checked(options, 'paused by an operator');
  return changed(record, pause(record, o), 'pause', 'already paused for this reason');
}

/** Resume: clears the flag and its reason; progression continues from the same step. */
export function resumeUpdate(record: UpdateRecord, options: CommandOptions): CommandResult {
  const o = checked(options, 'resumed by an operator');
  return changed(record, resume(record, o), 'resume', 'not paused');
}

/** Cancel: PENDING or VALIDATING → CANCELLED (nothing deployed yet, nothing to write). */
export function cancelUpdate(record: UpdateRecord, options: CommandOptions): CommandResult {
  if (record.state === 'CANCELLED') return noop('already cancelled');
  const o = checked(options, 'cancelled by an operator');
  return { kind: 'commit', step: `${record.state} -> CANCELLED`, from: record, record: transition(record, 'CANCELLED', o), writes: [] };
}

/** Rollback: → ROLLING_BACK with routing 0:1 in the same transaction (see `enterRollingBack`). */
export function rollbackUpdate(record: UpdateRecord, options: CommandOptions): CommandResult {
  if (record.state === 'ROLLING_BACK' || record.state === 'ROLLED_BACK') return noop(`already ${record.state}`);
  const o = checked(options, 'rollback requested by an operator');
  if (!canTransition(record.state, 'ROLLING_BACK')) throw new InvalidTransitionError(record.id, record.state, 'ROLLING_BACK');
  return enterRollingBack(record, o.actor, o.reason, o.nowMs);
}

/**
 * Complete: ROUTING → COMPLETING, only at routing all-new (1:0, "complete needs 1:0"). A paused
 * update is resumed by it (the operator's explicit decision). COMPLETING or COMPLETED: noop.
 */
export function completeUpdate(record: UpdateRecord, options: CommandOptions): CommandResult {
  if (record.state === 'COMPLETING' || record.state === 'COMPLETED') return noop(`already ${record.state}`);
  const o = checked(options, 'completed by an operator');
  if (record.state !== 'ROUTING') throw new InvalidTransitionError(record.id, record.state, 'COMPLETING');
  const routing = record.routing;
  if (routing === null || routing.newWeight === 0 || routing.oldWeight !== 0) {
    throw new CutoverError('ROUTING_INCOMPLETE', `update ${record.id}: complete needs routing 1:0, it is ${routing === null ? 'unset' : formatRatio(routing)}`);
  }
  const resumed = resume(record, { ...o, reason: `resumed to complete: ${o.reason}` });
  // From `record`: the resume entry is this command's too, and gets its event.
  return { ...enterCompleting(resumed, o.actor, o.reason, o.nowMs), from: record };
}

function requireRoutable(record: UpdateRecord, what: string, states: readonly string[]): void {
  if (!states.includes(record.state)) throw new CutoverError('UPDATE_NOT_ROUTING', `update ${record.id}: cannot ${what} in ${record.state}; only in ${states.join(' or ')}`);
}

/**
 * SetRouting (MANUAL only): the operator's `new:old` ratio, written with the record. Allowed in
 * DEPLOYED (which then enters ROUTING in the same step) and ROUTING, also while paused: moving
 * traffic by hand is the operator's explicit act, often the reaction to a breach.
 */
export function setRouting(record: UpdateRecord, ratio: Ratio, options: CommandOptions): CommandResult {
  if (record.strategy.kind !== 'MANUAL') throw new CutoverError('STRATEGY_MISMATCH', `update ${record.id}: routing is set by the ${record.strategy.kind} plan; SetRouting is for MANUAL updates (use Pause, Approve, Promote or Rollback)`);
  requireRoutable(record, 'set routing', ['DEPLOYED', 'ROUTING']);
  const o = checked(options, 'routing set by an operator');
  const current = record.routing;
  if (record.state === 'ROUTING' && current !== null && current.newWeight === ratio.newWeight && current.oldWeight === ratio.oldWeight) return noop(`routing is already ${formatRatio(ratio)}`);
  const routed = record.state === 'DEPLOYED' ? transition(record, 'ROUTING', o) : record;
  const at = effectiveNow(routed, o.nowMs);
  const next = withLogEntry({ ...routed, routing: ratio }, { step: `route ${formatRatio(ratio)}`, at, actor: o.actor, reason: o.reason });
  const write: KvWrite = { type: 'put', key: versionRoutingKey(record.base), value: routingValue(record, ratio) };
  return { kind: 'commit', step: `route ${formatRatio(reduceRatio(ratio))}`, from: record, record: next, writes: [write] };
}

/**
 * Approve the next plan step (`stepIndex`, when given, must be that step's 0-based index, which
 * is the record's `stepIndex`: a stale client cannot approve a stage it has not seen). Allowed
 * from DEPLOYING on (the plan is known once the target count is).
 */
export function approveStep(record: UpdateRecord, options: CommandOptions & { readonly stepIndex?: number }): CommandResult {
  requireRoutable(record, 'approve', ['DEPLOYING', 'DEPLOYED', 'ROUTING']);
  const o = checked(options, 'approved by an operator');
  const steps = recordSteps(record);
  const step = steps[record.stepIndex];
  if (step === undefined) throw new CutoverError('NOTHING_TO_APPROVE', `update ${record.id}: no routing step is left to approve`);
  if (options.stepIndex !== undefined && options.stepIndex !== step.index) throw new CutoverError('NOTHING_TO_APPROVE', `update ${record.id}: step index ${options.stepIndex} is not the next step; the next is ${step.index}`);
  if (!step.needsApproval) throw new CutoverError('NOTHING_TO_APPROVE', `update ${record.id}: step ${step.index + 1}/${steps.length} needs no approval`);
  if (isApproved(record, step.index)) return noop(`step ${step.index + 1}/${steps.length} is already approved`);
  const at = effectiveNow(record, o.nowMs);
  const approvals = [...record.approvals, { step: step.index, by: o.actor, at }].slice(-APPROVALS_MAX);
  const label = `approve step ${step.index + 1}/${steps.length} (${formatRatio(step.ratio)})`;
  return { kind: 'commit', step: label, from: record, record: withLogEntry({ ...record, approvals }, { step: label, at, actor: o.actor, reason: o.reason }), writes: [] };
}

/**
 * Promote (not MANUAL; in ROUTING): skip to the plan's last step (100%) — no hold, approved by the
 * promoting operator. ROLLING starts the remaining new instances in the same transaction; the
 * last step still waits for them to be ACTIVE. A paused update stays paused.
 */
export function promoteUpdate(record: UpdateRecord, options: CommandOptions): CommandResult {
  if (record.strategy.kind === 'MANUAL') throw new CutoverError('STRATEGY_MISMATCH', `update ${record.id}: a MANUAL update has no plan to promote; set routing 1:0 and Complete`);
  requireRoutable(record, 'promote', ['ROUTING']);
  const o = checked(options, 'promoted by an operator');
  const steps = recordSteps(record);
  const last = steps[steps.length - 1];
  if (last === undefined || record.stepIndex >= steps.length) return noop('every routing step is applied');
  const target = record.instances.target ?? 0;
  const at = effectiveNow(record, o.nowMs);
  const asked = askedInstances(record);
  const approvals = last.needsApproval && !isApproved(record, last.index) ? [...record.approvals, { step: last.index, by: o.actor, at }].slice(-APPROVALS_MAX) : record.approvals;
  const grows = record.instances.old !== null && target > asked;
  const next: UpdateRecord = {
    ...record,
    stepIndex: last.index,
    approvals,
    deadlines: { ...record.deadlines, nextStepAt: null, deployUntil: grows ? at + record.strategy.deployTimeoutMs : record.deadlines.deployUntil },
  };
  if (next.stepIndex === record.stepIndex && next.approvals === record.approvals && record.deadlines.nextStepAt === null && !grows) return noop('already at the last step');
  const writes: KvWrite[] = grows && record.instances.old !== null ? [{ type: 'put', key: blueprintKey(record.base, record.newVersion), value: formatBlueprint(record.instances.old.perNodeMax === undefined ? { instances: target } : { instances: target, perNodeMax: record.instances.old.perNodeMax }) }] : [];
  const label = `promote to step ${last.index + 1}/${steps.length}`;
  return { kind: 'commit', step: label, from: record, record: withLogEntry(next, { step: label, at, actor: o.actor, reason: o.reason }), writes };
}
