import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Custos, CustosApiError } from '../src/index.js';
import {
  bootstrapToken,
  fakeSecret,
  type ListeningServer,
  setUpAgentRole,
  startListeningServer,
} from './sdk-test-server.js';

// task.requestAccess against a real server: the agent asks and waits, an
// operator approves over the API, and the agent's own task reads at once.

describe('Task.requestAccess', () => {
  let s: ListeningServer;
  let approver: string;
  const ledger = fakeSecret('ledger');

  beforeAll(async () => {
    s = await startListeningServer();
    await setUpAgentRole(s, 'agent', { request_scope: 'read:kv/finance/*' });
    const policy = await s.call({
      method: 'PUT',
      url: '/v1/policies/approver',
      payload: {
        policy:
          'permit(principal, action in [Custos::Action::"approve", Custos::Action::"read"], resource in Custos::Path::"sys/requests/");',
      },
    });
    expect(policy.statusCode).toBe(200);
    approver = (
      await s.call({ method: 'POST', url: '/v1/auth/token/create', payload: { policies: ['approver'], ttl: '1h' } })
    ).json().token;
    await s.call({ method: 'PUT', url: '/v1/secrets/data/kv/finance/ledger', payload: { data: { value: ledger } } });
  });
  afterAll(async () => {
    await s?.close();
  });

  it('asks, waits for the approval, then reads with the same task', async () => {
    const task = await new Custos({ address: s.address }).loginWithBootstrap(await bootstrapToken(s));
    await expect(task.readSecret('kv/finance/ledger')).rejects.toBeInstanceOf(CustosApiError);
    const filed = await task.requestAccess({ scope: 'read:kv/finance/ledger', reason: 'reconcile', ttl: '5m' });
    expect(filed).toMatchObject({
      status: 'pending',
      task_id: task.id,
      scope: 'read:kv/finance/ledger',
      ttl_seconds: 300,
    });
    const waiting = task.requestAccess({ scope: 'read:kv/finance/ledger', reason: 'reconcile', wait: 20_000 });
    await new Promise((r) => setTimeout(r, 200));
    const approved = await s.call({
      method: 'POST',
      url: `/v1/requests/${filed.id}/approve`,
      token: approver,
      payload: {},
    });
    expect(approved.statusCode, approved.body).toBe(200);
    const decided = await waiting;
    expect(decided).toMatchObject({ id: filed.id, status: 'approved' });
    expect((await task.readSecret('kv/finance/ledger')).data.value).toBe(ledger);
    expect((await task.accessRequest(filed.id)).status).toBe('approved');
    await task.end();
  });

  it('a scope beyond the role’s ceiling is refused with its code', async () => {
    const task = await new Custos({ address: s.address }).loginWithBootstrap(await bootstrapToken(s));
    const error = await task.requestAccess({ scope: 'read:kv/hr/x', reason: 'r' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CustosApiError);
    expect((error as CustosApiError).code).toBe('CUSTOS_ERR_REQUEST_NOT_REQUESTABLE');
    await task.end();
  });
});
