import { inflateRawSync } from 'node:zlib';
import type { FormatReader, ReaderContext } from '../reader-context.js';
import { ScanFault, truncated } from '../scan-fault.js';
import { type ByteSource, bufferSource, sliceSource } from '../source/byte-source.js';
import { isPayloadMember } from './payload-members.js';

/**
 * Zip archives: PyTorch `.pt`/`.pth`, `.npz`, `.keras`, jars. Read from the
 * central directory, so tensor storages (stored, uncompressed) are never
 * touched and stored members are scanned in place without a copy. Bombs are
 * refused by their declared ratio before inflating and by their actual output
 * while inflating; overlapping members (the "non-recursive" bomb) are refused.
 */
export const readZip: FormatReader = async (source, location, ctx) => {
  const entries = await centralDirectory(source, ctx);
  const ranges: [number, number][] = [];
  for (const e of entries) {
    ctx.checkTime();
    if (e.name.endsWith('/')) continue;
    const where = [...location, e.name];
    try {
      if (e.flags & 1) throw new ScanFault('SCAN_ERR_UNSUPPORTED', 'zip member is encrypted');
      if (isPayloadMember(e.name)) continue;
      const dataStart = await localDataStart(source, e.localOffset);
      if (dataStart + e.compressedSize > source.size) throw truncated('zip member');
      ranges.push([dataStart, dataStart + e.compressedSize]);
      const member = await memberSource(source, e, dataStart, ctx);
      await ctx.descend(member, e.name, where);
    } catch (err) {
      if (!(err instanceof ScanFault) || err.fatal) throw err;
      ctx.error(err.code, err.message, where);
    }
  }
  if (overlaps(ranges)) ctx.error('SCAN_ERR_ZIP_BOMB', 'zip members overlap (a non-recursive zip bomb)', location);
};

interface ZipEntry {
  name: string;
  flags: number;
  method: number;
  compressedSize: number;
  size: number;
  localOffset: number;
}

async function centralDirectory(source: ByteSource, ctx: ReaderContext): Promise<ZipEntry[]> {
  const tailLen = Math.min(source.size, 65_535 + 22);
  const tail = await source.read(source.size - tailLen, tailLen);
  let eocd = -1;
  for (let i = tail.length - 22; i >= 0; i--) {
    if (tail.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new ScanFault('SCAN_ERR_TRUNCATED', 'zip has no end-of-central-directory record');
  let count = tail.readUInt16LE(eocd + 10);
  let cdSize = tail.readUInt32LE(eocd + 12);
  let cdOffset = tail.readUInt32LE(eocd + 16);
  if (eocd >= 20 && tail.readUInt32LE(eocd - 20) === 0x07064b50) {
    const z64At = Number(tail.readBigUInt64LE(eocd - 20 + 8));
    const z = await source.read(z64At, 56);
    if (z.length < 56 || z.readUInt32LE(0) !== 0x06064b50)
      throw new ScanFault('SCAN_ERR_CORRUPT', 'zip64 record is corrupt');
    count = safe(z.readBigUInt64LE(32));
    cdSize = safe(z.readBigUInt64LE(40));
    cdOffset = safe(z.readBigUInt64LE(48));
  }
  if (count > ctx.limits.maxEntries)
    throw new ScanFault('SCAN_ERR_LIMIT', 'zip has more entries than the configured limit');
  if (cdOffset + cdSize > source.size) throw truncated('zip central directory');
  if (cdSize > ctx.limits.maxHeaderBytes) throw new ScanFault('SCAN_ERR_LIMIT', 'zip central directory is too large');
  const cd = await source.read(cdOffset, cdSize);
  const out: ZipEntry[] = [];
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (p + 46 > cd.length || cd.readUInt32LE(p) !== 0x02014b50) {
      throw new ScanFault('SCAN_ERR_CORRUPT', 'zip central directory is corrupt');
    }
    const nameLen = cd.readUInt16LE(p + 28);
    const extraLen = cd.readUInt16LE(p + 30);
    const commentLen = cd.readUInt16LE(p + 32);
    if (p + 46 + nameLen + extraLen + commentLen > cd.length) throw truncated('zip central directory');
    const e: ZipEntry = {
      flags: cd.readUInt16LE(p + 8),
      method: cd.readUInt16LE(p + 10),
      compressedSize: cd.readUInt32LE(p + 20),
      size: cd.readUInt32LE(p + 24),
      localOffset: cd.readUInt32LE(p + 42),
      name: cd.toString('utf8', p + 46, p + 46 + nameLen),
    };
    zip64Extra(cd.subarray(p + 46 + nameLen, p + 46 + nameLen + extraLen), e);
    out.push(e);
    p += 46 + nameLen + extraLen + commentLen;
  }
  return out;
}

/** Sizes and offset that did not fit 32 bits live in the zip64 extra field, in this order. */
function zip64Extra(extra: Buffer, e: ZipEntry): void {
  for (let q = 0; q + 4 <= extra.length; ) {
    const id = extra.readUInt16LE(q);
    const len = extra.readUInt16LE(q + 2);
    if (id === 0x0001) {
      let f = q + 4;
      const next = (): number => {
        if (f + 8 > q + 4 + len) throw new ScanFault('SCAN_ERR_CORRUPT', 'zip64 extra field is short');
        const v = safe(extra.readBigUInt64LE(f));
        f += 8;
        return v;
      };
      if (e.size === 0xffffffff) e.size = next();
      if (e.compressedSize === 0xffffffff) e.compressedSize = next();
      if (e.localOffset === 0xffffffff) e.localOffset = next();
      return;
    }
    q += 4 + len;
  }
}

async function localDataStart(source: ByteSource, at: number): Promise<number> {
  const h = await source.read(at, 30);
  if (h.length < 30 || h.readUInt32LE(0) !== 0x04034b50)
    throw new ScanFault('SCAN_ERR_CORRUPT', 'zip local header is corrupt');
  return at + 30 + h.readUInt16LE(26) + h.readUInt16LE(28);
}

async function memberSource(source: ByteSource, e: ZipEntry, start: number, ctx: ReaderContext): Promise<ByteSource> {
  const L = ctx.limits;
  if (e.method === 0) return sliceSource(source, start, e.compressedSize);
  if (e.method !== 8)
    throw new ScanFault('SCAN_ERR_UNSUPPORTED', `zip compression method ${e.method} is not supported`);
  const SLACK = 2 ** 20;
  if (e.size > SLACK && e.size > e.compressedSize * L.maxExpansionRatio) {
    throw new ScanFault('SCAN_ERR_ZIP_BOMB', 'zip member declares an expansion ratio above the limit');
  }
  if (e.compressedSize > L.maxMemberBytes)
    throw new ScanFault('SCAN_ERR_LIMIT', 'zip member is larger than the configured limit');
  const byRatio = Math.max(SLACK, e.compressedSize * L.maxExpansionRatio);
  const bound = Math.min(L.maxMemberBytes, byRatio);
  const compressed = await source.read(start, e.compressedSize);
  if (compressed.length < e.compressedSize) throw truncated('zip member');
  let out: Buffer;
  try {
    out = inflateRawSync(compressed, { maxOutputLength: bound });
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE' || err instanceof RangeError) {
      throw bound === byRatio
        ? new ScanFault('SCAN_ERR_ZIP_BOMB', 'zip member expands beyond the ratio limit')
        : new ScanFault('SCAN_ERR_LIMIT', 'zip member expands beyond the configured limit');
    }
    throw new ScanFault('SCAN_ERR_CORRUPT', 'zip member does not inflate');
  }
  ctx.chargeInflated(out.length);
  return bufferSource(out);
}

function overlaps(ranges: [number, number][]): boolean {
  const sorted = ranges.filter(([a, b]) => b > a).sort((x, y) => x[0] - y[0]);
  for (let i = 1; i < sorted.length; i++) if (sorted[i]![0] < sorted[i - 1]![1]) return true;
  return false;
}

function safe(v: bigint): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ScanFault('SCAN_ERR_CORRUPT', 'zip has an absurd size');
  return Number(v);
}
