import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { requestWebhookOptions, resolveRequestWebhook } from '../../src/request-webhook-config.js';
import { jitFixture } from '../access-request-support.js';
import { startTestServer, type TestServer } from '../test-server.js';

// Attack class: what the access-request webhook can make custos send out,
// and to whom. Its URL is an operator's (the config file, never the API);
// every delivery passes the egress policy; the body carries ids, the scope
// and a console link — never the agent's reason, never a token.

interface Received {
  headers: IncomingMessage['headers'];
  body: string;
}

async function receiver(): Promise<{ url: string; got: Received[]; server: Server }> {
  const got: Received[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      got.push({ headers: req.headers, body });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, got, server };
}

const until = async (check: () => boolean, ms = 5_000) => {
  const end = Date.now() + ms;
  while (!check() && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
};

describe('the access-request webhook', () => {
  const servers: Server[] = [];
  const nodes: TestServer[] = [];
  afterAll(async () => {
    for (const n of nodes) await n.close();
    for (const s of servers) {
      s.closeAllConnections();
      await new Promise((resolve) => s.close(resolve));
    }
  });

  it('POSTs each new request, HMAC-signed, with the console link and without the reason or any token', async () => {
    const target = await receiver();
    servers.push(target.server);
    const secret = randomBytes(32);
    const s = await startTestServer('sqlite', {
      issuer: 'https://custos.example.test/prefix',
      requestWebhook: { url: `${target.url}/hook`, secret },
    });
    nodes.push(s);
    const f = await jitFixture(s);
    const task = await f.startTask();
    const reason = `fake-reason-${randomBytes(6).toString('hex')}`;
    const { request } = await f.ok(await f.request(task.token, { scope: 'read:kv/finance/ledger', reason }), 201);
    await until(() => target.got.length > 0);
    expect(target.got).toHaveLength(1);
    const [hit] = target.got as [Received];
    const expected = createHmac('sha256', secret).update(hit.body).digest('hex');
    expect(hit.headers['x-custos-signature']).toBe(`sha256=${expected}`);
    expect(hit.headers['user-agent']).toBe('custos-requests');
    const body = JSON.parse(hit.body);
    expect(body).toMatchObject({
      type: 'request.created',
      request: { id: request.id, task_id: task.id, scope: 'read:kv/finance/ledger', status: 'pending' },
      console_url: `https://custos.example.test/prefix/ui/#/requests/${request.id}`,
      delivery: expect.any(String),
      sent_at: expect.any(String),
    });
    expect(hit.body).not.toContain(reason);
    expect(hit.body).not.toContain(task.token);
    // A decision is not re-sent to the webhook (the event stream carries it).
    await f.ok(await f.call('POST', `/v1/requests/${request.id}/approve`, f.approver, {}));
    await new Promise((r) => setTimeout(r, 200));
    expect(target.got).toHaveLength(1);
  });

  it('does not reach a loopback receiver the egress policy refuses; the request is still filed', async () => {
    const target = await receiver();
    servers.push(target.server);
    const s = await startTestServer('sqlite', {
      egress: {},
      requestWebhook: { url: `${target.url}/hook`, secret: randomBytes(32), retryMs: [1, 1] },
    });
    nodes.push(s);
    const f = await jitFixture(s);
    const task = await f.startTask();
    const created = await f.request(task.token, { scope: 'read:kv/finance/ledger', reason: 'r' });
    expect(created.statusCode).toBe(201);
    await new Promise((r) => setTimeout(r, 300));
    expect(target.got).toEqual([]);
  });

  it('the config refuses a URL with credentials, a missing key and a short key', () => {
    const dir = mkdtempSync(join(tmpdir(), 'custos-request-webhook-'));
    try {
      expect(() => resolveRequestWebhook({ url: 'https://u:p@hooks.example.test/', secret_env: 'K' }, dir)).toThrow(
        /credentials/,
      );
      expect(() => resolveRequestWebhook({ url: 'ftp://hooks.example.test/', secret_env: 'K' }, dir)).toThrow(/http/);
      expect(() => resolveRequestWebhook({ url: 'https://hooks.example.test/' }, dir)).toThrow(
        /secret_file or secret_env/,
      );
      const short = join(dir, 'short');
      writeFileSync(short, 'too-short\n');
      const config = resolveRequestWebhook({ url: 'https://hooks.example.test/', secret_file: 'short' }, dir);
      expect(() => requestWebhookOptions(config!, { warn: () => undefined })).toThrow(/32 bytes/);
      const fromEnv = resolveRequestWebhook(
        { url: 'https://hooks.example.test/', secret_env: 'CUSTOS_TEST_HOOK_KEY' },
        dir,
      );
      const key = randomBytes(24).toString('hex');
      const options = requestWebhookOptions(fromEnv!, { warn: () => undefined }, { CUSTOS_TEST_HOOK_KEY: key });
      expect(Buffer.from(options.secret).toString('utf8')).toBe(key);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
