import { isIPv6 } from 'node:net';

/** An IP address as its bytes: 4 for IPv4, 16 for IPv6. */
export type IpBytes = Uint8Array;

/**
 * Parses an IPv4 address the way the system resolver and WHATWG URL parser
 * do (`inet_aton`): one to four parts, each decimal, octal (leading `0`) or
 * hexadecimal (`0x`), the last part filling the remaining bytes. So
 * `127.1`, `2130706433`, `0x7f.1` and `0177.0.0.1` are all 127.0.0.1 — the
 * forms an attacker uses to slip loopback past a check that only knows
 * dotted quads. Returns undefined for anything else (then it is a name).
 */
export function parseIpv4(text: string): IpBytes | undefined {
  const trimmed = text.endsWith('.') ? text.slice(0, -1) : text;
  const parts = trimmed.split('.');
  if (parts.length === 0 || parts.length > 4) return undefined;
  const numbers: number[] = [];
  for (const part of parts) {
    const n = parseIpv4Part(part);
    if (n === undefined) return undefined;
    numbers.push(n);
  }
  const last = numbers.pop() as number;
  if (numbers.some((n) => n > 255)) return undefined;
  if (last >= 256 ** (4 - numbers.length)) return undefined;
  const bytes = new Uint8Array(4);
  numbers.forEach((n, i) => {
    bytes[i] = n;
  });
  for (let i = 3, rest = last; i >= numbers.length; i--, rest = Math.floor(rest / 256)) bytes[i] = rest % 256;
  return bytes;
}

function parseIpv4Part(part: string): number | undefined {
  let digits = part;
  let radix = 10;
  if (/^0x/i.test(part)) {
    digits = part.slice(2);
    radix = 16;
    if (digits === '') return 0;
  } else if (part.length > 1 && part.startsWith('0')) {
    digits = part.slice(1);
    radix = 8;
  }
  const pattern = radix === 16 ? /^[0-9a-f]+$/i : radix === 8 ? /^[0-7]+$/ : /^[0-9]+$/;
  if (!pattern.test(digits)) return undefined;
  const n = Number.parseInt(digits, radix);
  return Number.isSafeInteger(n) ? n : undefined;
}

/**
 * Parses an IPv6 address, with or without brackets, with an optional zone
 * (`fe80::1%eth0`, dropped: the address decides) and an optional dotted
 * IPv4 tail (`::ffff:127.0.0.1`).
 */
export function parseIpv6(text: string): IpBytes | undefined {
  let t = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  const zone = t.indexOf('%');
  if (zone !== -1) t = t.slice(0, zone);
  if (!isIPv6(t)) return undefined;
  const words: number[] = [];
  const tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(t);
  let head = t;
  let tailWords: number[] = [];
  if (tail) {
    const v4 = parseIpv4(tail[1] as string);
    if (!v4) return undefined;
    tailWords = [((v4[0] as number) << 8) | (v4[1] as number), ((v4[2] as number) << 8) | (v4[3] as number)];
    head = t.slice(0, -(tail[1] as string).length);
    if (head.endsWith(':') && !head.endsWith('::')) head = head.slice(0, -1);
  }
  const [left, right] = head.includes('::') ? (head.split('::') as [string, string]) : [head, undefined];
  const toWords = (s: string) => (s === '' ? [] : s.split(':').map((w) => Number.parseInt(w, 16)));
  const l = toWords(left);
  const r = right === undefined ? [] : toWords(right);
  const fill = 8 - l.length - r.length - tailWords.length;
  if (fill < 0 || (right === undefined && fill !== 0)) return undefined;
  words.push(...l, ...new Array<number>(right === undefined ? 0 : fill).fill(0), ...r, ...tailWords);
  if (words.length !== 8) return undefined;
  const bytes = new Uint8Array(16);
  words.forEach((w, i) => {
    bytes[i * 2] = w >> 8;
    bytes[i * 2 + 1] = w & 0xff;
  });
  return bytes;
}

/** An IP literal in any form {@link parseIpv4} or {@link parseIpv6} accepts; undefined for a name. */
export function parseIp(text: string): IpBytes | undefined {
  return parseIpv4(text) ?? parseIpv6(text);
}

/** Canonical text of an address: dotted quad, or RFC 5952-ish IPv6 (for messages and connecting). */
export function formatIp(bytes: IpBytes): string {
  if (bytes.length === 4) return Array.from(bytes).join('.');
  const words: string[] = [];
  for (let i = 0; i < 16; i += 2) words.push((((bytes[i] as number) << 8) | (bytes[i + 1] as number)).toString(16));
  // Longest run of zero words (at least two) becomes `::`.
  let best = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (words[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === '0') j++;
    if (j - i > bestLength) {
      best = i;
      bestLength = j - i;
    }
    i = j;
  }
  if (best === -1) return words.join(':');
  return `${words.slice(0, best).join(':')}::${words.slice(best + bestLength).join(':')}`;
}

/** True when the first `bits` bits of `address` equal those of `network` (same family). */
export function inPrefix(address: IpBytes, network: IpBytes, bits: number): boolean {
  if (address.length !== network.length) return false;
  const whole = Math.floor(bits / 8);
  for (let i = 0; i < whole; i++) if (address[i] !== network[i]) return false;
  const rest = bits % 8;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return ((address[whole] as number) & mask) === ((network[whole] as number) & mask);
}
