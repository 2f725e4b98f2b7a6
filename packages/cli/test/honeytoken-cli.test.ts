import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Finding } from '@custos/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evidenceEvent as evidenceOf, raisedSince } from '../../../test-support/finding-evidence.js';
import { startCliServer } from './cli-harness.js';

// `custos honeytoken` and the two CLI touches — a honeytoken's value found by `custos scan --against-vault` in a
// file, or seen by `custos redact --against-vault` in a stream — against a real server (dev seal, SQLite): each
// raises a critical `honeytoken` finding whose evidence is the server's record of the report.

describe('custos honeytoken, and honeytokens found by scan and redact', () => {
  let h: Awaited<ReturnType<typeof startCliServer>>;
  const alerts = async () => {
    await h.server.node.services().anomaly!.idle();
    const r = await h.cli(['alerts', 'list', '--rule', 'honeytoken', '--json']);
    expect(r.code, r.stderr).toBe(0);
    return (JSON.parse(r.stdout) as { alerts: Finding[] }).alerts;
  };
  const evidenceEvent = (finding: Finding) => evidenceOf(h.server.node.services().storage.audit, finding);
  const since = async (before: readonly Finding[]) => raisedSince(before, await alerts());

  beforeAll(async () => {
    h = await startCliServer();
  });
  afterAll(async () => {
    await h?.close();
  });

  it('create (value shown once), list, delete', async () => {
    const created = await h.cli(['honeytoken', 'create', 'kv/cli/decoy', '--kind', 'aws', '--json']);
    expect(created.code, created.stderr).toBe(0);
    const body = JSON.parse(created.stdout) as { path: string; kind: string; data: Record<string, string> };
    expect(body).toMatchObject({ path: 'kv/cli/decoy', kind: 'aws' });
    expect(body.data.access_key_id).toMatch(/^AKIA[A-Z2-7]{16}$/);
    const human = await h.cli(['honeytoken', 'create', 'kv/cli/other', '--kind', 'generic']);
    expect(human.stdout).toBe('Created honeytoken kv/cli/other (generic)\n');
    const list = await h.cli(['honeytoken', 'list']);
    expect(list.stdout).toMatch(/^kv\/cli\/decoy {2}aws {2}\S+ {2}token:acc_/m);
    expect(list.stdout).not.toContain(body.data.access_key_id);
    expect((await h.cli(['honeytoken', 'delete', 'kv/cli/decoy'])).code).toBe(0);
    expect((await h.cli(['honeytoken', 'list'])).stdout).not.toContain('kv/cli/decoy');
    const bad = await h.cli(['honeytoken', 'create', 'kv/cli/x', '--kind', 'ssh']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--kind is one of aws, openai, db-url, generic');
  });

  it('custos scan --against-vault finds a planted decoy in a file and reports it: a critical finding', async () => {
    const created = await h.cli(['honeytoken', 'create', 'kv/ci/deploy-key', '--kind', 'aws', '--show-value']);
    const secretKey = /secret_access_key\s+(\S+)/.exec(created.stdout)![1]!;
    const keyId = /access_key_id\s+(\S+)/.exec(created.stdout)![1]!;
    mkdirSync(join(h.dir, 'repo'));
    writeFileSync(
      join(h.dir, 'repo', 'credentials'),
      `[default]\naws_access_key_id = ${keyId}\naws_secret_access_key = ${secretKey}\n`,
    );
    const before = await alerts();
    const scan = await h.cli(['scan', join(h.dir, 'repo'), '--against-vault', '--format', 'json', '--no-progress']);
    expect(scan.code, scan.stderr).toBe(1);
    expect(scan.stderr).toBe('');
    expect(scan.stdout).toContain('vault:kv/ci/deploy-key#');
    const raised = await since(before);
    expect(raised).toHaveLength(1);
    expect(raised[0]).toMatchObject({ rule: 'honeytoken', severity: 'critical' });
    expect(raised[0]!.subject.token_accessor).toMatch(/^acc_/);
    expect(raised[0]!.explanation).toContain('found by `custos scan`');
    const event = await evidenceEvent(raised[0]!);
    expect(event).toMatchObject({
      request: { route: '/v1/scan/matches', path: 'kv/ci/deploy-key' },
      details: { phase: 'path_report', reported_by: 'scan' },
    });
  });

  it('custos scan finds a db-url decoy password inside a connection string', async () => {
    const created = await h.cli([
      'honeytoken',
      'create',
      'kv/ci/legacy-db',
      '--kind',
      'db-url',
      '--host',
      'db.internal',
      '--json',
    ]);
    const { url } = (JSON.parse(created.stdout) as { data: { url: string } }).data;
    mkdirSync(join(h.dir, 'app'));
    writeFileSync(join(h.dir, 'app', 'settings.py'), `DATABASES = {"default": "${url}"}\n`);
    const before = await alerts();
    const scan = await h.cli(['scan', join(h.dir, 'app'), '--against-vault', '--format', 'json', '--no-progress']);
    expect(scan.code).toBe(1);
    expect(scan.stdout).toContain('vault:kv/ci/legacy-db#password');
    const raised = await since(before);
    expect(raised).toHaveLength(1);
    expect((await evidenceEvent(raised[0]!)).request.path).toBe('kv/ci/legacy-db');
  });

  it('custos redact --against-vault sees a decoy in its input, redacts as always, and reports it', async () => {
    const created = await h.cli(['honeytoken', 'create', 'kv/ci/openai-legacy', '--kind', 'openai', '--json']);
    const key = (JSON.parse(created.stdout) as { data: { api_key: string } }).data.api_key;
    const before = await alerts();
    const redact = await h.cli(['redact', '--against-vault'], {
      stdin: `calling the API with ${key.slice(0, 60)}`.concat(`${key.slice(60)} now\nand more output\n`),
    });
    expect(redact.code, redact.stderr).toBe(0);
    expect(redact.stdout).not.toContain(key);
    expect(redact.stdout).toContain('[REDACTED:openai-key]');
    const raised = await since(before);
    expect(raised).toHaveLength(1);
    expect(raised[0]!.explanation).toContain('found by `custos redact`');
    expect(await evidenceEvent(raised[0]!)).toMatchObject({
      request: { route: '/v1/scan/matches', path: 'kv/ci/openai-legacy' },
      details: { reported_by: 'redact' },
    });
    // Without CUSTOS_TOKEN it is a usage error, before anything is read.
    const noToken = await h.cli(['redact', '--against-vault'], { env: { CUSTOS_TOKEN: '' }, stdin: 'x' });
    expect(noToken.code).toBe(2);
    expect(noToken.stderr).toContain('--against-vault needs CUSTOS_TOKEN');
  });
});
