import type { Detector } from './detector.js';
import { decodeBase64Url } from './detector-checks.js';

/**
 * The body of a PEM block must be base64 once headers (`Proc-Type: …`) and
 * line breaks, real or JSON-escaped, are removed, and long enough to be a key.
 */
export function pemStructureIsValid(block: string): boolean {
  const lines = block.replace(/\\[rn]/g, '\n').split(/\r?\n/);
  const body = lines
    .filter((l) => !l.startsWith('-----') && !l.includes(':'))
    .join('')
    .replace(/\s+/g, '');
  if (body.length < 64 || !/^[A-Za-z0-9+/]+=*$/.test(body)) return false;
  return decodeBase64Url(body.slice(0, 64)) !== undefined;
}

/**
 * PEM and OpenSSH private keys, with real or JSON-escaped (`\\n`) line breaks.
 * A block with no END line (a truncated paste) is still taken up to where its
 * base64 stops, so half a key does not leak. Bounded at 12,000 characters,
 * which holds an RSA-8192 key; a stream never holds back more than that.
 */
export const privateKey: Detector = {
  id: 'private-key',
  description: 'PEM / OpenSSH private key block',
  keywords: ['-----BEGIN '],
  pattern:
    /-----BEGIN (?<label>(?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?)-----(?:[-A-Za-z0-9+/=\s\\:,]{64,12000}?-----END \k<label>-----|(?:\\[rn]|[A-Za-z0-9+/=\s]){64,12000})/g,
  maxLength: 12100,
  span: /[-A-Za-z0-9+/=\s\\:,]/,
  partial: /^-----BEGIN (?:(?!-----END [A-Z0-9 ]*-----)[-A-Za-z0-9+/=\s\\:,])*$/,
  validate: pemStructureIsValid,
};
