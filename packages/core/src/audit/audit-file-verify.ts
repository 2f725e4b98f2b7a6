import { type AuditFilesProblem, verifyAuditFiles } from './audit-files-verify.js';
import type { AuditChainVerifyOptions, AuditVerifyReport } from './audit-verify.js';

/** The outcome of verifying one file: {@link AuditVerifyReport}, with the line to blame and the file-level problems. */
export type AuditFileVerifyReport =
  | Extract<AuditVerifyReport, { ok: true }>
  | {
      readonly ok: false;
      readonly seq: number;
      readonly problem: AuditFilesProblem;
      readonly detail: string;
      readonly events: number;
      readonly file?: string;
      readonly line?: number;
    };

/**
 * Verifies a JSON-lines audit file (the file sink's file, one of its
 * rotated files, or an export) on its own, offline: the same checks as
 * {@link verifyAudit}, with the checkpoints read from the file's checkpoint
 * lines. A file that begins with an anchor (a rotated-to file) is verified
 * from the anchor's checkpoint. Reads the file twice (checkpoints first,
 * then records streamed), so memory stays flat.
 *
 * A line that does not parse is reported as `malformed` at the seq expected there.
 * Set `partial` for an `export --since` that does not start at seq 1.
 * For several rotated files in sequence, see {@link verifyAuditFiles}.
 */
export async function verifyAuditFile(path: string, options: AuditChainVerifyOptions): Promise<AuditFileVerifyReport> {
  const report = await verifyAuditFiles([path], options);
  if (!report.ok) return report;
  const { files: _files, unlinkedFiles: _unlinked, ...single } = report;
  return single;
}
