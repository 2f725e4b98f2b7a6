import { type KeyObject, sign, verify } from 'node:crypto';
import type { AuditCheckpoint } from '../ports/storage.js';

/** An Ed25519 private key that signs audit checkpoints, with the id verifiers look it up by. */
export interface AuditSigner {
  readonly keyId: string;
  /** An Ed25519 private `KeyObject`. */
  readonly privateKey: KeyObject;
}

/**
 * The exact bytes a checkpoint signature covers (UTF-8, no trailing newline):
 *
 *     custos-audit-checkpoint:v1\n<seq>\n<hash>\n<ts>
 *
 * `seq` in decimal, `hash` as 64 lower-case hex, `ts` the checkpoint's ISO
 * time. The version prefix keeps these signatures from being replayed as any
 * other statement signed by the same key.
 */
export function auditCheckpointStatement(seq: number, hash: string, ts: string): string {
  return `custos-audit-checkpoint:v1\n${seq}\n${hash}\n${ts}`;
}

/** Signs a checkpoint stating that the chain up to `seq` ends in `hash`. */
export function signAuditCheckpoint(signer: AuditSigner, seq: number, hash: string, ts: string): AuditCheckpoint {
  if (signer.privateKey.asymmetricKeyType !== 'ed25519') throw new TypeError('the audit signer must be an Ed25519 key');
  const signature = sign(null, Buffer.from(auditCheckpointStatement(seq, hash, ts)), signer.privateKey);
  return { seq, hash, ts, keyId: signer.keyId, signature: signature.toString('base64url') };
}

/** True when `checkpoint.signature` is a valid Ed25519 signature by `publicKey` over its statement. */
export function verifyAuditCheckpointSignature(checkpoint: AuditCheckpoint, publicKey: KeyObject): boolean {
  if (publicKey.asymmetricKeyType !== 'ed25519') return false;
  const statement = Buffer.from(auditCheckpointStatement(checkpoint.seq, checkpoint.hash, checkpoint.ts));
  try {
    return verify(null, statement, publicKey, Buffer.from(checkpoint.signature, 'base64url'));
  } catch {
    return false;
  }
}
