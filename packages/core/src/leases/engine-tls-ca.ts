import { X509Certificate } from 'node:crypto';
import { ValidationError } from '../errors/index.js';

/** A CA bundle is a few certificates, not a file dump. */
const MAX_TLS_CA_CHARS = 64 * 1024;
const MAX_TLS_CA_CERTIFICATES = 16;
const BLOCK = /-----BEGIN CERTIFICATE-----\r?\n[A-Za-z0-9+/=\r\n]+-----END CERTIFICATE-----/g;

/**
 * Checks an engine's `tls_ca` and returns it normalised: one or more PEM
 * `CERTIFICATE` blocks and nothing else (whitespace aside) — so neither a
 * private key nor a path can be stored as one — each a certificate Node can
 * parse. Throws ValidationError, saying what is wrong and never echoing the
 * text.
 *
 * Why inline rather than a path (as libpq's `sslrootcert`): a path would be
 * read by the server process, on behalf of whoever configures the engine —
 * any file custos can read, a FIFO that blocks it. Inline, it is stored with
 * the engine behind the barrier.
 */
export function validateTlsCa(pem: string): string {
  if (typeof pem !== 'string' || pem.length === 0 || pem.length > MAX_TLS_CA_CHARS) {
    throw new ValidationError(`tls_ca is PEM text of at most ${MAX_TLS_CA_CHARS} characters.`);
  }
  const blocks = pem.match(BLOCK) ?? [];
  if (blocks.length === 0 || pem.replace(BLOCK, '').trim() !== '') {
    throw new ValidationError('tls_ca holds PEM CERTIFICATE blocks only (no keys, no other text).');
  }
  if (blocks.length > MAX_TLS_CA_CERTIFICATES) {
    throw new ValidationError(`tls_ca holds at most ${MAX_TLS_CA_CERTIFICATES} certificates.`);
  }
  for (const block of blocks) {
    try {
      new X509Certificate(block);
    } catch {
      throw new ValidationError('tls_ca holds a certificate that does not parse.');
    }
  }
  return `${blocks.join('\n')}\n`;
}
