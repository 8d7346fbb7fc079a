/**
 * The one latency histogram shape the invoker uses on every node and on the leader, and the
 * bounded reader for histograms that arrive over the wire.
 *
 * Values are recorded in whole microseconds in [0, LATENCY_US_MAX]; larger values clamp to the
 * maximum. Two significant digits keep a value within 1/128 (< 0.8%) of what was recorded,
 * enough for health-gate thresholds of 200 ms and up, and keep a dense histogram at 3,072 counts
 * (24 KiB as Float64) rather than the 21,504 counts three digits would need. Counts are Float64 so
 * that a cumulative histogram on a busy node cannot wrap the way an Int32 count would.
 *
 * The wire form is hdr-histogram-js's `encodeIntoCompressedBase64` (HdrHistogram's V2 compressed
 * encoding). Its decoder trusts the header and the payload (a payload length, or a run of zeros,
 * of 2^32 makes it loop for minutes), so received histograms are read here instead: the
 * compressed size, the inflated size, the header and every counts index are checked before any
 * count is added anywhere.
 *
 * Two speed-ups over calling hdr-histogram-js per value, both keeping its counts layout: nodes
 * record into a plain front buffer indexed by `latencyIndex` and move it into a histogram once per
 * window, and the leader keeps each second's counts as a sparse sorted list
 * (`SparseLatencyCounts`) merged into one dense histogram only when a snapshot asks for p99.
 */
import { inflateSync } from 'node:zlib';
import { Float64Histogram, encodeIntoCompressedBase64, type JsHistogram } from 'hdr-histogram-js';
import { assert } from '../util/assert.ts';

/** Smallest value told apart from 0, in microseconds. */
export const LATENCY_US_LOWEST = 1;
/** Largest latency recorded (10 minutes), in microseconds; larger values clamp to it. */
export const LATENCY_US_MAX = 600_000_000;
/** Significant decimal digits kept by the histogram. */
export const LATENCY_SIGNIFICANT_DIGITS = 2;
/** Length cap of one encoded histogram; the densest possible one (every count large) stays below it. */
export const HISTOGRAM_ENCODED_LENGTH_MAX = 48 * 1024;

/** V2 compressed encoding cookie (word size nibble 0x10: LEB128 ZigZag words). */
const COMPRESSED_COOKIE = 0x1c849314;
/** V2 uncompressed encoding cookie. */
const ENCODING_COOKIE = 0x1c849313;
/** Uncompressed header: cookie, payload length, index offset, digits (4 bytes each), lowest, highest, ratio (8 each). */
const HEADER_BYTES = 40;
/** Longest LEB128 word accepted: 8 bytes carry 56 bits, beyond the 2^53 a count can reach anyway. */
const WORD_BYTES_MAX = 8;

/** A histogram with the invoker's latency shape (dense, Float64 counts). */
export function newLatencyHistogram(): JsHistogram {
  return new Float64Histogram(LATENCY_US_LOWEST, LATENCY_US_MAX, LATENCY_SIGNIFICANT_DIGITS);
}

const SHAPE = newLatencyHistogram();
/** Number of counts of the latency shape; every received index must be below it. */
export const LATENCY_COUNTS_LENGTH = SHAPE.countsArrayLength;
/** log2 of half the sub-buckets per bucket (7: values below 256 µs are exact, then 128 steps per doubling). */
const SUB_BUCKET_HALF_COUNT_MAGNITUDE = SHAPE.subBucketHalfCountMagnitude;
const SUB_BUCKET_HALF_COUNT = SHAPE.subBucketHalfCount;
// `latencyIndex` relies on a unit of 1 and on values fitting 32 bits.
assert(SHAPE.unitMagnitude === 0 && LATENCY_US_MAX < 2 ** 32, 'latency histogram shape does not fit latencyIndex');
/** Largest inflated encoding: the header plus one longest word per count. */
const INFLATED_BYTES_MAX = HEADER_BYTES + LATENCY_COUNTS_LENGTH * WORD_BYTES_MAX;

/**
 * Milliseconds to the recorded microseconds: rounded, clamped to [0, LATENCY_US_MAX]; NaN and
 * negative values (a clock that went backwards) record as 0.
 */
export function latencyMsToUs(latencyMs: number): number {
  const us = latencyMs * 1000;
  if (!(us > 0)) return 0;
  if (us >= LATENCY_US_MAX) return LATENCY_US_MAX;
  return Math.round(us);
}

/**
 * The counts index of `us` (an integer in [0, LATENCY_US_MAX]) in the latency shape: the same
 * index hdr-histogram-js's `countsArrayIndex` computes, with integer operations instead of its
 * `log2`, `pow` and `floor` (those cost about 130 ns per call; this costs a few). The bucket is
 * the power of two above the first 256 values, the sub-bucket the value shifted down by it.
 */
export function latencyIndex(us: number): number {
  const bucket = Math.max(0, 31 - Math.clz32(us) - SUB_BUCKET_HALF_COUNT_MAGNITUDE);
  return bucket * SUB_BUCKET_HALF_COUNT + (us >>> bucket);
}

/** A front buffer of counts in the latency layout, for recording without touching a histogram. */
export function newLatencyCounts(): Float64Array {
  return new Float64Array(LATENCY_COUNTS_LENGTH);
}

/**
 * Adds a front buffer's counts to `target` (latency shape); with `drain`, zeroes the buffer.
 * Counts go straight to their index (the layouts are the same), then the histogram's total,
 * minimum and maximum are recomputed in one pass: per value, `recordValueWithCount` would redo
 * the index arithmetic this module exists to avoid.
 */
export function addLatencyCounts(target: JsHistogram, counts: Float64Array, drain: boolean): void {
  for (let index = 0; index < counts.length; index++) {
    const count = counts[index]!;
    if (count === 0) continue;
    target.addToCountAtIndex(index, count);
    if (drain) counts[index] = 0;
  }
  target.establishInternalTackingValues();
}

/** The wire form of `histogram`. */
export function encodeLatencyHistogram(histogram: JsHistogram): string {
  return encodeIntoCompressedBase64(histogram);
}

/** The value at `percentile` (0..100] in milliseconds, or 0 for an empty histogram. */
export function percentileMs(histogram: JsHistogram, percentile: number): number {
  if (histogram.totalCount === 0) return 0;
  return histogram.getValueAtPercentile(percentile) / 1000;
}

/**
 * Non-zero latency counts in increasing index order: a received histogram after its checks, and
 * the leader's per-second buckets (see `SparseLatencyCounts`). Ten bytes per non-zero count.
 */
export interface LatencyCountsList {
  /** Strictly increasing indexes below LATENCY_COUNTS_LENGTH; only the first `size` are used. */
  readonly indexes: Uint16Array;
  /** Positive counts, one per index. */
  readonly counts: Float64Array;
  readonly size: number;
}

/** A received histogram that passed every check: its non-zero counts and their sum. */
export interface CheckedHistogram extends LatencyCountsList {
  readonly totalCount: number;
}

/** `checkEncodedHistogram`'s answer: never an exception. */
export type HistogramCheck = { readonly ok: true; readonly histogram: CheckedHistogram } | { readonly ok: false; readonly reason: string };

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Reads an encoded latency histogram without trusting it: the text must be base64 of at most
 * HISTOGRAM_ENCODED_LENGTH_MAX characters, the inflated form at most the densest possible size,
 * the header must describe exactly the latency shape, and every count must land inside it.
 */
export function checkEncodedHistogram(encoded: string): HistogramCheck {
  if (encoded.length === 0 || encoded.length > HISTOGRAM_ENCODED_LENGTH_MAX) return fail(`encoded length ${encoded.length} outside 1..${HISTOGRAM_ENCODED_LENGTH_MAX}`);
  if (encoded.length % 4 !== 0 || !BASE64.test(encoded)) return fail('not base64');
  const bytes = Buffer.from(encoded, 'base64');
  if (bytes.length < 8 || bytes.readUInt32BE(0) !== COMPRESSED_COOKIE) return fail('not a V2 compressed histogram');
  const compressedLength = bytes.readUInt32BE(4);
  if (compressedLength !== bytes.length - 8) return fail('compressed length does not match');
  let inflated: Buffer;
  try {
    inflated = inflateSync(bytes.subarray(8), { maxOutputLength: INFLATED_BYTES_MAX });
  } catch {
    return fail('corrupt or oversized compressed data');
  }
  const header = checkHeader(inflated);
  if (header !== undefined) return fail(header);
  return readCounts(inflated.subarray(HEADER_BYTES));
}

/** Adds lists of counts to `target` (latency shape), then brings its total, min and max up to date once. */
export function addCountsLists(target: JsHistogram, lists: readonly LatencyCountsList[]): void {
  for (const list of lists) for (let i = 0; i < list.size; i++) target.addToCountAtIndex(list.indexes[i]!, list.counts[i]!);
  target.establishInternalTackingValues();
}

function checkHeader(inflated: Buffer): string | undefined {
  if (inflated.length < HEADER_BYTES || inflated.readUInt32BE(0) !== ENCODING_COOKIE) return 'not a V2 histogram';
  if (inflated.readUInt32BE(4) !== inflated.length - HEADER_BYTES) return 'payload length does not match';
  if (inflated.readUInt32BE(12) !== LATENCY_SIGNIFICANT_DIGITS) return 'significant digits differ from the latency shape';
  if (readUInt64(inflated, 16) !== LATENCY_US_LOWEST || readUInt64(inflated, 24) !== LATENCY_US_MAX) return 'value range differs from the latency shape';
  return undefined;
}

function readUInt64(bytes: Buffer, offset: number): number {
  return bytes.readUInt32BE(offset) * 2 ** 32 + bytes.readUInt32BE(offset + 4);
}

/** Scratch for `readCounts`; copied out at the exact size. */
const readIndexes = new Uint16Array(LATENCY_COUNTS_LENGTH);
const readCountsScratch = new Float64Array(LATENCY_COUNTS_LENGTH);

/**
 * Reads the counts words (a positive word is a count, a negative one a run of zero counts) into
 * a list of non-zero counts, refusing any index past the latency shape and any count or total
 * beyond 2^53.
 */
function readCounts(payload: Uint8Array): HistogramCheck {
  let position = 0;
  let index = 0;
  let total = 0;
  let size = 0;
  while (position < payload.length) {
    let word = 0;
    let scale = 1;
    let length = 0;
    for (;;) {
      const byte = payload[position++];
      if (byte === undefined) return fail('truncated word');
      word += (byte & 0x7f) * scale;
      scale *= 128;
      length++;
      if ((byte & 0x80) === 0) break;
      if (length === WORD_BYTES_MAX) return fail('word too long');
    }
    if (word > Number.MAX_SAFE_INTEGER) return fail('count too large');
    if (word % 2 === 1) {
      index += (word + 1) / 2;
      if (index > LATENCY_COUNTS_LENGTH) return fail('zero run past the last count');
      continue;
    }
    const count = word / 2;
    if (index >= LATENCY_COUNTS_LENGTH) return fail('count past the last index');
    if (count > 0) {
      total += count;
      if (total > Number.MAX_SAFE_INTEGER) return fail('total count too large');
      readIndexes[size] = index;
      readCountsScratch[size] = count;
      size++;
    }
    index++;
  }
  return { ok: true, histogram: { indexes: readIndexes.slice(0, size), counts: readCountsScratch.slice(0, size), size, totalCount: total } };
}

function fail(reason: string): HistogramCheck & { readonly ok: false } {
  return { ok: false, reason };
}

/**
 * A per-second bucket's latency counts on the leader: sparse, because a dense histogram per
 * version per second (24 KiB) would cost 360 MiB for 256 versions over 60 s, and
 * hdr-histogram-js's PackedHistogram reads a count in microseconds. Holds at most
 * LATENCY_COUNTS_LENGTH entries (30 KiB); a second of real traffic fills a few hundred.
 */
export class SparseLatencyCounts implements LatencyCountsList {
  indexes = new Uint16Array(0);
  counts = new Float64Array(0);
  size = 0;

  /** Empties the list, keeping its arrays for reuse. */
  clear(): void {
    this.size = 0;
  }

  /** Adds `other`'s counts (a merge of two increasing index lists). */
  merge(other: LatencyCountsList): void {
    const capacity = this.size + other.size;
    const indexes = capacity <= this.indexes.length && this.size === 0 ? this.indexes : new Uint16Array(Math.min(capacity, LATENCY_COUNTS_LENGTH));
    const counts = indexes === this.indexes ? this.counts : new Float64Array(indexes.length);
    let a = 0;
    let b = 0;
    let out = 0;
    while (a < this.size || b < other.size) {
      const indexA = a < this.size ? this.indexes[a]! : LATENCY_COUNTS_LENGTH;
      const indexB = b < other.size ? other.indexes[b]! : LATENCY_COUNTS_LENGTH;
      if (indexA <= indexB) {
        indexes[out] = indexA;
        counts[out] = this.counts[a++]! + (indexA === indexB ? other.counts[b++]! : 0);
      } else {
        indexes[out] = indexB;
        counts[out] = other.counts[b++]!;
      }
      out++;
    }
    this.indexes = indexes;
    this.counts = counts;
    this.size = out;
  }
}
