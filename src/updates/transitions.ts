/**
 * The update state machine's transitions table and the one function that moves a record along it,
 * plus the pause flag's rules. Pure: time comes in as `nowMs` (wall-clock epoch ms).
 *
 *   PENDING      → VALIDATING, CANCELLED, FAILED
 *   VALIDATING   → DEPLOYING, ROLLING_BACK, CANCELLED, FAILED
 *   DEPLOYING    → DEPLOYED, ROLLING_BACK, FAILED
 *   DEPLOYED     → ROUTING, ROLLING_BACK, FAILED
 *   ROUTING      → COMPLETING, ROLLING_BACK, FAILED
 *   COMPLETING   → COMPLETED, ROLLING_BACK, FAILED
 *   ROLLING_BACK → ROLLED_BACK, FAILED
 *   COMPLETED, ROLLED_BACK, CANCELLED, FAILED: terminal, no way out
 *
 * No state goes to itself. COMPLETING can still roll back: during the grace period the old version
 * still runs, so going back is as cheap as from ROUTING. CANCELLED is only for updates that have
 * deployed nothing yet; after that, the way back is a rollback.
 *
 * `transition` changes only what every transition into a state implies (the state, the log, the
 * pause flag, the rollback info, pending deadlines on reaching a terminal state); the KV writes a
 * step implies and its deadlines are `decide.ts`'s.
 *
 * Pause is a flag, not a state: allowed on any non-terminal update except one rolling back (a
 * rollback is a safety path and never waits). Pausing a paused update with the same reason and
 * resuming one that is not paused return the record itself, so that a retried command is harmless.
 */
import { CutoverError } from '../util/errors.ts';
import { CONTROLLER, clipReason, effectiveNow, isTerminal, withLogEntry, type Actor, type UpdateRecord, type UpdateState } from './record.ts';

export const TRANSITIONS: Readonly<Record<UpdateState, readonly UpdateState[]>> = {
  PENDING: ['VALIDATING', 'CANCELLED', 'FAILED'],
  VALIDATING: ['DEPLOYING', 'ROLLING_BACK', 'CANCELLED', 'FAILED'],
  DEPLOYING: ['DEPLOYED', 'ROLLING_BACK', 'FAILED'],
  DEPLOYED: ['ROUTING', 'ROLLING_BACK', 'FAILED'],
  ROUTING: ['COMPLETING', 'ROLLING_BACK', 'FAILED'],
  COMPLETING: ['COMPLETED', 'ROLLING_BACK', 'FAILED'],
  ROLLING_BACK: ['ROLLED_BACK', 'FAILED'],
  COMPLETED: [],
  ROLLED_BACK: [],
  CANCELLED: [],
  FAILED: [],
};

/** True when the table allows `from` → `to`. */
export function canTransition(from: UpdateState, to: UpdateState): boolean {
  return TRANSITIONS[from].includes(to);
}

/** A refused state change (code INVALID_TRANSITION → FAILED_PRECONDITION); names from and to. */
export class InvalidTransitionError extends CutoverError {
  override readonly name = 'InvalidTransitionError';
  readonly from: UpdateState;
  readonly to: UpdateState | 'paused' | 'resumed';

  constructor(updateId: string, from: UpdateState, to: UpdateState | 'paused' | 'resumed', why?: string) {
    super('INVALID_TRANSITION', `update ${updateId}: cannot go from ${from} to ${to}${why === undefined ? '' : ` (${why})`}`);
    this.from = from;
    this.to = to;
  }
}

/** Who, why and when; `nowMs` is wall-clock epoch ms. */
export interface TransitionOptions {
  readonly actor: Actor;
  readonly reason: string;
  readonly nowMs: number;
}

const NO_DEADLINES = { nextStepAt: null, monitoringUntil: null, deployUntil: null, restoreUntil: null, graceCleanupAt: null } as const;

/**
 * `record` moved to `to`, with a log entry `FROM -> TO`. Entering ROLLING_BACK records the rollback
 * info (reason, when, who, the current consecutive breaches) and clears the pause; entering a
 * terminal state clears the pause and every pending deadline. Throws `InvalidTransitionError`
 * (INVALID_TRANSITION) naming from and to when the table does not allow it.
 */
export function transition(record: UpdateRecord, to: UpdateState, options: TransitionOptions): UpdateRecord {
  const from = record.state;
  if (!canTransition(from, to)) throw new InvalidTransitionError(record.id, from, to, isTerminal(from) ? `${from} is terminal` : undefined);
  const at = effectiveNow(record, options.nowMs);
  let next: UpdateRecord = { ...record, state: to };
  if (to === 'ROLLING_BACK') {
    next = {
      ...next,
      paused: false,
      pauseReason: null,
      rollback: { reason: clipReason(options.reason), initiatedAt: at, initiatedBy: options.actor, currentFailures: record.healthGate.consecutiveBreaches, rolledBackInstances: [], rolledBackCount: 0 },
      deadlines: NO_DEADLINES,
    };
  }
  if (isTerminal(to)) next = { ...next, paused: false, pauseReason: null, deadlines: NO_DEADLINES };
  return withLogEntry(next, { step: `${from} -> ${to}`, at, actor: options.actor, reason: options.reason });
}

/**
 * Sets the pause flag with its reason. Throws INVALID_TRANSITION on a terminal update or one
 * rolling back. Returns `record` itself when it is already paused for the same reason; a new
 * reason replaces the old one (an operator taking over a pause the health gate set, say).
 */
export function pause(record: UpdateRecord, options: TransitionOptions): UpdateRecord {
  if (isTerminal(record.state)) throw new InvalidTransitionError(record.id, record.state, 'paused', `${record.state} is terminal`);
  if (record.state === 'ROLLING_BACK') throw new InvalidTransitionError(record.id, record.state, 'paused', 'a rollback is never paused');
  const reason = clipReason(options.reason);
  if (record.paused && record.pauseReason === reason) return record;
  const at = effectiveNow(record, options.nowMs);
  return withLogEntry({ ...record, paused: true, pauseReason: reason }, { step: 'pause', at, actor: options.actor, reason });
}

/**
 * Clears the pause flag and its reason. Throws INVALID_TRANSITION on a terminal update; returns
 * `record` itself when it is not paused.
 */
export function resume(record: UpdateRecord, options: TransitionOptions): UpdateRecord {
  if (isTerminal(record.state)) throw new InvalidTransitionError(record.id, record.state, 'resumed', `${record.state} is terminal`);
  if (!record.paused) return record;
  const at = effectiveNow(record, options.nowMs);
  return withLogEntry({ ...record, paused: false, pauseReason: null }, { step: 'resume', at, actor: options.actor, reason: options.reason });
}

/** The controller as actor with `reason`, at `nowMs`: the options of the controller's own steps. */
export function byController(reason: string, nowMs: number): TransitionOptions {
  return { actor: CONTROLLER, reason, nowMs };
}
