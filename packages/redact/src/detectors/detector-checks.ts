/** Shannon entropy in bits per character; how random a candidate looks. */
export function shannonEntropy(value: string): number {
  if (value.length === 0) return 0;
  const counts = new Map<number, number>();
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    counts.set(c, (counts.get(c) ?? 0) + 1);
  }
  let bits = 0;
  for (const n of counts.values()) {
    const p = n / value.length;
    bits -= p * Math.log2(p);
  }
  return bits;
}

/**
 * Values that are documentation or templates rather than credentials:
 * `AKIAIOSFODNN7EXAMPLE`, `${API_KEY}`, `<your-key>`, `xxxx`, `****`. Redacting
 * them is harmless but reporting them (the scanner) is noise, and they must not
 * count as true positives.
 */
const PLACEHOLDER =
  /example|x{4,}|\*{3,}|\.{3}|0{8,}|\$\{|\{\{|<[^>]*>|your[-_ ]|your(?:token|key|secret|pass|api|access|own)|changeme|placeholder|redacted|dummy/i;

export function isPlaceholder(value: string): boolean {
  return PLACEHOLDER.test(value);
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const HASH = /^(?:[0-9a-f]{40}|[0-9a-f]{64}|[0-9a-f]{128})$/i;

/**
 * Identifiers that look random but are not secret: UUIDs, git SHAs and
 * SHA-1/256/512 file digests. Only the generic (context-keyword) detectors use
 * this; token formats with a fixed prefix cannot be confused with them.
 */
export function isIdentifierLike(value: string): boolean {
  return UUID.test(value) || HASH.test(value);
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (IEEE) of the UTF-8 bytes of an ASCII string. */
export function crc32(ascii: string): number {
  let c = 0xffffffff;
  for (let i = 0; i < ascii.length; i++) c = CRC_TABLE[(c ^ ascii.charCodeAt(i)) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** `n` in base 62, left-padded with `0` to `width`: GitHub's checksum encoding. */
export function base62(n: number, width: number): string {
  let out = '';
  let v = n;
  while (v > 0) {
    out = BASE62[v % 62] + out;
    v = Math.floor(v / 62);
  }
  return out.padStart(width, '0');
}

/** Decodes base64url (or base64) to a UTF-8 string, or undefined. */
export function decodeBase64Url(value: string): string | undefined {
  if (!/^[A-Za-z0-9_\-+/]*=*$/.test(value)) return undefined;
  try {
    return Buffer.from(value.replace(/-/g, '+').replace(/_/g, '/'), 'base64').toString('utf8');
  } catch {
    return undefined;
  }
}
