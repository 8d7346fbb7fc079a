/**
 * The leadership skeleton of a leader-only reconciler (DESIGN.md decision 4): while this node
 * leads, one session per Raft term, each with its own `RoundLoop`; a session ends when the node
 * stops leading, when the term moves on (a new session starts for the new term), or on `stop()`.
 *
 * What the reconciler supplies: `create(term, loop)`, its per-term state (mirror, watches, timers;
 * `close()` releases them); `round(session)`, one round of work; and hooks for a session started,
 * ended and a failed round. What it gets: the current session, `leads(session)` (the check right
 * before a proposal), `wake()`, `guarded(...)` for callbacks from the port (a throw is recorded and
 * logged, never thrown into the port's listeners) and the last error for its status.
 *
 * A session's loop is live only while it is the current one: once ended, its rounds stop at their
 * next check and its retries and timers never wake it again, so a late callback of an old term
 * never acts. Leadership callbacks only create or end sessions; rounds run on a later microtask.
 */
import type { Clock } from './clock.ts';
import type { Logger } from './logger.ts';
import { RoundLoop } from './round-loop.ts';

/** The part of the cluster port that leadership is read from (`ClusterPort` has it). */
export interface Leadership {
  isLeader(): boolean;
  term(): number;
  /** Called whenever the known leader changes; returns an unsubscribe. */
  onLeaderChange(listener: (leader: number, term: number) => void): () => void;
}

/** A reconciler's state for one term; `close()` releases what it holds (watches, timers) and must not throw. */
export interface TermSession {
  readonly term: number;
  readonly loop: RoundLoop;
  close(): void;
}

/** The last error a reconciler met, for its `status()`. */
export interface RecordedError {
  readonly code: string;
  readonly message: string;
  readonly atMs: number;
}

/** What a reconciler gives `LeaderSessions`: where leadership comes from, its loop's back-off, and its session's parts. */
export interface LeaderSessionsOptions<S extends TermSession> {
  readonly leadership: Leadership;
  readonly clock: Clock;
  /** The reconciler's own (child) logger. */
  readonly logger: Logger;
  /** Names the reconciler in log messages ("<label> callback failed"). */
  readonly label: string;
  /** The time stamped on a recorded error (the reconciler's wall clock or its monotonic one). */
  readonly errorAtMs: () => number;
  /** First delay after a failed round; doubles per consecutive failure. */
  readonly retryDelayMsMin: number;
  /** Longest delay after failed rounds. */
  readonly retryDelayMsMax: number;
  /** Builds the state of a new term; `loop` is the session's round loop (not yet woken). */
  readonly create: (term: number, loop: RoundLoop) => S;
  /** One round of work for `session` (the only session whose loop calls it). */
  readonly round: (session: S) => Promise<void>;
  /** A session became current; its first round is asked for right after this. */
  readonly onStart?: (session: S) => void;
  /** A session ended and was closed. */
  readonly onEnd?: (session: S) => void;
  /** A round failed and its error was recorded: forget cached state, log. Must not throw. */
  readonly onFailure: (session: S, error: unknown, failures: number, retryInMs: number) => void;
}

/** The stable `code` of an error, or INTERNAL when it has none. */
export function errorCode(error: unknown): string {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' ? code : 'INTERNAL';
}

/** One session per term while this node leads (see the module comment). */
export class LeaderSessions<S extends TermSession> {
  private session: S | undefined;
  private unsubscribe: (() => void) | undefined;
  private lastErrorRecorded: RecordedError | undefined;

  constructor(private readonly options: LeaderSessionsOptions<S>) {}

  /** The session of the term this node leads in, if any. */
  get current(): S | undefined {
    return this.session;
  }

  /** The last error recorded (a failed round or a failed callback), if any. */
  get lastError(): RecordedError | undefined {
    return this.lastErrorRecorded;
  }

  /** Follows leadership from now on; starts a session at once if this node already leads. Idempotent. */
  start(): void {
    if (this.unsubscribe !== undefined) return;
    this.unsubscribe = this.options.leadership.onLeaderChange(() => this.guarded('leader change', () => this.followLeadership()));
    this.followLeadership();
  }

  /** Stops following leadership and ends the session. Idempotent; a write in flight may still apply. */
  stop(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    this.endSession();
  }

  /** Asks the current session for a round. No-op when not leading. */
  wake(): void {
    this.session?.loop.wake();
  }

  /** `session` is current and this node still leads in its term: the check right before a proposal. */
  leads(session: S): boolean {
    const { leadership } = this.options;
    return this.session === session && leadership.isLeader() && leadership.term() === session.term;
  }

  /**
   * Ends the session when this node does not lead or the term moved on; starts one when it leads
   * and has none. A no-op unless started. Rounds call it when they find they no longer lead.
   */
  followLeadership(): void {
    if (this.unsubscribe === undefined) return;
    const { leadership } = this.options;
    const leading = leadership.isLeader();
    const term = leadership.term();
    if (this.session !== undefined && (!leading || this.session.term !== term)) this.endSession();
    if (!leading || this.session !== undefined) return;
    this.begin(term);
  }

  /** Runs a callback from the port or a timer, recording and logging a throw instead of passing it on. */
  guarded(what: string, fn: () => void): void {
    try {
      fn();
    } catch (error) {
      this.recordError(error);
      this.options.logger.error({ err: error, what }, `${this.options.label} callback failed`);
    }
  }

  private begin(term: number): void {
    const { options } = this;
    const loop = new RoundLoop({
      clock: options.clock,
      retryDelayMsMin: options.retryDelayMsMin,
      retryDelayMsMax: options.retryDelayMsMax,
      round: () => options.round(session),
      live: () => this.session === session,
      onFailure: (error, failures, retryInMs) => {
        this.recordError(error);
        options.onFailure(session, error, failures, retryInMs);
      },
    });
    // The loop's callbacks run only after `wake()` below, once `session` is assigned.
    const session = options.create(term, loop);
    this.session = session;
    options.onStart?.(session);
    loop.wake();
  }

  private endSession(): void {
    const session = this.session;
    if (session === undefined) return;
    this.session = undefined;
    session.close();
    session.loop.cancel();
    this.options.onEnd?.(session);
  }

  private recordError(error: unknown): void {
    this.lastErrorRecorded = { code: errorCode(error), message: error instanceof Error ? error.message : String(error), atMs: this.options.errorAtMs() };
  }
}
