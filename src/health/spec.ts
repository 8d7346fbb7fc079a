/**
 * The health-check spec as operators write it (the `healthChecks` field of `slice.json`, an update's
 * override) → `HealthSpec`, and back.
 *
 * The JSON form says durations in SECONDS (decimals allowed, so `0.2` is 200 ms) except
 * `maxResponseTimeMs`; `HealthSpec` holds milliseconds. It comes from outside, so validation is
 * strict about types and ranges and lenient about extras: unknown fields are ignored (a newer
 * packer's manifest still loads), a known field of the wrong type is refused. Every refusal is an
 * `InvalidHealthCheckError` (code INVALID_HEALTH_CHECK) naming the exact field
 * (`healthChecks.checks[2].port`) and quoting the accepted form.
 *
 * `healthSpecJson` writes the canonical JSON form (every field explicit), and
 * `parseHealthSpec(healthSpecJson(spec))` deep-equals `spec`: the update record, the manifest and
 * the API keep and show specs in that form.
 */
import { CutoverError } from '../util/errors.ts';
import { HTTP_METHODS, type CheckSpec, type HealthPolicy, type HealthSpec, type HttpCheckSpec, type HttpMethod } from './types.ts';

/** The seeds' policy: 1 pass makes healthy, 3 consecutive failures unhealthy, every 10 s after 30 s, watched 300 s after a deploy. */
export const HEALTH_POLICY_DEFAULTS: HealthPolicy = {
  successThreshold: 1,
  failureThreshold: 3,
  intervalMs: 10_000,
  initialDelayMs: 30_000,
  monitoringDurationMs: 300_000,
};

/** Most checks in one spec. */
export const HEALTH_CHECKS_MAX = 16;
/** Bounds of one check's `timeoutSeconds`. */
export const CHECK_TIMEOUT_SECONDS_MIN = 0.01;
export const CHECK_TIMEOUT_SECONDS_MAX = 300;
/** Default `timeoutSeconds` of http, tcp and instance checks, and of script checks. */
export const CHECK_TIMEOUT_SECONDS_DEFAULT = 5;
export const SCRIPT_TIMEOUT_SECONDS_DEFAULT = 30;
/** Bounds of the policy's `intervalSeconds`. */
export const INTERVAL_SECONDS_MIN = 0.05;
export const INTERVAL_SECONDS_MAX = 3600;
/** Bound of `initialDelaySeconds` (0 allowed). */
export const INITIAL_DELAY_SECONDS_MAX = 3600;
/** Bound of `monitoringDurationSeconds` (0 allowed: the update does not watch the checks). */
export const MONITORING_DURATION_SECONDS_MAX = 86_400;
/** Bounds of both thresholds. */
export const THRESHOLD_MAX = 100;
/** Bound of `maxResponseTimeMs`. */
export const MAX_RESPONSE_TIME_MS_MAX = 300_000;
export const CHECK_NAME_LENGTH_MAX = 64;
export const HTTP_HEADERS_MAX = 32;
export const HTTP_HEADER_NAME_LENGTH_MAX = 256;
export const HTTP_HEADER_VALUE_LENGTH_MAX = 4096;
export const HTTP_PATH_LENGTH_MAX = 2048;
export const HTTP_URL_LENGTH_MAX = 2048;
export const HTTP_EXPECTED_STATUS_MAX = 32;
export const BODY_CONTAINS_LENGTH_MAX = 1024;
export const HOST_LENGTH_MAX = 253;
export const SCRIPT_COMMAND_LENGTH_MAX = 1024;
export const SCRIPT_ARGS_MAX = 64;
export const SCRIPT_ARG_LENGTH_MAX = 4096;

const CHECK_TYPES = ['http', 'tcp', 'script', 'instance'] as const;

/** The accepted form of each part, quoted by the refusals. */
export const HEALTH_SPEC_ACCEPTED_FORMS = {
  spec:
    '{"mode"?: "ALL" | "ANY", "checks": [<check>, ...] (1 to 16), "policy"?: {"successThreshold"?: 1, "failureThreshold"?: 3, ' +
    '"intervalSeconds"?: 10, "initialDelaySeconds"?: 30, "monitoringDurationSeconds"?: 300}}',
  check: '{"type": "http" | "tcp" | "script" | "instance", "name"?: "ready", "timeoutSeconds"?: 5, ...}',
  http:
    '{"type": "http", "name"?: "ready", "path"?: "/healthz", "port"?: 8080, "host"?: "127.0.0.1" | "url"?: "https://example.com/status", ' +
    '"method"?: "GET" | "HEAD" | "POST" | "PUT" | "OPTIONS", "expectedStatus"?: [200, 204], "timeoutSeconds"?: 5, "maxResponseTimeMs"?: 500, ' +
    '"bodyContains"?: "ok", "headers"?: {"x-probe": "1"}}',
  tcp: '{"type": "tcp", "name"?: "redis", "host"?: "127.0.0.1", "port": 6379, "timeoutSeconds"?: 5}',
  script: '{"type": "script", "name"?: "self-test", "command": "node", "args"?: ["check.mjs"], "timeoutSeconds"?: 30, "expectedExitCode"?: 0}',
  instance: '{"type": "instance", "name"?: "hook", "timeoutSeconds"?: 5}',
  policy:
    '{"successThreshold"?: 1 to 100, "failureThreshold"?: 1 to 100, "intervalSeconds"?: 0.05 to 3600, "initialDelaySeconds"?: 0 to 3600, ' +
    '"monitoringDurationSeconds"?: 0 to 86400}',
} as const;
type FormName = keyof typeof HEALTH_SPEC_ACCEPTED_FORMS;

/** A health-check spec is malformed. `field` names the offending field (`healthChecks.checks[2].port`). */
export class InvalidHealthCheckError extends CutoverError {
  override readonly name = 'InvalidHealthCheckError';
  readonly field: string;
  /** What is wrong, without the field name (`must be an integer from 1 to 65535, got "80"`). */
  readonly problem: string;
  /** The accepted form of the part that holds the field. */
  readonly acceptedForm: string;
  constructor(field: string, problem: string, acceptedForm: string) {
    super('INVALID_HEALTH_CHECK', `health checks: field "${field}" ${problem}. Accepted form: ${acceptedForm}`);
    this.field = field;
    this.problem = problem;
    this.acceptedForm = acceptedForm;
  }
}

/**
 * Validates the JSON form of a health-check spec and fills in the defaults (mode ALL, method GET,
 * host 127.0.0.1, path `/`, expectedStatus [200], timeouts 5 s or 30 s for scripts,
 * expectedExitCode 0, headers {}, name `{type}-{index}`, the policy of `HEALTH_POLICY_DEFAULTS`).
 * `field` prefixes the names in refusals. Throws INVALID_HEALTH_CHECK naming the first bad field.
 */
export function parseHealthSpec(json: unknown, field = 'healthChecks'): HealthSpec {
  const fields = requireObject(json, field, 'spec');
  const mode = optionalEnum(fields, field, 'mode', ['ALL', 'ANY'] as const, 'spec') ?? 'ALL';
  const checksField = `${field}.checks`;
  const rawChecks = fields['checks'];
  if (rawChecks === undefined) throw new InvalidHealthCheckError(checksField, 'is required', HEALTH_SPEC_ACCEPTED_FORMS.spec);
  if (!Array.isArray(rawChecks)) throw new InvalidHealthCheckError(checksField, `must be an array of checks, got ${describe(rawChecks)}`, HEALTH_SPEC_ACCEPTED_FORMS.spec);
  if (rawChecks.length === 0) throw new InvalidHealthCheckError(checksField, 'must hold at least one check', HEALTH_SPEC_ACCEPTED_FORMS.spec);
  if (rawChecks.length > HEALTH_CHECKS_MAX) throw new InvalidHealthCheckError(checksField, `must hold at most ${HEALTH_CHECKS_MAX} checks, got ${rawChecks.length}`, HEALTH_SPEC_ACCEPTED_FORMS.spec);
  const names = new Set<string>();
  const checks = rawChecks.map((raw: unknown, index) => {
    const check = parseCheck(raw, `${checksField}[${index}]`, index);
    if (names.has(check.name)) throw new InvalidHealthCheckError(`${checksField}[${index}].name`, `repeats ${JSON.stringify(check.name)}; check names must be unique`, HEALTH_SPEC_ACCEPTED_FORMS.check);
    names.add(check.name);
    return check;
  });
  const policy = parsePolicy(fields['policy'], `${field}.policy`);
  return { mode, checks, policy };
}

/**
 * An update's override of a version's spec: `checks` and `mode` replace the base's when given,
 * `policy` fields merge over the base's. With no base the override must bring `checks`.
 * Throws INVALID_HEALTH_CHECK naming the field under `field`.
 */
export function overrideHealthSpec(base: HealthSpec | undefined, override: unknown, field: string): HealthSpec {
  const fields = requireObject(override, field, 'spec');
  if (base === undefined) {
    if (fields['checks'] === undefined) {
      throw new InvalidHealthCheckError(`${field}.checks`, 'is required: the version declares no health checks for the override to build on', HEALTH_SPEC_ACCEPTED_FORMS.spec);
    }
    return parseHealthSpec(fields, field);
  }
  const baseJson = healthSpecJson(base);
  const merged: Record<string, unknown> = {
    mode: fields['mode'] === undefined ? baseJson['mode'] : fields['mode'],
    checks: fields['checks'] === undefined ? baseJson['checks'] : fields['checks'],
    policy: mergePolicy(baseJson['policy'] as Record<string, unknown>, fields['policy']),
  };
  return parseHealthSpec(merged, field);
}

/** The canonical JSON form of `spec` (seconds, every field explicit); `parseHealthSpec` reads it back to an equal spec. */
export function healthSpecJson(spec: HealthSpec): Record<string, unknown> {
  return {
    mode: spec.mode,
    checks: spec.checks.map(checkJson),
    policy: {
      successThreshold: spec.policy.successThreshold,
      failureThreshold: spec.policy.failureThreshold,
      intervalSeconds: spec.policy.intervalMs / 1000,
      initialDelaySeconds: spec.policy.initialDelayMs / 1000,
      monitoringDurationSeconds: spec.policy.monitoringDurationMs / 1000,
    },
  };
}

function checkJson(check: CheckSpec): Record<string, unknown> {
  const common = { type: check.type, name: check.name, timeoutSeconds: check.timeoutMs / 1000 };
  switch (check.type) {
    case 'instance':
      return common;
    case 'tcp':
      return { ...common, host: check.host, port: check.port };
    case 'script':
      return { ...common, command: check.command, args: [...check.args], expectedExitCode: check.expectedExitCode };
    case 'http': {
      // `url` excludes host, port and path: the parser refuses them together.
      const target = check.url !== undefined ? { url: check.url } : { host: check.host, path: check.path, ...(check.port === undefined ? {} : { port: check.port }) };
      return {
        ...common,
        ...target,
        method: check.method,
        expectedStatus: [...check.expectedStatus],
        headers: { ...check.headers },
        ...(check.maxResponseTimeMs === undefined ? {} : { maxResponseTimeMs: check.maxResponseTimeMs }),
        ...(check.bodyContains === undefined ? {} : { bodyContains: check.bodyContains }),
      };
    }
  }
}

function mergePolicy(base: Record<string, unknown>, override: unknown): unknown {
  // A policy that is not an object goes through as is, so that the parser refuses it by name.
  if (override === undefined) return base;
  if (typeof override !== 'object' || override === null || Array.isArray(override)) return override;
  const merged: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(override)) if (value !== undefined) merged[key] = value;
  return merged;
}

function parseCheck(raw: unknown, field: string, index: number): CheckSpec {
  const fields = requireObject(raw, field, 'check');
  const type = optionalEnum(fields, field, 'type', CHECK_TYPES, 'check');
  if (type === undefined) throw new InvalidHealthCheckError(`${field}.type`, 'is required', HEALTH_SPEC_ACCEPTED_FORMS.check);
  const name = parseName(fields, field, type, index);
  const defaultTimeoutSeconds = type === 'script' ? SCRIPT_TIMEOUT_SECONDS_DEFAULT : CHECK_TIMEOUT_SECONDS_DEFAULT;
  const timeoutMs = secondsToMs(optionalNumber(fields, field, 'timeoutSeconds', CHECK_TIMEOUT_SECONDS_MIN, CHECK_TIMEOUT_SECONDS_MAX, type) ?? defaultTimeoutSeconds);
  switch (type) {
    case 'instance':
      return { type, name, timeoutMs };
    case 'tcp': {
      const host = parseHost(fields, field, type);
      const port = optionalInteger(fields, field, 'port', 1, 65_535, type);
      if (port === undefined) throw new InvalidHealthCheckError(`${field}.port`, 'is required', HEALTH_SPEC_ACCEPTED_FORMS.tcp);
      return { type, name, timeoutMs, host, port };
    }
    case 'script':
      return { type, name, timeoutMs, ...parseScript(fields, field) };
    case 'http':
      return { type, name, timeoutMs, ...parseHttp(fields, field) };
  }
}

const CHECK_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

function parseName(fields: Record<string, unknown>, field: string, type: FormName, index: number): string {
  const name = optionalString(fields, field, 'name', type);
  if (name === undefined) return `${type}-${index}`;
  if (name.length > CHECK_NAME_LENGTH_MAX || !CHECK_NAME.test(name)) {
    throw new InvalidHealthCheckError(`${field}.name`, `must be 1 to ${CHECK_NAME_LENGTH_MAX} letters, digits, '.', '_' or '-', starting with a letter or digit, got ${JSON.stringify(name)}`, HEALTH_SPEC_ACCEPTED_FORMS[type]);
  }
  return name;
}

function parseScript(fields: Record<string, unknown>, field: string): { command: string; args: string[]; expectedExitCode: number } {
  const command = optionalString(fields, field, 'command', 'script');
  if (command === undefined) throw new InvalidHealthCheckError(`${field}.command`, 'is required', HEALTH_SPEC_ACCEPTED_FORMS.script);
  if (command.length === 0 || command.length > SCRIPT_COMMAND_LENGTH_MAX || command.includes('\u0000')) {
    throw new InvalidHealthCheckError(`${field}.command`, `must be a program name or path of 1 to ${SCRIPT_COMMAND_LENGTH_MAX} characters without NUL (run without a shell)`, HEALTH_SPEC_ACCEPTED_FORMS.script);
  }
  const rawArgs = fields['args'] ?? [];
  if (!Array.isArray(rawArgs)) throw new InvalidHealthCheckError(`${field}.args`, `must be an array of strings (no shell: one element per argument), got ${describe(rawArgs)}`, HEALTH_SPEC_ACCEPTED_FORMS.script);
  if (rawArgs.length > SCRIPT_ARGS_MAX) throw new InvalidHealthCheckError(`${field}.args`, `must hold at most ${SCRIPT_ARGS_MAX} arguments, got ${rawArgs.length}`, HEALTH_SPEC_ACCEPTED_FORMS.script);
  const args = rawArgs.map((arg: unknown, i) => {
    if (typeof arg !== 'string' || arg.length > SCRIPT_ARG_LENGTH_MAX || arg.includes('\u0000')) {
      throw new InvalidHealthCheckError(`${field}.args[${i}]`, `must be a string of at most ${SCRIPT_ARG_LENGTH_MAX} characters without NUL, got ${describe(arg)}`, HEALTH_SPEC_ACCEPTED_FORMS.script);
    }
    return arg;
  });
  const expectedExitCode = optionalInteger(fields, field, 'expectedExitCode', 0, 255, 'script') ?? 0;
  return { command, args, expectedExitCode };
}

type HttpParts = Omit<HttpCheckSpec, 'type' | 'name' | 'timeoutMs'>;

function parseHttp(fields: Record<string, unknown>, field: string): HttpParts {
  const rawMethod = optionalString(fields, field, 'method', 'http');
  const method = rawMethod === undefined ? 'GET' : rawMethod.toUpperCase();
  if (!(HTTP_METHODS as readonly string[]).includes(method)) {
    throw new InvalidHealthCheckError(`${field}.method`, `must be one of ${HTTP_METHODS.join(', ')}, got ${JSON.stringify(rawMethod)}`, HEALTH_SPEC_ACCEPTED_FORMS.http);
  }
  const url = parseUrl(fields, field);
  const host = parseHost(fields, field, 'http');
  const port = optionalInteger(fields, field, 'port', 1, 65_535, 'http');
  const path = parsePath(fields, field);
  const expectedStatus = parseExpectedStatus(fields, field);
  const maxResponseTimeMs = optionalInteger(fields, field, 'maxResponseTimeMs', 1, MAX_RESPONSE_TIME_MS_MAX, 'http');
  const bodyContains = optionalString(fields, field, 'bodyContains', 'http');
  if (bodyContains !== undefined && (bodyContains.length === 0 || bodyContains.length > BODY_CONTAINS_LENGTH_MAX)) {
    throw new InvalidHealthCheckError(`${field}.bodyContains`, `must be 1 to ${BODY_CONTAINS_LENGTH_MAX} characters`, HEALTH_SPEC_ACCEPTED_FORMS.http);
  }
  if (bodyContains !== undefined && method === 'HEAD') throw new InvalidHealthCheckError(`${field}.bodyContains`, 'cannot be checked with method HEAD (a HEAD answer has no body)', HEALTH_SPEC_ACCEPTED_FORMS.http);
  const headers = parseHeaders(fields, field);
  return {
    method: method as HttpMethod,
    ...(url === undefined ? {} : { url }),
    host,
    ...(port === undefined ? {} : { port }),
    path,
    expectedStatus,
    ...(maxResponseTimeMs === undefined ? {} : { maxResponseTimeMs }),
    ...(bodyContains === undefined ? {} : { bodyContains }),
    headers,
  };
}

function parseUrl(fields: Record<string, unknown>, field: string): string | undefined {
  const url = optionalString(fields, field, 'url', 'http');
  if (url === undefined) return undefined;
  for (const excluded of ['host', 'port', 'path']) {
    if (fields[excluded] !== undefined) throw new InvalidHealthCheckError(`${field}.${excluded}`, `must not be given with "url" (the URL names the host, port and path)`, HEALTH_SPEC_ACCEPTED_FORMS.http);
  }
  let parsed: URL | undefined;
  try {
    parsed = url.length <= HTTP_URL_LENGTH_MAX ? new URL(url) : undefined;
  } catch {
    parsed = undefined;
  }
  if (parsed === undefined || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') || parsed.hostname === '') {
    throw new InvalidHealthCheckError(`${field}.url`, `must be an absolute http: or https: URL of at most ${HTTP_URL_LENGTH_MAX} characters, got ${JSON.stringify(url.slice(0, 100))}`, HEALTH_SPEC_ACCEPTED_FORMS.http);
  }
  // Credentials in a URL end up in the replicated store and in results; headers are the place for them.
  if (parsed.username !== '' || parsed.password !== '') throw new InvalidHealthCheckError(`${field}.url`, 'must not carry credentials (user:password@); send them in "headers"', HEALTH_SPEC_ACCEPTED_FORMS.http);
  return url;
}

const HOST = /^[A-Za-z0-9.:-]+$/;

function parseHost(fields: Record<string, unknown>, field: string, form: 'http' | 'tcp'): string {
  const host = optionalString(fields, field, 'host', form);
  if (host === undefined) return '127.0.0.1';
  if (host.length === 0 || host.length > HOST_LENGTH_MAX || !HOST.test(host)) {
    throw new InvalidHealthCheckError(`${field}.host`, `must be a host name or IP address (letters, digits, '.', '-', ':'; at most ${HOST_LENGTH_MAX} characters), got ${JSON.stringify(host.slice(0, 100))}`, HEALTH_SPEC_ACCEPTED_FORMS[form]);
  }
  return host;
}

// Printable ASCII without space: what Node.js sends in a request line unescaped.
const PATH = /^\/[\u0021-\u007e]*$/;

function parsePath(fields: Record<string, unknown>, field: string): string {
  const path = optionalString(fields, field, 'path', 'http');
  if (path === undefined) return '/';
  if (path.length > HTTP_PATH_LENGTH_MAX || !PATH.test(path)) {
    throw new InvalidHealthCheckError(`${field}.path`, `must start with "/" and hold at most ${HTTP_PATH_LENGTH_MAX} printable ASCII characters without spaces (percent-encode the rest), got ${JSON.stringify(path.slice(0, 100))}`, HEALTH_SPEC_ACCEPTED_FORMS.http);
  }
  return path;
}

function parseExpectedStatus(fields: Record<string, unknown>, field: string): number[] {
  const raw = fields['expectedStatus'];
  if (raw === undefined) return [200];
  const statusField = `${field}.expectedStatus`;
  const list: unknown[] = typeof raw === 'number' ? [raw] : Array.isArray(raw) ? raw : [];
  if (!Array.isArray(raw) && typeof raw !== 'number') throw new InvalidHealthCheckError(statusField, `must be an array of status codes like [200, 204], got ${describe(raw)}`, HEALTH_SPEC_ACCEPTED_FORMS.http);
  if (list.length === 0 || list.length > HTTP_EXPECTED_STATUS_MAX) throw new InvalidHealthCheckError(statusField, `must hold 1 to ${HTTP_EXPECTED_STATUS_MAX} status codes, got ${list.length}`, HEALTH_SPEC_ACCEPTED_FORMS.http);
  const seen = new Set<number>();
  list.forEach((status, i) => {
    const itemField = Array.isArray(raw) ? `${statusField}[${i}]` : statusField;
    if (typeof status !== 'number' || !Number.isInteger(status) || status < 100 || status > 599) {
      throw new InvalidHealthCheckError(itemField, `must be an HTTP status code (an integer from 100 to 599), got ${describe(status)}`, HEALTH_SPEC_ACCEPTED_FORMS.http);
    }
    if (seen.has(status)) throw new InvalidHealthCheckError(itemField, `repeats ${status}`, HEALTH_SPEC_ACCEPTED_FORMS.http);
    seen.add(status);
  });
  return [...seen];
}

// RFC 9110 token characters.
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
// Tab, printable ASCII and obs-text; no CR, LF or NUL (they would split or end the header).
const HEADER_VALUE = /^[\t\u0020-\u007e\u0080-\u00ff]*$/;
// The check sends no body; a declared length or encoding would leave the server waiting for one.
const HEADERS_REFUSED: ReadonlySet<string> = new Set(['content-length', 'transfer-encoding', 'connection', 'upgrade']);

function parseHeaders(fields: Record<string, unknown>, field: string): Record<string, string> {
  const raw = fields['headers'];
  const headersField = `${field}.headers`;
  if (raw === undefined) return {};
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new InvalidHealthCheckError(headersField, `must be an object of header names to string values, got ${describe(raw)}`, HEALTH_SPEC_ACCEPTED_FORMS.http);
  const entries = Object.entries(raw as Record<string, unknown>);
  if (entries.length > HTTP_HEADERS_MAX) throw new InvalidHealthCheckError(headersField, `must hold at most ${HTTP_HEADERS_MAX} headers, got ${entries.length}`, HEALTH_SPEC_ACCEPTED_FORMS.http);
  const headers: Record<string, string> = {};
  const seen = new Set<string>();
  for (const [name, value] of entries) {
    const nameField = `${headersField}.${name}`;
    if (name.length > HTTP_HEADER_NAME_LENGTH_MAX || !HEADER_NAME.test(name)) {
      throw new InvalidHealthCheckError(nameField, `is not a valid header name (letters, digits and !#$%&'*+.^_\`|~-, at most ${HTTP_HEADER_NAME_LENGTH_MAX} characters)`, HEALTH_SPEC_ACCEPTED_FORMS.http);
    }
    const lower = name.toLowerCase();
    if (HEADERS_REFUSED.has(lower)) throw new InvalidHealthCheckError(nameField, 'is set by the check itself (it sends no body and one request per connection)', HEALTH_SPEC_ACCEPTED_FORMS.http);
    if (seen.has(lower)) throw new InvalidHealthCheckError(nameField, 'repeats a header name (names are case-insensitive)', HEALTH_SPEC_ACCEPTED_FORMS.http);
    seen.add(lower);
    if (typeof value !== 'string' || value.length > HTTP_HEADER_VALUE_LENGTH_MAX || !HEADER_VALUE.test(value)) {
      throw new InvalidHealthCheckError(nameField, `must be a string of at most ${HTTP_HEADER_VALUE_LENGTH_MAX} characters without CR, LF or other control characters, got ${describe(value)}`, HEALTH_SPEC_ACCEPTED_FORMS.http);
    }
    headers[name] = value;
  }
  return headers;
}

function parsePolicy(raw: unknown, field: string): HealthPolicy {
  if (raw === undefined) return HEALTH_POLICY_DEFAULTS;
  const fields = requireObject(raw, field, 'policy');
  const d = HEALTH_POLICY_DEFAULTS;
  return {
    successThreshold: optionalInteger(fields, field, 'successThreshold', 1, THRESHOLD_MAX, 'policy') ?? d.successThreshold,
    failureThreshold: optionalInteger(fields, field, 'failureThreshold', 1, THRESHOLD_MAX, 'policy') ?? d.failureThreshold,
    intervalMs: optionalSeconds(fields, field, 'intervalSeconds', INTERVAL_SECONDS_MIN, INTERVAL_SECONDS_MAX) ?? d.intervalMs,
    initialDelayMs: optionalSeconds(fields, field, 'initialDelaySeconds', 0, INITIAL_DELAY_SECONDS_MAX) ?? d.initialDelayMs,
    monitoringDurationMs: optionalSeconds(fields, field, 'monitoringDurationSeconds', 0, MONITORING_DURATION_SECONDS_MAX) ?? d.monitoringDurationMs,
  };
}

function optionalSeconds(fields: Record<string, unknown>, field: string, name: string, min: number, max: number): number | undefined {
  const seconds = optionalNumber(fields, field, name, min, max, 'policy');
  return seconds === undefined ? undefined : secondsToMs(seconds);
}

/** Whole milliseconds: a JSON decimal like 0.1 is not exact, and `HealthSpec` durations are integers. */
function secondsToMs(seconds: number): number {
  return Math.round(seconds * 1000);
}

function requireObject(value: unknown, field: string, form: FormName): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new InvalidHealthCheckError(field, `must be a JSON object, got ${describe(value)}`, HEALTH_SPEC_ACCEPTED_FORMS[form]);
  return value as Record<string, unknown>;
}

function optionalString(fields: Record<string, unknown>, field: string, name: string, form: FormName): string | undefined {
  const value = fields[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new InvalidHealthCheckError(`${field}.${name}`, `must be a string, got ${describe(value)}`, HEALTH_SPEC_ACCEPTED_FORMS[form]);
  return value;
}

function optionalEnum<T extends string>(fields: Record<string, unknown>, field: string, name: string, allowed: readonly T[], form: FormName): T | undefined {
  const value = fields[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw new InvalidHealthCheckError(`${field}.${name}`, `must be one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}, got ${describe(value)}`, HEALTH_SPEC_ACCEPTED_FORMS[form]);
  }
  return value as T;
}

function optionalNumber(fields: Record<string, unknown>, field: string, name: string, min: number, max: number, form: FormName): number | undefined {
  const value = fields[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    throw new InvalidHealthCheckError(`${field}.${name}`, `must be a number from ${min} to ${max}, got ${describe(value)}`, HEALTH_SPEC_ACCEPTED_FORMS[form]);
  }
  return value;
}

function optionalInteger(fields: Record<string, unknown>, field: string, name: string, min: number, max: number, form: FormName): number | undefined {
  const value = fields[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new InvalidHealthCheckError(`${field}.${name}`, `must be an integer from ${min} to ${max}, got ${describe(value)}`, HEALTH_SPEC_ACCEPTED_FORMS[form]);
  }
  return value;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return JSON.stringify(value.length > 100 ? `${value.slice(0, 100)}…` : value);
  return typeof value === 'object' ? 'an object' : `${typeof value} ${String(value)}`;
}

