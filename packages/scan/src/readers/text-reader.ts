import type { FormatReader } from '../reader-context.js';

/** Bytes decoded and matched at once; large files are read window by window so memory stays bounded. */
export const TEXT_WINDOW = 4 * 2 ** 20;
/** Windows overlap by this much so a secret across a window edge is seen whole (secrets are far shorter). */
export const TEXT_OVERLAP = 4096;

/**
 * Text files (configs, `.env`, notebooks with their outputs, YAML/JSON/TOML,
 * source): matched as UTF-8 text, window by window, with line numbers. Bytes
 * that are not UTF-8 decode to U+FFFD and do not stop the scan.
 */
export const readText: FormatReader = async (source, location, ctx) => {
  let offset = 0;
  let line = 1;
  while (offset < source.size) {
    ctx.checkTime();
    const buf = await source.read(offset, TEXT_WINDOW + TEXT_OVERLAP);
    if (buf.length === 0) break;
    const last = offset + buf.length >= source.size;
    const ownedBytes = last ? buf.length : charStart(buf, buf.length - TEXT_OVERLAP);
    const text = buf.toString('utf8');
    // An all-ASCII window has one char per byte; otherwise the owned prefix is
    // decoded once more to find its length in chars.
    const ownedEnd = last
      ? text.length
      : text.length === buf.length
        ? ownedBytes
        : buf.toString('utf8', 0, ownedBytes).length;
    ctx.inspectText(text, location, line, ownedEnd);
    line += countNewlines(buf, ownedBytes);
    offset += ownedBytes;
  }
};

/** Backs up over UTF-8 continuation bytes so a window edge never splits a character. */
function charStart(buf: Buffer, at: number): number {
  let end = at;
  while (end > at - 4 && end > 0 && ((buf[end] ?? 0) & 0xc0) === 0x80) end--;
  return end;
}

function countNewlines(buf: Buffer, end: number): number {
  let n = 0;
  let i = buf.indexOf(10);
  while (i !== -1 && i < end) {
    n++;
    i = buf.indexOf(10, i + 1);
  }
  return n;
}
