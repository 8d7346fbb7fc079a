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
 */
import { inflateSync } from 'node:zlib';
import { Float64Histogram, PackedHistogram, encodeIntoCompressedBase64, type JsHistogram } from 'hdr-histogram-js';

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

/** A histogram with the invoker's latency shape: dense (recording) or packed (many, mostly sparse). */
export function newLatencyHistogram(kind: 'dense' | 'packed' = 'dense'): JsHistogram {
  return kind === 'dense'
    ? new Float64Histogram(LATENCY_US_LOWEST, LATENCY_US_MAX, LATENCY_SIGNIFICANT_DIGITS)
    : new PackedHistogram(LATENCY_US_LOWEST, LATENCY_US_MAX, LATENCY_SIGNIFICANT_DIGITS);
}

/** Number of counts of the latency shape; every received index must be below it. */
export const LATENCY_COUNTS_LENGTH = newLatencyHistogram('packed').countsArrayLength;
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

/** The wire form of `histogram`. */
export function encodeLatencyHistogram(histogram: JsHistogram): string {
  return encodeIntoCompressedBase64(histogram);
}

/** The value at `percentile` (0..100] in milliseconds, or 0 for an empty histogram. */
export function percentileMs(histogram: JsHistogram, percentile: number): number {
  if (histogram.totalCount === 0) return 0;
  return histogram.getValueAtPercentile(percentile) / 1000;
}

/** A received histogram that passed every check: its counts payload and their sum. */
export interface CheckedHistogram {
  /** The LEB128 ZigZag counts words, already inflated and bounds-checked. */
  readonly payload: Uint8Array;
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
  const payload = inflated.subarray(HEADER_BYTES);
  const totalCount = walkCounts(payload, undefined);
  if (typeof totalCount === 'string') return fail(totalCount);
  return { ok: true, histogram: { payload, totalCount } };
}

/** Adds the counts of a checked histogram to `target` (which has the latency shape). */
export function addCheckedHistogram(target: JsHistogram, histogram: CheckedHistogram): void {
  const total = walkCounts(histogram.payload, target);
  if (typeof total === 'string') throw new Error(`checked histogram no longer reads: ${total}`);
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

/**
 * Walks the counts words (a positive word is a count, a negative one a run of zero counts). With
 * `target` it records each count there; without it only checks. Returns the sum of the counts, or
 * why the payload is refused.
 */
function walkCounts(payload: Uint8Array, target: JsHistogram | undefined): number | string {
  let position = 0;
  let index = 0;
  let total = 0;
  while (position < payload.length) {
    let word = 0;
    let scale = 1;
    let length = 0;
    for (;;) {
      const byte = payload[position++];
      if (byte === undefined) return 'truncated word';
      word += (byte & 0x7f) * scale;
      scale *= 128;
      length++;
      if ((byte & 0x80) === 0) break;
      if (length === WORD_BYTES_MAX) return 'word too long';
    }
    if (word > Number.MAX_SAFE_INTEGER) return 'count too large';
    if (word % 2 === 1) {
      index += (word + 1) / 2;
      if (index > LATENCY_COUNTS_LENGTH) return 'zero run past the last count';
      continue;
    }
    const count = word / 2;
    if (index >= LATENCY_COUNTS_LENGTH) return 'count past the last index';
    if (count > 0) {
      total += count;
      if (total > Number.MAX_SAFE_INTEGER) return 'total count too large';
      if (target !== undefined) target.recordValueWithCount(target.valueFromIndex(index), count);
    }
    index++;
  }
  return total;
}

function fail(reason: string): HistogramCheck {
  return { ok: false, reason };
}
