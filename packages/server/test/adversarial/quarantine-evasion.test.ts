import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditEvents, fakeSecret, startTestServer, type TestServer } from '../test-server.js';
import { openEventStream } from './adversarial-support.js';

// Attack class: escaping or lifting a quarantine.
//
// A suspended role or identity must stay out until an operator allowed to
// resume it does: not lifted by the agent (a task cannot touch suspension,
// least of all its own role's), not by a narrower operator, not by
// rewriting the role, and not dodged by a fresh credential or by delegating
// from a task that was already running. Bad active-hours input is refused
// whole, with its own code, and changes nothing.

const DELEGATE = 'permit(principal, action == Custos::Action::"delegate", resource in Custos::Path::"sys/tasks/");';
const ROLES_ADMIN = (action: string) =>
  `permit(principal, action == Custos::Action::"${action}", resource in Custos::Path::"sys/roles/");`;

describe('a quarantine cannot be lifted or dodged by whom it holds', () => {
  let s: TestServer;
  const ok = async (response: Awaited<ReturnType<TestServer['call']>>) => {
    expect(response.statusCode, response.body).toBe(200);
    return response.json();
  };
  const code = (response: Awaited<ReturnType<TestServer['call']>>) => response.json().error?.code as string;
  const operator = async (policies: string[]) =>
    (await ok(await s.call({ method: 'POST', url: '/v1/auth/token/create', payload: { policies, ttl: '10m' } })))
      .token as string;
  const bootstrapLogin = async (role: string) => {
    const { token } = await ok(await s.call({ method: 'POST', url: `/v1/roles/${role}/bootstrap`, payload: {} }));
    return s.call({ method: 'POST', url: '/v1/auth/bootstrap/login', token: null, payload: { token, ttl: '10m' } });
  };
  const suspend = (role: string, token?: string, body: Record<string, string> = {}) =>
    s.call({ method: 'POST', url: `/v1/roles/${role}/suspend`, payload: body, ...(token ? { token } : {}) });
  const resume = (role: string, token?: string, body: Record<string, string> = {}) =>
    s.call({ method: 'POST', url: `/v1/roles/${role}/resume`, payload: body, ...(token ? { token } : {}) });
  const read = (token: string) => s.call({ method: 'GET', url: '/v1/secrets/data/kv/q/app', token });

  beforeAll(async () => {
    s = await startTestServer('sqlite');
    await ok(
      await s.call({
        method: 'PUT',
        url: '/v1/policies/q-agent',
        payload: {
          policy: `permit(principal, action == Custos::Action::"read", resource in Custos::Path::"kv/q/");\n${DELEGATE}`,
        },
      }),
    );
    for (const action of ['write', 'admin']) {
      await ok(
        await s.call({ method: 'PUT', url: `/v1/policies/roles-${action}`, payload: { policy: ROLES_ADMIN(action) } }),
      );
    }
    await ok(await s.call({ method: 'PUT', url: '/v1/secrets/data/kv/q/app', payload: { data: { v: fakeSecret() } } }));
  });
  afterAll(async () => {
    await s?.close();
  });

  const newRole = async (name: string) =>
    ok(
      await s.call({
        method: 'PUT',
        url: `/v1/roles/${name}`,
        payload: { policies: ['q-agent'], max_ttl: '15m', max_depth: 2 },
      }),
    );

  it('a task can neither suspend nor resume any role, its own least of all', async () => {
    await newRole('q-self');
    const task = (await bootstrapLogin('q-self')).json();
    expect((await suspend('q-self', task.token)).statusCode).toBe(403);
    await ok(await suspend('q-self'));
    // Its token is refused at authentication: it cannot even reach the resume route's policy check.
    const refused = await resume('q-self', task.token);
    expect(refused.statusCode).toBe(403);
    expect(code(refused)).toBe('CUSTOS_ERR_SUSPENDED');
    // A task of another, live role is refused by the route (operators only).
    await newRole('q-other');
    const other = (await bootstrapLogin('q-other')).json();
    expect(code(await resume('q-self', other.token))).toBe('CUSTOS_ERR_PERMISSION_DENIED');
    expect((await ok(await s.call({ method: 'GET', url: '/v1/roles/q-self' }))).suspended).toBeDefined();
  });

  it('resuming needs admin on the role: write suspends but does not resume, nothing does neither', async () => {
    await newRole('q-ops');
    const writer = await operator(['roles-write']);
    const admin = await operator(['roles-admin']);
    const nobody = await operator(['q-agent']);
    expect(code(await suspend('q-ops', nobody))).toBe('CUSTOS_ERR_PERMISSION_DENIED');
    expect((await ok(await suspend('q-ops', writer))).changed).toBe(true);
    expect(code(await resume('q-ops', writer))).toBe('CUSTOS_ERR_PERMISSION_DENIED');
    expect(code(await resume('q-ops', nobody))).toBe('CUSTOS_ERR_PERMISSION_DENIED');
    expect((await ok(await s.call({ method: 'GET', url: '/v1/roles/q-ops' }))).suspended).toMatchObject({
      by: expect.stringMatching(/^token:/),
    });
    expect((await ok(await resume('q-ops', admin))).changed).toBe(true);
    expect((await ok(await s.call({ method: 'GET', url: '/v1/roles/q-ops' }))).suspended).toBeUndefined();
  });

  it('a suspended role is not dodged by a new bootstrap token, an operator start, delegation or a role rewrite', async () => {
    await newRole('q-dodge');
    const live = (await bootstrapLogin('q-dodge')).json();
    expect((await read(live.token)).statusCode).toBe(200);
    await ok(await suspend('q-dodge'));
    const login = await bootstrapLogin('q-dodge');
    expect(login.statusCode).toBe(403);
    expect(code(login)).toBe('CUSTOS_ERR_SUSPENDED');
    expect(code(await s.call({ method: 'POST', url: '/v1/roles/q-dodge/tasks', payload: { ttl: '5m' } }))).toBe(
      'CUSTOS_ERR_SUSPENDED',
    );
    expect(code(await read(live.token))).toBe('CUSTOS_ERR_SUSPENDED');
    expect(
      code(await s.call({ method: 'POST', url: '/v1/tasks/delegate', token: live.token, payload: { ttl: '1m' } })),
    ).toBe('CUSTOS_ERR_SUSPENDED');
    // The RFC 8693 exchange: invalid_request, with the code beside it.
    const exchanged = await s.call({
      method: 'POST',
      url: '/v1/oauth/token',
      token: null,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({
        grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
        subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
        subject_token: live.token,
      }).toString(),
    });
    expect(exchanged.statusCode).toBe(400);
    expect(exchanged.json()).toMatchObject({ error: 'invalid_request', custos_code: 'CUSTOS_ERR_SUSPENDED' });
    // Re-applying the role's definition keeps the suspension.
    await newRole('q-dodge');
    expect(code(await bootstrapLogin('q-dodge'))).toBe('CUSTOS_ERR_SUSPENDED');
    // An invalid credential learns nothing about the suspension: the same 401 as for any role.
    const forged = await s.call({
      method: 'POST',
      url: '/v1/auth/bootstrap/login',
      token: null,
      payload: { token: `cbt_${fakeSecret()}` },
    });
    expect(code(forged)).toBe('CUSTOS_ERR_UNAUTHENTICATED');
    // The refusals are audited with why.
    const reasons = (await auditEvents(s.storage)).filter((e) => e.error_code === 'CUSTOS_ERR_SUSPENDED');
    expect(reasons.length).toBeGreaterThanOrEqual(5);
    expect(reasons.every((e) => e.reason === 'role_suspended')).toBe(true);
    // Resumed: the task that was running works again (it was refused, not revoked).
    await ok(await resume('q-dodge'));
    expect((await read(live.token)).statusCode).toBe(200);
  });

  it('a suspended identity is refused with its delegated children, while its role works for others', async () => {
    await newRole('q-ident');
    const parent = (await bootstrapLogin('q-ident')).json();
    const child = await ok(
      await s.call({ method: 'POST', url: '/v1/tasks/delegate', token: parent.token, payload: { ttl: '5m' } }),
    );
    const identity = parent.task.sub as string;
    expect((await ok(await suspend('q-ident', undefined, { identity }))).changed).toBe(true);
    expect((await ok(await suspend('q-ident', undefined, { identity }))).changed).toBe(false);
    for (const token of [parent.token, child.token]) {
      const refused = await read(token);
      expect(refused.statusCode).toBe(403);
      expect(code(refused)).toBe('CUSTOS_ERR_SUSPENDED');
    }
    const other = (await bootstrapLogin('q-ident')).json();
    expect((await read(other.token)).statusCode).toBe(200);
    await ok(await resume('q-ident', undefined, { identity }));
    expect((await read(child.token)).statusCode).toBe(200);
    // Who suspended and resumed whom is in the audit trail.
    const audited = (await auditEvents(s.storage)).filter(
      (e) => (e.request as { route?: string })?.route?.startsWith('/v1/roles/:name/') && e.decision === 'allow',
    );
    expect(
      audited
        .filter((e) => (e.details as { identity?: string }).identity === identity)
        .map((e) => (e.request as { route: string }).route),
    ).toEqual(expect.arrayContaining(['/v1/roles/:name/suspend', '/v1/roles/:name/resume']));
  });

  it('bad active hours are refused whole with their own code, and change nothing', async () => {
    await newRole('q-hours');
    const before = await ok(await s.call({ method: 'GET', url: '/v1/roles/q-hours' }));
    for (const bad of [
      'Mon-Fri 07:00-19:00 Mars/Olympus',
      'Mon-Fry 07:00-19:00 UTC',
      'Mon-Fri 25:00-19:00 UTC',
      'Mon-Fri 07:00-07:00 UTC',
      'whenever',
      ',',
      Array.from({ length: 17 }, () => 'Mon 01:00-02:00 UTC').join(', '),
    ]) {
      const response = await s.call({
        method: 'PUT',
        url: '/v1/roles/q-hours',
        payload: { policies: [], max_ttl: '1m', active_hours: bad },
      });
      expect(response.statusCode, bad).toBe(400);
      expect(code(response), bad).toBe('CUSTOS_ERR_ACTIVE_HOURS_INVALID');
    }
    expect(await ok(await s.call({ method: 'GET', url: '/v1/roles/q-hours' }))).toEqual(before);
    const written = await ok(
      await s.call({
        method: 'PUT',
        url: '/v1/roles/q-hours',
        payload: {
          policies: ['q-agent'],
          max_ttl: '15m',
          active_hours: 'mon-fri 07:00-19:00 Europe/Berlin,Sat 22:00-02:00',
        },
      }),
    );
    expect(written.active_hours).toBe('Mon-Fri 07:00-19:00 Europe/Berlin, Sat 22:00-02:00 UTC');
  });
});

describe('what quarantine did is told to operators only', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer('sqlite', {
      anomaly: { actions: { rules: { 'dead-task-token': ['suspend-identity', 'revoke-task-tree'] } } },
    });
    // Its tasks may read alerts by policy: the stream must refuse them anyway.
    const policy = await s.call({
      method: 'PUT',
      url: '/v1/policies/alerts-reader',
      payload: {
        policy:
          'permit(principal, action == Custos::Action::"read", resource in Custos::Path::"sys/alerts/");\n' +
          'permit(principal, action == Custos::Action::"read", resource in Custos::Path::"kv/q-stream/");',
      },
    });
    expect(policy.statusCode).toBe(200);
    const role = await s.call({
      method: 'PUT',
      url: '/v1/roles/q-stream',
      payload: { policies: ['alerts-reader'], max_ttl: '15m' },
    });
    expect(role.statusCode).toBe(200);
  });
  afterAll(async () => {
    await s?.close();
  });

  it('a task subscribed to the event stream never hears of an action, even one about its own role', async () => {
    await s.app.listen({ host: '127.0.0.1', port: 0 });
    const base = `http://127.0.0.1:${(s.app.server.address() as AddressInfo).port}`;
    const start = async () =>
      (await s.call({ method: 'POST', url: '/v1/roles/q-stream/tasks', payload: { ttl: '10m' } })).json() as {
        token: string;
        task_id: string;
      };
    const open = (token: string) => openEventStream(base, token);
    // Started by another operator token: a different identity, which the action does not suspend.
    const other = (
      await s.call({ method: 'POST', url: '/v1/auth/token/create', payload: { policies: [], ttl: '10m' } })
    ).json().token as string;
    const listening = (
      await s.call({ method: 'POST', url: '/v1/roles/q-stream/tasks', token: other, payload: { ttl: '10m' } })
    ).json() as { token: string };
    const task = await open(listening.token);
    const operator = await open(s.rootToken);
    const dead = await start();
    await s.call({ method: 'POST', url: `/v1/tasks/${dead.task_id}/revoke` });
    await s.call({ method: 'GET', url: '/v1/alerts', token: dead.token });
    await operator.until('event: alert.action');
    await s.node.services().anomaly!.idle();
    // A later event the task may hear: once it has it, it has had its chance at the action's.
    s.node.services().events.publish({
      type: 'secret.rotated',
      path: 'kv/q-stream/marker',
      version: 2,
      time: new Date().toISOString(),
    });
    await task.until('event: secret.rotated');
    task.stop();
    operator.stop();
    expect(operator.state.text).toMatch(/"action":"suspend-identity","outcome":"done"/);
    expect(task.state.text).not.toContain('alert.');
  });
});
