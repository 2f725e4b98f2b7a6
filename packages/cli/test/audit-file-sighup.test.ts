import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAuditFileAnchorLine, parseAuditFileLine } from '@custos/core';
import { afterAll, describe, expect, it } from 'vitest';

// The real `custos server` process (built by `tsc -b`), its audit file
// renamed as logrotate does, then SIGHUP: it must open a new file at the
// configured path, anchored to the renamed one, and `custos audit verify`
// must accept both as one sequence.
const bin = join(import.meta.dirname, '../bin/custos.js');

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });

async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined): Promise<T> {
  for (let i = 0; i < 200; i++) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('custos server reopens its audit file on SIGHUP (logrotate)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'custos-sighup-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('rename + SIGHUP: a new anchored file at the path, both verify in sequence, nothing lost or doubled', async () => {
    const port = await freePort();
    const addr = `http://127.0.0.1:${port}`;
    const config = join(dir, 'custos.json');
    writeFileSync(config, JSON.stringify({ audit: { file: { path: 'audit.jsonl' } } }));
    const server: ChildProcess = spawn(
      process.execPath,
      [bin, 'server', '--dev', '--config', config, '--data', join(dir, 'data'), '--listen', `127.0.0.1:${port}`],
      { stdio: 'ignore', env: { ...process.env, CUSTOS_LOG_LEVEL: 'warn' } },
    );
    const exited = new Promise<number | null>((resolve) => server.once('exit', (code) => resolve(code)));
    try {
      await until('the server', async () =>
        (await fetch(`${addr}/v1/sys/health`).catch(() => undefined))?.status === 200 ? true : undefined,
      );
      const token = readFileSync(join(dir, 'data', 'root-token'), 'utf8').trim();
      const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
      const write = async (i: number) => {
        const r = await fetch(`${addr}/v1/secrets/data/kv/sighup/s${i}`, {
          method: 'PUT',
          headers,
          body: JSON.stringify({ data: { v: `fake-${i}` } }),
        });
        expect(r.status).toBe(200);
      };
      for (let i = 0; i < 15; i++) await write(i);

      const path = join(dir, 'data', 'audit.jsonl');
      renameSync(path, `${path}.1`);
      server.kill('SIGHUP');
      const anchor = await until('the reopened file', () => {
        try {
          return parseAuditFileAnchorLine(readFileSync(path, 'utf8').split('\n')[0]!);
        } catch {
          return undefined;
        }
      });
      expect(anchor.file).toBe(1);
      for (let i = 15; i < 30; i++) await write(i);

      const keys = (await (await fetch(`${addr}/v1/audit/public-keys`)).json()) as {
        keys: { public_key_pem: string }[];
      };
      const pem = join(dir, 'audit-key.pem');
      writeFileSync(pem, keys.keys.map((k) => k.public_key_pem).join(''));
      server.kill('SIGTERM');
      expect(await exited).toBe(0);

      const verify = (...files: string[]) =>
        JSON.parse(
          execFileSync(process.execPath, [bin, 'audit', 'verify', '--json', '--public-key', pem, '--file', ...files], {
            encoding: 'utf8',
          }),
        );
      expect(verify(`${path}.1`, path)).toMatchObject({ ok: true, files: 2, unlinkedFiles: 0 });
      // Each record once across the two files, in order. The file holds records in the compact form (and full
      // records where one cannot be compacted): both count. 30 writes are at least 30 records (and their reads).
      const seqs = [`${path}.1`, path].flatMap((f) =>
        readFileSync(f, 'utf8')
          .split('\n')
          .map((l) => parseAuditFileLine(l))
          .flatMap((l) => (l?.kind === 'record' ? [l.record.seq] : l?.kind === 'compact' ? [l.seq] : [])),
      );
      expect(seqs.length).toBeGreaterThanOrEqual(30);
      expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1));
      expect(readdirSync(join(dir, 'data')).filter((n) => n.startsWith('audit'))).toEqual([
        'audit.jsonl',
        'audit.jsonl.1',
      ]);
      // Given in the wrong order, the verifier says which file is out of place.
      let failed: { stdout: string } | undefined;
      try {
        verify(path, `${path}.1`);
      } catch (error) {
        failed = error as { stdout: string };
      }
      expect(JSON.parse(failed!.stdout)).toMatchObject({ ok: false, problem: 'anchor-missing', file: `${path}.1` });
    } finally {
      if (server.exitCode === null && server.signalCode === null) server.kill('SIGKILL');
    }
  });
});
