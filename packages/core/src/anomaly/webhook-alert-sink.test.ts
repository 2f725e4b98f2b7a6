import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { EgressPolicy } from '../egress/egress-policy.js';
import type { Finding } from './finding.js';
import { ALERT_WEBHOOK_SIGNATURE_HEADER, type AlertWebhookReport, AlertWebhookSink } from './webhook-alert-sink.js';

// The webhook sink against a real HTTP receiver on loopback, through the real egress policy.

interface Received {
  body: string;
  signature: string | undefined;
}

/** A receiver whose answer per request the test decides (`hang`: never answers). */
async function receiver(answer: (n: number) => number | 'hang') {
  const received: Received[] = [];
  const hanging: ServerResponse[] = [];
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      received.push({ body, signature: req.headers[ALERT_WEBHOOK_SIGNATURE_HEADER] as string | undefined });
      const status = answer(received.length);
      if (status === 'hang') hanging.push(res);
      else res.writeHead(status).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/custos`;
  return {
    url,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        for (const res of hanging) res.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const finding = (i: number, explanation = `Role x has never used kv/finance/k${i} before.`): Finding => ({
  id: `al_${i.toString(16).padStart(24, '0')}_first-access`,
  rule: 'first-access',
  severity: 'medium',
  time: new Date().toISOString(),
  state: 'open',
  subject: { identity: 'spiffe://custos.local/agent/x', role: 'x' },
  evidence: [{ seq: i, hash: 'b'.repeat(64) }],
  explanation,
});

const loopback = (timeoutMs = 2_000) => new EgressPolicy({ allow: ['127.0.0.1'], timeoutMs });
const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0)) await c();
});

describe('AlertWebhookSink', () => {
  it('POSTs each finding signed with HMAC-SHA256 over the exact body, without the explanation by default', async () => {
    const r = await receiver(() => 204);
    const secret = randomBytes(32);
    const sink = new AlertWebhookSink(loopback(), { url: r.url, secret });
    cleanup.push(r.close, () => sink.close());
    sink.offer(finding(1));
    sink.offer(finding(2));
    await sink.drained();
    expect(sink.stats()).toMatchObject({ delivered: 2, failed: 0, dropped: 0, queued: 0 });
    const deliveries = new Set<string>();
    for (const { body, signature } of r.received) {
      const expected = Buffer.from(`sha256=${createHmac('sha256', secret).update(body).digest('hex')}`);
      expect(signature).toBeDefined();
      expect(timingSafeEqual(Buffer.from(signature!), expected)).toBe(true);
      const parsed = JSON.parse(body);
      expect(parsed).toMatchObject({ type: 'alert.raised', alert: { rule: 'first-access', evidence: [{}] } });
      expect(parsed.alert.explanation).toBeUndefined();
      expect(body).not.toContain('kv/finance');
      deliveries.add(parsed.delivery);
    }
    // Each delivery is unique, so a receiver can refuse a replay.
    expect(deliveries.size).toBe(2);
    // A wrong key does not verify.
    const wrong = createHmac('sha256', randomBytes(32)).update(r.received[0]!.body).digest('hex');
    expect(r.received[0]!.signature).not.toBe(`sha256=${wrong}`);
  });

  it('sends the explanation only when configured to', async () => {
    const r = await receiver(() => 200);
    const sink = new AlertWebhookSink(loopback(), { url: r.url, secret: randomBytes(32), include: 'full' });
    cleanup.push(r.close, () => sink.close());
    sink.offer(finding(3));
    await sink.drained();
    expect(JSON.parse(r.received[0]!.body).alert.explanation).toContain('kv/finance/k3');
  });

  it('retries 5xx and 429 with backoff, then delivers', async () => {
    const r = await receiver((n) => (n === 1 ? 503 : n === 2 ? 429 : 200));
    const sink = new AlertWebhookSink(loopback(), { url: r.url, secret: randomBytes(32), retryMs: [10, 10, 10] });
    cleanup.push(r.close, () => sink.close());
    sink.offer(finding(4));
    await sink.drained();
    expect(r.received).toHaveLength(3);
    expect(sink.stats()).toMatchObject({ delivered: 1, failed: 0 });
    // The same delivery each time: one id, one signature.
    expect(new Set(r.received.map((x) => x.body)).size).toBe(1);
  });

  it('gives up after the retries on a receiver that is down, and reports it', async () => {
    const r = await receiver(() => 200);
    await r.close();
    const reports: AlertWebhookReport[] = [];
    const sink = new AlertWebhookSink(loopback(), {
      url: r.url,
      secret: randomBytes(32),
      retryMs: [5, 5],
      onReport: (report) => reports.push(report),
    });
    cleanup.push(() => sink.close());
    sink.offer(finding(5));
    await sink.drained();
    expect(sink.stats()).toMatchObject({ delivered: 0, failed: 1 });
    expect(reports).toEqual([
      { kind: 'failed', code: 'CUSTOS_ERR_EGRESS_FAILED', stats: { queued: 0, delivered: 0, failed: 1, dropped: 0 } },
    ]);
  });

  it('does not retry a 4xx refusal', async () => {
    const r = await receiver(() => 401);
    const sink = new AlertWebhookSink(loopback(), { url: r.url, secret: randomBytes(32), retryMs: [5, 5, 5] });
    cleanup.push(r.close, () => sink.close());
    sink.offer(finding(6));
    await sink.drained();
    expect(r.received).toHaveLength(1);
    expect(sink.stats()).toMatchObject({ delivered: 0, failed: 1 });
  });

  it('with a receiver that hangs, queues up to its bound and drops the rest, counted and reported once', async () => {
    const r = await receiver(() => 'hang');
    const reports: AlertWebhookReport[] = [];
    const sink = new AlertWebhookSink(loopback(60_000), {
      url: r.url,
      secret: randomBytes(32),
      maxQueue: 3,
      onReport: (report) => reports.push(report),
    });
    cleanup.push(r.close, () => sink.close());
    // offer() is synchronous: it returns before anything is sent, whatever the receiver does.
    for (let i = 0; i < 10; i++) sink.offer(finding(10 + i));
    expect(sink.stats()).toMatchObject({ queued: 3, dropped: 7, delivered: 0 });
    expect(reports.map((x) => x.kind)).toEqual(['dropping']);
    await sink.close();
    expect(sink.stats().queued).toBe(0);
  });

  it('goes through the egress policy: a loopback receiver the policy does not allow is refused, not retried', async () => {
    const r = await receiver(() => 200);
    const sink = new AlertWebhookSink(new EgressPolicy(), { url: r.url, secret: randomBytes(32), retryMs: [5, 5] });
    cleanup.push(r.close, () => sink.close());
    sink.offer(finding(7));
    await sink.drained();
    expect(r.received).toHaveLength(0);
    expect(sink.stats()).toMatchObject({ delivered: 0, failed: 1 });
  });

  it('refuses a short secret and a non-HTTP URL at configuration', () => {
    expect(() => new AlertWebhookSink(loopback(), { url: 'http://127.0.0.1/x', secret: randomBytes(16) })).toThrow(
      RangeError,
    );
    expect(() => new AlertWebhookSink(loopback(), { url: 'file:///etc/passwd', secret: randomBytes(32) })).toThrow(
      RangeError,
    );
  });
});
