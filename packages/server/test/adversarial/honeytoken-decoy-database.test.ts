import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveServerConfig } from '../../src/server-config.js';
import { createLogger, type RunningServer, startServer } from '../../src/start-server.js';

// The decoy database endpoint (`--decoy-db-listen`) that db-url honeytokens
// point at: a real PostgreSQL client logs in with the decoy's URL, is refused
// as a wrong password would be, and custos raises a critical finding — the
// password reaching the audit trail only as its HMAC. Malformed clients are
// refused without a crash.

/** Everything a client gets until the endpoint closes the connection. */
function exchange(port: number, ...writes: Buffer[]): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => {
      for (const w of writes) socket.write(w);
    });
    const got: Buffer[] = [];
    socket.on('data', (chunk) => got.push(chunk));
    socket.on('close', () => resolve(Buffer.concat(got)));
    socket.on('error', reject);
  });
}
const int32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};

describe('the decoy database endpoint of db-url honeytokens', () => {
  let dir: string;
  let server: RunningServer;
  let root: string;
  let port: number;
  const api = async (method: string, path: string, body?: unknown) => {
    const r = await fetch(`${server.address}${path}`, {
      method,
      headers: { authorization: `Bearer ${root}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    return { status: r.status, body: (await r.json()) as Record<string, unknown> };
  };
  const alerts = async () => {
    await server.node.services().anomaly!.idle();
    return (await api('GET', '/v1/alerts')).body.alerts as { rule: string; severity: string; explanation: string }[];
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'custos-decoy-db-'));
    server = await startServer(
      resolveServerConfig({ dev: true, data: dir, listen: '127.0.0.1:0', decoyDbListen: '127.0.0.1:0' }, dir),
      createLogger('silent'),
    );
    root = readFileSync(join(dir, 'root-token'), 'utf8').trim();
    port = Number(server.decoyDb!.address.split(':').at(-1));
  });
  afterAll(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a login with the decoy URL is refused like a wrong password and raises a critical finding', async () => {
    const created = await api('POST', '/v1/honeytokens', {
      path: 'kv/finance/legacy-db',
      kind: 'db-url',
      host: server.decoyDb!.address,
    });
    expect(created.status, JSON.stringify(created.body)).toBe(200);
    const url = String((created.body.data as { url: string }).url);
    expect(url).toMatch(new RegExp(`^postgres://[^:]+:[^@]+@${server.decoyDb!.address}/`));
    const client = new pg.Client({ connectionString: url, ssl: false, connectionTimeoutMillis: 5_000 });
    client.on('error', () => undefined);
    const refused = await client.connect().then(
      () => undefined,
      (e: unknown) => e as { code?: string; message?: string },
    );
    expect(refused).toMatchObject({ code: '28P01' });
    expect(refused?.message).toMatch(/password authentication failed for user/);
    const found = (await alerts()).filter((a) => a.rule === 'honeytoken');
    expect(found).toHaveLength(1);
    expect(found[0]).toMatchObject({ severity: 'critical' });
    expect(found[0]!.explanation).toMatch(/decoy database endpoint/);
    // The password offered is in the trail only as its HMAC.
    const password = decodeURIComponent(new URL(url).password);
    const trail = await (
      await fetch(`${server.address}/v1/audit/export`, { headers: { authorization: `Bearer ${root}` } })
    ).text();
    expect(trail).toContain('decoy:postgres');
    expect(trail).not.toContain(password);
  });

  it('declines TLS as a server without it does, then takes the startup as usual', async () => {
    const ssl = Buffer.concat([int32(8), int32(80_877_103)]);
    const startupBody = Buffer.from('user\0probe\0database\0x\0\0');
    const startup = Buffer.concat([int32(8 + startupBody.length), int32(196_608), startupBody]);
    const got = await exchange(port, ssl, startup, Buffer.from([0x70, 0, 0, 0, 9, 0x61, 0x62, 0x63, 0x64, 0]));
    expect(got.subarray(0, 1).toString()).toBe('N');
    // AuthenticationCleartextPassword, then the 28P01 ErrorResponse.
    expect([...got.subarray(1, 10)]).toEqual([0x52, 0, 0, 0, 8, 0, 0, 0, 3]);
    expect(got.subarray(10).toString('latin1')).toContain('C28P01');
  });

  it('refuses garbage, an oversized length and a cancel request without a crash, and raises nothing for them', async () => {
    const before = (await alerts()).length;
    for (const bytes of [
      Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'),
      Buffer.concat([int32(1_000_000), int32(196_608)]),
      Buffer.concat([int32(16), int32(80_877_102), int32(1), int32(2)]),
      Buffer.concat([int32(8), int32(12_345)]),
    ]) {
      const got = await exchange(port, bytes);
      expect(got.length === 0 || got.toString('latin1').includes('C08P01')).toBe(true);
    }
    // More than the 8 KiB a client may send.
    const flood = await exchange(port, Buffer.alloc(9 * 1024, 0x41));
    expect(flood.toString('latin1')).toContain('C08P01');
    expect((await alerts()).length).toBe(before);
    // Still serving.
    expect((await api('GET', '/v1/sys/health')).status).toBe(200);
  });

  it('a client that connects and stays silent does not hold up closing custos', async () => {
    const d = mkdtempSync(join(tmpdir(), 'custos-decoy-db-'));
    const other = await startServer(
      resolveServerConfig({ dev: true, data: d, listen: '127.0.0.1:0', decoyDbListen: '127.0.0.1:0' }, d),
      createLogger('silent'),
    );
    const silent = connect(Number(other.decoyDb!.address.split(':').at(-1)), '127.0.0.1');
    silent.on('error', () => undefined);
    await new Promise((resolve) => silent.once('connect', resolve));
    const started = Date.now();
    await other.close();
    // Well under the 10 s a client has to speak: the silent connection was cut, not waited for.
    expect(Date.now() - started).toBeLessThan(8_000);
    silent.destroy();
    rmSync(d, { recursive: true, force: true });
  });
});
