import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import type { Finding } from '@custos/core';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasPostgres } from '../../../test-support/postgres.js';
import { logAlertSink } from '../src/alerts/log-alert-sink.js';
import { auditEvents, type Backend, fakeSecret, startTestServer, type TestServer } from './test-server.js';

// The anomaly engine end to end: real requests through the real server, the
// audit events it writes, the findings the rules raise from them, and the
// alerts API, event stream and log sink that report them.

const backends: Backend[] = ['sqlite', ...(hasPostgres() ? (['postgres'] as const) : [])];

describe.each(backends)('alerts (%s)', (backend) => {
  let s: TestServer;
  const ok = async (response: Awaited<ReturnType<TestServer['call']>>) => {
    expect(response.statusCode, response.body).toBe(200);
    return response.json();
  };
  const idle = () => s.node.services().anomaly!.idle();
  const alerts = async (query = '') =>
    (await ok(await s.call({ method: 'GET', url: `/v1/alerts${query}` }))).alerts as Finding[];
  const startTask = async () =>
    (await ok(await s.call({ method: 'POST', url: '/v1/roles/agent/tasks', payload: { ttl: '10m' } }))) as {
      token: string;
      task_id: string;
    };

  beforeAll(async () => {
    s = await startTestServer(backend);
    await ok(
      await s.call({
        method: 'PUT',
        url: '/v1/policies/app-reader',
        payload: {
          policy: 'permit(principal, action == Custos::Action::"read", resource in Custos::Path::"kv/app/");',
        },
      }),
    );
    await ok(
      await s.call({
        method: 'PUT',
        url: '/v1/roles/agent',
        payload: { policies: ['app-reader'], max_ttl: '15m', auth: ['bootstrap'] },
      }),
    );
    await ok(
      await s.call({ method: 'PUT', url: '/v1/secrets/data/kv/app/db', payload: { data: { pw: fakeSecret() } } }),
    );
  });
  afterAll(async () => {
    await s?.close();
  });

  it('raises dead-task-token when a revoked task token is used, with the refusal record as evidence', async () => {
    const task = await startTask();
    await ok(await s.call({ method: 'GET', url: '/v1/secrets/data/kv/app/db', token: task.token }));
    await ok(await s.call({ method: 'POST', url: `/v1/tasks/${task.task_id}/revoke` }));
    const refused = await s.call({ method: 'GET', url: '/v1/secrets/data/kv/app/db', token: task.token });
    expect(refused.statusCode).toBe(401);
    // The client learns nothing more than any refusal says.
    expect(refused.json().error.code).toBe('CUSTOS_ERR_UNAUTHENTICATED');
    expect(refused.body).not.toContain('revoked');
    await idle();
    const [finding] = await alerts('?rule=dead-task-token');
    expect(finding).toMatchObject({
      severity: 'high',
      state: 'open',
      subject: { task_id: task.task_id, role: 'agent' },
    });
    const shown = (await ok(await s.call({ method: 'GET', url: `/v1/alerts/${finding!.id}` }))) as Finding;
    expect(shown).toEqual(finding);
    // The evidence is the audit record of the refusal, at its chain position.
    const [record] = await s.storage.audit.range(shown.evidence[0]!.seq, 1);
    expect(record!.hash).toBe(shown.evidence[0]!.hash);
    expect(JSON.parse(record!.event)).toMatchObject({
      decision: 'deny',
      reason: 'task_revoked',
      details: { refused_task: { task_id: task.task_id, role: 'agent' } },
    });
    expect((await ok(await s.call({ method: 'GET', url: '/v1/audit/verify' }))).ok).toBe(true);
  });

  it('routes a reused bootstrap token through the engine as a critical finding', async () => {
    const { token } = await ok(
      await s.call({ method: 'POST', url: '/v1/roles/agent/bootstrap', payload: { ttl: '5m' } }),
    );
    const login = () => s.call({ method: 'POST', url: '/v1/auth/bootstrap/login', token: null, payload: { token } });
    expect((await login()).statusCode).toBe(200);
    expect((await login()).statusCode).toBe(401);
    await idle();
    const found = await alerts('?rule=bootstrap-token-reuse');
    expect(found).toHaveLength(1);
    expect(found[0]).toMatchObject({ severity: 'critical', state: 'open' });
    // The clear token appears nowhere in the finding.
    expect(JSON.stringify(found[0])).not.toContain(token);
  });

  it('acknowledges a finding, records who did, and filters by state', async () => {
    const [finding] = await alerts('?rule=bootstrap-token-reuse&state=open');
    const acked = (await ok(await s.call({ method: 'POST', url: `/v1/alerts/${finding!.id}/ack` }))) as Finding;
    expect(acked.state).toBe('acked');
    const self = await ok(await s.call({ method: 'GET', url: '/v1/auth/token/self' }));
    expect(acked.acked_by).toBe(self.accessor);
    expect((await alerts('?state=acked')).map((a) => a.id)).toEqual([finding!.id]);
    // The acknowledgement is in the audit trail, with who did it and on which finding.
    const audited = (await auditEvents(s.storage)).filter(
      (e) => (e.request as { route?: string } | undefined)?.route === '/v1/alerts/:id/ack',
    );
    expect(audited.map((e) => (e.details as { phase: string }).phase)).toEqual(['request', 'response']);
    expect(audited[1]).toMatchObject({
      decision: 'allow',
      status: 200,
      auth: { token_accessor: self.accessor },
      request: { path: `sys/alerts/${finding!.id}`, action: 'admin' },
    });
    expect((await alerts('?state=open')).map((a) => a.id)).not.toContain(finding!.id);
    const missing = await s.call({ method: 'POST', url: `/v1/alerts/al_${'0'.repeat(24)}_dead-task-token/ack` });
    expect(missing.statusCode).toBe(404);
  });

  it('pushes alert.raised to an operator on the event stream, without the finding body', async () => {
    await s.app.listen({ host: '127.0.0.1', port: 0 });
    const base = `http://127.0.0.1:${(s.app.server.address() as AddressInfo).port}`;
    const controller = new AbortController();
    const response = await fetch(`${base}/v1/events`, {
      headers: { authorization: `Bearer ${s.rootToken}` },
      signal: controller.signal,
    });
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    let text = '';
    const until = async (needle: string) => {
      while (!text.includes(needle)) {
        const { value, done } = await reader.read();
        if (done) break;
        text += new TextDecoder().decode(value);
      }
    };
    await until(': subscribed');
    const task = await startTask();
    await ok(await s.call({ method: 'POST', url: `/v1/tasks/${task.task_id}/revoke` }));
    await s.call({ method: 'GET', url: '/v1/secrets/data/kv/app/db', token: task.token });
    await until('alert.raised');
    await until('\n\n');
    controller.abort();
    // The stream also carries the task's own task.created/task.revoked events
    // (operators see those); the finding's event is the one that must stay bare.
    const alertEvent = text.split('\n\n').find((block) => block.startsWith('event: alert.raised')) ?? '';
    expect(alertEvent).toContain('"rule":"dead-task-token"');
    expect(alertEvent).not.toContain(task.task_id);
    expect(alertEvent).not.toContain('kv/app/db');
    expect(text).not.toContain('kv/app/db');
  });
});

describe.each(backends)('first-access and denied-spike on real requests (%s)', (backend) => {
  let s: TestServer;
  const ok = async (response: Awaited<ReturnType<TestServer['call']>>) => {
    expect(response.statusCode, response.body).toBe(200);
    return response.json();
  };

  beforeAll(async () => {
    // Short warm-up and no minimum history, so a test can reach them; the shapes of the events are the server's own.
    s = await startTestServer(backend, {
      anomaly: {
        rules: {
          'first-access': { warmupMs: 1, warmupEvents: 5 },
          // One ten-minute bucket: with no minimum history, a burst split by a bucket boundary would make
          // its own first half the baseline (see the guard in the test).
          'denied-spike': { minHistoryMs: 1, minDenied: 10, factor: 3, windowMs: 600_000, buckets: 1 },
        },
      },
    });
    await ok(
      await s.call({
        method: 'PUT',
        url: '/v1/policies/app-reader',
        payload: {
          policy: 'permit(principal, action == Custos::Action::"read", resource in Custos::Path::"kv/app/");',
        },
      }),
    );
    await ok(
      await s.call({ method: 'PUT', url: '/v1/roles/worker', payload: { policies: ['app-reader'], max_ttl: '15m' } }),
    );
    for (const path of ['kv/app/db', 'kv/app/model-store', 'kv/finance/ledger']) {
      await ok(
        await s.call({ method: 'PUT', url: `/v1/secrets/data/${path}`, payload: { data: { v: fakeSecret() } } }),
      );
    }
  });
  afterAll(async () => {
    await s?.close();
  });

  it('raises first-access when a warmed-up role reads a secret it never read, and denied-spike on a burst of refusals', async () => {
    const task = (await ok(
      await s.call({ method: 'POST', url: '/v1/roles/worker/tasks', payload: { ttl: '10m' } }),
    )) as {
      token: string;
      task_id: string;
    };
    const read = (path: string) => s.call({ method: 'GET', url: `/v1/secrets/data/${path}`, token: task.token });
    // Not across a bucket boundary of denied-spike's window: wait for the next one when it is near.
    const toBoundary = 600_000 - (Date.now() % 600_000);
    if (toBoundary < 10_000) await new Promise((resolve) => setTimeout(resolve, toBoundary + 50));
    for (let i = 0; i < 6; i++) expect((await read('kv/app/db')).statusCode).toBe(200);
    expect((await read('kv/app/model-store')).statusCode).toBe(200);
    expect((await read('kv/app/model-store')).statusCode).toBe(200);
    // Twelve refusals in a row: probing outside its grant.
    for (let i = 0; i < 12; i++) expect((await read('kv/finance/ledger')).statusCode).toBe(403);
    await s.node.services().anomaly!.idle();
    const { alerts } = await ok(await s.call({ method: 'GET', url: '/v1/alerts' }));
    const byRule = new Map((alerts as Finding[]).map((a) => [a.rule, a]));
    expect([...byRule.keys()].sort()).toEqual(['denied-spike', 'first-access']);
    expect(byRule.get('first-access')).toMatchObject({ subject: { task_id: task.task_id, role: 'worker' } });
    expect(byRule.get('first-access')!.explanation).toContain('kv/app/model-store');
    expect(byRule.get('denied-spike')).toMatchObject({ subject: { task_id: task.task_id } });
    expect(byRule.get('denied-spike')!.evidence.length).toBe(10);
  });
});

describe('the log alert sink', () => {
  it('logs id, rule, severity, subject and evidence seqs — never the explanation and the paths it quotes', () => {
    const lines: string[] = [];
    const logger = pino(
      { level: 'info' },
      new Writable({
        write(chunk, _encoding, done) {
          lines.push(String(chunk));
          done();
        },
      }),
    );
    const path = `kv/finance/${fakeSecret()}`;
    const finding: Finding = {
      id: `al_${'1'.repeat(24)}_first-access`,
      rule: 'first-access',
      severity: 'medium',
      time: new Date().toISOString(),
      state: 'open',
      subject: { identity: 'spiffe://custos.local/agent/x', role: 'x', task_id: 'tsk_1' },
      evidence: [{ seq: 41, hash: 'a'.repeat(64) }],
      explanation: `Role x has never used ${path} before.`,
    };
    logAlertSink(logger)(finding);
    logAlertSink(logger)({ ...finding, severity: 'critical' });
    expect(lines).toHaveLength(2);
    const [warn, error] = lines.map((l) => JSON.parse(l));
    expect(warn).toMatchObject({ level: 40, alert: { id: finding.id, rule: 'first-access', evidence_seqs: [41] } });
    expect(error.level).toBe(50);
    expect(lines.join('')).not.toContain(path);
    expect(lines.join('')).not.toContain('never used');
  });
});
