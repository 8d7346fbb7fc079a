/**
 * `slice.json`, the manifest at the root of every slice artifact: what the artifact is
 * (groupId, artifactId, version), which module to load (entry) and which methods its instances
 * serve.
 *
 * The manifest comes from outside (an operator's package), so validation is strict about types and
 * forms and lenient about extras: unknown fields are ignored, so that a newer packer's manifest
 * still loads here, but a known field of the wrong type is refused. Every refusal is an
 * `InvalidManifestError` (code INVALID_MANIFEST) that names the field and shows the accepted form.
 *
 * `healthChecks` (the version's health checks, src/health/spec.ts) is kept in its canonical JSON
 * form, not as a `HealthSpec`: a manifest is stored as JSON in the artifact's metadata and read
 * back by `parseManifest`, so it must mean the same after that round trip. `manifestHealthSpec`
 * gives the `HealthSpec`.
 */
import { healthSpecJson, InvalidHealthCheckError, parseHealthSpec } from '../health/spec.ts';
import type { HealthSpec } from '../health/types.ts';
import { CutoverError, InvalidArgumentError } from '../util/errors.ts';
import { artifactBase, compareSemVer, parseSemVer, type ArtifactBase } from './keys.ts';

/** The name of the manifest file at the root of an artifact. */
export const MANIFEST_FILE = 'slice.json';

/** Most methods a slice may declare. */
export const MANIFEST_METHODS_MAX = 256;
/** Longest method name, in characters. */
export const MANIFEST_METHOD_LENGTH_MAX = 128;
/** Longest `entry` path, in characters. */
export const MANIFEST_ENTRY_LENGTH_MAX = 1024;
/** Longest `description`, in characters. */
export const MANIFEST_DESCRIPTION_LENGTH_MAX = 4096;

/** A validated `slice.json`. Only the known fields; unknown ones are dropped. */
export interface SliceManifest {
  readonly groupId: string;
  readonly artifactId: string;
  /** Strict SemVer 2.0.0, canonical (see `parseSemVer`). */
  readonly version: string;
  /** Relative path of the ESM module inside the artifact, like `index.js` or `lib/main.mjs`. */
  readonly entry: string;
  /** The methods an instance serves: non-empty, unique JavaScript identifiers, no lifecycle hooks. */
  readonly methods: readonly string[];
  /** The instance has a `health()` hook. */
  readonly health?: boolean;
  /**
   * The version's health checks, validated, in the canonical JSON form of `healthSpecJson`
   * (seconds, every default explicit); `manifestHealthSpec` parses it.
   */
  readonly healthChecks?: Readonly<Record<string, unknown>>;
  /** The oldest version this one may run beside during an update; never above `version`. */
  readonly minCompatibleVersion?: string;
  readonly description?: string;
}

/** What a valid manifest looks like; every refusal quotes it. */
export const MANIFEST_ACCEPTED_FORM =
  '{"groupId": "org.example", "artifactId": "greeter", "version": "1.0.0", "entry": "index.js", "methods": ["hello"], ' +
  '"health"?: true, "healthChecks"?: {"mode"?: "ALL", "checks": [{"type": "http", "path": "/healthz"}, ...], "policy"?: {...}}, ' +
  '"minCompatibleVersion"?: "1.0.0", "description"?: "..."}';

/**
 * Names an instance cannot serve as methods: the lifecycle hooks the runtime calls itself, `then`
 * (an instance with it would be taken for a promise when awaited) and everything on
 * `Object.prototype` (a dispatcher looking the name up would find the inherited function).
 */
const RESERVED_METHOD_NAMES: ReadonlySet<string> = new Set(['start', 'stop', 'health', 'then', ...Object.getOwnPropertyNames(Object.prototype)]);

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
const ENTRY_EXTENSION = /\.(?:js|mjs)$/;

/** A `slice.json` is malformed. `field` names the offending field (`methods[2]`, `version`, ...). */
export class InvalidManifestError extends CutoverError {
  override readonly name = 'InvalidManifestError';
  readonly field: string;
  constructor(field: string, problem: string) {
    super('INVALID_MANIFEST', `${MANIFEST_FILE}: field "${field}" ${problem}. Accepted form: ${MANIFEST_ACCEPTED_FORM}`);
    this.field = field;
  }
}

/**
 * Validates a relative path inside an artifact: `/`-separated, no empty, `.` or `..` segment, no
 * leading `/`, no backslash, drive letter or control character. Returns the problem, or
 * `undefined` when the path is acceptable. Shared with the package reader.
 */
export function relativePathProblem(path: string): string | undefined {
  if (path.length === 0) return 'must not be empty';
  if (path.length > MANIFEST_ENTRY_LENGTH_MAX) return `must be at most ${MANIFEST_ENTRY_LENGTH_MAX} characters`;
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
  if (/[\u0000-\u001f\u007f\\]/.test(path)) return 'must not contain backslashes or control characters';
  if (path.startsWith('/') || /^[A-Za-z]:/.test(path)) return 'must be relative';
  if (path.split('/').some((segment) => segment === '' || segment === '.' || segment === '..')) return "must not contain empty, '.' or '..' segments";
  return undefined;
}

/** Parses the text of a `slice.json`; throws INVALID_MANIFEST. */
export function parseManifestJson(text: string): SliceManifest {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new InvalidManifestError('(document)', `is not valid JSON (${(error as Error).message})`);
  }
  return parseManifest(value);
}

/** Validates a parsed `slice.json`; throws INVALID_MANIFEST naming the first bad field. */
export function parseManifest(value: unknown): SliceManifest {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new InvalidManifestError('(document)', 'must be a JSON object');
  const fields = value as Record<string, unknown>;
  const groupId = requireString(fields, 'groupId');
  const artifactId = requireString(fields, 'artifactId');
  checkBase(groupId, artifactId);
  const version = requireVersion(fields, 'version');
  const entry = requireEntry(fields);
  const methods = requireMethods(fields);
  const manifest: { -readonly [K in keyof SliceManifest]: SliceManifest[K] } = { groupId, artifactId, version, entry, methods };
  if (fields['health'] !== undefined) {
    if (typeof fields['health'] !== 'boolean') throw new InvalidManifestError('health', `must be true or false when present, got ${describe(fields['health'])}`);
    manifest.health = fields['health'];
  }
  if (fields['healthChecks'] !== undefined) manifest.healthChecks = requireHealthChecks(fields['healthChecks']);
  if (fields['minCompatibleVersion'] !== undefined) manifest.minCompatibleVersion = requireMinCompatible(fields, version);
  if (fields['description'] !== undefined) {
    const description = requireString(fields, 'description', true);
    if (description.length > MANIFEST_DESCRIPTION_LENGTH_MAX) throw new InvalidManifestError('description', `must be at most ${MANIFEST_DESCRIPTION_LENGTH_MAX} characters`);
    manifest.description = description;
  }
  return manifest;
}

/** The health checks a validated manifest declares, or undefined when it declares none. */
export function manifestHealthSpec(manifest: SliceManifest): HealthSpec | undefined {
  return manifest.healthChecks === undefined ? undefined : parseHealthSpec(manifest.healthChecks);
}

/** The `groupId:artifactId` of a validated manifest. */
export function manifestBase(manifest: SliceManifest): ArtifactBase {
  return artifactBase(manifest.groupId, manifest.artifactId);
}

function requireString(fields: Record<string, unknown>, field: string, allowEmpty = false): string {
  const value = fields[field];
  if (value === undefined) throw new InvalidManifestError(field, 'is required');
  if (typeof value !== 'string') throw new InvalidManifestError(field, `must be a string, got ${describe(value)}`);
  if (!allowEmpty && value.length === 0) throw new InvalidManifestError(field, 'must not be empty');
  return value;
}

function checkBase(groupId: string, artifactId: string): void {
  try {
    artifactBase(groupId, artifactId);
  } catch (error) {
    if (!(error instanceof InvalidArgumentError)) throw error;
    // keys.ts words the accepted form of each part; keep its words, drop its "field: " prefix.
    throw new InvalidManifestError(error.field, error.message.slice(error.field.length + 2));
  }
}

function requireHealthChecks(value: unknown): Record<string, unknown> {
  let spec: HealthSpec;
  try {
    spec = parseHealthSpec(value, 'healthChecks');
  } catch (error) {
    if (!(error instanceof InvalidHealthCheckError)) throw error;
    throw new InvalidManifestError(error.field, `${error.problem} (health check form: ${error.acceptedForm})`);
  }
  return healthSpecJson(spec);
}

function requireVersion(fields: Record<string, unknown>, field: string): string {
  const text = requireString(fields, field);
  if (parseSemVer(text) === undefined) throw new InvalidManifestError(field, `must be a strict semantic version like 1.2.3 or 2.0.0-rc.1, got ${JSON.stringify(text)}`);
  return text;
}

function requireMinCompatible(fields: Record<string, unknown>, version: string): string {
  const text = requireVersion(fields, 'minCompatibleVersion');
  // Both parsed above; a version cannot require an oldest neighbour newer than itself.
  if (compareSemVer(parseSemVer(text)!, parseSemVer(version)!) > 0) throw new InvalidManifestError('minCompatibleVersion', `must not be above version ${version}, got ${text}`);
  return text;
}

function requireEntry(fields: Record<string, unknown>): string {
  const entry = requireString(fields, 'entry');
  const problem = relativePathProblem(entry);
  if (problem !== undefined) throw new InvalidManifestError('entry', `${problem} (a path inside the artifact like "index.js"), got ${JSON.stringify(entry)}`);
  if (!ENTRY_EXTENSION.test(entry)) throw new InvalidManifestError('entry', `must name an ESM module ending in .js or .mjs, got ${JSON.stringify(entry)}`);
  return entry;
}

function requireMethods(fields: Record<string, unknown>): string[] {
  const methods = fields['methods'];
  if (methods === undefined) throw new InvalidManifestError('methods', 'is required');
  if (!Array.isArray(methods)) throw new InvalidManifestError('methods', `must be an array of method names, got ${describe(methods)}`);
  if (methods.length === 0) throw new InvalidManifestError('methods', 'must name at least one method');
  if (methods.length > MANIFEST_METHODS_MAX) throw new InvalidManifestError('methods', `must name at most ${MANIFEST_METHODS_MAX} methods, got ${methods.length}`);
  const seen = new Set<string>();
  methods.forEach((method: unknown, i) => {
    const field = `methods[${i}]`;
    if (typeof method !== 'string') throw new InvalidManifestError(field, `must be a string, got ${describe(method)}`);
    if (method.length > MANIFEST_METHOD_LENGTH_MAX || !IDENTIFIER.test(method)) {
      throw new InvalidManifestError(field, `must be a JavaScript identifier (letters, digits, '_', '$', not starting with a digit, at most ${MANIFEST_METHOD_LENGTH_MAX} characters), got ${JSON.stringify(method)}`);
    }
    if (RESERVED_METHOD_NAMES.has(method)) throw new InvalidManifestError(field, `must not be the reserved name ${JSON.stringify(method)} (lifecycle hooks start, stop, health; then; Object.prototype members)`);
    if (seen.has(method)) throw new InvalidManifestError(field, `repeats ${JSON.stringify(method)}; method names must be unique`);
    seen.add(method);
  });
  // A copy, so the manifest does not alias the caller's array.
  return [...seen];
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'string' ? JSON.stringify(value) : typeof value === 'object' ? 'an object' : `${typeof value} ${String(value)}`;
}
