import { createHash, type KeyObject, sign, verify } from 'node:crypto';
import type { AuditCheckpoint, AuditCheckpointV1, AuditCheckpointV2 } from '../ports/storage.js';

/** An Ed25519 private key that signs audit checkpoints, with the id verifiers look it up by. */
export interface AuditSigner {
  readonly keyId: string;
  /** An Ed25519 private `KeyObject`. */
  readonly privateKey: KeyObject;
}

/** The `prevDigest` of a chain's first checkpoint: 64 zeros. */
export const AUDIT_CHECKPOINT_GENESIS_DIGEST = '0'.repeat(64);

/**
 * Where a checkpoint chain stands: the last checkpoint (or the start of the
 * chain, seq 0) as the next checkpoint must name it.
 */
export interface AuditCheckpointLink {
  readonly seq: number;
  readonly digest: string;
}

/** The start of every checkpoint chain: seq 0, the genesis digest. */
export const AUDIT_CHECKPOINT_GENESIS: AuditCheckpointLink = { seq: 0, digest: AUDIT_CHECKPOINT_GENESIS_DIGEST };

/** What a writer promises in each checkpoint it signs. */
export interface AuditCheckpointInterval {
  /** At most this many records between consecutive checkpoints. */
  readonly every: number;
  /** New records are sealed at least this often while the writer runs (ms). */
  readonly intervalMs: number;
}

/** A checkpoint's statement fields (what its signature covers). */
export type UnsignedAuditCheckpoint =
  | Omit<AuditCheckpointV1, 'keyId' | 'signature'>
  | Omit<AuditCheckpointV2, 'keyId' | 'signature'>;

/**
 * The exact bytes a checkpoint signature covers (UTF-8, no trailing newline).
 *
 * v2 (written today):
 *
 *     custos-audit-checkpoint:v2\n<seq>\n<hash>\n<ts>\n<prevSeq>\n<prevDigest>\n<every>\n<intervalMs>
 *
 * v1 (legacy, verified only): `custos-audit-checkpoint:v1\n<seq>\n<hash>\n<ts>`.
 *
 * Numbers in decimal, hashes and digests as 64 lower-case hex, `ts` the
 * checkpoint's ISO time. The version prefix keeps these signatures from being
 * replayed as any other statement signed by the same key, and a v1 signature
 * from being read as a v2 one (its bytes end after `ts`).
 */
export function auditCheckpointStatement(checkpoint: UnsignedAuditCheckpoint): string {
  const { seq, hash, ts } = checkpoint;
  if (checkpoint.version === 1) return `custos-audit-checkpoint:v1\n${seq}\n${hash}\n${ts}`;
  const { prevSeq, prevDigest, every, intervalMs } = checkpoint;
  return `custos-audit-checkpoint:v2\n${seq}\n${hash}\n${ts}\n${prevSeq}\n${prevDigest}\n${every}\n${intervalMs}`;
}

/**
 * The digest the next checkpoint names its predecessor by:
 *
 *     digest = lowercase_hex( SHA-256( UTF-8( statement + "\n" + signature ) ) )
 *
 * over this checkpoint's statement and its base64url signature, so it pins
 * the exact signed checkpoint (v1 or v2), not only what it says.
 */
export function auditCheckpointDigest(checkpoint: AuditCheckpoint): string {
  return createHash('sha256')
    .update(auditCheckpointStatement(checkpoint))
    .update('\n')
    .update(checkpoint.signature)
    .digest('hex');
}

/** The link a successor of `checkpoint` names. */
export function auditCheckpointLink(checkpoint: AuditCheckpoint): AuditCheckpointLink {
  return { seq: checkpoint.seq, digest: auditCheckpointDigest(checkpoint) };
}

/**
 * Signs a v2 checkpoint stating that the chain up to `seq` ends in `hash`,
 * chained to `prev` (the last checkpoint, or {@link AUDIT_CHECKPOINT_GENESIS}).
 */
export function signAuditCheckpoint(
  signer: AuditSigner,
  at: { seq: number; hash: string; ts: string },
  prev: AuditCheckpointLink,
  interval: AuditCheckpointInterval,
): AuditCheckpointV2 {
  if (signer.privateKey.asymmetricKeyType !== 'ed25519') throw new TypeError('the audit signer must be an Ed25519 key');
  const unsigned = {
    version: 2 as const,
    seq: at.seq,
    hash: at.hash,
    ts: at.ts,
    prevSeq: prev.seq,
    prevDigest: prev.digest,
    every: interval.every,
    intervalMs: interval.intervalMs,
  };
  const signature = sign(null, Buffer.from(auditCheckpointStatement(unsigned)), signer.privateKey);
  return { ...unsigned, keyId: signer.keyId, signature: signature.toString('base64url') };
}

/** True when `checkpoint.signature` is a valid Ed25519 signature by `publicKey` over its statement. */
export function verifyAuditCheckpointSignature(checkpoint: AuditCheckpoint, publicKey: KeyObject): boolean {
  if (publicKey.asymmetricKeyType !== 'ed25519') return false;
  const statement = Buffer.from(auditCheckpointStatement(checkpoint));
  try {
    return verify(null, statement, publicKey, Buffer.from(checkpoint.signature, 'base64url'));
  } catch {
    return false;
  }
}
