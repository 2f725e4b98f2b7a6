import type { AddressInfo } from 'node:net';
import type { Principal } from '@custos/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasPostgres } from '../../../../test-support/postgres.js';
import { type JitFixture, jitFixture } from '../access-request-support.js';
import { type Backend, startTestServer, type TestServer } from '../test-server.js';
import { openEventStream, watchWrites } from './adversarial-support.js';

// Attack class: getting more than a human approved out of a just-in-time
// access request (docs/jit.md) — approving oneself, widening on approval,
// keeping an elevation past its task, borrowing a parent's, guessing ids,
// reading others' requests, or calling any of it without a token.

const backends: Backend[] = ['sqlite', ...(hasPostgres() ? (['postgres'] as const) : [])];

const NEW_ROUTES: Array<[string, string]> = [
  ['POST', '/v1/requests'],
  ['GET', '/v1/requests'],
  ['GET', '/v1/requests/req_00000000000000000000000000000000'],
  ['POST', '/v1/requests/req_00000000000000000000000000000000/approve'],
  ['POST', '/v1/requests/req_00000000000000000000000000000000/deny'],
  ['POST', '/v1/requests/req_00000000000000000000000000000000/revoke'],
];

describe.each(backends)('access requests cannot be turned into unapproved access (%s)', (backend) => {
  let s: TestServer;
  let f: JitFixture;
  const watch = watchWrites();
  const code = (r: Awaited<ReturnType<JitFixture['call']>>) => r.json().error?.code as string | undefined;

  beforeAll(async () => {
    s = await startTestServer(backend, { wrapStorage: watch.wrap });
    f = await jitFixture(s);
  });
  afterAll(async () => {
    await s?.close();
  });

  const ask = async (token: string, body: Record<string, unknown> = {}) =>
    (await f.ok(await f.request(token, { scope: 'read:kv/finance/ledger', reason: 'adversarial', ...body }), 201))
      .request as { id: string };

  it('every new route refuses a caller without a token, and writes nothing', async () => {
    const task = await f.startTask();
    const real = await ask(task.token);
    for (const [method, url] of NEW_ROUTES) {
      for (const target of [url, url.replace('req_00000000000000000000000000000000', real.id)]) {
        let response: Awaited<ReturnType<JitFixture['call']>> | undefined;
        const writes = await watch.log.during(async () => {
          response = await f.call(
            method,
            target,
            null,
            method === 'POST' ? { scope: 'read:kv/finance/ledger', reason: 'x' } : undefined,
          );
        });
        expect(response?.statusCode, `${method} ${target}`).toBe(401);
        expect(writes.filter((w) => / jit\./.test(w))).toEqual([]);
      }
    }
    const shown = await f.ok(await f.call('GET', `/v1/requests/${real.id}`, f.approver));
    expect(shown.request).toMatchObject({ status: 'pending', approvals: [] });
  });

  it('a requester cannot approve its own request, nor can its tree (child, parent) or its identity', async () => {
    const parent = await f.startTask();
    const requester = await f.delegate(parent.token);
    const grandchild = await f.delegate(requester.token);
    const sibling = await f.delegate(parent.token);
    const req = await ask(requester.token);
    for (const token of [requester.token, parent.token, grandchild.token, sibling.token, f.starter]) {
      for (const verb of ['approve', 'deny']) {
        const response = await f.call('POST', `/v1/requests/${req.id}/${verb}`, token, {});
        expect(response.statusCode).toBe(403);
        expect(code(response)).toBe('CUSTOS_ERR_REQUEST_SELF_APPROVAL');
      }
    }
    // A task of another tree is no approver either.
    const outsider = await f.startTask();
    const refused = await f.call('POST', `/v1/requests/${req.id}/approve`, outsider.token, {});
    expect(code(refused)).toBe('CUSTOS_ERR_PERMISSION_DENIED');
    expect(await f.read(requester.token, 'kv/finance/ledger')).toBe(403);
  });

  it('an operator without the role’s approver policy, or without approve on the path, cannot approve', async () => {
    const task = await f.startTask();
    const req = await ask(task.token);
    const stranger = await f.call('POST', `/v1/requests/${req.id}/approve`, f.stranger, {});
    expect(code(stranger)).toBe('CUSTOS_ERR_PERMISSION_DENIED');
    // A role whose ceiling reaches kv/hr/: the finance approver holds the
    // role's approver policy but no `approve` on sys/requests/read/kv/hr/.
    await f.ok(
      await f.call('PUT', '/v1/roles/hr-agent', undefined, {
        policies: ['agent-public'],
        max_ttl: '1h',
        request_scope: 'read:kv/hr/*',
        approvers: ['finance-approver'],
      }),
    );
    const hr = await f.ok(await f.call('POST', '/v1/roles/hr-agent/tasks', f.starter, { ttl: '10m' }));
    const hrReq = await ask(hr.token, { scope: 'read:kv/hr/salaries' });
    const refused = await f.call('POST', `/v1/requests/${hrReq.id}/approve`, f.approver, {});
    expect(code(refused)).toBe('CUSTOS_ERR_PERMISSION_DENIED');
    expect((await f.ok(await f.call('GET', `/v1/requests/${hrReq.id}`, f.approver))).request.approvals).toEqual([]);
  });

  it('an approval cannot widen: scope, TTL or children beyond the request are refused and nothing is recorded', async () => {
    const task = await f.startTask();
    const req = await ask(task.token, { ttl: '5m' });
    for (const body of [
      { scope: 'read:kv/finance/*' },
      { scope: 'read:kv/finance/payroll' },
      { ttl: '10m' },
      { children: true },
    ]) {
      const response = await f.call('POST', `/v1/requests/${req.id}/approve`, f.approver, body);
      expect(response.statusCode, JSON.stringify(body)).toBe(400);
      expect(code(response)).toBe('CUSTOS_ERR_REQUEST_WIDENING');
    }
    const shown = (await f.ok(await f.call('GET', `/v1/requests/${req.id}`, f.approver))).request;
    expect(shown).toMatchObject({ status: 'pending', approvals: [] });
    expect(await f.read(task.token, 'kv/finance/ledger')).toBe(403);
  });

  it('a later approver cannot widen what an earlier approver narrowed', async () => {
    await f.ok(
      await f.call('PUT', '/v1/roles/analyst-two', undefined, {
        policies: ['agent-public'],
        max_ttl: '1h',
        request_scope: 'read:kv/finance/*',
        approvals: 2,
      }),
    );
    const issued = await f.ok(await f.call('POST', '/v1/roles/analyst-two/tasks', f.starter, { ttl: '10m' }));
    const req = await ask(issued.token, { scope: 'read:kv/finance/*' });
    await f.ok(await f.call('POST', `/v1/requests/${req.id}/approve`, f.approver, { scope: 'read:kv/finance/ledger' }));
    const second = await f.ok(await f.call('POST', `/v1/requests/${req.id}/approve`, f.approver2, {}));
    expect(second.request).toMatchObject({ status: 'approved', scope: 'read:kv/finance/ledger' });
    expect(await f.read(issued.token, 'kv/finance/ledger')).toBe(200);
    expect(await f.read(issued.token, 'kv/finance/payroll')).toBe(403);
  });

  it('an elevation does not survive its task: revoked or ended, the token is dead and a new task gets nothing', async () => {
    for (const verb of ['revoke', 'end']) {
      const task = await f.startTask();
      const req = await ask(task.token, { children: true });
      await f.ok(await f.call('POST', `/v1/requests/${req.id}/approve`, f.approver, {}));
      const child = await f.delegate(task.token);
      expect(await f.read(child.token, 'kv/finance/ledger')).toBe(200);
      await f.ok(await f.call('POST', `/v1/tasks/${task.id}/${verb}`, undefined));
      expect(await f.read(task.token, 'kv/finance/ledger')).toBe(401);
      expect(await f.read(child.token, 'kv/finance/ledger')).toBe(401);
      const introspected = await f.ok(await f.call('POST', '/v1/oauth/introspect', f.approver, { token: task.token }));
      expect(introspected).toEqual({ active: false });
      const shown = (await f.ok(await f.call('GET', `/v1/requests/${req.id}`, f.approver))).request;
      expect(shown.status).toBe(verb === 'revoke' ? 'revoked' : 'expired');
      const fresh = await f.startTask();
      expect(await f.read(fresh.token, 'kv/finance/ledger')).toBe(403);
    }
  });

  it('a child cannot use its parent’s elevation unless the approval said children', async () => {
    const parent = await f.startTask();
    const child = await f.delegate(parent.token);
    const req = await ask(parent.token);
    await f.ok(await f.call('POST', `/v1/requests/${req.id}/approve`, f.approver, {}));
    expect(await f.read(parent.token, 'kv/finance/ledger')).toBe(200);
    expect(await f.read(child.token, 'kv/finance/ledger')).toBe(403);
    const late = await f.delegate(parent.token);
    expect(await f.read(late.token, 'kv/finance/ledger')).toBe(403);
    // Nor can the child's own (narrower) delegation ask its way into more than the ceiling.
    const refused = await f.request(child.token, { scope: 'write:kv/finance/ledger', reason: 'x' });
    expect(code(refused)).toBe('CUSTOS_ERR_REQUEST_NOT_REQUESTABLE');
  });

  it('forged, malformed and foreign request ids answer not found, to tasks and operators alike', async () => {
    const owner = await f.startTask();
    const other = await f.startTask();
    const req = await ask(owner.token);
    const forged = ['req_ffffffffffffffffffffffffffffffff', 'req_../../x', 'tsk_AAAAAAAAAAAAAAAAAAAAAA', `${req.id}x`];
    for (const id of forged) {
      for (const [method, suffix] of [
        ['GET', ''],
        ['POST', '/approve'],
        ['POST', '/deny'],
        ['POST', '/revoke'],
      ] as const) {
        const response = await f.call(
          method,
          `/v1/requests/${encodeURIComponent(id)}${suffix}`,
          f.approver,
          method === 'POST' ? {} : undefined,
        );
        expect(response.statusCode, `${method} ${id}${suffix}`).toBe(404);
      }
    }
    // Another task's request: not found for a task (no oracle), whatever it tries.
    for (const [method, suffix] of [
      ['GET', ''],
      ['POST', '/revoke'],
    ] as const) {
      const response = await f.call(
        method,
        `/v1/requests/${req.id}${suffix}`,
        other.token,
        method === 'POST' ? {} : undefined,
      );
      if (suffix === '') expect(response.statusCode).toBe(404);
      else expect([403, 404]).toContain(response.statusCode);
    }
    expect((await f.ok(await f.call('GET', `/v1/requests/${req.id}`, f.approver))).request.status).toBe('pending');
  });

  it('a task lists only its own requests, and an operator without list permission lists none', async () => {
    const a = await f.startTask();
    const b = await f.startTask();
    const mine = await ask(a.token);
    await ask(b.token);
    const listed = await f.ok(await f.call('GET', '/v1/requests?status=all', a.token));
    expect(listed.requests.map((r: { id: string }) => r.id)).toEqual([mine.id]);
    const noList = await f.call('GET', '/v1/requests', f.starter);
    expect(noList.statusCode).toBe(403);
    const all = await f.ok(await f.call('GET', '/v1/requests?status=all', f.approver));
    expect(all.requests.length).toBeGreaterThanOrEqual(2);
  });

  it('an operator cannot file a request (it holds no task to elevate)', async () => {
    const response = await f.request(f.approver, { scope: 'read:kv/finance/ledger', reason: 'x' });
    expect(response.statusCode).toBe(403);
  });

  it('request events reach operators who may read them, never a task (not even the requester)', async () => {
    await s.app.listen({ host: '127.0.0.1', port: 0 });
    const base = `http://127.0.0.1:${(s.app.server.address() as AddressInfo).port}`;
    const requester = await f.startTask();
    const bystander = await f.startTask();
    const asTask = await openEventStream(base, requester.token);
    const asOther = await openEventStream(base, bystander.token);
    const asApprover = await openEventStream(base, f.approver);
    const asStarter = await openEventStream(base, f.starter); // no read on sys/requests/
    const req = await ask(requester.token, { reason: 'fake-reason-not-for-streams' });
    await asApprover.until('request.created');
    await f.ok(await f.call('POST', `/v1/requests/${req.id}/deny`, f.approver, {}));
    await asApprover.until('request.denied');
    for (const stream of [asTask, asOther, asApprover, asStarter]) stream.stop();
    expect(asApprover.state.text).toContain(req.id);
    expect(asApprover.state.text).not.toContain('fake-reason-not-for-streams');
    for (const stream of [asTask, asOther, asStarter]) expect(stream.state.text).not.toContain('request.');
  });

  /** A token minted by `creator` (root when undefined) holding `policies`. */
  const mint = async (creator: string | undefined, policies: string[]) =>
    (await f.ok(await f.call('POST', '/v1/auth/token/create', creator, { policies, ttl: '30m' }))).token as string;
  const minterPolicy = async () =>
    f.ok(
      await f.call('PUT', '/v1/policies/token-minter', undefined, {
        policy: 'permit(principal, action == Custos::Action::"write", resource == Custos::Path::"sys/tokens");',
      }),
    );

  it('a token the requester minted (or the one that minted it) cannot approve: one person, however many tokens', async () => {
    await minterPolicy();
    // An operator who starts tasks, approves, and may mint tokens.
    const operator = await mint(undefined, ['starter', 'finance-approver', 'token-minter']);
    const issued = await f.ok(await f.call('POST', '/v1/roles/analyst/tasks', operator, { ttl: '10m' }));
    const req = await ask(issued.token);
    const child = await mint(operator, ['finance-approver', 'token-minter']);
    const grandchild = await mint(child, ['finance-approver']);
    for (const token of [child, grandchild]) {
      for (const verb of ['approve', 'deny']) {
        const response = await f.call('POST', `/v1/requests/${req.id}/${verb}`, token, {});
        expect(response.statusCode).toBe(403);
        expect(code(response)).toBe('CUSTOS_ERR_REQUEST_SELF_APPROVAL');
      }
    }
    // The other way round: a task started by the operator's child token is the operator's own too.
    const starterChild = await mint(operator, ['starter']);
    const viaChild = await f.ok(await f.call('POST', '/v1/roles/analyst/tasks', starterChild, { ttl: '10m' }));
    const req2 = await ask(viaChild.token);
    const parentVote = await f.call('POST', `/v1/requests/${req2.id}/approve`, operator, {});
    expect(code(parentVote)).toBe('CUSTOS_ERR_REQUEST_SELF_APPROVAL');
    const siblingVote = await f.call('POST', `/v1/requests/${req2.id}/approve`, child, {});
    expect(code(siblingVote)).toBe('CUSTOS_ERR_REQUEST_SELF_APPROVAL');
    for (const id of [req.id, req2.id]) {
      expect((await f.ok(await f.call('GET', `/v1/requests/${id}`, f.approver))).request).toMatchObject({
        status: 'pending',
        approvals: [],
      });
    }
    expect(await f.read(issued.token, 'kv/finance/ledger')).toBe(403);
    // A token the root token minted is its own person: the approvers of the fixture still decide.
    await f.ok(await f.call('POST', `/v1/requests/${req.id}/approve`, f.approver, {}));
    expect(await f.read(issued.token, 'kv/finance/ledger')).toBe(200);
  });

  it('a token and the token it minted count as one approver towards approvals: 2', async () => {
    await minterPolicy();
    await f.ok(
      await f.call('PUT', '/v1/roles/analyst-quorum', undefined, {
        policies: ['agent-public'],
        max_ttl: '1h',
        request_scope: 'read:kv/finance/*',
        approvers: ['finance-approver'],
        approvals: 2,
      }),
    );
    const parent = await mint(undefined, ['finance-approver', 'token-minter']);
    const child = await mint(parent, ['finance-approver']);
    const issued = await f.ok(await f.call('POST', '/v1/roles/analyst-quorum/tasks', f.starter, { ttl: '10m' }));
    const req = await ask(issued.token);
    await f.ok(await f.call('POST', `/v1/requests/${req.id}/approve`, parent, {}));
    const second = (await f.ok(await f.call('POST', `/v1/requests/${req.id}/approve`, child, {}))).request;
    expect(second.status).toBe('pending');
    expect(second.approvals).toHaveLength(1);
    expect(await f.read(issued.token, 'kv/finance/ledger')).toBe(403);
    // A second person completes it.
    const third = (await f.ok(await f.call('POST', `/v1/requests/${req.id}/approve`, f.approver2, {}))).request;
    expect(third.status).toBe('approved');
    expect(await f.read(issued.token, 'kv/finance/ledger')).toBe(200);
  });

  it('the operator who started a task may end its elevation (giving up privilege), though not approve it', async () => {
    const task = await f.startTask();
    const req = await ask(task.token);
    expect(code(await f.call('POST', `/v1/requests/${req.id}/approve`, f.starter, {}))).toBe(
      'CUSTOS_ERR_REQUEST_SELF_APPROVAL',
    );
    await f.ok(await f.call('POST', `/v1/requests/${req.id}/approve`, f.approver, {}));
    expect(await f.read(task.token, 'kv/finance/ledger')).toBe(200);
    const revoked = (await f.ok(await f.call('POST', `/v1/requests/${req.id}/revoke`, f.starter, {}))).request;
    expect(revoked.status).toBe('revoked');
    expect(await f.read(task.token, 'kv/finance/ledger')).toBe(403);
    // A pending one the starter withdraws the same way.
    const pending = await ask(task.token);
    const withdrawn = (await f.ok(await f.call('POST', `/v1/requests/${pending.id}/revoke`, f.starter, {}))).request;
    expect(withdrawn.status).toBe('revoked');
  });
});

// SQLite only, to keep the suite quick (2,001 requests filed and withdrawn): the paging is the
// store port's keyset `after`, which the storage adapter suites cover on every backend.
describe('access requests: old requests cannot hide a new one (sqlite)', () => {
  let s: TestServer;
  let f: JitFixture;
  beforeAll(async () => {
    s = await startTestServer('sqlite');
    f = await jitFixture(s);
  });
  afterAll(async () => {
    await s?.close();
  });
  const ask = async (token: string) =>
    (await f.ok(await f.request(token, { scope: 'read:kv/finance/ledger', reason: 'adversarial' }), 201)).request as {
      id: string;
    };

  it('thousands of old requests do not hide a new one from the approvers’ queue', { timeout: 300_000 }, async () => {
    const services = s.node.services();
    const filler = await f.startTask();
    const subject = (await services.authenticate(filler.token, { method: 'GET', url: 'test' })) as Principal & {
      kind: 'task';
    };
    const self = { kind: 'task', name: `task:${filler.id}`, chain: subject.task.chain } as const;
    // What a task could do itself: file and withdraw, over and over (through the service: fast).
    for (let i = 0; i < 2_001; i++) {
      const { request } = await services.requests.create(subject.task, {
        scope: 'read:kv/finance/ledger',
        reason: `filler ${i}`,
      });
      await services.requests.revoke(request.id, self);
    }
    const task = await f.startTask();
    const fresh = await ask(task.token);
    const pending = (await f.ok(await f.call('GET', '/v1/requests?status=pending', f.approver))).requests as Array<{
      id: string;
    }>;
    expect(pending.map((r) => r.id)).toContain(fresh.id);
    const all = (await f.ok(await f.call('GET', '/v1/requests?status=all', f.approver))).requests as Array<{
      id: string;
    }>;
    expect(all[0]?.id).toBe(fresh.id);
  });
});
