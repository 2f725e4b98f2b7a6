import type { FormatReader } from '../reader-context.js';
import { ScanFault, truncated } from '../scan-fault.js';

/**
 * safetensors: an 8-byte little-endian header length, a JSON header, then
 * tensor bytes that are never read. `__metadata__` values are matched under
 * `__metadata__.<key>`; tensor names under `tensors[<name>]`.
 */
export const readSafetensors: FormatReader = async (source, location, ctx) => {
  const head = await source.read(0, 8);
  if (head.length < 8) throw truncated('safetensors header length');
  const n = head.readBigUInt64LE(0);
  if (n > BigInt(ctx.limits.maxHeaderBytes)) {
    throw new ScanFault('SCAN_ERR_LIMIT', 'safetensors header claims more bytes than the configured limit');
  }
  if (Number(n) > source.size - 8)
    throw new ScanFault('SCAN_ERR_TRUNCATED', 'safetensors header claims more bytes than the file has');
  const json = await source.read(8, Number(n));
  let header: unknown;
  try {
    header = JSON.parse(json.toString('utf8'));
  } catch {
    throw new ScanFault('SCAN_ERR_CORRUPT', 'safetensors header is not JSON');
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    throw new ScanFault('SCAN_ERR_CORRUPT', 'safetensors header is not a JSON object');
  }
  for (const [key, value] of Object.entries(header)) {
    if (key === '__metadata__') {
      if (typeof value !== 'object' || value === null) continue;
      for (const [mk, mv] of Object.entries(value)) {
        ctx.inspectString(typeof mv === 'string' ? mv : JSON.stringify(mv), [...location, `__metadata__.${mk}`]);
      }
    } else {
      ctx.inspectString(key, [...location, 'tensors']);
    }
  }
};

/** A safetensors file starts with a plausible header length followed by `{`. */
export function looksLikeSafetensors(head: Buffer): boolean {
  if (head.length < 9) return false;
  return head.readBigUInt64LE(0) < 2n ** 40n && head[8] === 0x7b;
}
