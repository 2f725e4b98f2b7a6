import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import type { FormatReader } from '../reader-context.js';
import { ScanFault, truncated } from '../scan-fault.js';
import { bufferSource } from '../source/byte-source.js';
import { type TarInput, walkTar } from './tar-reader.js';

const CHUNK = 2 ** 20;

/**
 * gzip (`.tar.gz`, `.tgz`, `.gz`): decompressed as a stream, so a tarball of
 * any size costs one member's worth of memory. Output is charged to the
 * file's inflation budget and checked against the expansion ratio as it comes.
 */
export const readGzip: FormatReader = async (source, location, ctx, name) => {
  const L = ctx.limits;
  const ratioBound = Math.max(2 ** 20, source.size * L.maxExpansionRatio);
  async function* compressed() {
    for (let at = 0; at < source.size; at += CHUNK) yield await source.read(at, CHUNK);
  }
  const gunzip = Readable.from(compressed()).pipe(createGunzip());
  const it = gunzip[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let produced = 0;
  let pending: Buffer[] = [];
  let pendingLen = 0;
  let ended = false;
  const pull = async (): Promise<boolean> => {
    if (ended) return false;
    let next: IteratorResult<Buffer>;
    try {
      next = await it.next();
    } catch {
      ended = true;
      throw new ScanFault('SCAN_ERR_CORRUPT', 'gzip stream is corrupt or truncated');
    }
    if (next.done) {
      ended = true;
      return false;
    }
    produced += next.value.length;
    if (produced > ratioBound) throw new ScanFault('SCAN_ERR_ZIP_BOMB', 'gzip expands beyond the ratio limit');
    ctx.chargeInflated(next.value.length);
    ctx.checkTime();
    pending.push(next.value);
    pendingLen += next.value.length;
    return true;
  };
  const take = async (n: number, keep: boolean): Promise<Buffer> => {
    while (pendingLen < n) if (!(await pull())) throw truncated('gzip member');
    const all = pending.length === 1 ? pending[0]! : Buffer.concat(pending);
    const out = keep ? Buffer.from(all.subarray(0, n)) : Buffer.alloc(0);
    const rest = all.subarray(n);
    pending = rest.length ? [rest] : [];
    pendingLen = rest.length;
    return out;
  };
  const input: TarInput = {
    inPlace: false,
    read: (n) => take(n, true),
    async skip(n) {
      // Drop in chunks so skipping a large member never holds it whole.
      let left = n;
      while (left > 0) {
        if (pendingLen === 0 && !(await pull())) throw truncated('gzip member');
        const d = Math.min(left, pendingLen);
        await take(d, false);
        left -= d;
      }
    },
    member: async (n) => bufferSource(await take(n, true)),
  };
  try {
    // Peek: a tar has "ustar" at 257 (or is old-style; we only walk ustar/GNU here).
    while (pendingLen < 512 && (await pull())) {}
    const head = Buffer.concat(pending);
    if (head.length >= 262 && head.toString('latin1', 257, 262) === 'ustar') {
      await walkTar(input, location, ctx);
      return;
    }
    while (await pull()) {
      if (pendingLen > L.maxMemberBytes)
        throw new ScanFault('SCAN_ERR_LIMIT', 'gzip content is larger than the configured limit');
    }
    // The decompressed content keeps the location of the .gz; its name (without .gz) picks its reader.
    await ctx.descend(bufferSource(Buffer.concat(pending)), name.replace(/\.gz$/i, ''), location);
  } finally {
    gunzip.destroy();
  }
};
