import test from 'ava';
import { formatUpdateRecord, parseUpdateRecord, UPDATE_STATES, type UpdateState } from '../../src/updates/record.ts';
import { canTransition, InvalidTransitionError, pause, resume, transition, TRANSITIONS } from '../../src/updates/transitions.ts';
import { statusOfCode, GrpcStatus } from '../../src/util/status-table.ts';
import { recordIn, T0 } from './fixtures.ts';

// The lifecycle of DESIGN.md, written out again independently of the table under test:
//   PENDING → VALIDATING → DEPLOYING → DEPLOYED → ROUTING → COMPLETING → COMPLETED
//   VALIDATING … COMPLETING → ROLLING_BACK → ROLLED_BACK
//   PENDING, VALIDATING → CANCELLED          any non-terminal → FAILED
const FORWARD: [UpdateState, UpdateState][] = [
  ['PENDING', 'VALIDATING'],
  ['VALIDATING', 'DEPLOYING'],
  ['DEPLOYING', 'DEPLOYED'],
  ['DEPLOYED', 'ROUTING'],
  ['ROUTING', 'COMPLETING'],
  ['COMPLETING', 'COMPLETED'],
  ['ROLLING_BACK', 'ROLLED_BACK'],
];
const CAN_ROLL_BACK: UpdateState[] = ['VALIDATING', 'DEPLOYING', 'DEPLOYED', 'ROUTING', 'COMPLETING'];
const CAN_CANCEL: UpdateState[] = ['PENDING', 'VALIDATING'];
const TERMINAL: UpdateState[] = ['COMPLETED', 'ROLLED_BACK', 'CANCELLED', 'FAILED'];

function expected(from: UpdateState, to: UpdateState): boolean {
  if (FORWARD.some(([f, t]) => f === from && t === to)) return true;
  if (to === 'ROLLING_BACK') return CAN_ROLL_BACK.includes(from);
  if (to === 'CANCELLED') return CAN_CANCEL.includes(from);
  if (to === 'FAILED') return !TERMINAL.includes(from);
  return false;
}

const opts = { actor: { kind: 'user' as const, name: 'alice' }, reason: 'test', nowMs: T0 + 1000 };

test('every state × every target: allowed exactly as the lifecycle says, refused with INVALID_TRANSITION naming from and to', (t) => {
  let allowed = 0;
  for (const from of UPDATE_STATES) {
    for (const to of UPDATE_STATES) {
      t.is(canTransition(from, to), expected(from, to), `${from} -> ${to}`);
      const record = recordIn(from);
      if (expected(from, to)) {
        allowed++;
        const next = transition(record, to, opts);
        t.is(next.state, to);
        t.deepEqual(next.log.at(-1), { step: `${from} -> ${to}`, at: T0 + 1000, actor: opts.actor, reason: 'test' });
        t.is(next.updatedAt, T0 + 1000);
        // The result is a valid stored record, except DEPLOYING: the step that enters it
        // (decide.ts) also sets the routing and instance counts it writes.
        if (to !== 'DEPLOYING') t.true(parseUpdateRecord(formatUpdateRecord(next)).ok, `${from} -> ${to}`);
      } else {
        const error = t.throws(() => transition(record, to, opts), { instanceOf: InvalidTransitionError });
        t.is(error.code, 'INVALID_TRANSITION');
        t.is(error.from, from);
        t.is(error.to, to);
        t.regex(error.message, new RegExp(`from ${from} to ${to}`));
      }
    }
  }
  t.is(allowed, 7 + 5 + 2 + 7, 'forward steps, rollbacks, cancels, failures');
});

test('the table has an entry for every state, and terminal states have no way out', (t) => {
  t.deepEqual(Object.keys(TRANSITIONS).sort(), [...UPDATE_STATES].sort());
  for (const state of TERMINAL) t.deepEqual(TRANSITIONS[state], []);
  for (const state of UPDATE_STATES) t.false(canTransition(state, state), `${state} -> itself`);
});

test('INVALID_TRANSITION and the other update codes map to FAILED_PRECONDITION', (t) => {
  for (const code of ['INVALID_TRANSITION', 'UPDATE_NOT_ROUTING', 'STRATEGY_MISMATCH', 'ROUTING_INCOMPLETE', 'NOTHING_TO_APPROVE']) t.is(statusOfCode(code), GrpcStatus.FAILED_PRECONDITION, code);
});

test('entering ROLLING_BACK records the rollback info and clears the pause; terminal states clear pause and deadlines', (t) => {
  const paused = pause({ ...recordIn('ROUTING'), healthGate: { ...recordIn('ROUTING').healthGate, consecutiveBreaches: 2, lastBreachAt: T0 } }, { ...opts, reason: 'look' });
  const withDeadline = { ...paused, deadlines: { ...paused.deadlines, nextStepAt: T0 + 5000 } };
  const rolling = transition(withDeadline, 'ROLLING_BACK', { actor: { kind: 'system', name: 'health-gate' }, reason: 'breach', nowMs: T0 + 2000 });
  t.false(rolling.paused);
  t.is(rolling.pauseReason, null);
  t.deepEqual(rolling.rollback, { reason: 'breach', initiatedAt: T0 + 2000, initiatedBy: { kind: 'system', name: 'health-gate' }, currentFailures: 2, rolledBackInstances: [], rolledBackCount: 0 });
  t.is(rolling.deadlines.nextStepAt, null);
  const failed = transition(withDeadline, 'FAILED', opts);
  t.false(failed.paused);
  t.deepEqual(Object.values(failed.deadlines), [null, null, null, null, null]);
});

test('time in a record never goes backwards: a transition at an earlier nowMs is logged at updatedAt', (t) => {
  const record = { ...recordIn('PENDING'), updatedAt: T0 + 5000 };
  const next = transition(record, 'VALIDATING', { ...opts, nowMs: T0 + 1000 });
  t.is(next.log.at(-1)?.at, T0 + 5000);
  t.is(next.updatedAt, T0 + 5000);
});

test('pause: any non-terminal state except ROLLING_BACK; same reason returns the record itself; a new reason replaces it', (t) => {
  for (const state of UPDATE_STATES) {
    const record = recordIn(state);
    if (TERMINAL.includes(state) || state === 'ROLLING_BACK') {
      const error = t.throws(() => pause(record, opts), { instanceOf: InvalidTransitionError });
      t.is(error.code, 'INVALID_TRANSITION');
      t.is(error.from, state);
      t.is(error.to, 'paused');
      continue;
    }
    const paused = pause(record, { ...opts, reason: 'investigating' });
    t.true(paused.paused, state);
    t.is(paused.pauseReason, 'investigating');
    t.is(paused.log.at(-1)?.step, 'pause');
    t.true(parseUpdateRecord(formatUpdateRecord(paused)).ok);
    t.is(pause(paused, { ...opts, reason: 'investigating' }), paused, 'same reason: unchanged');
    t.is(pause(paused, { ...opts, reason: 'other' }).pauseReason, 'other');
  }
});

test('resume clears the flag and the reason; not paused returns the record itself; terminal refuses', (t) => {
  for (const state of UPDATE_STATES) {
    const record = recordIn(state);
    if (TERMINAL.includes(state)) {
      t.is(t.throws(() => resume(record, opts), { instanceOf: InvalidTransitionError }).to, 'resumed');
      continue;
    }
    t.is(resume(record, opts), record, `${state} not paused`);
    if (state === 'ROLLING_BACK') continue;
    const resumed = resume(pause(record, { ...opts, reason: 'x' }), opts);
    t.false(resumed.paused);
    t.is(resumed.pauseReason, null);
    t.is(resumed.log.at(-1)?.step, 'resume');
    t.is(resumed.state, state, 'resume never changes the state');
  }
});
