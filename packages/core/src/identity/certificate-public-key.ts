import { createPublicKey, type KeyObject } from 'node:crypto';
import { ValidationError } from '../errors/index.js';

/**
 * Accepts a caller-supplied public key (SPKI PEM or a `KeyObject`) for a
 * certificate and returns its SPKI DER. Only key types that TLS client
 * authentication handles well and that are not weak are accepted: EC P-256 or
 * P-384, Ed25519, RSA of at least 2048 bits. A private key is refused: the
 * caller must keep it, custos should never see it.
 */
export function certificatePublicKeyDer(input: string | KeyObject): Buffer {
  let key: KeyObject;
  try {
    if (typeof input !== 'string' && input.type !== 'public') throw new Error('not public');
    if (typeof input === 'string' && input.includes('PRIVATE KEY')) throw new Error('not public');
    key = typeof input === 'string' ? createPublicKey(input) : input;
  } catch {
    throw new ValidationError('publicKey must be a public key (SPKI PEM or KeyObject).');
  }
  const type = key.asymmetricKeyType;
  const details = key.asymmetricKeyDetails ?? {};
  const ok =
    type === 'ed25519' ||
    (type === 'ec' && (details.namedCurve === 'prime256v1' || details.namedCurve === 'secp384r1')) ||
    (type === 'rsa' && (details.modulusLength ?? 0) >= 2048);
  if (!ok) throw new ValidationError('publicKey must be EC P-256/P-384, Ed25519 or RSA >= 2048 bits.');
  return key.export({ type: 'spki', format: 'der' });
}
