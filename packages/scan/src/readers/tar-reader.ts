import type { FormatReader, ReaderContext } from '../reader-context.js';
import { ScanFault, truncated } from '../scan-fault.js';
import { type ByteSource, sliceSource } from '../source/byte-source.js';
import { isPayloadMember } from './payload-members.js';

/** How the tar walker gets bytes: in place from a file, or in order from a decompressing stream. */
export interface TarInput {
  /** Exactly n bytes, or a TRUNCATED fault. */
  read(n: number): Promise<Buffer>;
  skip(n: number): Promise<void>;
  /** The next `size` bytes as a source to scan (a slice in place, or a bounded copy from a stream). */
  member(size: number): Promise<ByteSource>;
  /** False for a stream: a member larger than the member limit cannot be sliced in place. */
  readonly inPlace?: boolean;
}

/** Plain tar over random access: members are slices, skipped members cost nothing. */
export const readTar: FormatReader = async (source, location, ctx) => {
  let pos = 0;
  const input: TarInput = {
    async read(n) {
      const b = await source.read(pos, n);
      if (b.length < n) throw truncated('tar');
      pos += n;
      return b;
    },
    async skip(n) {
      if (pos + n > source.size) throw truncated('tar');
      pos += n;
    },
    async member(size) {
      const s = sliceSource(source, pos, size);
      pos += size;
      return s;
    },
  };
  await walkTar(input, location, ctx);
};

/**
 * Walks tar headers (ustar, GNU long names, pax paths). Each member goes back
 * to the dispatcher; links and devices are skipped (a tar never makes the
 * scanner follow a path outside the archive).
 */
export async function walkTar(input: TarInput, location: readonly string[], ctx: ReaderContext): Promise<void> {
  let longName: string | undefined;
  for (let count = 0; ; count++) {
    ctx.checkTime();
    if (count > ctx.limits.maxEntries)
      throw new ScanFault('SCAN_ERR_LIMIT', 'tar has more entries than the configured limit');
    let h: Buffer;
    try {
      h = await input.read(512);
    } catch {
      return; // a tar that ends without its zero blocks is common and harmless
    }
    if (h.every((b) => b === 0)) return;
    if (!checksumOk(h)) throw new ScanFault('SCAN_ERR_CORRUPT', 'tar header checksum does not match');
    const size = tarSize(h);
    const padded = Math.ceil(size / 512) * 512;
    const type = String.fromCharCode(h[156] ?? 0);
    const prefix = h[345] !== 0 && h.toString('latin1', 257, 262) === 'ustar' ? cstr(h, 345, 155) : '';
    const name = longName ?? (prefix ? `${prefix}/${cstr(h, 0, 100)}` : cstr(h, 0, 100));
    longName = undefined;
    if (type === 'L' || type === 'x') {
      if (size > 2 ** 20) throw new ScanFault('SCAN_ERR_LIMIT', 'tar extended header is too large');
      const data = (await input.read(padded)).subarray(0, size);
      longName = type === 'L' ? cstr(data, 0, size) : paxPath(data.toString('utf8'));
      continue;
    }
    if ((type === '0' || type === '\0' || type === '7') && !isPayloadMember(name)) {
      const where = [...location, name];
      try {
        if (size > ctx.limits.maxMemberBytes && input.inPlace === false) {
          await input.skip(padded);
          ctx.error('SCAN_ERR_LIMIT', 'tar member in a compressed stream is larger than the configured limit', where);
          continue;
        }
        const member = await input.member(size);
        await input.skip(padded - size);
        await ctx.descend(member, name, where);
      } catch (err) {
        if (!(err instanceof ScanFault) || err.fatal || err.code === 'SCAN_ERR_TRUNCATED') throw err;
        ctx.error(err.code, err.message, where);
      }
      continue;
    }
    await input.skip(padded);
  }
}

function cstr(b: Buffer, at: number, len: number): string {
  const end = b.indexOf(0, at);
  return b.toString('utf8', at, end === -1 || end > at + len ? at + len : end);
}

function tarSize(h: Buffer): number {
  if ((h[124] ?? 0) & 0x80) {
    // base-256 (GNU) for sizes above 8 GiB
    let v = 0;
    for (let i = 125; i < 136; i++) v = v * 256 + (h[i] ?? 0);
    if (!Number.isSafeInteger(v)) throw new ScanFault('SCAN_ERR_CORRUPT', 'tar member size is absurd');
    return v;
  }
  const s = cstr(h, 124, 12).trim();
  const v = s === '' ? 0 : Number.parseInt(s, 8);
  if (!Number.isSafeInteger(v) || v < 0) throw new ScanFault('SCAN_ERR_CORRUPT', 'tar member size is not octal');
  return v;
}

function checksumOk(h: Buffer): boolean {
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : (h[i] ?? 0);
  return Number.parseInt(cstr(h, 148, 8).trim(), 8) === sum;
}

function paxPath(records: string): string | undefined {
  for (const rec of records.split('\n')) {
    const m = /^\d+ path=(.*)$/.exec(rec);
    if (m) return m[1];
  }
  return undefined;
}
