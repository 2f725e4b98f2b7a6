import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { hasPostgres, postgresUrl } from '../../../test-support/postgres.js';
import { resolveServerConfig } from '../src/server-config.js';
import { startServer } from '../src/start-server.js';

describe('egress configuration of the server', () => {
  const dirs: string[] = [];
  const tempDir = () => {
    const dir = mkdtempSync(join(tmpdir(), 'custos-egress-'));
    dirs.push(dir);
    return dir;
  };
  afterAll(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('merges --egress-allow with the config file, and refuses a malformed entry at start', () => {
    const dir = tempDir();
    const file = join(dir, 'custos.json');
    writeFileSync(file, JSON.stringify({ egress: { allow: ['10.0.0.0/8'], allow_public: false, timeout: '5s' } }));
    const config = resolveServerConfig({ config: file, egressAllow: ['127.0.0.1', '10.0.0.0/8'] }, dir);
    expect(config.egress).toEqual({ allow: ['10.0.0.0/8', '127.0.0.1'], allowPublic: false, timeoutMs: 5_000 });
    expect(resolveServerConfig({ dev: true, data: dir }, dir).egress).toEqual({
      allow: [],
      allowPublic: true,
      timeoutMs: 10_000,
    });
    expect(() => resolveServerConfig({ dev: true, data: dir, egressAllow: ['127.1'] }, dir)).toThrow(
      /egress allow entry "127.1" is not valid/,
    );
    writeFileSync(file, JSON.stringify({ egress: { allow: '127.0.0.1' } }));
    expect(() => resolveServerConfig({ config: file }, dir)).toThrow(/egress.allow is a list/);
  });

  it.skipIf(!hasPostgres())(
    'a dev server refuses a local database with the flag that allows it, and accepts it once allowed',
    async () => {
      for (const egressAllow of [[], ['127.0.0.1']]) {
        const dir = tempDir();
        const server = await startServer(
          resolveServerConfig({ dev: true, data: dir, listen: '127.0.0.1:0', egressAllow }, dir),
          pino({ level: 'silent' }),
        );
        try {
          const token = readFileSync(join(dir, 'root-token'), 'utf8').trim();
          const response = await fetch(`${server.address}/v1/engines/local`, {
            method: 'PUT',
            headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
            body: JSON.stringify({ type: 'postgres', url: postgresUrl() }),
          });
          const body = (await response.json()) as { error?: { code: string; message: string } };
          if (egressAllow.length === 0) {
            expect(response.status).toBe(403);
            expect(body.error?.code).toBe('CUSTOS_ERR_EGRESS_REFUSED');
            expect(body.error?.message).toContain('--egress-allow 127.0.0.1');
          } else {
            expect(response.status).toBe(200);
          }
        } finally {
          await server.close();
        }
      }
    },
  );
});
