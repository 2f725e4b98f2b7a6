import { createPublicKey, type KeyObject } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import {
  type AuditRecord,
  auditFilesInDirectory,
  formatAuditRecordLine,
  parseAuditFileLine,
  parseAuditLine,
  verifyAuditFiles,
} from '@custos/core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { fakeSecret, startTestServer } from '../test-server.js';

// Attack class: someone with write access to the audit directory (not the
// keys) hides what happened by removing, reordering, truncating or editing
// rotated audit files. Each is caught offline and names the file.

describe('rotated audit files: tampering shows and names the file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'custos-rotation-tamper-'));
  const pristine = join(dir, 'pristine');
  let publicKeys: Map<string, KeyObject>;
  let work: string;
  let files: string[];

  beforeAll(async () => {
    mkdirSync(pristine);
    const s = await startTestServer('sqlite', {
      audit: {
        file: join(pristine, 'audit.jsonl'),
        checkpointEvery: 20,
        // Small files: the compact stored form makes lines short.
        rotation: { maxBytes: 8 * 1024 },
      },
    });
    for (let i = 0; i < 120; i++) {
      const r = await s.call({
        method: 'PUT',
        url: `/v1/secrets/data/kv/rot/s${i}`,
        payload: { data: { v: fakeSecret('rot') } },
      });
      expect(r.statusCode).toBe(200);
    }
    const keys = (await s.call({ method: 'GET', url: '/v1/audit/public-keys', token: null })).json() as {
      keys: { key_id: string; public_key_pem: string }[];
    };
    publicKeys = new Map(keys.keys.map((k) => [k.key_id, createPublicKey(k.public_key_pem)]));
    await s.close();
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  beforeEach(async (context) => {
    work = join(dir, context.task.id);
    const names = (await auditFilesInDirectory(pristine)).map((f) => basename(f));
    mkdirSync(work);
    for (const n of names) copyFileSync(join(pristine, n), join(work, n));
    files = names.map((n) => join(work, n));
  });

  it('untouched: the directory verifies as one sequence of several files', async () => {
    expect(files.length).toBeGreaterThanOrEqual(4);
    expect(await verifyAuditFiles(files, { publicKeys })).toMatchObject({ ok: true, files: files.length });
  });

  it('a rotated file deleted → file-missing, between which files', async () => {
    unlinkSync(files[1]!);
    const report = await verifyAuditFiles(await auditFilesInDirectory(work), { publicKeys });
    expect(report).toMatchObject({ ok: false, problem: 'file-missing', file: files[2] });
    expect(!report.ok && report.detail).toContain(basename(files[0]!));
  });

  it('a rotated file renamed to sort later (reordered) → file-reordered', async () => {
    const moved = files[1]!.replace(/-(\d{6})\.jsonl$/, '-999999.jsonl').replace(/\d{8}T\d{6}Z/, '99991231T235959Z');
    copyFileSync(files[1]!, moved);
    unlinkSync(files[1]!);
    expect(await verifyAuditFiles(await auditFilesInDirectory(work), { publicKeys })).toMatchObject({
      ok: false,
      problem: 'file-reordered',
      file: files[2],
    });
  });

  it('records cut off the end of a rotated file → file-altered (truncated), naming it', async () => {
    const lines = readFileSync(files[0]!, 'utf8').split('\n');
    writeFileSync(files[0]!, `${lines.slice(0, -4).join('\n')}\n`);
    const report = await verifyAuditFiles(files, { publicKeys });
    expect(report).toMatchObject({ ok: false, problem: 'file-altered' });
    expect(!report.ok && report.detail).toMatch(
      new RegExp(`${basename(files[0]!)} changed after rotation \\(truncated`),
    );
  });

  it('one event edited in a rotated file → file-altered via its successor’s pin; on its own, altered at the edited line', async () => {
    const lines = readFileSync(files[1]!, 'utf8').split('\n');
    const i = lines.findIndex((l) => ['record', 'compact'].includes(parseAuditFileLine(l)?.kind ?? ''));
    const parsed = parseAuditFileLine(lines[i]!);
    if (parsed?.kind === 'compact') {
      // A compact line: the event's time (a number of fixed width) changed in its last digit.
      const value = JSON.parse(lines[i]!) as { e: { t: number } };
      const t = String(value.e.t);
      value.e.t = Number(`${t.slice(0, -1)}${t.endsWith('7') ? '8' : '7'}`);
      lines[i] = JSON.stringify(value);
    } else {
      const { record } = parseAuditLine(lines[i]!) as { record: AuditRecord };
      // Through the line codec, so the edit does not depend on the stored form: one character of the event.
      const at = record.event.search(/[0-9]/);
      const event = `${record.event.slice(0, at)}${record.event[at] === '7' ? '8' : '7'}${record.event.slice(at + 1)}`;
      lines[i] = formatAuditRecordLine({ ...record, event });
    }
    writeFileSync(files[1]!, lines.join('\n'));
    expect(await verifyAuditFiles(files, { publicKeys })).toMatchObject({ ok: false, problem: 'file-altered' });
    // On its own the edited file fails at the edited line.
    expect(await verifyAuditFiles([files[1]!], { publicKeys })).toMatchObject({
      ok: false,
      problem: 'altered',
      file: files[1],
      line: i + 1,
    });
  });

  it('an anchor rewritten to pin the edited predecessor → its signature fails', async () => {
    const anchorLine = readFileSync(files[2]!, 'utf8').split('\n')[0]!;
    const forged = anchorLine.replace(/"prevFileDigest":"[0-9a-f]{64}"/, `"prevFileDigest":"${'a'.repeat(64)}"`);
    writeFileSync(files[2]!, readFileSync(files[2]!, 'utf8').replace(anchorLine, forged));
    expect(await verifyAuditFiles(files, { publicKeys })).toMatchObject({
      ok: false,
      problem: 'anchor-invalid',
      file: files[2],
      line: 1,
    });
  });
});
