import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createStorage } from '@custos/storage';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveServerConfig } from '../src/server-config.js';
import { startServer } from '../src/start-server.js';

describe('graceful shutdown', () => {
  const dir = mkdtempSync(join(tmpdir(), 'custos-shutdown-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('finishes in-flight requests, then seals the audit chain with a final checkpoint', async () => {
    const config = resolveServerConfig({ dev: true, data: dir, listen: '127.0.0.1:0' }, dir);
    const server = await startServer(config, pino({ level: 'silent' }));
    const token = readFileSync(join(dir, 'root-token'), 'utf8').trim();
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    const write = (i: number) =>
      fetch(`${server.address}/v1/secrets/data/kv/shutdown/s${i}`, {
        method: 'PUT',
        headers,
        body: JSON.stringify({ data: { v: `fake-${i}` } }),
      }).then(
        (r) => r.status,
        () => 'connection refused' as const,
      );
    for (let i = 0; i < 10; i++) expect(await write(i)).toBe(200);
    // An open event stream (it never ends by itself) must not hold the shutdown up.
    const events = await fetch(`${server.address}/v1/events`, { headers });
    const reader = events.body!.getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toContain('subscribed');
    const writes = Array.from({ length: 30 }, (_, i) => write(10 + i));
    // Close while the writes are in flight: each either completes or is refused
    // cleanly (503 while closing); none is cut off half-way.
    await new Promise((r) => setTimeout(r, 5));
    const started = Date.now();
    await server.close();
    expect(Date.now() - started).toBeLessThan(5_000);
    expect((await reader.read()).done).toBe(true);
    const statuses = [...Array(10).fill(200), ...(await Promise.all(writes))];
    expect(statuses.every((s) => s === 200 || s === 503 || s === 'connection refused')).toBe(true);

    const storage = createStorage(config.storage);
    try {
      const head = await storage.audit.head();
      const checkpoints = await storage.audit.checkpoints();
      // Every acknowledged event is covered by a signed checkpoint written at close.
      expect(checkpoints.at(-1)?.seq).toBe(head?.seq);
      for (let i = 0; i < 40; i++) {
        if (statuses[i] !== 200) continue;
        expect(await storage.entries.get('kv.meta', `kv/shutdown/s${i}`)).toBeDefined();
      }
    } finally {
      await storage.close();
    }
  });
});
