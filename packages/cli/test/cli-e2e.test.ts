import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCliServer } from './cli-harness.js';

const fake = (label: string) => `fake-${label}-${Math.random().toString(36).slice(2, 12)}`;

describe('custos CLI against a real server', () => {
  let h: Awaited<ReturnType<typeof startCliServer>>;
  beforeAll(async () => {
    h = await startCliServer();
  });
  afterAll(async () => {
    await h?.close();
  });

  it('secret put/get/list, --field prints one field raw, --json everywhere', async () => {
    const key = fake('key');
    const put = await h.cli(['secret', 'put', 'kv/finance/api', `api_key=${key}`, 'user=svc']);
    expect(put).toMatchObject({ code: 0, stdout: 'Wrote kv/finance/api version 1\n' });
    expect((await h.cli(['secret', 'get', 'kv/finance/api', '--field', 'api_key'])).stdout).toBe(key);
    const json = JSON.parse((await h.cli(['secret', 'get', 'kv/finance/api', '--json'])).stdout);
    expect(json).toMatchObject({ data: { api_key: key, user: 'svc' }, metadata: { version: 1 } });
    expect((await h.cli(['secret', 'list', 'kv/'])).stdout).toBe('finance/\n');
    const stdinPut = await h.cli(['secret', 'put', 'kv/finance/api', 'api_key=-', '--cas', '1'], {
      stdin: `${key}2\n`,
    });
    expect(stdinPut.code).toBe(0);
    expect((await h.cli(['secret', 'get', 'kv/finance/api', '--field', 'api_key'])).stdout).toBe(`${key}2`);
    expect((await h.cli(['secret', 'get', 'kv/finance/api', '--version', '1', '--field', 'api_key'])).stdout).toBe(key);
  });

  it('errors are one line with the code; exit 1 for a refusal, 2 for usage', async () => {
    const missing = await h.cli(['secret', 'get', 'kv/nothing/here']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^custos: CUSTOS_ERR_NOT_FOUND .+\n$/);
    const conflict = await h.cli(['secret', 'put', 'kv/finance/api', 'a=b', '--cas', '0']);
    expect(conflict.stderr).toContain('CUSTOS_ERR_CAS_MISMATCH');
    const usage = await h.cli(['secret', 'put', 'kv/finance/api', 'novalue']);
    expect(usage.code).toBe(2);
    const badToken = await h.cli(['secret', 'get', 'kv/finance/api'], { token: 'garbage' });
    expect(badToken).toMatchObject({ code: 1 });
    expect(badToken.stderr).toContain('CUSTOS_ERR_UNAUTHENTICATED');
    const unreachable = await h.cli(['secret', 'get', 'kv/x'], { env: { CUSTOS_ADDR: 'http://127.0.0.1:1' } });
    expect(unreachable.code).toBe(2);
    expect(unreachable.stderr).toContain('CUSTOS_ERR_UNREACHABLE');
  });

  it('policy write, token create (printed alone) and a scoped read', async () => {
    const file = join(h.dir, 'read.cedar');
    writeFileSync(
      file,
      'permit(principal, action == Custos::Action::"read", resource in Custos::Path::"kv/finance/");\n',
    );
    expect((await h.cli(['policy', 'write', 'finance-read', file])).code).toBe(0);
    expect((await h.cli(['policy', 'list'])).stdout).toBe('finance-read\n');
    const token = (await h.cli(['token', 'create', '--policy', 'finance-read', '--ttl', '1h'])).stdout.trim();
    expect(token).toMatch(/^cus_/);
    const scopedRead = await h.cli(['secret', 'get', 'kv/finance/api', '--json'], { token });
    expect(scopedRead.code).toBe(0);
    expect(Object.keys(JSON.parse(scopedRead.stdout).data)).toEqual(['api_key']);
    const denied = await h.cli(['secret', 'put', 'kv/finance/api', 'a=b'], { token });
    expect(denied.stderr).toContain('CUSTOS_ERR_PERMISSION_DENIED');
    const lookup = JSON.parse((await h.cli(['token', 'lookup', '--json'], { token })).stdout);
    expect(lookup.policies).toEqual(['finance-read']);
  });

  it('operator status, rotate-keyring, audit tail/verify/export/hash and offline verification', async () => {
    expect((await h.cli(['operator', 'status'])).stdout).toMatch(/sealed\s+false/);
    expect((await h.cli(['operator', 'rotate-keyring'])).stdout).toMatch(/term 2/);
    expect((await h.cli(['audit', 'tail', '-n', '5'])).stdout.split('\n').length).toBeGreaterThanOrEqual(5);
    expect((await h.cli(['audit', 'verify'])).stdout).toMatch(/^OK: /);
    const hash = (await h.cli(['audit', 'hash', 'some-known-value'])).stdout.trim();
    expect(hash).toMatch(/^hmac-sha256:[0-9a-f]{64}$/);
    const exported = join(h.dir, 'export.jsonl');
    expect((await h.cli(['audit', 'export', '--output', exported])).code).toBe(0);
    const keys = (await (await fetch(`${h.server.address}/v1/audit/public-keys`)).json()) as {
      keys: Array<{ public_key_pem: string }>;
    };
    const pem = join(h.dir, 'audit.pub');
    writeFileSync(pem, keys.keys[0]!.public_key_pem);
    const offline = await h.cli(['audit', 'verify', '--file', exported, '--public-key', pem]);
    expect(offline).toMatchObject({ code: 0 });
    expect(offline.stdout).toMatch(/^OK: /);

    // The stores keep events compact (docs/audit.md, "Stored form"); tail and
    // export still give the full, readable event.
    const tail = JSON.parse((await h.cli(['audit', 'tail', '-n', '5', '--json'])).stdout) as Array<{
      event: { type: string; time: string; auth?: unknown; request?: { route: string } };
    }>;
    expect(tail).toHaveLength(5);
    for (const { event } of tail) {
      expect(event.time).toMatch(/^\d{4}-\d\d-\d\dT/);
      if (event.type === 'request') expect(event.request?.route).toMatch(/^\/v1\//);
    }
    const records = readFileSync(exported, 'utf8')
      .split('\n')
      .filter((l) => l.includes('"kind":"record"'))
      .map((l) => JSON.parse(JSON.parse(l).event as string) as { type: string; auth?: unknown; details?: unknown });
    expect(records.some((e) => e.type === 'request' && e.auth !== undefined && e.details !== undefined)).toBe(true);
    // The server's own audit file is compact, and verifies offline as it is.
    const auditFile = join(h.dir, 'audit.jsonl');
    expect(readFileSync(auditFile, 'utf8')).toContain(',"e":{"v":1,');
    const fileCheck = await h.cli(['audit', 'verify', '--file', auditFile, '--public-key', pem]);
    expect(fileCheck).toMatchObject({ code: 0 });
    expect(fileCheck.stdout).toMatch(/^OK: /);
  });

  it('audit archive: the server archives and removes, the CLI downloads; verify says how many are archived; the archive verifies offline and a truncated one is named', async () => {
    const archive = join(h.dir, 'downloaded-1.jsonl.gz');
    const before = new Date(Date.now() + 60_000).toISOString();
    const run = await h.cli(['audit', 'archive', '--before', before, '--output', archive]);
    expect(run, run.stderr).toMatchObject({ code: 0 });
    expect(run.stdout).toMatch(/^archive 1 \(audit-archive-000001\.jsonl\.gz\): seqs 1–\d+/);
    expect((await h.cli(['audit', 'verify'])).stdout).toMatch(/^OK: .*records up to seq \d+ archived/);
    const keys = (await (await fetch(`${h.server.address}/v1/audit/public-keys`)).json()) as {
      keys: Array<{ public_key_pem: string }>;
    };
    const pem = join(h.dir, 'audit-archive.pub');
    writeFileSync(pem, keys.keys[0]!.public_key_pem);
    const offline = await h.cli(['audit', 'verify', '--file', archive, '--public-key', pem]);
    expect(offline, offline.stderr).toMatchObject({ code: 0 });
    expect(offline.stdout).toMatch(/^OK: .*1 archive in sequence/);
    const bytes = readFileSync(archive);
    writeFileSync(archive, bytes.subarray(0, Math.floor(bytes.length / 2)));
    const truncated = await h.cli(['audit', 'verify', '--file', archive, '--public-key', pem]);
    expect(truncated.code).not.toBe(0);
    expect(truncated.stdout).toMatch(/FAILED .* in .*downloaded-1\.jsonl\.gz.*archive-truncated/);
    expect((await h.cli(['audit', 'archive', '--before', 'yesterday'])).code).not.toBe(0);
  });
});
