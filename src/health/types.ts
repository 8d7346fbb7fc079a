/**
 * Health checks per slice version (issue 7): the shapes shared by the parser (`spec.ts`), the
 * runners (`checks.ts`), the policy (`policy.ts`), the scheduler (`monitor.ts`) and the local
 * result stores. Durations are milliseconds here; the JSON form (manifest, update override) says
 * seconds, as operators write them.
 *
 * A version declares its checks in `slice.json` under `healthChecks`; an update may override them.
 * Checks run on the node that hosts the instance: before it becomes ACTIVE (it must pass), then
 * every interval while it lives (an ACTIVE instance failing its policy leaves routing).
 */

/** How several checks combine: every one must pass, or at least one. */
export type CheckMode = 'ALL' | 'ANY';

interface CheckBase {
  /** Unique within the spec; defaults to `{type}-{index}`. */
  readonly name: string;
  /** Bound on one attempt. */
  readonly timeoutMs: number;
}

/** The slice's own `health()` hook. */
export interface InstanceCheckSpec extends CheckBase {
  readonly type: 'instance';
}

export const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'OPTIONS'] as const;
export type HttpMethod = (typeof HTTP_METHODS)[number];

/**
 * An HTTP request. The target is `url` (absolute http(s) URL: an external endpoint a slice fronts),
 * or `path` on `host:port` (host 127.0.0.1 by default; without `port`, the instance's own HTTP port,
 * `CheckTarget.httpPort`).
 */
export interface HttpCheckSpec extends CheckBase {
  readonly type: 'http';
  readonly method: HttpMethod;
  readonly url?: string;
  readonly host: string;
  readonly port?: number;
  /** Starts with `/`. */
  readonly path: string;
  /** The status codes that pass. */
  readonly expectedStatus: readonly number[];
  /** A slower answer fails even with an expected status. */
  readonly maxResponseTimeMs?: number;
  /** The body must contain this text (the first `BODY_READ_MAX` bytes are read). */
  readonly bodyContains?: string;
  readonly headers: Readonly<Record<string, string>>;
}

/** A TCP connection that opens within the timeout. */
export interface TcpCheckSpec extends CheckBase {
  readonly type: 'tcp';
  readonly host: string;
  readonly port: number;
}

/** A program run without a shell (arguments as a list), in the instance's artifact directory. */
export interface ScriptCheckSpec extends CheckBase {
  readonly type: 'script';
  readonly command: string;
  readonly args: readonly string[];
  readonly expectedExitCode: number;
}

export type CheckSpec = InstanceCheckSpec | HttpCheckSpec | TcpCheckSpec | ScriptCheckSpec;
export type CheckType = CheckSpec['type'];

/** When checks run and how results become a state (the seeds' defaults in `spec.ts`). */
export interface HealthPolicy {
  /** Consecutive passing rounds that make an instance healthy (default 1). */
  readonly successThreshold: number;
  /** Consecutive failing rounds that make it unhealthy (default 3). */
  readonly failureThreshold: number;
  /** Between the starts of two rounds (default 10 s). */
  readonly intervalMs: number;
  /** From the instance's start to its first round (default 30 s). */
  readonly initialDelayMs: number;
  /** After a deploy, how long an update watches the new version's checks (default 300 s). */
  readonly monitoringDurationMs: number;
}

export interface HealthSpec {
  readonly mode: CheckMode;
  /** At least one. */
  readonly checks: readonly CheckSpec[];
  readonly policy: HealthPolicy;
}

/** success: passed; failure: ran and failed; timeout: no answer in time; error: could not run. */
export type CheckStatus = 'success' | 'failure' | 'timeout' | 'error';

/** One check's outcome in one round (after its transient retries). */
export interface CheckResult {
  readonly check: string;
  readonly type: CheckType;
  readonly status: CheckStatus;
  /** Wall-clock epoch ms at the start of the round. */
  readonly at: number;
  /** Of the last attempt. */
  readonly durationMs: number;
  /** Attempts made (more than 1 after a timeout or a refused connection was retried). */
  readonly attempts: number;
  /** What happened, for people: `HTTP 503 in 12 ms`, `connect ECONNREFUSED 127.0.0.1:9`, … */
  readonly detail: string;
}

/** One round: every check's result and the combined verdict. */
export interface RoundResult {
  readonly pass: boolean;
  readonly results: readonly CheckResult[];
}

/** What the checks of one instance run against. */
export interface CheckTarget {
  /** The live instance (for `instance` checks). */
  readonly instance?: { health?(): unknown };
  /** The instance's own HTTP port, when it serves HTTP (for `http` checks without a port). */
  readonly httpPort?: number;
  /** The artifact directory (the working directory of `script` checks). */
  readonly cwd?: string;
}

/** An instance, as results are filed. */
export interface InstanceRef {
  /** `groupId:artifactId`. */
  readonly base: string;
  readonly version: string;
  readonly instanceId: string;
  readonly nodeId: number;
}

/** A result as stored on the node that ran it. */
export interface StoredResult extends CheckResult, InstanceRef {}

/** The local, bounded store of raw results (LevelDB on a node, memory in tests and the simulator). */
export interface HealthResultsStore {
  append(ref: InstanceRef, results: readonly CheckResult[]): Promise<void>;
  /** Newest first, at most `limit`; filters are exact matches. */
  recent(query: { readonly base?: string; readonly version?: string; readonly instanceId?: string; readonly sinceMs?: number; readonly limit: number }): Promise<StoredResult[]>;
  close(): Promise<void>;
}
