/**
 * How the operator CLI fails: one line on stderr that says what went wrong and what to do, and an
 * exit code a script can branch on. Stack traces only with --debug.
 */
import { CutoverError } from '../util/errors.ts';

/** Exit codes of every `cutover` command. */
export const EXIT = {
  OK: 0,
  /** The cluster refused the operation, or it failed. */
  FAILED: 1,
  /** Bad arguments or flags: nothing was sent. */
  USAGE: 2,
  /** No endpoint answered. */
  UNREACHABLE: 3,
} as const;

/** Bad arguments or flags (exit 2). `hint` says what to do. */
export class UsageError extends CutoverError {
  override readonly name = 'UsageError';
  constructor(
    message: string,
    readonly hint: string,
  ) {
    super('USAGE', message);
  }
}

/** No endpoint of the cluster answered within the retry budget (exit 3). */
export class UnreachableError extends CutoverError {
  override readonly name = 'UnreachableError';
  constructor(
    readonly endpoints: readonly string[],
    lastError: string,
  ) {
    super('CLUSTER_UNREACHABLE', `cannot reach the cluster at ${endpoints.join(', ')} (${lastError})`);
  }
}

/** A failure the CLI itself detected, with what to do about it (exit 1). */
export class CommandFailedError extends CutoverError {
  override readonly name = 'CommandFailedError';
  constructor(
    code: string,
    message: string,
    readonly hint: string,
  ) {
    super(code, message);
  }
}

/** What to do about a code the cluster answered with; the fallback covers the rest. */
const HINTS: Readonly<Record<string, string>> = {
  CLUSTER_UNREACHABLE: 'start it with `npm start`, or point the CLI at it with --endpoints host:port,… or CUTOVER_ENDPOINTS',
  NOT_LEADER: 'the cluster has no leader right now; retry in a few seconds, and see `cutover cluster status`',
  TIMEOUT: 'the cluster did not answer in time; retry with a longer --timeout, and see `cutover cluster status`',
  DEADLINE_EXCEEDED: 'the cluster did not answer in time; retry with a longer --timeout, and see `cutover cluster status`',
  PROPOSAL_DROPPED: 'the leader refused the write for now (busy or changing); retry in a moment',
  OUTCOME_UNKNOWN: 'the write may or may not have happened; check the state before you retry',
  UNAVAILABLE: 'a node went away during the call; check the state, then retry',
  ALREADY_DEPLOYED: 'change the instance count with `cutover slice scale`, or the version with a rolling update',
  VERSION_RUNNING: 'run `cutover update start <group:artifact> <version>` for that',
  NOT_DEPLOYED: 'see what is deployed with `cutover slice list`',
  ARTIFACT_NOT_FOUND: 'publish it first with `cutover slice publish <dir>`; `cutover slice list` shows what is published',
  UNKNOWN_SLICE: 'deploy it first with `cutover slice deploy`; `cutover slice list` shows what is published',
  ARTIFACT_EXISTS: 'published versions are immutable; give the changed slice a new version in slice.json',
  ARTIFACT_TOO_LARGE: 'make the artifact smaller, or raise the nodes\' slices.artifactBytesMax',
  INVALID_MANIFEST: 'fix slice.json in the artifact',
  INVALID_ARTIFACT: 'check the artifact: a directory or .tgz with slice.json and its module',
  NO_ACTIVE_INSTANCE: 'no instance is ACTIVE yet; see `cutover slice instances`',
  UNKNOWN_METHOD: 'see the slice\'s methods with `cutover slice list`',
  SLICE_ERROR: 'the slice threw; see the node\'s log',
  MEMBER_EXISTS: 'see the members with `cutover cluster members`',
  MEMBER_NOT_FOUND: 'see the members with `cutover cluster members`',
  LAST_VOTER: 'add and promote another voter before you remove this one',
  INVALID_ARGUMENT: 'check the arguments against `--help`',
  REFLECTION_UNAVAILABLE: 'point the CLI at a Cutover node (--endpoints)',
  UNIMPLEMENTED: 'the node does not serve this method; `cutover describe` lists what it serves',
};

/** The exit code for `error`. */
export function exitCodeOf(error: unknown): number {
  if (error instanceof UsageError) return EXIT.USAGE;
  if (error instanceof UnreachableError) return EXIT.UNREACHABLE;
  return EXIT.FAILED;
}

/** The one line printed for `error` (without the `cutover: ` prefix). */
export function errorLine(error: unknown): string {
  if (error instanceof UsageError || error instanceof CommandFailedError) return `${error.message} — ${error.hint}`;
  if (error instanceof CutoverError) {
    const hint = HINTS[error.code];
    return `${error.message} [${error.code}]${hint === undefined ? '' : ` — ${hint}`}`;
  }
  return error instanceof Error ? error.message : String(error);
}
