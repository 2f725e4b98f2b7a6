import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveServerConfig } from '../src/server-config.js';
import { startServer } from '../src/start-server.js';

describe('one server per data directory', () => {
  const dir = mkdtempSync(join(tmpdir(), 'custos-single-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('refuses a second server on the same SQLite file while the first runs, and lets one start after', async () => {
    const config = resolveServerConfig({ dev: true, data: dir, listen: '127.0.0.1:0' }, dir);
    const first = await startServer(config, pino({ level: 'silent' }));
    try {
      // Two servers on one file would each extend the audit chain from their own head.
      await expect(startServer(config, pino({ level: 'silent' }))).rejects.toMatchObject({
        code: 'CUSTOS_ERR_STORAGE',
        message: expect.stringContaining('The database file is in use by another process.'),
      });
      const token = readFileSync(join(dir, 'root-token'), 'utf8').trim();
      const health = await fetch(`${first.address}/v1/sys/health`, { headers: { authorization: `Bearer ${token}` } });
      expect(health.status).toBe(200);
    } finally {
      await first.close();
    }
    const next = await startServer(config, pino({ level: 'silent' }));
    await next.close();
  }, 30_000);
});
