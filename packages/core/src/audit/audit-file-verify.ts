import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { AuditCheckpoint, AuditRecord } from '../ports/storage.js';
import { AuditFileLineReader, parseAuditFileLine } from './audit-compact-line.js';
import { type AuditChainVerifyOptions, type AuditVerifyReport, verifyAuditChain } from './audit-verify.js';

/**
 * Verifies a JSON-lines audit file (the file sink's file or an export) on
 * its own, offline: the same checks as {@link verifyAudit}, with the
 * checkpoints read from the file's checkpoint lines. Reads the file twice
 * (checkpoints first, then records streamed), so memory stays flat.
 *
 * A line that does not parse is reported as `malformed` at the seq expected there.
 * Set `partial` for an `export --since` that does not start at seq 1.
 */
export async function verifyAuditFile(path: string, options: AuditChainVerifyOptions): Promise<AuditVerifyReport> {
  const checkpoints: AuditCheckpoint[] = [];
  for await (const line of lines(path)) {
    const parsed = parseAuditFileLine(line);
    if (parsed?.kind === 'checkpoint') checkpoints.push(parsed.checkpoint);
  }
  let bad: { line: number } | undefined;
  let lastSeq = 0;
  async function* records(): AsyncGenerator<AuditRecord> {
    let n = 0;
    // Compact lines (the file sink's) are expanded to the full events that were hashed.
    const reader = new AuditFileLineReader();
    for await (const line of lines(path)) {
      n++;
      if (line.length === 0) continue;
      const fileLine = parseAuditFileLine(line);
      if (!fileLine) {
        bad = { line: n };
        return;
      }
      const parsed = reader.read(fileLine);
      if (parsed?.kind === 'record') {
        lastSeq = parsed.record.seq;
        yield parsed.record;
      }
    }
  }
  const report = await verifyAuditChain(records(), checkpoints, options);
  if (bad && (report.ok || report.problem === 'truncated')) {
    const seq = lastSeq + 1;
    return {
      ok: false,
      seq,
      problem: 'malformed',
      detail: `line ${bad.line} is not an audit record or checkpoint`,
      events: report.events,
    };
  }
  return report;
}

function lines(path: string): AsyncIterable<string> {
  return createInterface({ input: createReadStream(path, { encoding: 'utf8' }), crlfDelay: Number.POSITIVE_INFINITY });
}
