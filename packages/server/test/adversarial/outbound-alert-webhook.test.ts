import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AlertWebhookReport, AlertWebhookSink, EgressPolicy, type Finding } from '@custos/core';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveServerConfig } from '../../src/server-config.js';

// Attack class: what the alert webhook can make custos send out, and to whom.
//
// The webhook URL is an operator's setting (the config file, never the API),
// and every delivery goes through the one egress policy: private and
// loopback destinations only when allowed, no redirects followed, no
// credentials in the URL, and by default no explanation (which may quote
// secret paths) in the body.

const finding: Finding = {
  id: `al_${'2'.repeat(24)}_first-access`,
  rule: 'first-access',
  severity: 'medium',
  time: new Date().toISOString(),
  state: 'open',
  subject: { role: 'x' },
  evidence: [{ seq: 7, hash: 'c'.repeat(64) }],
  explanation: 'Role x has never used kv/finance/payroll-admin before.',
};

async function listen(
  handler: Parameters<typeof createServer>[1],
): Promise<{ url: string; hits: string[]; server: Server }> {
  const hits: string[] = [];
  const server = createServer((req, res) => {
    hits.push(req.url ?? '');
    handler!(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, hits, server };
}

describe('the alert webhook cannot be turned against the network or leak', () => {
  const servers: Server[] = [];
  const dirs: string[] = [];
  afterAll(async () => {
    for (const s of servers) {
      s.closeAllConnections();
      await new Promise((resolve) => s.close(resolve));
    }
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('does not reach a loopback receiver the egress policy does not allow, and does not retry the refusal', async () => {
    const target = await listen((_req, res) => res.writeHead(204).end());
    servers.push(target.server);
    const reports: AlertWebhookReport[] = [];
    const sink = new AlertWebhookSink(new EgressPolicy(), {
      url: `${target.url}/hook`,
      secret: randomBytes(32),
      retryMs: [1, 1, 1],
      onReport: (r) => reports.push(r),
    });
    sink.offer(finding);
    await sink.drained();
    expect(target.hits).toEqual([]);
    expect(reports).toMatchObject([{ kind: 'failed', code: 'CUSTOS_ERR_EGRESS_REFUSED' }]);
    await sink.close();
  });

  it('does not follow a redirect to another destination', async () => {
    const elsewhere = await listen((_req, res) => res.writeHead(204).end());
    const redirecting = await listen((_req, res) => res.writeHead(307, { location: `${elsewhere.url}/stolen` }).end());
    servers.push(elsewhere.server, redirecting.server);
    const sink = new AlertWebhookSink(new EgressPolicy({ allow: ['127.0.0.1'] }), {
      url: `${redirecting.url}/hook`,
      secret: randomBytes(32),
      retryMs: [1],
    });
    sink.offer(finding);
    await sink.drained();
    expect(redirecting.hits).toEqual(['/hook']);
    expect(elsewhere.hits).toEqual([]);
    expect(sink.stats()).toMatchObject({ delivered: 0, failed: 1 });
    await sink.close();
  });

  it('sends no explanation (and so no secret path) unless the operator chose `full`', async () => {
    let body = '';
    const target = await listen((req, res) => {
      req.on('data', (c) => {
        body += c;
      });
      req.on('end', () => res.writeHead(204).end());
    });
    servers.push(target.server);
    const sink = new AlertWebhookSink(new EgressPolicy({ allow: ['127.0.0.1'] }), {
      url: target.url,
      secret: randomBytes(32),
    });
    sink.offer(finding);
    await sink.drained();
    expect(body).toContain('"rule":"first-access"');
    expect(body).not.toContain('kv/finance');
    await sink.close();
  });

  it('refuses a webhook URL with credentials, a non-HTTP URL or a bad include, at configuration', () => {
    const dir = mkdtempSync(join(tmpdir(), 'custos-webhook-config-'));
    dirs.push(dir);
    const file = join(dir, 'custos.json');
    const config = (webhook: Record<string, unknown>) => {
      writeFileSync(file, JSON.stringify({ alerts: { webhook } }));
      return () => resolveServerConfig({ config: file }, dir);
    };
    expect(config({ url: 'https://user:pw@hooks.example.test/x', secret_file: 'k' })).toThrow(/no credentials/);
    expect(config({ url: 'file:///etc/passwd', secret_file: 'k' })).toThrow(/http\(s\) URL/);
    expect(config({ url: 'https://hooks.example.test/x' })).toThrow(/secret_file/);
    expect(config({ url: 'https://hooks.example.test/x', secret_file: 'k', include: 'everything' })).toThrow(/include/);
    expect(config({ url: 'https://hooks.example.test/x', secret_file: 'k' })().alertWebhook).toEqual({
      url: 'https://hooks.example.test/x',
      secretFile: join(dir, 'k'),
      include: 'summary',
    });
    expect(
      () =>
        new AlertWebhookSink(new EgressPolicy(), { url: 'https://u:p@hooks.example.test/', secret: randomBytes(32) }),
    ).toThrow(RangeError);
  });
});
