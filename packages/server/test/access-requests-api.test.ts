import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasPostgres } from '../../../test-support/postgres.js';
import { type JitFixture, jitFixture } from './access-request-support.js';
import { auditEvents, type Backend, startTestServer, type TestServer } from './test-server.js';

const backends: Backend[] = ['sqlite', ...(hasPostgres() ? (['postgres'] as const) : [])];

// The just-in-time flow end to end over HTTP (docs/jit.md): a task asks, a
// human approves, the task's *existing* token reads, the elevation ends.
describe.each(backends)('access requests and elevation (%s)', (backend) => {
  let s: TestServer;
  let f: JitFixture;

  beforeAll(async () => {
    s = await startTestServer(backend);
    f = await jitFixture(s);
  });
  afterAll(async () => {
    await s?.close();
  });

  it('ask → approve → the same token reads → revoke ends it at once; introspection and the audit trail show it', async () => {
    const task = await f.startTask();
    expect(await f.read(task.token, 'kv/finance/ledger')).toBe(403);
    const created = await f.ok(
      await f.request(task.token, { scope: 'read:kv/finance/ledger', reason: 'reconcile Q3', ttl: '10m' }),
      201,
    );
    const req = created.request;
    expect(req).toMatchObject({
      status: 'pending',
      task_id: task.id,
      chain: [task.id],
      role: 'analyst',
      scope: 'read:kv/finance/ledger',
      reason: 'reconcile Q3',
      ttl_seconds: 600,
      children: false,
      approvals_required: 1,
      approvals: [],
    });
    // Still pending: nothing more is allowed.
    expect(await f.read(task.token, 'kv/finance/ledger')).toBe(403);

    const approved = await f.ok(await f.call('POST', `/v1/requests/${req.id}/approve`, f.approver, { ttl: '5m' }));
    expect(approved.request).toMatchObject({ status: 'approved', ttl_seconds: 300, decided_by: expect.any(String) });
    expect(Date.parse(approved.request.expires_at) - Date.now()).toBeLessThanOrEqual(300_000);

    // The token minted before the approval reads now, without re-issue…
    const read = await f.call('GET', '/v1/secrets/data/kv/finance/ledger', task.token);
    expect(read.statusCode, read.body).toBe(200);
    expect(read.json().data.value).toBe(f.ledger);
    // …and only what was approved.
    expect(await f.read(task.token, 'kv/finance/payroll')).toBe(403);

    const introspected = await f.ok(await f.call('POST', '/v1/oauth/introspect', f.approver, { token: task.token }));
    expect(introspected.elevations).toEqual([
      { scope: 'read:kv/finance/ledger', expires_at: expect.any(Number), request_id: req.id },
    ]);

    const events = await auditEvents(s.storage);
    const use = events.find(
      (e) =>
        (e.request as { path?: string; method?: string })?.path === 'kv/finance/ledger' &&
        (e.request as { method?: string }).method === 'GET' &&
        (e.auth as { task_id?: string }).task_id === task.id &&
        e.decision === 'allow' &&
        (e.details as { phase?: string }).phase === 'response',
    );
    expect((use?.details as { elevation?: string } | undefined)?.elevation).toBe(req.id);

    const revoked = await f.ok(await f.call('POST', `/v1/requests/${req.id}/revoke`, f.approver));
    expect(revoked.request.status).toBe('revoked');
    expect(await f.read(task.token, 'kv/finance/ledger')).toBe(403);
    const after = await f.ok(await f.call('POST', '/v1/oauth/introspect', f.approver, { token: task.token }));
    expect(after.elevations).toBeUndefined();
  });

  it('a duplicate pending request is merged (200, the same request), also when the two race', async () => {
    const task = await f.startTask();
    const body = { scope: 'read:kv/finance/ledger', reason: 'twice' };
    const [a, b] = await Promise.all([f.request(task.token, body), f.request(task.token, body)]);
    expect([a.statusCode, b.statusCode].sort()).toEqual([200, 201]);
    expect(a.json().request.id).toBe(b.json().request.id);
    const third = await f.ok(await f.request(task.token, body), 200);
    expect(third.request.id).toBe(a.json().request.id);
    const listed = await f.ok(await f.call('GET', '/v1/requests?status=pending', task.token));
    expect(listed.requests.filter((r: { id: string }) => r.id === third.request.id)).toHaveLength(1);
  });

  it('ending the task ends the elevation; the request shows expired', async () => {
    const task = await f.startTask();
    const { request } = await f.ok(await f.request(task.token, { scope: 'read:kv/finance/ledger', reason: 'r' }), 201);
    await f.ok(await f.call('POST', `/v1/requests/${request.id}/approve`, f.approver));
    expect(await f.read(task.token, 'kv/finance/ledger')).toBe(200);
    await f.ok(await f.call('POST', `/v1/tasks/${task.id}/end`, undefined));
    expect(await f.read(task.token, 'kv/finance/ledger')).toBe(401);
    const shown = await f.ok(await f.call('GET', `/v1/requests/${request.id}`, f.approver));
    expect(shown.request.status).toBe('expired');
  });

  it('a Cedar forbid on context.elevation refuses elevated access to a path outright', async () => {
    await f.ok(
      await f.call('PUT', '/v1/policies/no-elevated-payroll', undefined, {
        policy:
          'forbid(principal, action, resource in Custos::Path::"kv/finance/payroll") when { context.elevation.active };',
      }),
    );
    await f.ok(
      await f.call('PUT', '/v1/roles/analyst', undefined, {
        policies: ['agent-public', 'no-elevated-payroll'],
        max_ttl: '1h',
        request_scope: 'read:kv/finance/*',
        approvers: ['finance-approver'],
      }),
    );
    try {
      const task = await f.startTask();
      const { request } = await f.ok(await f.request(task.token, { scope: 'read:kv/finance/*', reason: 'all' }), 201);
      await f.ok(await f.call('POST', `/v1/requests/${request.id}/approve`, f.approver));
      expect(await f.read(task.token, 'kv/finance/ledger')).toBe(200);
      expect(await f.read(task.token, 'kv/finance/payroll')).toBe(403);
      // Its own, unelevated access is untouched by the forbid.
      expect(await f.read(task.token, 'kv/public/readme')).toBe(200);
    } finally {
      await f.ok(
        await f.call('PUT', '/v1/roles/analyst', undefined, {
          policies: ['agent-public'],
          max_ttl: '1h',
          request_scope: 'read:kv/finance/*',
          approvers: ['finance-approver'],
        }),
      );
    }
  });

  it('two approvals needed: the same approver counts once; a second approver completes it', async () => {
    await f.ok(
      await f.call('PUT', '/v1/roles/analyst2', undefined, {
        policies: ['agent-public'],
        max_ttl: '1h',
        request_scope: 'read:kv/finance/*',
        approvers: ['finance-approver'],
        approvals: 2,
      }),
    );
    const issued = await f.ok(await f.call('POST', '/v1/roles/analyst2/tasks', f.starter, { ttl: '30m' }));
    const { request } = await f.ok(
      await f.request(issued.token, { scope: 'read:kv/finance/ledger', reason: 'two keys' }),
      201,
    );
    expect(request.approvals_required).toBe(2);
    const once = await f.ok(await f.call('POST', `/v1/requests/${request.id}/approve`, f.approver));
    expect(once.request).toMatchObject({ status: 'pending' });
    expect(once.request.approvals).toHaveLength(1);
    const again = await f.ok(await f.call('POST', `/v1/requests/${request.id}/approve`, f.approver));
    expect(again.request.status).toBe('pending');
    expect(again.request.approvals).toHaveLength(1);
    expect(await f.read(issued.token, 'kv/finance/ledger')).toBe(403);
    const done = await f.ok(await f.call('POST', `/v1/requests/${request.id}/approve`, f.approver2, { ttl: 120 }));
    expect(done.request.status).toBe('approved');
    expect(done.request.approvals).toHaveLength(2);
    expect(done.request.ttl_seconds).toBe(120);
    expect(await f.read(issued.token, 'kv/finance/ledger')).toBe(200);
  });

  it('children: an approval for children reaches a delegated child; without it the child gets nothing', async () => {
    const parent = await f.startTask();
    const child = await f.delegate(parent.token);
    const own = await f.ok(await f.request(parent.token, { scope: 'read:kv/finance/ledger', reason: 'me only' }), 201);
    await f.ok(await f.call('POST', `/v1/requests/${own.request.id}/approve`, f.approver));
    expect(await f.read(parent.token, 'kv/finance/ledger')).toBe(200);
    expect(await f.read(child.token, 'kv/finance/ledger')).toBe(403);

    const tree = await f.ok(
      await f.request(parent.token, { scope: 'read:kv/finance/payroll', reason: 'tree', children: true }),
      201,
    );
    await f.ok(await f.call('POST', `/v1/requests/${tree.request.id}/approve`, f.approver));
    expect(await f.read(child.token, 'kv/finance/payroll')).toBe(200);
    const grandchild = await f.delegate(child.token);
    expect(await f.read(grandchild.token, 'kv/finance/payroll')).toBe(200);
    // Revoking the request takes it from the whole tree at once.
    await f.ok(await f.call('POST', `/v1/requests/${tree.request.id}/revoke`, f.approver));
    expect(await f.read(child.token, 'kv/finance/payroll')).toBe(403);
    expect(await f.read(parent.token, 'kv/finance/payroll')).toBe(403);
  });

  it('an approver may narrow children away; the child then gets nothing', async () => {
    const parent = await f.startTask();
    const child = await f.delegate(parent.token);
    const { request } = await f.ok(
      await f.request(parent.token, { scope: 'read:kv/finance/ledger', reason: 'r', children: true }),
      201,
    );
    const approved = await f.ok(
      await f.call('POST', `/v1/requests/${request.id}/approve`, f.approver, { children: false }),
    );
    expect(approved.request.children).toBe(false);
    expect(await f.read(parent.token, 'kv/finance/ledger')).toBe(200);
    expect(await f.read(child.token, 'kv/finance/ledger')).toBe(403);
  });

  it('?wait= returns as soon as the request is decided', async () => {
    const task = await f.startTask();
    const { request } = await f.ok(await f.request(task.token, { scope: 'read:kv/finance/ledger', reason: 'w' }), 201);
    const waiting = f.call('GET', `/v1/requests/${request.id}?wait=30s`, task.token);
    await new Promise((r) => setTimeout(r, 200));
    await f.ok(await f.call('POST', `/v1/requests/${request.id}/deny`, f.approver, { reason: 'not this quarter' }));
    const answered = await f.ok(await waiting);
    expect(answered.request).toMatchObject({ status: 'denied', deny_reason: 'not this quarter' });
  });

  it('the event stream tells operators of requests; the webhook-free node still answers', async () => {
    const task = await f.startTask();
    const seen: string[] = [];
    const stop = s.node.services().events.subscribe((e) => seen.push(e.type));
    try {
      const { request } = await f.ok(
        await f.request(task.token, { scope: 'read:kv/finance/ledger', reason: 'e' }),
        201,
      );
      await f.ok(await f.call('POST', `/v1/requests/${request.id}/approve`, f.approver));
      await f.ok(await f.call('POST', `/v1/requests/${request.id}/revoke`, task.token));
    } finally {
      stop();
    }
    expect(seen).toEqual(['request.created', 'request.approved', 'request.revoked']);
  });

  it('an elevation whose TTL ran out is refused at once; the sweep frees it and announces request.expired', async () => {
    // Subscribed first: the node's own reaper may sweep before this test does.
    const seen: Array<{ type: string; id?: string }> = [];
    const stop = s.node.services().events.subscribe((e) => seen.push(e as { type: string; id?: string }));
    const task = await f.startTask();
    const { request } = await f.ok(
      await f.request(task.token, { scope: 'read:kv/finance/ledger', reason: 'short' }),
      201,
    );
    await f.ok(await f.call('POST', `/v1/requests/${request.id}/approve`, f.approver, { ttl: 1 }));
    expect(await f.read(task.token, 'kv/finance/ledger')).toBe(200);
    await new Promise((r) => setTimeout(r, 1_100));
    expect(await f.read(task.token, 'kv/finance/ledger')).toBe(403);
    expect((await f.ok(await f.call('GET', `/v1/requests/${request.id}`, f.approver))).request.status).toBe('expired');
    try {
      await s.node.services().requests.sweep();
    } finally {
      stop();
    }
    expect(seen).toContainEqual(expect.objectContaining({ type: 'request.expired', id: request.id }));
    const introspected = await f.ok(await f.call('POST', '/v1/oauth/introspect', f.approver, { token: task.token }));
    expect(introspected.elevations).toBeUndefined();
  });
});
