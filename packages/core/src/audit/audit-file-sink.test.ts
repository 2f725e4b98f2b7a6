import { appendFile, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuditFileLineReader, parseAuditFileLine } from './audit-compact-line.js';
import { AuditFileSink } from './audit-file-sink.js';
import { AUDIT_EMPTY_HEAD, chainAuditRecords } from './audit-hash.js';
import { canonicalJson } from './canonical-json.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'custos-audit-file-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function records(count: number, from = AUDIT_EMPTY_HEAD) {
  const ts = '2030-01-01T00:00:00.000Z';
  return chainAuditRecords(
    from,
    Array.from({ length: count }, (_, i) => ({
      ts,
      event: canonicalJson({ type: 'system', kind: 'test', time: ts, details: { i, pad: 'x'.repeat(300) } }),
    })),
  );
}

/** The file's lines read back as the verifier reads them: compact events expanded, dictionary lines consumed. */
function readBack(lines: string[]) {
  const reader = new AuditFileLineReader();
  return lines.flatMap((l) => {
    const parsed = reader.read(parseAuditFileLine(l)!);
    return parsed ? [parsed] : [];
  });
}

describe('AuditFileSink', () => {
  it('appends one compact line per record (and the dictionary entries they use), file mode 0600', async () => {
    const path = join(dir, 'audit.jsonl');
    const sink = await AuditFileSink.open({ path });
    const rs = records(3);
    await sink.write(rs.slice(0, 2));
    await sink.write(rs.slice(2));
    await sink.close();
    const lines = (await readFile(path, 'utf8')).split('\n');
    expect(lines.at(-1)).toBe('');
    expect(readBack(lines.slice(0, -1))).toEqual(rs.map((record) => ({ kind: 'record', record })));
    // Every record went in its compact form.
    expect(lines.filter((l) => l.startsWith('{"s":') && l.includes(',"e":{"v":1,'))).toHaveLength(3);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
  });

  it('cuts off a torn last line (a crash mid-write) when opened', async () => {
    const path = join(dir, 'audit.jsonl');
    const rs = records(3);
    const first = await AuditFileSink.open({ path });
    await first.write(rs.slice(0, 2));
    await first.close();
    await appendFile(path, '{"event":"{\\"type');
    const second = await AuditFileSink.open({ path });
    await second.write(rs.slice(2));
    expect(await second.recordsAfter(0)).toEqual(rs);
    await second.close();
    expect(
      (await readFile(path, 'utf8'))
        .split('\n')
        .filter(Boolean)
        .every((l) => parseAuditFileLine(l)),
    ).toBe(true);
  });

  it('recordsAfter reads only the tail, across chunk boundaries', async () => {
    const path = join(dir, 'audit.jsonl');
    const sink = await AuditFileSink.open({ path, fsync: 'never' });
    expect(sink.durable).toBe(false);
    // ~450 bytes a line: 6,000 lines is over 2 MiB, so several 1 MiB chunks.
    const rs = records(6_000);
    await sink.write(rs);
    expect(await sink.recordsAfter(6_000)).toEqual([]);
    expect(await sink.recordsAfter(5_990)).toEqual(rs.slice(5_990));
    expect(await sink.recordsAfter(1_000)).toEqual(rs.slice(1_000));
    expect(await sink.recordsAfter(0)).toEqual(rs);
    await sink.close();
  });
});
