/**
 * The leader-term session skeleton: one session per term while this node leads, its round loop
 * live only while it is current, ended on lost leadership, a new term or stop(), and failed rounds
 * backing off with the error recorded.
 */
import test from 'ava';
import { MemoryClusterPort } from '../../src/node/cluster-port.ts';
import { LeaderSessions, type TermSession } from '../../src/util/leader-sessions.ts';
import { silentLogger, type Logger } from '../../src/util/logger.ts';
import type { RoundLoop } from '../../src/util/round-loop.ts';
import { ManualClock, flush } from '../helpers/manual-clock.ts';

class Session implements TermSession {
  closed = 0;
  rounds = 0;
  constructor(
    readonly term: number,
    readonly loop: RoundLoop,
  ) {}
  close(): void {
    this.closed++;
  }
}

interface Gate {
  readonly promise: Promise<void>;
  open(): void;
  fail(error: unknown): void;
}

function gate(): Gate {
  let open = (): void => {};
  let fail = (_error: unknown): void => {};
  const promise = new Promise<void>((resolve, reject) => {
    open = resolve;
    fail = reject;
  });
  return { promise, open, fail };
}

interface Harness {
  readonly port: MemoryClusterPort;
  readonly clock: ManualClock;
  readonly sessions: LeaderSessions<Session>;
  /** What happened, in order: `start 2`, `round 2`, `end 2`, `failure 2 1 100`. */
  readonly log: string[];
  readonly errors: { msg: string | undefined; what: unknown }[];
  /** The next rounds await these, one each, in order; with none left a round resolves at once. */
  readonly gates: Gate[];
  /** The next rounds throw these, one each, in order (before awaiting a gate). */
  readonly throws: unknown[];
}

function harness(options: { leader?: boolean; retryDelayMsMin?: number; retryDelayMsMax?: number; create?: (term: number, loop: RoundLoop) => Session } = {}): Harness {
  const port = new MemoryClusterPort(1, options.leader ?? true);
  const clock = new ManualClock();
  const log: string[] = [];
  const errors: Harness['errors'] = [];
  const gates: Gate[] = [];
  const throws: unknown[] = [];
  const logger: Logger = { ...silentLogger, error: (obj, msg) => errors.push({ msg, what: (obj as { what?: unknown }).what }) };
  const sessions = new LeaderSessions<Session>({
    leadership: port,
    clock,
    logger,
    label: 'test reconciler',
    errorAtMs: () => 1_000_000 + clock.nowMs(),
    retryDelayMsMin: options.retryDelayMsMin ?? 100,
    retryDelayMsMax: options.retryDelayMsMax ?? 400,
    create: options.create ?? ((term, loop) => new Session(term, loop)),
    round: async (session) => {
      session.rounds++;
      log.push(`round ${session.term}`);
      if (throws.length > 0) throw throws.shift();
      const next = gates.shift();
      if (next !== undefined) await next.promise;
    },
    onStart: (session) => log.push(`start ${session.term}`),
    onEnd: (session) => log.push(`end ${session.term}`),
    onFailure: (session, _error, failures, retryInMs) => log.push(`failure ${session.term} ${failures} ${retryInMs}`),
  });
  return { port, clock, sessions, log, errors, gates, throws };
}

/** Starts `h` and lets its first round begin; the round waits on the returned gate. */
async function startInRound(h: Harness): Promise<{ session: Session; pending: Gate }> {
  const pending = gate();
  h.gates.push(pending);
  h.sessions.start();
  await flush();
  const session = h.sessions.current;
  if (session === undefined) throw new Error('no session after start()');
  return { session, pending };
}

test('start while leading: one session for the term, its first round on a later microtask; idempotent', async (t) => {
  const h = harness();
  h.sessions.start();
  const session = h.sessions.current;
  t.is(session?.term, 1);
  t.deepEqual(h.log, ['start 1'], 'no round inside start()');
  h.sessions.start();
  t.is(h.sessions.current, session, 'a second start() changes nothing');
  await flush();
  t.deepEqual(h.log, ['start 1', 'round 1']);
  t.true(h.sessions.leads(session!));
  h.sessions.wake();
  await flush();
  t.deepEqual(h.log, ['start 1', 'round 1', 'round 1']);
  h.sessions.stop();
  t.deepEqual(h.log.slice(-1), ['end 1']);
  t.is(session?.closed, 1);
});

test('a follower has no session until it gains leadership; wake() is a no-op meanwhile', async (t) => {
  const h = harness({ leader: false });
  h.sessions.start();
  h.sessions.wake();
  await flush();
  t.is(h.sessions.current, undefined);
  t.deepEqual(h.log, []);
  h.port.setLeader(true);
  await flush();
  t.is(h.sessions.current?.term, 2);
  t.deepEqual(h.log, ['start 2', 'round 2']);
  h.sessions.stop();
});

test('a new term ends the old session and starts a new one; the old loop never runs again', async (t) => {
  const h = harness();
  h.sessions.start();
  await flush();
  const first = h.sessions.current!;
  // Still leading, but in a later term (re-elected): a session is per term.
  h.port.setLeader(true);
  const second = h.sessions.current!;
  t.not(second, first);
  t.is(second.term, 2);
  t.is(first.closed, 1);
  t.false(h.sessions.leads(first));
  t.true(h.sessions.leads(second));
  first.loop.wake();
  await flush();
  t.is(first.rounds, 1, 'an ended session gets no more rounds');
  t.deepEqual(h.log, ['start 1', 'round 1', 'end 1', 'start 2', 'round 2']);
  h.sessions.stop();
});

test('losing leadership mid-round ends the session at once; the round finishes but no other follows', async (t) => {
  const h = harness();
  const { session, pending } = await startInRound(h);
  t.deepEqual(h.log, ['start 1', 'round 1']);
  session.loop.again();
  h.port.setLeader(false);
  t.is(h.sessions.current, undefined);
  t.false(h.sessions.leads(session), 'the check before a proposal now fails');
  t.is(session.closed, 1);
  pending.open();
  await flush();
  await h.clock.advance(10_000);
  t.is(session.rounds, 1, 'the round asked for with again() does not run for an ended session');
  t.deepEqual(h.log, ['start 1', 'round 1', 'end 1']);
  // A round that notices on its own (the port changed before any callback) ends it the same way.
  h.port.setLeader(true);
  const next = h.sessions.current!;
  h.port.isLeader = () => false;
  t.false(h.sessions.leads(next));
  h.sessions.followLeadership();
  t.is(h.sessions.current, undefined);
  h.sessions.stop();
});

test('stop during a round: the session ends, later leader changes are ignored, a failure is not recorded', async (t) => {
  const h = harness();
  const { session, pending } = await startInRound(h);
  h.sessions.stop();
  t.is(h.sessions.current, undefined);
  t.is(session.closed, 1);
  pending.fail(Object.assign(new Error('late'), { code: 'LATE' }));
  await flush();
  t.is(h.sessions.lastError, undefined, "a dead session's failure is not this reconciler's error");
  h.port.setLeader(true);
  h.sessions.followLeadership();
  await h.clock.advance(10_000);
  t.is(h.sessions.current, undefined, 'not following leadership after stop()');
  t.deepEqual(h.log, ['start 1', 'round 1', 'end 1']);
  h.sessions.stop();
  t.is(session.closed, 1, 'stop() twice closes once');
  // start() again follows leadership anew.
  h.sessions.start();
  t.is(h.sessions.current?.term, 2);
  h.sessions.stop();
});

test('a failed round is recorded and backs off, doubling to the maximum; a success resets it', async (t) => {
  const h = harness({ retryDelayMsMin: 100, retryDelayMsMax: 400 });
  h.throws.push(Object.assign(new Error('one'), { code: 'ONE' }), new Error('two'), new Error('three'), new Error('four'));
  h.sessions.start();
  await flush();
  t.deepEqual(h.log, ['start 1', 'round 1', 'failure 1 1 100']);
  t.deepEqual(h.sessions.lastError, { code: 'ONE', message: 'one', atMs: 1_000_000 });
  h.sessions.wake();
  await h.clock.advance(99);
  t.is(h.sessions.current!.rounds, 1, 'no round while backing off, even when woken');
  await h.clock.advance(1);
  t.deepEqual(h.log.slice(3), ['round 1', 'failure 1 2 200']);
  t.like(h.sessions.lastError, { code: 'INTERNAL', message: 'two', atMs: 1_000_100 });
  await h.clock.advance(200);
  t.deepEqual(h.log.slice(5), ['round 1', 'failure 1 3 400']);
  await h.clock.advance(400);
  t.deepEqual(h.log.slice(7), ['round 1', 'failure 1 4 400'], 'capped at retryDelayMsMax');
  await h.clock.advance(400);
  t.deepEqual(h.log.slice(9), ['round 1'], 'the retry succeeds');
  h.throws.push(new Error('five'));
  h.sessions.wake();
  await flush();
  t.deepEqual(h.log.slice(10), ['round 1', 'failure 1 1 100'], 'the back-off starts again from the minimum');
  h.sessions.stop();
  await h.clock.advance(10_000);
  t.deepEqual(h.log.slice(12), ['end 1'], 'a pending retry is cancelled with the session');
});

test('a failing leadership callback is recorded and logged, never thrown into the port', async (t) => {
  let failOn: number | undefined = 2;
  const h = harness({
    create: (term, loop) => {
      if (term === failOn) throw Object.assign(new Error('no state'), { code: 'NO_STATE' });
      return new Session(term, loop);
    },
  });
  h.sessions.start();
  t.notThrows(() => h.port.setLeader(true));
  t.is(h.sessions.current, undefined, 'the old term ended; the new one could not start');
  t.like(h.sessions.lastError, { code: 'NO_STATE', message: 'no state' });
  t.deepEqual(h.errors, [{ msg: 'test reconciler callback failed', what: 'leader change' }]);
  failOn = undefined;
  h.port.setLeader(true);
  t.is(h.sessions.current?.term, 3, 'the next leader change starts a session');
  h.sessions.guarded('watch', () => {
    throw new Error('bad event');
  });
  t.like(h.sessions.lastError, { code: 'INTERNAL', message: 'bad event' });
  t.is(h.errors.at(-1)?.what, 'watch');
  h.sessions.stop();
});
