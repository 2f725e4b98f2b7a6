import { createLocalJWKSet, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasPostgres } from '../../../test-support/postgres.js';
import { auditEvents, type Backend, fakeSecret, startTestServer, type TestServer } from './test-server.js';

const backends: Backend[] = ['sqlite', ...(hasPostgres() ? (['postgres'] as const) : [])];
const EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';

describe.each(backends)('tasks, delegation and cascade revocation on %s', (backend) => {
  let s: TestServer;
  const asTask = (token: string, method: 'GET' | 'PUT', path: string) =>
    s.call({
      method,
      url: `/v1/secrets/data/${path}`,
      token,
      ...(method === 'PUT' ? { payload: { data: { k: fakeSecret() } } } : {}),
    });
  const exchange = (subject: string, params: Record<string, string>) =>
    s.call({
      method: 'POST',
      url: '/v1/oauth/token',
      token: null,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({
        grant_type: EXCHANGE,
        subject_token: subject,
        subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
        ...params,
      }).toString(),
    });
  const login = async () => {
    const created = await s.call({ method: 'POST', url: '/v1/roles/enricher/bootstrap', payload: { ttl: '5m' } });
    expect(created.statusCode).toBe(200);
    const bootstrap = created.json().token as string;
    const response = await s.call({
      method: 'POST',
      url: '/v1/auth/bootstrap/login',
      token: null,
      payload: { token: bootstrap, ttl: '10m' },
    });
    expect(response.statusCode).toBe(200);
    return { bootstrap, ...(response.json() as { token: string; task_id: string; accessor: string }) };
  };

  beforeAll(async () => {
    s = await startTestServer(backend);
    await s.call({
      method: 'PUT',
      url: '/v1/policies/team-data',
      payload: {
        policy:
          'permit(principal, action in [Custos::Action::"read", Custos::Action::"list"], resource in Custos::Path::"kv/team/");\n' +
          'permit(principal, action == Custos::Action::"delegate", resource in Custos::Path::"sys/tasks/");',
      },
    });
    const role = await s.call({
      method: 'PUT',
      url: '/v1/roles/enricher',
      payload: { policies: ['team-data'], max_ttl: '15m', max_depth: 2, auth: ['bootstrap'] },
    });
    expect(role.statusCode).toBe(200);
    for (const path of ['kv/team/a/x', 'kv/team/b/y', 'kv/hr/z']) {
      await s.call({ method: 'PUT', url: `/v1/secrets/data/${path}`, payload: { data: { k: fakeSecret() } } });
    }
  });
  afterAll(async () => {
    await s?.close();
  });

  it('a bootstrap token logs in once; its reuse is refused and raises a security alert', async () => {
    const root = await login();
    expect((await asTask(root.token, 'GET', 'kv/team/a/x')).statusCode).toBe(200);
    // the role's policies still bound a full-scope task
    expect((await asTask(root.token, 'GET', 'kv/hr/z')).statusCode).toBe(403);
    expect((await asTask(root.token, 'PUT', 'kv/team/a/x')).statusCode).toBe(403);
    const replay = await s.call({
      method: 'POST',
      url: '/v1/auth/bootstrap/login',
      token: null,
      payload: { token: root.bootstrap },
    });
    expect(replay.statusCode).toBe(401);
    // The login's response event names the task it issued a token for.
    const issuedBy = (id: string) =>
      auditEvents(s.storage).then((events) =>
        events.filter((e) => (e.details as { issued_task?: string } | undefined)?.issued_task === id),
      );
    expect(await issuedBy(root.task_id)).toMatchObject([
      { status: 200, request: { route: '/v1/auth/bootstrap/login' } },
    ]);
    const started = await s.call({ method: 'POST', url: '/v1/roles/enricher/tasks', payload: { ttl: '1m' } });
    expect(await issuedBy(started.json().task_id)).toMatchObject([
      { status: 200, request: { route: '/v1/roles/:name/tasks' }, auth: { root: true } },
    ]);
    const alerts = (await auditEvents(s.storage)).filter((e) => e.type === 'security_alert');
    expect(alerts.at(-1)).toMatchObject({ kind: 'bootstrap_token_reused' });
    expect(JSON.stringify(alerts)).not.toContain(root.bootstrap);
  });

  it('delegates narrower children by RFC 8693 token exchange and refuses anything wider', async () => {
    const root = await login();
    // A child may delegate further only if its slice says so (`delegate:`).
    const leaf = await exchange(root.token, { scope: 'read:kv/team/a/*', ttl: '5m' });
    expect(leaf.statusCode).toBe(200);
    const leafChild = await exchange(leaf.json().access_token, { scope: 'read:kv/team/a/x' });
    // RFC 6749 §5.2: a token-endpoint refusal is 400; RFC 8693 §2.2.2 names a
    // subject token "unacceptable based on policy" invalid_request.
    expect(leafChild.statusCode).toBe(400);
    expect(leafChild.json()).toMatchObject({ error: 'invalid_request', custos_code: 'CUSTOS_ERR_PERMISSION_DENIED' });

    const child = await exchange(root.token, { scope: 'read:kv/team/a/* delegate:sys/tasks/*', ttl: '5m' });
    expect(child.statusCode).toBe(200);
    const childToken = child.json().access_token as string;
    expect(child.json()).toMatchObject({ token_type: 'Bearer', scope: 'read:kv/team/a/* delegate:sys/tasks/*' });
    // The audit trail names the child each exchange minted (and which task asked).
    const minted = (await auditEvents(s.storage)).filter(
      (e) => (e.details as { issued_task?: string } | undefined)?.issued_task === child.json().task_id,
    );
    expect(minted).toMatchObject([
      { status: 200, auth: { task_chain: [root.task_id] }, details: { phase: 'response' } },
    ]);
    expect((await asTask(childToken, 'GET', 'kv/team/a/x')).statusCode).toBe(200);
    // the parent may read kv/team/b, the child's slice may not
    expect((await asTask(root.token, 'GET', 'kv/team/b/y')).statusCode).toBe(200);
    expect((await asTask(childToken, 'GET', 'kv/team/b/y')).statusCode).toBe(403);

    const wider = await exchange(childToken, { scope: 'read:kv/team/*' });
    expect(wider.statusCode).toBe(400);
    expect(wider.json()).toMatchObject({ error: 'invalid_scope', custos_code: 'CUSTOS_ERR_SCOPE_EXCEEDS_PARENT' });
    const longer = await exchange(childToken, { ttl: '10m' });
    expect(longer.json().custos_code).toBe('CUSTOS_ERR_TTL_EXCEEDS_PARENT');

    const grandchild = await exchange(childToken, { scope: 'read:kv/team/a/x delegate:sys/tasks/*', ttl: '1m' });
    expect(grandchild.statusCode).toBe(200);
    const tooDeep = await exchange(grandchild.json().access_token, { ttl: '30s' });
    expect(tooDeep.json().custos_code).toBe('CUSTOS_ERR_DELEGATION_DEPTH');

    // the token carries the RFC 8693 act chain and verifies offline with the JWKS
    const jwks = (await s.call({ method: 'GET', url: '/.well-known/jwks.json', token: null })).json();
    const { payload, protectedHeader } = await jwtVerify(grandchild.json().access_token, createLocalJWKSet(jwks), {
      audience: 'custos',
    });
    expect(protectedHeader.alg).toBe('EdDSA');
    expect(payload).toMatchObject({
      depth: 2,
      scope: 'read:kv/team/a/x delegate:sys/tasks/*',
      parent_task_id: child.json().task_id,
      act: { task_id: child.json().task_id, act: { task_id: root.task_id } },
    });
    expect(payload.exp! * 1000).toBeLessThanOrEqual(Date.now() + 60_000 + 1_000);
  });

  it('one revocation kills the whole tree at once; introspection reports it', async () => {
    const root = await login();
    const child = (await exchange(root.token, { scope: 'read:kv/team/a/* delegate:sys/tasks/*' })).json();
    const grandchild = (await exchange(child.access_token, { scope: 'read:kv/team/a/x' })).json();
    const introspect = (token: string) =>
      s.call({ method: 'POST', url: '/v1/oauth/introspect', payload: { token } }).then((r) => r.json());
    expect(await introspect(grandchild.access_token)).toMatchObject({ active: true, depth: 2 });

    const tree = (await s.call({ method: 'GET', url: `/v1/tasks/${root.task_id}/tree` })).json().tasks;
    expect(tree.map((t: { id: string }) => t.id)).toEqual([root.task_id, child.task_id, grandchild.task_id]);

    const revoked = await s.call({ method: 'POST', url: `/v1/tasks/${child.task_id}/revoke` });
    expect(revoked.statusCode).toBe(200);
    // the child and the grandchild die; the root (the revoked task's parent) lives on
    expect((await asTask(child.access_token, 'GET', 'kv/team/a/x')).statusCode).toBe(401);
    expect((await asTask(grandchild.access_token, 'GET', 'kv/team/a/x')).statusCode).toBe(401);
    expect((await asTask(root.token, 'GET', 'kv/team/a/x')).statusCode).toBe(200);
    expect(await introspect(grandchild.access_token)).toEqual({ active: false });
    expect((await exchange(child.access_token, {})).statusCode).toBe(400);

    const after = (await s.call({ method: 'GET', url: `/v1/tasks/${root.task_id}/tree` })).json().tasks;
    expect(after.map((t: { state: string }) => t.state)).toEqual(['active', 'revoked', 'revoked']);
    expect(await introspect('garbage')).toEqual({ active: false });
  });

  it('a task may revoke its own subtree but not its parent', async () => {
    const root = await login();
    const child = (await exchange(root.token, { scope: 'read:kv/team/a/*' })).json();
    const upward = await s.call({ method: 'POST', url: `/v1/tasks/${root.task_id}/revoke`, token: child.access_token });
    expect(upward.statusCode).toBe(403);
    const own = await s.call({ method: 'POST', url: `/v1/tasks/${child.task_id}/end`, token: root.token });
    expect(own.json().state).toBe('ended');
  });

  it('accessors let an orchestrator look up, extend and revoke without the token', async () => {
    const root = await login();
    const view = (await s.call({ method: 'GET', url: `/v1/tasks/accessors/${root.accessor}` })).json();
    expect(view).toMatchObject({ id: root.task_id, state: 'active', role: 'enricher' });
    expect(JSON.stringify(view)).not.toContain(root.token);
    const tooLong = await s.call({
      method: 'POST',
      url: `/v1/tasks/accessors/${root.accessor}/extend`,
      payload: { ttl: '1h' },
    });
    expect(tooLong.json().error.code).toBe('CUSTOS_ERR_INVALID_TTL');
    const extended = await s.call({
      method: 'POST',
      url: `/v1/tasks/accessors/${root.accessor}/extend`,
      payload: { ttl: '14m' },
    });
    expect(extended.statusCode).toBe(200);
    await s.call({ method: 'POST', url: `/v1/tasks/accessors/${root.accessor}/revoke` });
    expect((await asTask(root.token, 'GET', 'kv/team/a/x')).statusCode).toBe(401);
  });

  it('refuses forged and tampered tokens', async () => {
    const root = await login();
    const [header, payload, signature] = root.token.split('.') as [string, string, string];
    const none = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${payload}.`;
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
    const widened = Buffer.from(JSON.stringify({ ...claims, scope: 'read:*' })).toString('base64url');
    for (const forged of [
      none,
      `${header}.${widened}.${signature}`,
      `${header}.${payload}.${signature.slice(0, -4)}AAAA`,
    ]) {
      expect((await asTask(forged, 'GET', 'kv/team/a/x')).statusCode).toBe(401);
    }
  });

  it('rotates the signing key: old tokens stay valid and both keys are published', async () => {
    const before = await login();
    const rotated = await s.call({ method: 'POST', url: '/v1/sys/task-keys/rotate' });
    expect(rotated.statusCode).toBe(200);
    const jwks = (await s.call({ method: 'GET', url: '/.well-known/jwks.json', token: null })).json();
    expect(jwks.keys.map((k: { kid: string }) => k.kid)).toContain(rotated.json().kid);
    expect(jwks.keys.length).toBeGreaterThanOrEqual(2);
    expect((await asTask(before.token, 'GET', 'kv/team/a/x')).statusCode).toBe(200);
    const after = await login();
    const [header] = after.token.split('.') as [string];
    expect(JSON.parse(Buffer.from(header, 'base64url').toString()).kid).toBe(rotated.json().kid);
  });

  it('publishes RFC 8414 metadata', async () => {
    const meta = (await s.call({ method: 'GET', url: '/.well-known/oauth-authorization-server', token: null })).json();
    expect(meta.grant_types_supported).toContain(EXCHANGE);
    expect(meta.jwks_uri).toMatch(/\/\.well-known\/jwks\.json$/);
  });

  it('labels reach Cedar as principal.labels ("k=v"), and children inherit them', async () => {
    await s.call({
      method: 'PUT',
      url: '/v1/policies/labelled',
      payload: {
        policy:
          'permit(principal is Custos::Task, action == Custos::Action::"read", resource in Custos::Path::"kv/labelled/") when { principal.labels.contains("team=search") };\n' +
          'permit(principal, action == Custos::Action::"delegate", resource in Custos::Path::"sys/tasks/");',
      },
    });
    expect(
      (
        await s.call({
          method: 'PUT',
          url: '/v1/roles/labelled',
          payload: { policies: ['labelled'], max_ttl: '15m', grantable_labels: ['team'] },
        })
      ).statusCode,
    ).toBe(200);
    await s.call({ method: 'PUT', url: '/v1/secrets/data/kv/labelled/x', payload: { data: { k: fakeSecret() } } });
    const start = async (labels: Record<string, string>) => {
      const r = await s.call({ method: 'POST', url: '/v1/roles/labelled/tasks', payload: { ttl: '5m', labels } });
      expect(r.statusCode).toBe(200);
      return r.json().token as string;
    };
    const search = await start({ team: 'search' });
    const other = await start({ team: 'ads' });
    expect((await asTask(search, 'GET', 'kv/labelled/x')).statusCode).toBe(200);
    expect((await asTask(other, 'GET', 'kv/labelled/x')).statusCode).toBe(403);
    const child = await exchange(search, {});
    expect(child.statusCode).toBe(200);
    expect((await asTask(child.json().access_token, 'GET', 'kv/labelled/x')).statusCode).toBe(200);
  });
});
