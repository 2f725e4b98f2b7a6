import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { verifyAuditArchives, verifyAuditFiles } from '@custos/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './test-server.js';

describe('archival removes the rotated audit files it covers (a real node, SQLite)', () => {
  let s: TestServer;
  const dir = mkdtempSync(join(tmpdir(), 'custos-archive-files-'));
  const auditFile = join(dir, 'audit.jsonl');
  const archiveDir = join(dir, 'archive');
  const rotatedNames = () =>
    readdirSync(dir)
      .filter((n) => /^audit-\d{8}T\d{6}Z-\d{6}\.jsonl$/.test(n))
      .sort();
  beforeAll(async () => {
    s = await startTestServer('sqlite', {
      audit: { file: auditFile, archiveDir, checkpointEvery: 5, rotation: { maxBytes: 2_000 } },
    });
    for (let i = 0; i < 40; i++) await s.call({ method: 'GET', url: '/v1/audit/tail?n=1' });
  });
  afterAll(async () => {
    await s?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('an archive of everything removes every rotated file; the current file stays and still verifies, alone and after the archive', async () => {
    expect(rotatedNames().length).toBeGreaterThanOrEqual(2);
    const before = new Date(Date.now() + 60_000).toISOString();
    const run = await s.call({ method: 'POST', url: '/v1/audit/archive', payload: { before } });
    expect(run.statusCode).toBe(200);
    const body = run.json() as { archived: { last_seq: number }; files_removed?: number };
    expect(body.files_removed).toBeGreaterThanOrEqual(2);
    expect(rotatedNames()).toEqual([]);
    expect(readdirSync(dir)).toContain('audit.jsonl');

    const keys = s.node.services().auditPublicKeys;
    const publicKeys = new Map(keys);
    // The current file begins with an anchor: it verifies without its removed predecessors.
    expect(await verifyAuditFiles([auditFile], { publicKeys })).toMatchObject({ ok: true });
    // The archive and the database's online tail are one chain.
    expect(
      await verifyAuditArchives([join(archiveDir, 'audit-archive-000001.jsonl.gz')], {
        publicKeys,
        online: s.storage.audit,
      }),
    ).toMatchObject({ ok: true });
    // A later run with nothing new to archive removes nothing and fails nothing.
    const again = await s.call({
      method: 'POST',
      url: '/v1/audit/archive',
      payload: { before: '2000-01-01T00:00:00Z' },
    });
    expect(again.statusCode).toBe(200);
    expect(again.json()).toMatchObject({ archived: null, deleted: 0 });
    expect(again.json()).not.toHaveProperty('files_removed');
  });
});
