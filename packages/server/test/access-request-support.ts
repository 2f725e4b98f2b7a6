import { expect } from 'vitest';
import { fakeSecret, type TestServer } from './test-server.js';

/** Approver policy: may decide read requests under kv/finance/, and list and read requests. */
export const APPROVER_POLICY = `
permit(principal, action == Custos::Action::"approve", resource in Custos::Path::"sys/requests/read/kv/finance/");
permit(principal, action in [Custos::Action::"list", Custos::Action::"read"], resource in Custos::Path::"sys/requests/");
`;

/** An injected response, and what its `json()` gives (fastify's own typing). */
type Reply = Awaited<ReturnType<TestServer['call']>>;
type Body = ReturnType<Reply['json']>;

/**
 * A deployment with one agent role (`analyst`: reads kv/public/ by policy,
 * may *request* reads under kv/finance/), an operator who starts its tasks
 * (`starter`), two approvers and a stranger who holds no approver policy.
 */
export interface JitFixture {
  starter: string;
  approver: string;
  approver2: string;
  stranger: string;
  ledger: string;
  call(method: string, url: string, token: string | null | undefined, payload?: unknown): Promise<Reply>;
  ok(response: Reply, status?: number): Promise<Body>;
  /** Starts an analyst task (by `starter`) and returns its token and id. */
  startTask(ttl?: string): Promise<{ token: string; id: string }>;
  delegate(parent: string, body?: Record<string, unknown>): Promise<{ token: string; id: string }>;
  read(token: string, path: string): Promise<number>;
  request(token: string, body: Record<string, unknown>): Promise<Reply>;
}

export async function jitFixture(s: TestServer, roleExtra: Record<string, unknown> = {}): Promise<JitFixture> {
  const call: JitFixture['call'] = (method, url, token, payload) =>
    s.call({
      method: method as 'GET',
      url,
      ...(token === undefined ? {} : { token }),
      ...(payload !== undefined ? { payload: payload as Record<string, unknown> } : {}),
    });
  const ok: JitFixture['ok'] = async (response, status = 200) => {
    expect(response.statusCode, response.body).toBe(status);
    return response.json();
  };
  await ok(
    await call('PUT', '/v1/policies/agent-public', undefined, {
      policy:
        'permit(principal, action == Custos::Action::"read", resource in Custos::Path::"kv/public/");\n' +
        'permit(principal, action == Custos::Action::"delegate", resource in Custos::Path::"sys/tasks/");',
    }),
  );
  await ok(
    await call('PUT', '/v1/policies/starter', undefined, {
      policy: 'permit(principal, action == Custos::Action::"issue", resource in Custos::Path::"sys/roles/");',
    }),
  );
  await ok(await call('PUT', '/v1/policies/finance-approver', undefined, { policy: APPROVER_POLICY }));
  await ok(await call('PUT', '/v1/policies/other-approver', undefined, { policy: APPROVER_POLICY }));
  await ok(
    await call('PUT', '/v1/roles/analyst', undefined, {
      policies: ['agent-public'],
      max_ttl: '1h',
      max_depth: 3,
      request_scope: 'read:kv/finance/*',
      approvers: ['finance-approver'],
      ...roleExtra,
    }),
  );
  const token = async (policies: string[]) =>
    (await ok(await call('POST', '/v1/auth/token/create', undefined, { policies, ttl: '1h' }))).token as string;
  const starter = await token(['starter']);
  const approver = await token(['finance-approver']);
  const approver2 = await token(['finance-approver']);
  const stranger = await token(['other-approver']);
  const ledger = fakeSecret('ledger');
  await ok(await call('PUT', '/v1/secrets/data/kv/finance/ledger', undefined, { data: { value: ledger } }));
  await ok(await call('PUT', '/v1/secrets/data/kv/finance/payroll', undefined, { data: { value: fakeSecret('pay') } }));
  await ok(await call('PUT', '/v1/secrets/data/kv/public/readme', undefined, { data: { value: 'public' } }));
  const startTask = async (ttl = '30m') => {
    const issued = await ok(await call('POST', '/v1/roles/analyst/tasks', starter, { ttl }));
    return { token: issued.token as string, id: issued.task_id as string };
  };
  const delegate = async (parent: string, body: Record<string, unknown> = {}) => {
    const issued = await ok(await call('POST', '/v1/tasks/delegate', parent, body));
    return { token: issued.token as string, id: issued.task_id as string };
  };
  const read = async (t: string, path: string) => (await call('GET', `/v1/secrets/data/${path}`, t)).statusCode;
  const request = (t: string, body: Record<string, unknown>) => call('POST', '/v1/requests', t, body);
  return { starter, approver, approver2, stranger, ledger, call, ok, startTask, delegate, read, request };
}
