/**
 * An update's audit events (issue 7 item 5), derived from the transition-log entries a commit adds
 * to its record: one helper for the controller's steps, the operator commands and Start, so that
 * every change of a `rolling-update/` record writes its events in the SAME transaction as the
 * change (`commitTxn` and `UpdateOperations.start` add `updateEventWrites`).
 *
 * Ids are deterministic: an entry's sequence number is `logDropped + index` (the count of entries
 * ever written before it), so its event id is `{at}-u.{updateId}.{seq}`. A retried transaction
 * recomputes the same ids from the same record; a step that lost its compare is recomputed from
 * the newer record, whose entries have other sequence numbers, and only the committed one writes.
 *
 * Mapping of a log entry's step to an action (anything else, e.g. a future step name, is
 * `update.step` with the step in details, so no entry goes unrecorded):
 *
 *   start                          update.started
 *   X -> ROLLING_BACK              update.rollback-started (automatic when the health gate decided;
 *                                  details: from/to, failures, and the gate's evidence: metrics,
 *                                  thresholds, reasons)
 *   ROLLING_BACK -> ROLLED_BACK    update.rolled-back
 *   X -> COMPLETING                update.completing
 *   COMPLETING -> COMPLETED        update.completed, plus update.cleanup when the step removed the
 *                                  old version (policy IMMEDIATE or GRACE_PERIOD)
 *   X -> CANCELLED / X -> FAILED   update.cancelled / update.failed
 *   other X -> Y                   update.step (from/to in details)
 *   route N:M [(step i/n)]         update.routing (ratio, weights, step in details)
 *   pause / resume                 update.paused / update.resumed (actor: operator or health-gate)
 *   approve step i/n (…)           update.approved
 *   promote to step i/n            update.promoted
 *   health breach, health
 *   recovered, repair routing, new
 *   instances ACTIVE, rollback to
 *   revision N                     update.step
 *
 * Besides the entries: when a commit leaves the update (DEPLOYED or ROUTING) with a next routing
 * step that waits for an Approve it does not have, and it did not wait for that same step before,
 * the commit also writes `update.approval-requested` (actor: the controller), id
 * `{at}-u.{updateId}.{seq}.approval` with the seq of the commit's last entry.
 */
import { eventId, eventWrite, type AuditEvent, type EventAction, type EventTarget } from '../events/event.ts';
import type { KvWrite } from './decide.ts';
import { isApproved, recordSteps } from './plan.ts';
import { CONTROLLER, type LogEntry, type UpdateRecord } from './record.ts';
import { formatRatio } from './request.ts';

/** A transition-log entry with its sequence number (entries ever written before it). */
export interface SequencedEntry {
  readonly seq: number;
  readonly entry: LogEntry;
}

/** The entries `record` has that `previous` had not, with their sequence numbers; all of them for a new record. */
export function addedEntries(previous: UpdateRecord | undefined, record: UpdateRecord): SequencedEntry[] {
  const written = (r: UpdateRecord): number => r.logDropped + r.log.length;
  const count = previous === undefined ? record.log.length : Math.max(0, written(record) - written(previous));
  const first = Math.max(0, record.log.length - count);
  return record.log.slice(first).map((entry, i) => ({ seq: record.logDropped + first + i, entry }));
}

const TRANSITION = /^([A-Z_]+) -> ([A-Z_]+)$/;
const ROUTE = /^route (\d+):(\d+)(?: \(step (\d+)\/(\d+)\))?$/;

function target(record: UpdateRecord): EventTarget {
  return { artifact: record.base, updateId: record.id, version: record.newVersion };
}

/** What a transition into `to` is as an action. */
function transitionAction(to: string): EventAction {
  if (to === 'ROLLING_BACK') return 'update.rollback-started';
  if (to === 'ROLLED_BACK') return 'update.rolled-back';
  if (to === 'COMPLETING') return 'update.completing';
  if (to === 'COMPLETED') return 'update.completed';
  if (to === 'CANCELLED') return 'update.cancelled';
  if (to === 'FAILED') return 'update.failed';
  return 'update.step';
}

/** The action of one log entry and what it adds to the details. */
export function entryAction(step: string): { readonly action: EventAction; readonly details: Record<string, unknown> } {
  if (step === 'start') return { action: 'update.started', details: {} };
  if (step === 'pause') return { action: 'update.paused', details: {} };
  if (step === 'resume') return { action: 'update.resumed', details: {} };
  if (step.startsWith('approve step ')) return { action: 'update.approved', details: {} };
  if (step.startsWith('promote to step ')) return { action: 'update.promoted', details: {} };
  const transition = TRANSITION.exec(step);
  if (transition !== null) {
    const [, from = '', to = ''] = transition;
    return { action: transitionAction(to), details: { from, to } };
  }
  const route = ROUTE.exec(step);
  if (route !== null) {
    const [, newWeight, oldWeight, index, of] = route;
    const details: Record<string, unknown> = { ratio: `${newWeight}:${oldWeight}`, newWeight: Number(newWeight), oldWeight: Number(oldWeight) };
    if (index !== undefined && of !== undefined) Object.assign(details, { stepIndex: Number(index), stepsTotal: Number(of) });
    return { action: 'update.routing', details };
  }
  const rollbackTo = /^rollback to revision (\d+)$/.exec(step);
  if (rollbackTo !== null) return { action: 'update.step', details: { rollbackOfRevision: Number(rollbackTo[1]) } };
  return { action: 'update.step', details: {} };
}

/** The details every event of `record` carries beside the entry's own. */
function recordDetails(record: UpdateRecord, action: EventAction): Record<string, unknown> {
  const details: Record<string, unknown> = { oldVersion: record.oldVersion, newVersion: record.newVersion, state: record.state, strategy: record.strategy.kind };
  if (record.routing !== null) details.routing = formatRatio(record.routing);
  if (action === 'update.rollback-started' && record.rollback !== null) {
    details.automatic = record.rollback.initiatedBy.kind === 'system';
    details.consecutiveBreaches = record.rollback.currentFailures;
    details.failureThreshold = record.healthGate.failureThreshold;
  }
  if (action === 'update.rolled-back' && record.rollback !== null) details.rolledBackCount = record.rollback.rolledBackCount;
  return details;
}

/** The step (0-based) that waits for an Approve it does not have, if the update is where routing would move. */
export function pendingApproval(record: UpdateRecord): number | undefined {
  if (record.state !== 'DEPLOYED' && record.state !== 'ROUTING') return undefined;
  const step = recordSteps(record)[record.stepIndex];
  return step !== undefined && step.needsApproval && !isApproved(record, step.index) ? step.index : undefined;
}

/**
 * The events of one commit that moves `previous` (undefined: a new record) to `record`.
 * `evidence` (the health gate's metrics, thresholds and reasons) is added to the details of the
 * events whose actor is the health gate. Pure and deterministic.
 */
export function updateEvents(previous: UpdateRecord | undefined, record: UpdateRecord, evidence?: Readonly<Record<string, unknown>>): AuditEvent[] {
  const added = addedEntries(previous, record);
  const events: AuditEvent[] = [];
  for (const { seq, entry } of added) {
    const { action, details } = entryAction(entry.step);
    const gate = evidence !== undefined && entry.actor.kind === 'system' && entry.actor.name === 'health-gate';
    const all = { step: entry.step, ...details, ...recordDetails(record, action), ...(gate ? { evidence } : {}) };
    const source = `u.${record.id}.${seq}`;
    events.push({ id: eventId(entry.at, source), at: entry.at, actor: entry.actor, action, target: target(record), reason: entry.reason, details: all });
    if (action === 'update.completed' && record.cleanup.policy !== 'MANUAL') {
      const cleanup = { ...recordDetails(record, 'update.cleanup'), policy: record.cleanup.policy, removedVersion: record.oldVersion };
      events.push({ id: eventId(entry.at, `${source}.cleanup`), at: entry.at, actor: entry.actor, action: 'update.cleanup', target: { ...target(record), version: record.oldVersion }, reason: `${record.cleanup.policy}: removing ${record.oldVersion}`, details: cleanup });
    }
  }
  const last = added[added.length - 1];
  const waiting = pendingApproval(record);
  if (last !== undefined && waiting !== undefined && (previous === undefined || pendingApproval(previous) !== waiting)) {
    const steps = recordSteps(record);
    const step = steps[waiting];
    const label = `step ${waiting + 1}/${steps.length}${step === undefined ? '' : ` (${formatRatio(step.ratio)})`}`;
    events.push({
      id: eventId(last.entry.at, `u.${record.id}.${last.seq}.approval`),
      at: last.entry.at,
      actor: CONTROLLER,
      action: 'update.approval-requested',
      target: target(record),
      reason: `${label} waits for an Approve`,
      details: { ...recordDetails(record, 'update.approval-requested'), stepIndex: waiting, stepsTotal: steps.length },
    });
  }
  return events;
}

/** `updateEvents` as the puts to add to the commit's transaction. */
export function updateEventWrites(previous: UpdateRecord | undefined, record: UpdateRecord, evidence?: Readonly<Record<string, unknown>>): KvWrite[] {
  return updateEvents(previous, record, evidence).map(eventWrite);
}
