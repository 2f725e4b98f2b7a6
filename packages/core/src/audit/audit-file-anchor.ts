import { type KeyObject, sign, verify } from 'node:crypto';
import type { AuditCheckpoint } from '../ports/storage.js';
import type { AuditSigner } from './audit-checkpoint.js';
import { auditCheckpointDigest } from './audit-checkpoint.js';
import { formatAuditCheckpointLine, parseAuditLine } from './audit-line.js';
import { canonicalJson } from './canonical-json.js';

/**
 * The first line of every audit file after the first one (a rotated-to or
 * reopened file): it links the file to its predecessor so a set of rotated
 * files verifies as one sequence.
 *
 *     {"checkpoint":{…the last checkpoint line…},"file":3,"keyId":"…","kind":"anchor",
 *      "prevFileBytes":104857600,"prevFileDigest":"…","signature":"…","ts":"…","version":1}
 *
 * - `checkpoint`: the signed checkpoint that ends the predecessor (the
 *   file is rotated only right after a checkpoint that seals its last
 *   record), so this file's records begin at `checkpoint.seq + 1` and link
 *   to `checkpoint.hash`, and this file verifies on its own from it.
 * - `file`: the file's number in the sequence (the first file, without an
 *   anchor, is 0). A gap or a step back between consecutive files is a
 *   missing or reordered file.
 * - `prevFileDigest`, `prevFileBytes`: SHA-256 and size of the predecessor
 *   as it was when closed, so an edit or a truncation of it after rotation
 *   shows even where the chain alone would not point at the file.
 *   {@link AUDIT_ANCHOR_UNLINKED} when the predecessor is unknown (the file
 *   was renamed away and the process died before it could reopen; see
 *   docs/audit.md): the chain and checkpoints still link the files.
 *
 * Signed (Ed25519, the checkpoint key) over {@link auditFileAnchorStatement}.
 * The anchor is a line of its own kind, so readers of records and
 * checkpoints pass over it.
 */
export interface AuditFileAnchor {
  readonly version: 1;
  readonly file: number;
  readonly checkpoint: AuditCheckpoint;
  readonly prevFileDigest: string;
  readonly prevFileBytes: number;
  readonly ts: string;
  readonly keyId: string;
  readonly signature: string;
}

/** `prevFileDigest` of an anchor whose predecessor file is unknown. */
export const AUDIT_ANCHOR_UNLINKED = '0'.repeat(64);

/**
 * The exact bytes an anchor signature covers:
 *
 *     custos-audit-file-anchor:v1\n<file>\n<checkpoint seq>\n<checkpoint digest>\n<prevFileDigest>\n<prevFileBytes>\n<ts>
 *
 * The checkpoint is named by its digest (see `auditCheckpointDigest`), which
 * pins the exact signed checkpoint. The distinct prefix keeps an anchor
 * signature from being taken for a checkpoint signature by the same key.
 */
export function auditFileAnchorStatement(anchor: Omit<AuditFileAnchor, 'keyId' | 'signature' | 'version'>): string {
  const { file, checkpoint, prevFileDigest, prevFileBytes, ts } = anchor;
  return `custos-audit-file-anchor:v1\n${file}\n${checkpoint.seq}\n${auditCheckpointDigest(checkpoint)}\n${prevFileDigest}\n${prevFileBytes}\n${ts}`;
}

/** Signs the anchor of file number `file`, whose predecessor ended with `checkpoint`. */
export function signAuditFileAnchor(
  signer: AuditSigner,
  fields: { file: number; checkpoint: AuditCheckpoint; prevFileDigest: string; prevFileBytes: number; ts: string },
): AuditFileAnchor {
  const signature = sign(null, Buffer.from(auditFileAnchorStatement(fields)), signer.privateKey);
  return { version: 1, ...fields, keyId: signer.keyId, signature: signature.toString('base64url') };
}

/** True when the anchor is well formed and its signature verifies with `publicKey`. */
export function verifyAuditFileAnchorSignature(anchor: AuditFileAnchor, publicKey: KeyObject): boolean {
  if (publicKey.asymmetricKeyType !== 'ed25519') return false;
  try {
    return verify(
      null,
      Buffer.from(auditFileAnchorStatement(anchor)),
      publicKey,
      Buffer.from(anchor.signature, 'base64url'),
    );
  } catch {
    return false;
  }
}

/** The anchor's line (without its newline); canonical JSON like every audit line. */
export function formatAuditFileAnchorLine(anchor: AuditFileAnchor): string {
  const { version, file, checkpoint, prevFileDigest, prevFileBytes, ts, keyId, signature } = anchor;
  return canonicalJson({
    kind: 'anchor',
    version,
    file,
    // The checkpoint in the form of its own line, so it reads the same as every other checkpoint.
    checkpoint: JSON.parse(formatAuditCheckpointLine(checkpoint)) as unknown,
    prevFileDigest,
    prevFileBytes,
    ts,
    keyId,
    signature,
  });
}

const HEX_64 = /^[0-9a-f]{64}$/;
const isCount = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;

/** Parses an anchor line; `undefined` for any other line. */
export function parseAuditFileAnchorLine(line: string): AuditFileAnchor | undefined {
  // Cheap refusal first: this is asked of lines that are mostly records.
  if (!line.includes('"kind":"anchor"')) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Record<string, unknown>;
  if (v.kind !== 'anchor' || v.version !== 1 || !isCount(v.file) || !isCount(v.prevFileBytes)) return undefined;
  if (typeof v.prevFileDigest !== 'string' || !HEX_64.test(v.prevFileDigest)) return undefined;
  if (typeof v.ts !== 'string' || v.ts.includes('\n') || typeof v.keyId !== 'string') return undefined;
  if (typeof v.signature !== 'string') return undefined;
  const checkpoint = parseAuditLine(JSON.stringify(v.checkpoint));
  if (checkpoint?.kind !== 'checkpoint') return undefined;
  return {
    version: 1,
    file: v.file,
    checkpoint: checkpoint.checkpoint,
    prevFileDigest: v.prevFileDigest,
    prevFileBytes: v.prevFileBytes,
    ts: v.ts,
    keyId: v.keyId,
    signature: v.signature,
  };
}
