import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CertificateAuthority } from '@custos/core';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveServerConfig } from '../src/server-config.js';
import { type RunningServer, startServer } from '../src/start-server.js';

describe('TLS listener from certificate and key files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'custos-tls-'));
  let server: RunningServer | undefined;
  afterAll(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves HTTPS with the configured certificate', async () => {
    const ca = await CertificateAuthority.create({ trustDomain: 'tls.test' });
    const leaf = await ca.issueServerCertificate({ ipAddresses: ['127.0.0.1'] });
    writeFileSync(join(dir, 'server.crt'), leaf.certPem);
    writeFileSync(join(dir, 'server.key'), leaf.keyPem, { mode: 0o600 });
    writeFileSync(
      join(dir, 'custos.json'),
      JSON.stringify({
        listen: '127.0.0.1:0',
        seal: 'dev',
        data_dir: join(dir, 'data'),
        tls: { cert: join(dir, 'server.crt'), key: join(dir, 'server.key') },
      }),
    );
    const config = resolveServerConfig({ config: join(dir, 'custos.json') }, dir);
    server = await startServer(config, pino({ level: 'silent' }));
    expect(server.address).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const port = Number(new URL(server.address).port);
    const body = await new Promise<string>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path: '/v1/sys/health', ca: ca.certPem }, (res) => {
        let text = '';
        res.on('data', (c) => {
          text += c;
        });
        res.on('end', () => resolve(text));
      });
      req.on('error', reject);
      req.end();
    });
    expect(JSON.parse(body)).toMatchObject({ initialized: true, sealed: false });
    // A client that does not trust the certificate is refused by TLS itself.
    await expect(
      new Promise((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port, path: '/v1/sys/health' }, resolve);
        req.on('error', reject);
        req.end();
      }),
    ).rejects.toThrow();
  });
});
