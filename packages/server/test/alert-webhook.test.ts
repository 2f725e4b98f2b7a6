import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveServerConfig } from '../src/server-config.js';
import { type RunningServer, startServer } from '../src/start-server.js';

// The webhook alert sink configured as an operator does (config file, key
// file), on a real server, posting to a real receiver on loopback.

interface Receiver {
  url: string;
  received: { body: string; signature: string }[];
  close(): Promise<void>;
}

async function receiver(mode: 'answer' | 'hang'): Promise<Receiver> {
  const received: Receiver['received'] = [];
  const open: ServerResponse[] = [];
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      received.push({ body, signature: String(req.headers['x-custos-signature']) });
      if (mode === 'hang') open.push(res);
      else res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/alerts`,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        for (const res of open) res.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe('the alert webhook on a running server', () => {
  const cleanup: (() => Promise<void> | void)[] = [];
  afterAll(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  async function serverWithWebhook(url: string) {
    const dir = mkdtempSync(join(tmpdir(), 'custos-webhook-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const key = randomBytes(32).toString('hex');
    writeFileSync(join(dir, 'webhook.key'), `${key}\n`, { mode: 0o600 });
    writeFileSync(
      join(dir, 'custos.json'),
      JSON.stringify({
        egress: { allow: ['127.0.0.1'], timeout: '2s' },
        alerts: { webhook: { url, secret_file: 'webhook.key' } },
      }),
    );
    const lines: string[] = [];
    const logger = pino(
      { level: 'info' },
      new Writable({
        write(chunk, _e, done) {
          lines.push(String(chunk));
          done();
        },
      }),
    );
    const server: RunningServer = await startServer(
      resolveServerConfig({ dev: true, data: dir, listen: '127.0.0.1:0', config: join(dir, 'custos.json') }, dir),
      logger,
    );
    cleanup.push(() => server.close());
    const root = readFileSync(join(dir, 'root-token'), 'utf8').trim();
    const call = async (method: string, path: string, token: string, body?: unknown) =>
      fetch(`${server.address}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
        ...(body ? { body: JSON.stringify(body) } : {}),
      });
    await call('PUT', '/v1/policies/none', root, { policy: 'forbid(principal, action, resource);' });
    await call('PUT', '/v1/roles/agent', root, { policies: ['none'], max_ttl: '15m' });
    /** Starts a task, revokes it and uses its token: one dead-task-token finding. */
    const deadTokenUse = async () => {
      const task = (await (await call('POST', '/v1/roles/agent/tasks', root, { ttl: '5m' })).json()) as {
        token: string;
        task_id: string;
      };
      await call('POST', `/v1/tasks/${task.task_id}/revoke`, root);
      return (await call('GET', '/v1/secrets/data/kv/app/x', task.token)).status;
    };
    return { server, key, lines, deadTokenUse };
  }

  it('delivers findings signed with the configured key', async () => {
    const r = await receiver('answer');
    cleanup.push(r.close);
    const { server, key, deadTokenUse } = await serverWithWebhook(r.url);
    expect(await deadTokenUse()).toBe(401);
    await server.node.services().anomaly!.idle();
    // Delivery follows storage; wait for the receiver (bounded), asserting nothing about how long it took.
    for (let i = 0; i < 200 && r.received.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 25));
    expect(r.received).toHaveLength(1);
    const { body, signature } = r.received[0]!;
    expect(signature).toBe(`sha256=${createHmac('sha256', key).update(body).digest('hex')}`);
    expect(JSON.parse(body)).toMatchObject({
      type: 'alert.raised',
      alert: { rule: 'dead-task-token', severity: 'high' },
    });
  });

  it('a receiver that hangs delays no request: every refusal is answered, the queue holds the rest', async () => {
    const r = await receiver('hang');
    cleanup.push(r.close);
    const { server, key, lines, deadTokenUse } = await serverWithWebhook(r.url);
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push(await deadTokenUse());
    expect(statuses).toEqual([401, 401, 401, 401, 401]);
    await server.node.services().anomaly!.idle();
    const health = await fetch(`${server.address}/v1/sys/health`);
    expect(health.status).toBe(200);
    // Every finding was raised and logged although none could be delivered.
    expect(lines.filter((l) => l.includes('anomaly alert raised'))).toHaveLength(5);
    // The log never holds the signing key.
    for (const line of lines) expect(line).not.toContain(key);
  });
});
