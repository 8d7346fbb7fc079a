/**
 * Fixed-width big-endian integers and a bounds-checked reader/writer for record payloads.
 * Numbers are JavaScript safe integers (< 2^53) stored in 8 bytes, so the on-disk format does
 * not change if the limit ever does; a stored value that is not a safe integer is corruption.
 */
import { assert } from '../util/assert.ts';

/** A stored payload could not be decoded: it is shorter, longer or otherwise not what it should be. */
export class PayloadDecodeError extends Error {
  override readonly name = 'PayloadDecodeError';
}

const TWO_TO_32 = 2 ** 32;

/** Writes `value` (a non-negative safe integer) as 8 bytes big-endian at `offset` of `target`. */
export function writeU64(target: DataView, offset: number, value: number): void {
  assert(Number.isSafeInteger(value) && value >= 0, `writeU64: ${value} is not a non-negative safe integer`);
  target.setUint32(offset, Math.floor(value / TWO_TO_32));
  target.setUint32(offset + 4, value % TWO_TO_32);
}

/** Reads 8 bytes big-endian at `offset`; throws `PayloadDecodeError` if it is not a safe integer. */
export function readU64(source: DataView, offset: number): number {
  const high = source.getUint32(offset);
  const low = source.getUint32(offset + 4);
  const value = high * TWO_TO_32 + low;
  if (!Number.isSafeInteger(value)) throw new PayloadDecodeError(`integer at byte ${offset} exceeds 2^53`);
  return value;
}

/** Builds a payload of a size known up front; `finish` asserts every byte was written. */
export class ByteWriter {
  readonly bytes: Uint8Array;
  private readonly view: DataView;
  private offset = 0;

  constructor(byteLength: number) {
    this.bytes = new Uint8Array(byteLength);
    this.view = new DataView(this.bytes.buffer);
  }

  u8(value: number): this {
    this.view.setUint8(this.offset, value);
    this.offset += 1;
    return this;
  }

  u32(value: number): this {
    this.view.setUint32(this.offset, value);
    this.offset += 4;
    return this;
  }

  u64(value: number): this {
    writeU64(this.view, this.offset, value);
    this.offset += 8;
    return this;
  }

  raw(data: Uint8Array): this {
    this.bytes.set(data, this.offset);
    this.offset += data.byteLength;
    return this;
  }

  /** The payload; asserts that the size computed up front was exact. */
  finish(): Uint8Array {
    assert(this.offset === this.bytes.byteLength, `ByteWriter: wrote ${this.offset} of ${this.bytes.byteLength} bytes`);
    return this.bytes;
  }
}

/** Reads a payload front to back; every read past the end throws `PayloadDecodeError`. */
export class ByteReader {
  private readonly view: DataView;
  private offset = 0;

  constructor(private readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  private need(byteCount: number): number {
    const at = this.offset;
    if (at + byteCount > this.bytes.byteLength) {
      throw new PayloadDecodeError(`payload ends at ${this.bytes.byteLength} bytes, needed ${at + byteCount}`);
    }
    this.offset += byteCount;
    return at;
  }

  u8(): number {
    return this.view.getUint8(this.need(1));
  }

  u32(): number {
    return this.view.getUint32(this.need(4));
  }

  u64(): number {
    return readU64(this.view, this.need(8));
  }

  /** The remaining bytes (a view, not a copy). */
  rest(): Uint8Array {
    const at = this.need(this.bytes.byteLength - this.offset);
    return this.bytes.subarray(at);
  }

  /** Throws `PayloadDecodeError` unless the whole payload was consumed. */
  end(): void {
    const left = this.bytes.byteLength - this.offset;
    if (left !== 0) throw new PayloadDecodeError(`${left} unexpected trailing bytes`);
  }
}
