import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { AuditRecord } from '../ports/storage.js';
import { formatAuditRecordLine, parseAuditLine } from './audit-line.js';
import { canonicalJson } from './canonical-json.js';

const hex = () => createHash('sha256').update(randomBytes(8)).digest('hex');

describe('formatAuditRecordLine', () => {
  it('writes exactly the canonical JSON of the record line, whatever the event holds', () => {
    const events = [
      canonicalJson({ type: 'request', path: 'kv/app/db', note: 'quote " backslash \\ newline \n tab \t' }),
      canonicalJson({ type: 'system', kind: 'audit_opened', text: 'ünïcødé 🔐 \u2028 \u0000' }),
      '{}',
    ];
    for (const [i, event] of events.entries()) {
      const record: AuditRecord = { seq: i + 1, ts: new Date().toISOString(), prevHash: hex(), hash: hex(), event };
      const line = formatAuditRecordLine(record);
      expect(line).toBe(canonicalJson({ kind: 'record', ...record }));
      expect(parseAuditLine(line)).toEqual({ kind: 'record', record });
    }
  });

  it('falls back to the general canonical form for shapes the chain never makes', () => {
    const record: AuditRecord = { seq: 1, ts: 't', prevHash: 'P', hash: 'H"', event: '{}' };
    expect(formatAuditRecordLine(record)).toBe(canonicalJson({ kind: 'record', ...record }));
  });
});
