import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
} from 'node:crypto';
import type { AuditSigner } from '../audit/index.js';
import type { Cipher } from '../common/cipher.js';
import { AuditIntegrityError } from '../errors/errors.js';
import type { EntryStore } from '../ports/storage.js';
import { loadOrCreateSysKey, SYS_KEY_NAMESPACE } from './sys-keys.js';

const HMAC_KEY = 'audit.hmac-key';
const SIGNING_KEY = 'audit.signing-key';

export interface AuditKeys {
  /** Keys the HMAC of correlatable values (tokens, bootstrap ids) in audit events. */
  hmacKey: Uint8Array;
  /** Signs checkpoints. */
  signer: AuditSigner;
  /** Verifies checkpoints, by key id. */
  publicKeys: Map<string, KeyObject>;
}

/**
 * Loads the audit keys, creating them on first unseal. Both live behind the
 * barrier: whoever can read the database must not be able to forge a
 * checkpoint nor test guesses against HMAC'd values.
 *
 * `chainStarted`: the audit log already holds records or checkpoints. The
 * signing key then must exist: someone able to delete its row could
 * otherwise have a fresh key made, and custos would sign a rewritten chain
 * that verifies against the new public key.
 *
 * @throws AuditIntegrityError when the signing key is missing from a started chain.
 */
export async function loadAuditKeys(
  entries: EntryStore,
  cipher: Cipher,
  options: { chainStarted?: boolean } = {},
): Promise<AuditKeys> {
  if (options.chainStarted && !(await entries.get(SYS_KEY_NAMESPACE, SIGNING_KEY))) {
    throw new AuditIntegrityError('the audit signing key is missing although the audit log holds records.');
  }
  const hmacKey = await loadOrCreateSysKey(entries, cipher, HMAC_KEY, () => randomBytes(32));
  const pkcs8 = await loadOrCreateSysKey(entries, cipher, SIGNING_KEY, () =>
    generateKeyPairSync('ed25519').privateKey.export({ format: 'der', type: 'pkcs8' }),
  );
  const privateKey = createPrivateKey({ key: Buffer.from(pkcs8), format: 'der', type: 'pkcs8' });
  const publicKey = createPublicKey(privateKey);
  const keyId = auditKeyId(publicKey);
  return { hmacKey, signer: { keyId, privateKey }, publicKeys: new Map([[keyId, publicKey]]) };
}

/** A key id: the first 16 hex chars of SHA-256 over the SPKI DER. */
export function auditKeyId(publicKey: KeyObject): string {
  return createHash('sha256')
    .update(publicKey.export({ format: 'der', type: 'spki' }))
    .digest('hex')
    .slice(0, 16);
}
