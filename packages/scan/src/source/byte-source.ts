import type { FileHandle } from 'node:fs/promises';
import { ScanFault, truncated } from '../scan-fault.js';

/**
 * Random access to the bytes of a file, an archive member or a slice of
 * either. Readers ask only for the ranges their structure names, which is how
 * a multi-GB model costs what its metadata costs.
 */
export interface ByteSource {
  readonly size: number;
  /** Reads exactly `length` bytes at `offset` (fewer only at the end of the source). */
  read(offset: number, length: number): Promise<Buffer>;
}

/** Counts bytes read from disk, for the report. */
export interface ReadMeter {
  bytesRead: number;
}

/** A file on disk, read with positioned reads through one handle. */
export function fileSource(handle: FileHandle, size: number, meter: ReadMeter): ByteSource {
  return {
    size,
    async read(offset, length) {
      const want = Math.max(0, Math.min(length, size - offset));
      const buf = Buffer.allocUnsafe(want);
      let done = 0;
      while (done < want) {
        const { bytesRead } = await handle.read(buf, done, want - done, offset + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      meter.bytesRead += done;
      return done === want ? buf : buf.subarray(0, done);
    },
  };
}

/** Bytes already in memory (a decompressed member). */
export function bufferSource(buf: Buffer): ByteSource {
  return {
    size: buf.length,
    async read(offset, length) {
      return buf.subarray(offset, Math.min(buf.length, offset + length));
    },
  };
}

/** A window of another source (a stored zip member, a tar member): no copy, no read until asked. */
export function sliceSource(parent: ByteSource, start: number, size: number): ByteSource {
  if (start < 0 || size < 0 || start + size > parent.size) throw truncated('member');
  return {
    size,
    read(offset, length) {
      const len = Math.max(0, Math.min(length, size - offset));
      return parent.read(start + offset, len);
    },
  };
}

/** Reads all of a (small) source, refusing anything above `max` bytes. */
export async function readAll(source: ByteSource, max: number, what: string): Promise<Buffer> {
  if (source.size > max) {
    throw new ScanFault('SCAN_ERR_LIMIT', `${what} is larger than the configured limit`);
  }
  const buf = await source.read(0, source.size);
  if (buf.length < source.size) throw truncated(what);
  return buf;
}
