import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

// Runs the real `custos` command (built by `tsc -b`, which `npm test` runs first).
const bin = join(import.meta.dirname, '../bin/custos.js');

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });

/** Sends a signal and waits for the exit, even if the process is already gone. */
function stop(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(signal);
  return exited;
}

async function startServer(dir: string, port: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, [bin, 'server', '--dev', '--data', dir, '--listen', `127.0.0.1:${port}`], {
    stdio: 'ignore',
    env: { ...process.env, CUSTOS_LOG_LEVEL: 'warn' },
  });
  for (let i = 0; i < 300; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/v1/sys/health`)).status === 200) return child;
    } catch {}
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill('SIGKILL');
  throw new Error('server did not start');
}

describe('SIGKILL in the middle of a stream of writes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'custos-crash-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('keeps every acknowledged write, and the audit chain still verifies', async () => {
    const port = await freePort();
    const addr = `http://127.0.0.1:${port}`;
    let server = await startServer(dir, port);
    const token = readFileSync(join(dir, 'root-token'), 'utf8').trim();
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };

    const acknowledged = new Map<string, string>();
    let killed = false;
    let n = 0;
    const writer = async () => {
      while (!killed) {
        const i = n++;
        const path = `kv/crash/item-${i}`;
        const value = `fake-${i}-${Math.random().toString(36).slice(2)}`;
        try {
          const r = await fetch(`${addr}/v1/secrets/data/${path}`, {
            method: 'PUT',
            headers,
            body: JSON.stringify({ data: { v: value } }),
          });
          if (r.status === 200) acknowledged.set(path, value);
        } catch {
          // the connection died with the server: not acknowledged
        }
      }
    };
    const writers = Array.from({ length: 8 }, writer);
    await new Promise((r) => setTimeout(r, 1_500));
    await stop(server, 'SIGKILL');
    killed = true;
    await Promise.all(writers);
    expect(acknowledged.size).toBeGreaterThan(50);

    server = await startServer(dir, port);
    try {
      for (const [path, value] of acknowledged) {
        const r = await fetch(`${addr}/v1/secrets/data/${path}`, { headers });
        expect(r.status, path).toBe(200);
        expect(((await r.json()) as { data: { v: string } }).data.v).toBe(value);
      }
      const verify = (await (await fetch(`${addr}/v1/audit/verify`, { headers })).json()) as { ok: boolean };
      expect(verify).toMatchObject({ ok: true });
    } finally {
      await stop(server, 'SIGTERM');
    }
  }, 60_000);
});
