import { createPublicKey } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditArchivePace, verifyAuditArchives } from '@custos/core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startTestServer, type TestServer } from '../test-server.js';

// Attack class: deleting audit records, or reading or writing files on the
// server, through archival. Archiving removes records from the database, so
// it is for operators granted `admin` on `sys/audit/archive` only; the
// archive's file name is fixed by its number in the server's configured
// directory, and nothing in a request can name a path.

describe('audit archival is for sys operators only, and names no path from the request', () => {
  let s: TestServer;
  const archiveDir = mkdtempSync(join(tmpdir(), 'custos-archive-route-'));
  const ok = async (response: Awaited<ReturnType<TestServer['call']>>) => {
    expect(response.statusCode, response.body).toBe(200);
    return response.json();
  };
  const operatorToken = async (policy: string) =>
    (
      await ok(
        await s.call({ method: 'POST', url: '/v1/auth/token/create', payload: { policies: [policy], ttl: '10m' } }),
      )
    ).token as string;
  const archivedThrough = async () =>
    (await ok(await s.call({ method: 'GET', url: '/v1/audit/verify' }))).archivedThrough;

  beforeAll(async () => {
    s = await startTestServer('sqlite', { audit: { archiveDir, checkpointEvery: 5 } });
    const ALL_SYS_AUDIT = 'permit(principal, action, resource in Custos::Path::"sys/audit");';
    const ALL_SYS = 'permit(principal, action, resource in Custos::Path::"sys/");';
    for (const [name, text] of [
      ['audit-reader', ALL_SYS_AUDIT.replace('action,', 'action == Custos::Action::"read",')],
      ['all-sys', ALL_SYS],
      [
        'archive-reader',
        'permit(principal, action == Custos::Action::"read", resource == Custos::Path::"sys/audit/archive");',
      ],
    ] as const) {
      await ok(await s.call({ method: 'PUT', url: `/v1/policies/${name}`, payload: { policy: text } }));
    }
    await ok(
      await s.call({ method: 'PUT', url: '/v1/roles/snoop', payload: { policies: ['all-sys'], max_ttl: '15m' } }),
    );
    // Some audited traffic to archive.
    for (let i = 0; i < 12; i++) await s.call({ method: 'GET', url: '/v1/audit/tail?n=1' });
  });
  afterAll(async () => {
    await s?.close();
    rmSync(archiveDir, { recursive: true, force: true });
  });

  const before = () => new Date(Date.now() + 60_000).toISOString();
  /** POST /v1/audit/archive (everything sealed up to a minute from now) with this token (`null`: none). */
  const archiveAs = (token: string | null) =>
    s.call({ method: 'POST', url: '/v1/audit/archive', payload: { before: before() }, token });

  it('without a token, as an operator with read on sys/audit only, and as a task whatever its policies: refused, nothing archived', async () => {
    const anonymous = await archiveAs(null);
    expect(anonymous.statusCode).toBe(401);
    const reader = await archiveAs(await operatorToken('audit-reader'));
    expect(reader.statusCode).toBe(403);
    const task = (await ok(await s.call({ method: 'POST', url: '/v1/roles/snoop/tasks', payload: { ttl: '10m' } })))
      .token as string;
    const asTask = await archiveAs(task);
    expect(asTask.statusCode).toBe(403);
    const download = await s.call({ method: 'GET', url: '/v1/audit/archive/1', token: task });
    expect(download.statusCode).toBe(403);
    expect(readdirSync(archiveDir)).toEqual([]);
    expect(await archivedThrough()).toBe(undefined);
  });

  it('a path, a file name or a directory in the request is refused before anything runs', async () => {
    for (const payload of [
      { before: before(), dir: '/tmp' },
      { before: before(), file: '../../etc/passwd' },
      { before: before(), output: '/etc/cron.d/x' },
      { before: 'not a time' },
      // Times Date.parse reads loosely: a year, month-first, no zone (the server's local zone). Archival deletes.
      { before: '2030' },
      { before: '12/01/2030' },
      { before: 'Sun Dec 01 2030' },
      { before: '2030-01-01T00:00:00' },
      { before: '2030-01-01 00:00:00Z' },
      { before: 1_900_000_000_000 },
      {},
    ]) {
      const r = await s.call({ method: 'POST', url: '/v1/audit/archive', payload });
      expect(r.statusCode, JSON.stringify(payload)).toBe(400);
    }
    for (const name of ['..%2F..%2Fetc%2Fpasswd', '1.jsonl.gz', '0', '-1', '%2Fetc%2Fpasswd', '1%00']) {
      const r = await s.call({ method: 'GET', url: `/v1/audit/archive/${name}` });
      expect([400, 404], name).toContain(r.statusCode);
      expect(r.body).not.toContain('root:');
    }
    expect(readdirSync(archiveDir)).toEqual([]);
  });

  it('an operator with sys permissions archives into the configured directory; the download verifies; verify counts what is archived', async () => {
    const r = await ok(await archiveAs(await operatorToken('all-sys')));
    expect(r.archived).toMatchObject({ archive: 1, file: 'audit-archive-000001.jsonl.gz', first_seq: 1 });
    expect(r.archived.records).toBeGreaterThan(10);
    expect(readdirSync(archiveDir)).toEqual(['audit-archive-000001.jsonl.gz']);
    expect(await archivedThrough()).toBe(r.archived.last_seq);

    const download = await s.call({ method: 'GET', url: '/v1/audit/archive/1' });
    expect(download.statusCode).toBe(200);
    expect(download.headers['content-type']).toBe('application/gzip');
    const copy = join(archiveDir, '..', `downloaded-${Date.now()}.jsonl.gz`);
    writeFileSync(copy, download.rawPayload);
    try {
      const { keys } = await ok(await s.call({ method: 'GET', url: '/v1/audit/public-keys', token: null }));
      const publicKeys = new Map(
        (keys as { key_id: string; public_key_pem: string }[]).map((k) => [
          k.key_id,
          createPublicKey(k.public_key_pem),
        ]),
      );
      expect(await verifyAuditArchives([copy], { publicKeys })).toMatchObject({ ok: true, archives: 1 });
    } finally {
      rmSync(copy, { force: true });
    }
    expect((await s.call({ method: 'GET', url: '/v1/audit/archive/2' })).statusCode).toBe(404);
  });

  it('read on sys/audit/archive downloads but cannot archive; an operator without it cannot download', async () => {
    // Archive 1 exists (the test above).
    const reader = await operatorToken('archive-reader');
    const run = await archiveAs(reader);
    expect(run.statusCode).toBe(403);
    expect(readdirSync(archiveDir)).toEqual(['audit-archive-000001.jsonl.gz']);
    const mine = await s.call({ method: 'GET', url: '/v1/audit/archive/1', token: reader });
    expect(mine.statusCode).toBe(200);
    for (const policy of ['audit-reader']) {
      const other = await s.call({ method: 'GET', url: '/v1/audit/archive/1', token: await operatorToken(policy) });
      expect(other.statusCode, policy).toBe(403);
      expect(other.headers['content-type']).not.toBe('application/gzip');
    }
  });

  // Attack class: stalling archival. A scheduled run is paced over most of
  // its period (docs/audit.md, "Pacing"); an operator's run hurries it rather
  // than queueing behind it for minutes — and only an operator's run: a
  // refused or malformed request must not make the node drop the pace (load
  // on demand for anyone who can reach the route).
  it('a refused or malformed archive request leaves a paced run at its pace; an operator run hurries it and both finish', async () => {
    for (let i = 0; i < 12; i++) await s.call({ method: 'GET', url: '/v1/audit/tail?n=1' });
    const pace = new AuditArchivePace(3_600_000);
    const hurry = vi.spyOn(pace, 'hurry');
    const paced = s.node.services().archiveAudit(new Date(Date.now() + 60_000), { pace });
    const reader = await operatorToken('archive-reader');
    expect((await archiveAs(reader)).statusCode).toBe(403);
    expect((await archiveAs(null)).statusCode).toBe(401);
    const bad = await s.call({ method: 'POST', url: '/v1/audit/archive', payload: { before: '2030' } });
    expect(bad.statusCode).toBe(400);
    expect(hurry).not.toHaveBeenCalled();

    const r = await ok(await archiveAs(await operatorToken('all-sys')));
    expect(hurry).toHaveBeenCalledTimes(1);
    expect((await paced).written?.manifest.archive).toBe(2);
    expect([null, 3]).toContain(r.archived?.archive ?? null);
    expect(await ok(await s.call({ method: 'GET', url: '/v1/audit/verify' }))).toMatchObject({ ok: true });
  });
});
