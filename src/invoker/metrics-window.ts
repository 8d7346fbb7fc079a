/**
 * The per-node metrics window: what a node pushes to the leader every second (issue 4, item 4).
 * Plain JSON, so the transport sends it as JSON text; `parseMetricsWindow` is the receiving side's
 * check. A window comes from another node, so a bad one is data, not a bug: the parser returns a
 * reason instead of throwing. Unknown extra fields are accepted (a newer sender may add some).
 */
import { COORDINATE_PART_LENGTH_MAX } from '../slices/keys.ts';
import { HISTOGRAM_ENCODED_LENGTH_MAX } from './latency-histogram.ts';
import { refuse, type Parsed } from '../util/parsed.ts';

/** Most (artifact, version) entries in one window; a node tracks at most this many versions. */
export const WINDOW_VERSIONS_MAX = 256;
/** Longest artifact base (`groupId:artifactId`). */
export const BASE_LENGTH_MAX = 2 * COORDINATE_PART_LENGTH_MAX + 1;
/** Longest version text. */
export const VERSION_LENGTH_MAX = COORDINATE_PART_LENGTH_MAX;

/** One node's calls of one (artifact, version) during one window. */
export interface VersionWindow {
  /** The artifact base, `groupId:artifactId`. */
  readonly base: string;
  readonly version: string;
  /** Calls completed in the window (ok or not); a non-negative integer. */
  readonly count: number;
  /** Calls among `count` that failed; 0 <= errors <= count. */
  readonly errors: number;
  /** Sum of the calls' latencies (each clamped as recorded), in milliseconds. */
  readonly latencySumMs: number;
  /** hdr-histogram-js `encodeIntoCompressedBase64` of the latencies in microseconds (see latency-histogram.ts). */
  readonly histogram: string;
}

/**
 * The calls one node completed in [startMs, endMs). Times are the sending node's monotonic clock,
 * whose origin is its own: the leader compares them only with that node's earlier windows.
 */
export interface MetricsWindow {
  readonly nodeId: number;
  readonly startMs: number;
  readonly endMs: number;
  /** Versions with at least one call in the window; each (base, version) at most once. */
  readonly versions: readonly VersionWindow[];
}

const fail = refuse;

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

const isCount = (value: unknown): value is number => typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;

/**
 * Checks a received window's shape and bounds: node id a positive integer, finite times with
 * endMs >= startMs, at most WINDOW_VERSIONS_MAX versions, each (base, version) once, bounded
 * texts, errors <= count, and a histogram text of at most HISTOGRAM_ENCODED_LENGTH_MAX characters.
 * The histogram's content is read (and checked against `count`) by the aggregator. Returns a fresh
 * object holding only the known fields. Never throws.
 */
export function parseMetricsWindow(json: unknown): Parsed<MetricsWindow> {
  if (!isRecord(json)) return fail('window is not an object');
  const { nodeId, startMs, endMs, versions } = json;
  if (typeof nodeId !== 'number' || !Number.isSafeInteger(nodeId) || nodeId <= 0) return fail('nodeId must be a positive integer');
  if (typeof startMs !== 'number' || !Number.isFinite(startMs)) return fail('startMs must be a finite number');
  if (typeof endMs !== 'number' || !Number.isFinite(endMs) || endMs < startMs) return fail('endMs must be a finite number >= startMs');
  if (!Array.isArray(versions)) return fail('versions must be an array');
  if (versions.length > WINDOW_VERSIONS_MAX) return fail(`more than ${WINDOW_VERSIONS_MAX} versions`);
  const parsed: VersionWindow[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < versions.length; i++) {
    const entry = parseVersionWindow(versions[i]);
    if (!entry.ok) return fail(`versions[${i}]: ${entry.reason}`);
    // A NUL cannot appear in either part (checked above), so the joined key is unambiguous.
    const key = `${entry.value.base}\u0000${entry.value.version}`;
    if (seen.has(key)) return fail(`versions[${i}]: ${entry.value.base} ${entry.value.version} appears twice`);
    seen.add(key);
    parsed.push(entry.value);
  }
  return { ok: true, value: { nodeId, startMs, endMs, versions: parsed } };
}

function parseVersionWindow(json: unknown): Parsed<VersionWindow> {
  if (!isRecord(json)) return fail('not an object');
  const { base, version, count, errors, latencySumMs, histogram } = json;
  if (!isName(base, BASE_LENGTH_MAX)) return fail(`base must be 1..${BASE_LENGTH_MAX} characters without control characters`);
  if (!isName(version, VERSION_LENGTH_MAX)) return fail(`version must be 1..${VERSION_LENGTH_MAX} characters without control characters`);
  if (!isCount(count)) return fail('count must be a non-negative integer');
  if (!isCount(errors) || errors > count) return fail('errors must be an integer in [0, count]');
  if (typeof latencySumMs !== 'number' || !Number.isFinite(latencySumMs) || latencySumMs < 0) return fail('latencySumMs must be a finite number >= 0');
  if (typeof histogram !== 'string' || histogram.length === 0 || histogram.length > HISTOGRAM_ENCODED_LENGTH_MAX) return fail(`histogram must be 1..${HISTOGRAM_ENCODED_LENGTH_MAX} characters`);
  return { ok: true, value: { base, version, count, errors, latencySumMs, histogram } };
}

// eslint-disable-next-line no-control-regex -- the point is to refuse control characters
const CONTROL = /[\u0000-\u001f\u007f]/;

/** A label-safe name: non-empty, bounded, no control characters. */
export function isName(value: unknown, lengthMax: number): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= lengthMax && !CONTROL.test(value);
}
