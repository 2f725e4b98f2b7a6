import { ScanFault, truncated } from '../scan-fault.js';
import type { ByteSource } from './byte-source.js';

const WINDOW = 1 << 20;

/**
 * A forward cursor over a ByteSource with a read-ahead window, for formats
 * parsed field by field (GGUF, protobuf, tar headers). `need(n)` makes the
 * next n bytes available to the synchronous getters; `skip(n)` moves past a
 * payload without reading it.
 */
export class SequentialReader {
  pos: number;
  private buf: Buffer = Buffer.alloc(0);
  private bufStart = 0;

  constructor(
    private readonly source: ByteSource,
    start = 0,
    private readonly what = 'file',
  ) {
    this.pos = start;
  }

  get size(): number {
    return this.source.size;
  }

  get remaining(): number {
    return this.source.size - this.pos;
  }

  /** Makes `[pos, pos+n)` available; throws TRUNCATED when the source ends first. */
  async need(n: number): Promise<void> {
    if (n > this.remaining) throw truncated(this.what);
    const have = this.bufStart + this.buf.length - this.pos;
    if (this.pos >= this.bufStart && have >= n) return;
    const len = Math.min(Math.max(n, WINDOW), this.remaining);
    this.buf = await this.source.read(this.pos, len);
    this.bufStart = this.pos;
    if (this.buf.length < n) throw truncated(this.what);
  }

  /** Like need, but settles for what is left (varints near the end). */
  async needUpTo(n: number): Promise<void> {
    await this.need(Math.min(n, this.remaining));
  }

  skip(n: number): void {
    if (n > this.remaining) throw truncated(this.what);
    this.pos += n;
  }

  private at(n: number): number {
    const i = this.pos - this.bufStart;
    if (i < 0 || i + n > this.buf.length) throw new Error('SequentialReader: need() was not called');
    this.pos += n;
    return i;
  }

  u8(): number {
    return this.buf[this.at(1)]!;
  }
  u16(): number {
    return this.buf.readUInt16LE(this.at(2));
  }
  u32(): number {
    return this.buf.readUInt32LE(this.at(4));
  }
  i32(): number {
    return this.buf.readInt32LE(this.at(4));
  }
  /** A u64 that must fit a JS number; larger values are absurd for any count or length we read. */
  u64(): number {
    const v = this.buf.readBigUInt64LE(this.at(8));
    if (v > BigInt(Number.MAX_SAFE_INTEGER))
      throw new ScanFault('SCAN_ERR_CORRUPT', `${this.what} has an absurd length`);
    return Number(v);
  }
  bytes(n: number): Buffer {
    return this.buf.subarray(this.at(n), this.pos - this.bufStart);
  }

  /** A `\n`-terminated line (pickle protocol 0), without the newline; at most `max` bytes. */
  async line(max: number): Promise<Buffer> {
    let n = Math.min(256, this.remaining);
    for (;;) {
      await this.need(n);
      const from = this.pos - this.bufStart;
      const i = this.buf.indexOf(10, from);
      if (i !== -1) {
        const out = this.buf.subarray(from, i);
        this.pos += i - from + 1;
        return out;
      }
      if (n >= this.remaining) throw truncated(this.what);
      if (n > max) throw new ScanFault('SCAN_ERR_LIMIT', `${this.what} has a line longer than the configured limit`);
      n = Math.min(n * 4, this.remaining, max + 1);
    }
  }

  /** Protobuf base-128 varint, up to 2^53. */
  async varint(): Promise<number> {
    await this.needUpTo(10);
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (this.remaining <= 0) throw truncated(this.what);
      const b = this.u8();
      result += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) return result;
      mul *= 128;
    }
    throw new ScanFault('SCAN_ERR_CORRUPT', `${this.what} has an overlong varint`);
  }
}
