import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasPostgres } from '../../../test-support/postgres.js';
import { type JitFixture, jitFixture } from './access-request-support.js';
import { watchWrites } from './adversarial/adversarial-support.js';
import { auditEvents, type Backend, startTestServer, type TestServer } from './test-server.js';

const backends: Backend[] = ['sqlite', ...(hasPostgres() ? (['postgres'] as const) : [])];

// Bad input and faults of issue 14: each a stable code, an audit event
// naming it, and nothing half-written.
describe.each(backends)('access request faults (%s)', (backend) => {
  let s: TestServer;
  let f: JitFixture;
  const watch = watchWrites();

  beforeAll(async () => {
    s = await startTestServer(backend, { wrapStorage: watch.wrap });
    f = await jitFixture(s);
  });
  afterAll(async () => {
    await s?.close();
  });

  const jitWrites = (writes: string[]) => writes.filter((w) => / jit\./.test(w));
  const lastRefusal = async (route: string) => {
    const events = await auditEvents(s.storage);
    return events
      .reverse()
      .find(
        (e) =>
          (e.request as { route?: string }).route === route &&
          (e.details as { phase?: string }).phase === 'response' &&
          e.decision !== 'allow',
      );
  };

  it('a scope outside the role’s ceiling is refused outright: never queued, audited', async () => {
    const task = await f.startTask();
    let response: Awaited<ReturnType<JitFixture['call']>> | undefined;
    const writes = await watch.log.during(async () => {
      response = await f.request(task.token, { scope: 'read:kv/hr/salaries', reason: 'curious' });
    });
    expect(response?.statusCode).toBe(403);
    expect(response?.json().error.code).toBe('CUSTOS_ERR_REQUEST_NOT_REQUESTABLE');
    expect(jitWrites(writes)).toEqual([]);
    expect((await lastRefusal('/v1/requests'))?.error_code).toBe('CUSTOS_ERR_REQUEST_NOT_REQUESTABLE');
    // Wider than the ceiling by a prefix is outside it too.
    const wide = await f.request(task.token, { scope: 'read:kv/*', reason: 'all of it' });
    expect(wide.json().error.code).toBe('CUSTOS_ERR_REQUEST_NOT_REQUESTABLE');
    const listed = await f.ok(await f.call('GET', '/v1/requests?status=all', task.token));
    expect(listed.requests).toEqual([]);
  });

  it('a TTL beyond the task is refused (and an unparsable one)', async () => {
    const task = await f.startTask('2m');
    let response: Awaited<ReturnType<JitFixture['call']>> | undefined;
    const writes = await watch.log.during(async () => {
      response = await f.request(task.token, { scope: 'read:kv/finance/ledger', reason: 'r', ttl: '10m' });
    });
    expect(response?.statusCode).toBe(400);
    expect(response?.json().error.code).toBe('CUSTOS_ERR_REQUEST_TTL_EXCEEDS_TASK');
    expect(jitWrites(writes)).toEqual([]);
    expect((await lastRefusal('/v1/requests'))?.error_code).toBe('CUSTOS_ERR_REQUEST_TTL_EXCEEDS_TASK');
    const bad = await f.request(task.token, { scope: 'read:kv/finance/ledger', reason: 'r', ttl: 'soon' });
    expect(bad.json().error.code).toBe('CUSTOS_ERR_INVALID_TTL');
    // The default TTL is cut to what the task has left.
    const ok = await f.ok(await f.request(task.token, { scope: 'read:kv/finance/ledger', reason: 'r' }), 201);
    expect(ok.request.ttl_seconds).toBeLessThanOrEqual(120);
  });

  it('a revoked task cannot ask: its token is refused and the refusal names the task', async () => {
    const task = await f.startTask();
    await f.ok(await f.call('POST', `/v1/tasks/${task.id}/revoke`, undefined));
    const response = await f.request(task.token, { scope: 'read:kv/finance/ledger', reason: 'r' });
    expect(response.statusCode).toBe(401);
    expect(response.json().error.code).toBe('CUSTOS_ERR_UNAUTHENTICATED');
    const refusal = await lastRefusal('/v1/requests');
    expect((refusal?.details as { refused_task?: { task_id?: string } } | undefined)?.refused_task?.task_id).toBe(
      task.id,
    );
  });

  it('approval by the requester’s identity or any task of its tree is refused (CUSTOS_ERR_REQUEST_SELF_APPROVAL)', async () => {
    const task = await f.startTask();
    const child = await f.delegate(task.token);
    const { request } = await f.ok(await f.request(task.token, { scope: 'read:kv/finance/ledger', reason: 'r' }), 201);
    for (const token of [f.starter, task.token, child.token]) {
      const response = await f.call('POST', `/v1/requests/${request.id}/approve`, token, {});
      expect(response.statusCode, response.body).toBe(403);
      expect(response.json().error.code).toBe('CUSTOS_ERR_REQUEST_SELF_APPROVAL');
    }
    expect((await lastRefusal('/v1/requests/:id/approve'))?.error_code).toBe('CUSTOS_ERR_REQUEST_SELF_APPROVAL');
    const shown = await f.ok(await f.call('GET', `/v1/requests/${request.id}`, f.approver));
    expect(shown.request).toMatchObject({ status: 'pending', approvals: [] });
  });

  it('approval after the task ended is refused (CUSTOS_ERR_REQUEST_TASK_ENDED) and grants nothing', async () => {
    const task = await f.startTask();
    const { request } = await f.ok(await f.request(task.token, { scope: 'read:kv/finance/ledger', reason: 'r' }), 201);
    await f.ok(await f.call('POST', `/v1/tasks/${task.id}/end`, undefined));
    const response = await f.call('POST', `/v1/requests/${request.id}/approve`, f.approver, {});
    expect(response.statusCode).toBe(409);
    expect(response.json().error.code).toBe('CUSTOS_ERR_REQUEST_TASK_ENDED');
    expect((await lastRefusal('/v1/requests/:id/approve'))?.error_code).toBe('CUSTOS_ERR_REQUEST_TASK_ENDED');
    const shown = await f.ok(await f.call('GET', `/v1/requests/${request.id}`, f.approver));
    expect(shown.request.status).toBe('expired');
  });

  it('a deny racing approvals: exactly one outcome wins and is recorded once', async () => {
    for (let round = 0; round < 5; round++) {
      const task = await f.startTask();
      const { request } = await f.ok(
        await f.request(task.token, { scope: 'read:kv/finance/ledger', reason: `race ${round}` }),
        201,
      );
      const url = (verb: string) => `/v1/requests/${request.id}/${verb}`;
      const answers = await Promise.all([
        f.call('POST', url('approve'), f.approver, {}),
        f.call('POST', url('deny'), f.approver2, { reason: 'no' }),
        f.call('POST', url('approve'), f.approver2, {}),
        f.call('POST', url('deny'), f.approver, {}),
      ]);
      const won = answers.filter((a) => a.statusCode === 200);
      const lost = answers.filter((a) => a.statusCode !== 200);
      expect(won.length, answers.map((a) => a.body).join('\n')).toBe(1);
      for (const l of lost) expect(l.json().error.code).toBe('CUSTOS_ERR_REQUEST_ALREADY_DECIDED');
      const shown = (await f.ok(await f.call('GET', `/v1/requests/${request.id}`, f.approver))).request;
      expect(['approved', 'denied']).toContain(shown.status);
      for (const w of won) expect(w.json().request.status).toBe(shown.status);
      expect(await f.read(task.token, 'kv/finance/ledger')).toBe(shown.status === 'approved' ? 200 : 403);
      const decided = (await auditEvents(s.storage)).filter(
        (e) =>
          (e.request as { path?: string }).path === `sys/requests/${request.id}` &&
          (e.request as { route?: string }).route?.startsWith('/v1/requests/:id/') &&
          (e.details as { phase?: string }).phase === 'response' &&
          e.decision === 'allow',
      );
      expect(decided.length).toBe(won.length);
    }
  });
});
