import { type AuditArchiveState, formatAuditCheckpointLine, parseAuditLine } from '@custos/core';

/** A row of the audit_archive table. */
export interface AuditArchiveRow {
  archive: number | string;
  checkpoint: string;
  digest: string;
  file: string;
  status: string;
}

/** The row's values in column order: archive, checkpoint, digest, file, status. */
export function auditArchiveValues(state: AuditArchiveState): [number, string, string, string, string] {
  return [state.archive, formatAuditCheckpointLine(state.checkpoint), state.digest, state.file, state.status];
}

/** The state a row holds; a row that does not parse is an error, never taken as "nothing archived". */
export function auditArchiveFromRow(row: AuditArchiveRow): AuditArchiveState {
  const parsed = parseAuditLine(row.checkpoint);
  if (parsed?.kind !== 'checkpoint' || (row.status !== 'archiving' && row.status !== 'archived')) {
    throw new Error('the audit archive state row is malformed');
  }
  return {
    archive: Number(row.archive),
    checkpoint: parsed.checkpoint,
    digest: row.digest,
    file: row.file,
    status: row.status,
  };
}
