import { type KeyObject, sign, verify } from 'node:crypto';
import type { AuditCheckpoint } from '../ports/storage.js';
import type { AuditSigner } from './audit-checkpoint.js';
import { formatAuditCheckpointLine, parseAuditLineValue } from './audit-line.js';
import { canonicalJson } from './canonical-json.js';

/**
 * The lines of an audit archive (gzip of JSON lines, see docs/audit.md):
 *
 *     {"anchor":{…checkpoint…}|null,"archive":2,"kind":"archive","prevArchiveDigest":"…","ts":"…","version":1}
 *     {"seq":…,"ts":…,"prevHash":…,"hash":…,"event":…}      records, full form, ascending
 *     {"checkpoint":{…}}                                       checkpoints, after the record they seal
 *     {"archive":2,…,"kind":"archive-manifest","signature":"…"} the signed manifest, last
 *
 * Records are stored in the full (export) form, not the compact stored
 * form: an archive must verify for years with no dictionary table and no
 * knowledge of a stored form that may change again; gzip takes back what
 * the repeated strings cost.
 *
 * - `archive`: the archive's number (1, 2, …); a gap or a step back between
 *   consecutive archives is a missing or reordered archive.
 * - `anchor`: the checkpoint that ended the preceding archive (null for the
 *   first archive of a chain starting at seq 1): records begin right after it.
 * - `prevArchiveDigest`: SHA-256 of the preceding archive's file bytes
 *   (64 zeros for the first), so archives form a chain and an altered
 *   predecessor shows.
 */
export interface AuditArchiveHeader {
  readonly version: 1;
  readonly archive: number;
  readonly anchor: AuditCheckpoint | null;
  readonly prevArchiveDigest: string;
  readonly ts: string;
}

/**
 * The last line: what the archive holds, signed with the checkpoint key over
 * {@link auditArchiveManifestStatement}. `contentDigest` is the SHA-256 of
 * every line before it (each with its newline), so any edit of the
 * uncompressed content shows even where the chain alone would not point at it.
 */
export interface AuditArchiveManifest {
  readonly version: 1;
  readonly archive: number;
  readonly firstSeq: number;
  readonly lastSeq: number;
  readonly lastHash: string;
  readonly records: number;
  /** Digest of the checkpoint that seals `lastSeq` (the archive's last). */
  readonly checkpointDigest: string;
  readonly prevArchiveDigest: string;
  readonly contentDigest: string;
  /** Ids of the keys that signed the archive's checkpoints. */
  readonly keyIds: readonly string[];
  readonly ts: string;
  readonly keyId: string;
  readonly signature: string;
}

/** `prevArchiveDigest` of the first archive of a chain. */
export const AUDIT_ARCHIVE_GENESIS_DIGEST = '0'.repeat(64);

export type UnsignedAuditArchiveManifest = Omit<AuditArchiveManifest, 'keyId' | 'signature' | 'version'>;

/**
 * The exact bytes a manifest signature covers. The distinct prefix keeps it
 * from being taken for a checkpoint or file-anchor signature by the same key.
 */
export function auditArchiveManifestStatement(m: UnsignedAuditArchiveManifest): string {
  return [
    'custos-audit-archive:v1',
    m.archive,
    m.firstSeq,
    m.lastSeq,
    m.lastHash,
    m.records,
    m.checkpointDigest,
    m.prevArchiveDigest,
    m.contentDigest,
    [...m.keyIds].join(','),
    m.ts,
  ].join('\n');
}

export function signAuditArchiveManifest(
  signer: AuditSigner,
  fields: UnsignedAuditArchiveManifest,
): AuditArchiveManifest {
  const signature = sign(null, Buffer.from(auditArchiveManifestStatement(fields)), signer.privateKey);
  return { version: 1, ...fields, keyId: signer.keyId, signature: signature.toString('base64url') };
}

export function verifyAuditArchiveManifestSignature(m: AuditArchiveManifest, publicKey: KeyObject): boolean {
  if (publicKey.asymmetricKeyType !== 'ed25519') return false;
  try {
    return verify(
      null,
      Buffer.from(auditArchiveManifestStatement(m)),
      publicKey,
      Buffer.from(m.signature, 'base64url'),
    );
  } catch {
    return false;
  }
}

export function formatAuditArchiveHeaderLine(h: AuditArchiveHeader): string {
  return canonicalJson({
    kind: 'archive',
    version: h.version,
    archive: h.archive,
    anchor: h.anchor ? (JSON.parse(formatAuditCheckpointLine(h.anchor)) as unknown) : null,
    prevArchiveDigest: h.prevArchiveDigest,
    ts: h.ts,
  });
}

export function formatAuditArchiveManifestLine(m: AuditArchiveManifest): string {
  return canonicalJson({ kind: 'archive-manifest', ...m, keyIds: [...m.keyIds] });
}

const HEX_64 = /^[0-9a-f]{64}$/;
const isCount = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
const isHex = (s: unknown): s is string => typeof s === 'string' && HEX_64.test(s);

function parseObject(line: string, kind: string): Record<string, unknown> | undefined {
  if (!line.includes(`"kind":"${kind}"`)) return undefined;
  try {
    const v = JSON.parse(line) as unknown;
    if (typeof v !== 'object' || v === null || (v as { kind?: unknown }).kind !== kind) return undefined;
    return v as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

/** Parses a header line; `undefined` for any other line. */
export function parseAuditArchiveHeaderLine(line: string): AuditArchiveHeader | undefined {
  const v = parseObject(line, 'archive');
  if (v?.version !== 1 || !isCount(v.archive) || !isHex(v.prevArchiveDigest) || typeof v.ts !== 'string')
    return undefined;
  let anchor: AuditCheckpoint | null = null;
  if (v.anchor !== null) {
    const parsed =
      typeof v.anchor === 'object' && v.anchor !== undefined
        ? parseAuditLineValue(v.anchor as Record<string, unknown>)
        : undefined;
    if (parsed?.kind !== 'checkpoint') return undefined;
    anchor = parsed.checkpoint;
  }
  return { version: 1, archive: v.archive, anchor, prevArchiveDigest: v.prevArchiveDigest, ts: v.ts };
}

/** Parses a manifest line; `undefined` for any other line. */
export function parseAuditArchiveManifestLine(line: string): AuditArchiveManifest | undefined {
  const v = parseObject(line, 'archive-manifest');
  if (v?.version !== 1) return undefined;
  const counts = [v.archive, v.firstSeq, v.lastSeq, v.records];
  if (!counts.every(isCount)) return undefined;
  if (![v.lastHash, v.checkpointDigest, v.prevArchiveDigest, v.contentDigest].every(isHex)) return undefined;
  if (!Array.isArray(v.keyIds) || !v.keyIds.every((k) => typeof k === 'string')) return undefined;
  if (typeof v.ts !== 'string' || typeof v.keyId !== 'string' || typeof v.signature !== 'string') return undefined;
  return {
    version: 1,
    archive: v.archive as number,
    firstSeq: v.firstSeq as number,
    lastSeq: v.lastSeq as number,
    lastHash: v.lastHash as string,
    records: v.records as number,
    checkpointDigest: v.checkpointDigest as string,
    prevArchiveDigest: v.prevArchiveDigest as string,
    contentDigest: v.contentDigest as string,
    keyIds: v.keyIds as string[],
    ts: v.ts,
    keyId: v.keyId,
    signature: v.signature,
  };
}
