import { randomBytes } from 'node:crypto';

/**
 * A fresh certificate serial: 128 random bits as lowercase hex. CA/B Forum
 * practice asks for at least 64 bits of CSPRNG output so that serials cannot
 * be predicted (a precondition of chosen-prefix collision attacks). The top
 * bit is cleared (DER INTEGERs are signed; serials must be positive) and the
 * next one set, so every serial has the same length and no leading zero byte.
 */
export function newCertificateSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = ((bytes[0] as number) & 0x7f) | 0x40;
  return bytes.toString('hex');
}

/**
 * The one spelling of a serial that custos stores and compares (revocation
 * lists, audit): lowercase hex without leading zeros. Node prints serials in
 * uppercase, @peculiar/x509 in lowercase; both normalise to the same string.
 */
export function normalizeCertificateSerial(hex: string): string {
  return hex.toLowerCase().replace(/^0+(?=.)/, '');
}
