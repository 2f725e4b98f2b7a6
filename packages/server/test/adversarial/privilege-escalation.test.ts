import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CustosNode } from '@custos/core';
import { createEngine } from '@custos/engines';
import { createStorage } from '@custos/storage';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, hasPostgres, type TestDatabase } from '../../../../test-support/postgres.js';
import { auditEvents, type Backend, fakeSecret, startTestServer, type TestServer } from '../test-server.js';

// Attack class: privilege escalation through an attribute a policy can read.
//
// For each attribute Cedar sees — a task's labels, a token's display name, a
// workload's JWT claims, its role, the task an accessor names — who sets it,
// and can a child, a token creator or the agent itself set or change it?
// Attributes policies rely on come from operators (roles, bootstrap tokens,
// claim mappings) and are immutable below.

const backends: Backend[] = ['sqlite', ...(hasPostgres() ? (['postgres'] as const) : [])];
const ISSUER = 'https://oidc.adversarial.example.test';
const DELEGATE = 'permit(principal, action == Custos::Action::"delegate", resource in Custos::Path::"sys/tasks/");';

describe.each(backends)('no privilege escalation through attributes policies read (%s)', (backend) => {
  let s: TestServer;
  let signingKey: CryptoKey;

  const call = (method: string, url: string, token: string | undefined, payload?: unknown) =>
    s.call({
      method: method as 'GET',
      url,
      ...(token === undefined ? {} : { token }),
      ...(payload !== undefined ? { payload: payload as Record<string, unknown> } : {}),
    });
  const read = (token: string, path: string) => call('GET', `/v1/secrets/data/${path}`, token);
  const ok = async (response: Awaited<ReturnType<typeof call>>) => {
    expect(response.statusCode, response.body).toBe(200);
    return response.json();
  };
  const policy = async (name: string, text: string) =>
    ok(await call('PUT', `/v1/policies/${name}`, undefined, { policy: text }));
  const role = async (name: string, body: Record<string, unknown>) =>
    ok(await call('PUT', `/v1/roles/${name}`, undefined, { max_ttl: '15m', ...body }));
  const start = async (roleName: string, body: Record<string, unknown> = {}) =>
    ok(await call('POST', `/v1/roles/${roleName}/tasks`, undefined, { ttl: '10m', ...body }));
  const bootstrapLogin = async (roleName: string, create: Record<string, unknown> = {}, login = {}) => {
    const { token } = await ok(await call('POST', `/v1/roles/${roleName}/bootstrap`, undefined, create));
    // Logins are anonymous: the credential is the body.
    return s.call({ method: 'POST', url: '/v1/auth/bootstrap/login', token: null, payload: { token, ...login } });
  };
  const anonymousLogin = async (url: string, payload: Record<string, unknown>) =>
    s.call({ method: 'POST', url, token: null, payload });
  const workloadJwt = (claims: Record<string, unknown>) =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: 'RS256', kid: 'adv-key' })
      .setIssuer(ISSUER)
      .setAudience('custos')
      .setSubject('system:serviceaccount:agents:crawler')
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(signingKey);

  beforeAll(async () => {
    s = await startTestServer(backend);
    // Only tasks labelled team=search (by an operator) may read kv/search/.
    await policy(
      'search-team',
      'permit(principal is Custos::Task, action == Custos::Action::"read", resource in Custos::Path::"kv/search/") when { principal.labels.contains("team=search") };\n' +
        DELEGATE,
    );
    // Anyone of the role may read kv/shared/, unless labelled sandbox=true.
    await policy(
      'not-in-sandbox',
      'permit(principal, action == Custos::Action::"read", resource in Custos::Path::"kv/shared/");\n' +
        'forbid(principal is Custos::Task, action, resource in Custos::Path::"kv/shared/") when { principal.labels.contains("sandbox=true") };\n' +
        DELEGATE,
    );
    for (const path of ['kv/search/index', 'kv/shared/config']) {
      await ok(await call('PUT', `/v1/secrets/data/${path}`, undefined, { data: { k: fakeSecret() } }));
    }
    await role('crawler', {
      policies: ['search-team', 'not-in-sandbox'],
      max_depth: 3,
      grantable_labels: ['team', 'sandbox'],
    });
    const { privateKey, publicKey } = await generateKeyPair('RS256');
    signingKey = privateKey as CryptoKey;
    const jwk = { ...(await exportJWK(publicKey)), kid: 'adv-key', alg: 'RS256', use: 'sig' };
    await ok(
      await call('PUT', '/v1/auth/jwt/methods/adv-oidc', undefined, {
        issuer: ISSUER,
        audience: 'custos',
        jwks: { keys: [jwk] },
        claim_labels: { team: 'team' },
      }),
    );
    await role('jwt-crawler', {
      policies: ['search-team'],
      auth: ['jwt'],
      bound_claims: { sub: 'system:serviceaccount:agents:*' },
      jwt_methods: ['adv-oidc'],
      grantable_labels: ['team'],
    });
  });
  afterAll(async () => {
    await s?.close();
  });

  describe('labels', () => {
    it('a delegated child cannot rewrite a label it inherits to gain a permit', async () => {
      const parent = await start('crawler', { labels: { team: 'ads' } });
      const rewritten = await call('POST', '/v1/tasks/delegate', parent.token, { labels: { team: 'search' } });
      expect(rewritten.statusCode).toBe(403);
      expect(rewritten.json().error.code).toBe('CUSTOS_ERR_LABEL_NOT_ALLOWED');
      const child = await ok(await call('POST', '/v1/tasks/delegate', parent.token, {}));
      expect(child.task.labels).toEqual({ team: 'ads' });
      expect((await read(child.token, 'kv/search/index')).statusCode).toBe(403);
    });

    it('a delegated child cannot rewrite or drop a label to escape a forbid', async () => {
      const parent = await start('crawler', { labels: { sandbox: 'true' } });
      expect((await read(parent.token, 'kv/shared/config')).statusCode).toBe(403);
      const escaped = await call('POST', '/v1/tasks/delegate', parent.token, { labels: { sandbox: 'false' } });
      expect(escaped.json().error.code).toBe('CUSTOS_ERR_LABEL_NOT_ALLOWED');
      const child = await ok(await call('POST', '/v1/tasks/delegate', parent.token, {}));
      expect((await read(child.token, 'kv/shared/config')).statusCode).toBe(403);
      // Nor at any depth below.
      const grandchild = await ok(await call('POST', '/v1/tasks/delegate', child.token, {}));
      expect(grandchild.task.labels).toEqual({ sandbox: 'true' });
      expect((await read(grandchild.token, 'kv/shared/config')).statusCode).toBe(403);
    });

    it('an agent cannot choose an operator label at login', async () => {
      const chosen = await bootstrapLogin('crawler', {}, { labels: { team: 'search' } });
      expect(chosen.statusCode).toBe(403);
      expect(chosen.json().error.code).toBe('CUSTOS_ERR_LABEL_NOT_ALLOWED');
      const jwt = await anonymousLogin('/v1/auth/jwt/login', {
        role: 'jwt-crawler',
        jwt: await workloadJwt({ team: 'ads' }),
        labels: { team: 'search' },
      });
      expect(jwt.json().error.code).toBe('CUSTOS_ERR_LABEL_NOT_ALLOWED');
    });

    it('an agent label (agent.*) never satisfies a policy written for an operator label', async () => {
      const login = await ok(await bootstrapLogin('crawler', {}, { labels: { 'agent.team': 'search' } }));
      expect(login.task.labels).toEqual({ 'agent.team': 'search' });
      expect((await read(login.token, 'kv/search/index')).statusCode).toBe(403);
      // A child may add agent labels of its own, never change its parent's.
      const child = await ok(
        await call('POST', '/v1/tasks/delegate', login.token, { labels: { 'agent.step': 'fetch' } }),
      );
      expect(child.task.labels).toEqual({ 'agent.team': 'search', 'agent.step': 'fetch' });
      const changed = await call('POST', '/v1/tasks/delegate', login.token, { labels: { 'agent.team': 'ads' } });
      expect(changed.json().error.code).toBe('CUSTOS_ERR_LABEL_NOT_ALLOWED');
    });

    it('operator labels from the role, the bootstrap token and an operator start reach Cedar, unchanged below', async () => {
      await role('search-crawler', { policies: ['search-team'], labels: { team: 'search' } });
      const fromRole = await ok(await bootstrapLogin('search-crawler'));
      expect(fromRole.task.labels).toEqual({ team: 'search' });
      expect((await read(fromRole.token, 'kv/search/index')).statusCode).toBe(200);
      const fromBootstrap = await ok(await bootstrapLogin('crawler', { labels: { team: 'search' } }));
      expect((await read(fromBootstrap.token, 'kv/search/index')).statusCode).toBe(200);
      const child = await ok(await call('POST', '/v1/tasks/delegate', fromBootstrap.token, {}));
      expect((await read(child.token, 'kv/search/index')).statusCode).toBe(200);
      const started = await start('crawler', { labels: { team: 'search' } });
      expect((await read(started.token, 'kv/search/index')).statusCode).toBe(200);
    });

    it('a bootstrap token or an operator start cannot override a label its role sets', async () => {
      await role('ads-crawler', { policies: ['search-team'], labels: { team: 'ads' } });
      const token = await call('POST', '/v1/roles/ads-crawler/bootstrap', undefined, { labels: { team: 'search' } });
      expect(token.json().error.code).toBe('CUSTOS_ERR_LABEL_NOT_ALLOWED');
      const started = await call('POST', '/v1/roles/ads-crawler/tasks', undefined, { labels: { team: 'search' } });
      expect(started.json().error.code).toBe('CUSTOS_ERR_LABEL_NOT_ALLOWED');
    });

    it('operator label sources cannot write in the agent namespace', async () => {
      const roleWrite = await call('PUT', '/v1/roles/odd', undefined, { policies: [], labels: { 'agent.x': 'y' } });
      expect(roleWrite.statusCode).toBe(400);
      // A bootstrap token and an operator start: each an operator source too.
      for (const key of ['agent.x', 'Agent.x', 'AGENT.team']) {
        const bootstrap = await call('POST', '/v1/roles/crawler/bootstrap', undefined, { labels: { [key]: 'y' } });
        expect(bootstrap.statusCode, key).toBe(400);
        const started = await call('POST', '/v1/roles/crawler/tasks', undefined, { labels: { [key]: 'y' } });
        expect(started.statusCode, key).toBe(400);
        expect(started.json().error.code, key).toBe('CUSTOS_ERR_VALIDATION');
      }
      const method = await call('PUT', '/v1/auth/jwt/methods/odd', undefined, {
        issuer: ISSUER,
        audience: 'custos',
        jwks: { keys: [{ kty: 'OKP', crv: 'Ed25519', x: Buffer.alloc(32, 1).toString('base64url') }] },
        claim_labels: { team: 'Agent.team' },
      });
      expect(method.statusCode).toBe(400);
    });
  });

  describe('role labels', () => {
    it('a label an operator puts on a role stops its live tasks and their children at once, and lifting it restores them', async () => {
      await role('live', { policies: ['not-in-sandbox'] });
      const root = await start('live');
      const child = await ok(await call('POST', '/v1/tasks/delegate', root.token, {}));
      for (const t of [root, child]) expect((await read(t.token, 'kv/shared/config')).statusCode).toBe(200);
      // The forbid on sandbox=true now applies to every task of the role, not only to new ones.
      await role('live', { policies: ['not-in-sandbox'], labels: { sandbox: 'true' } });
      for (const t of [root, child]) expect((await read(t.token, 'kv/shared/config')).statusCode).toBe(403);
      // A child minted now cannot shed it either.
      const later = await ok(await call('POST', '/v1/tasks/delegate', child.token, {}));
      expect((await read(later.token, 'kv/shared/config')).statusCode).toBe(403);
      expect((await ok(await call('GET', `/v1/tasks/${later.task_id}`, undefined))).labels).toEqual({
        sandbox: 'true',
      });
      await role('live', { policies: ['not-in-sandbox'], labels: {} });
      for (const t of [root, child, later]) expect((await read(t.token, 'kv/shared/config')).statusCode).toBe(200);
    });
  });

  describe('who may grant labels', () => {
    const loginEvents = async (route: string) =>
      (await auditEvents(s.storage)).filter(
        (e) => (e.request as { route?: string })?.route === route && e.status === 401,
      );

    it('a bootstrap token or an operator start can grant only label keys the role lists as grantable', async () => {
      await role('narrow', { policies: ['search-team'], grantable_labels: ['env'] });
      for (const url of ['/v1/roles/narrow/bootstrap', '/v1/roles/narrow/tasks']) {
        const granted = await call('POST', url, undefined, { labels: { team: 'search' } });
        expect(granted.statusCode, url).toBe(403);
        expect(granted.json().error.code, url).toBe('CUSTOS_ERR_LABEL_NOT_ALLOWED');
        expect((await call('POST', url, undefined, { labels: { env: 'prod' } })).statusCode, url).toBe(200);
      }
    });

    it('an operator who may only issue for a role cannot give its tasks a label a policy trusts', async () => {
      await role('issued', { policies: ['search-team'] });
      await policy(
        'issuer-only',
        'permit(principal, action == Custos::Action::"issue", resource == Custos::Path::"sys/roles/issued");',
      );
      const issuer = (
        await ok(await call('POST', '/v1/auth/token/create', undefined, { policies: ['issuer-only'], ttl: '5m' }))
      ).token as string;
      for (const url of ['/v1/roles/issued/bootstrap', '/v1/roles/issued/tasks']) {
        const granted = await call('POST', url, issuer, { labels: { team: 'search' } });
        expect(granted.json().error?.code, url).toBe('CUSTOS_ERR_LABEL_NOT_ALLOWED');
      }
      // Issuing itself still works: the role's writer decides the labels.
      const started = await ok(await call('POST', '/v1/roles/issued/tasks', issuer, {}));
      expect((await read(started.token, 'kv/search/index')).statusCode).toBe(403);
    });

    it('a bootstrap token made while a key was grantable does not log in once the role stops granting it', async () => {
      await role('shrinking', { policies: ['search-team'], grantable_labels: ['team'] });
      const { token } = await ok(
        await call('POST', '/v1/roles/shrinking/bootstrap', undefined, { labels: { team: 'search' } }),
      );
      await role('shrinking', { policies: ['search-team'], grantable_labels: [] });
      const login = await anonymousLogin('/v1/auth/bootstrap/login', { token });
      expect(login.statusCode).toBe(401);
      expect(login.json().error.code).toBe('CUSTOS_ERR_UNAUTHENTICATED');
      expect((await loginEvents('/v1/auth/bootstrap/login')).at(-1)?.reason).toBe('label_not_grantable');
    });

    it('a JWT method’s claim mapping cannot put a label on a role’s tasks that the role does not let be granted', async () => {
      await role('jwt-narrow', {
        policies: ['search-team'],
        auth: ['jwt'],
        bound_claims: { sub: 'system:serviceaccount:agents:*' },
        jwt_methods: ['adv-oidc'],
      });
      const login = await anonymousLogin('/v1/auth/jwt/login', {
        role: 'jwt-narrow',
        jwt: await workloadJwt({ team: 'search' }),
      });
      expect(login.statusCode).toBe(401);
      expect(login.json().error).toEqual({ code: 'CUSTOS_ERR_UNAUTHENTICATED', message: expect.any(String) });
      expect((await loginEvents('/v1/auth/jwt/login')).at(-1)?.reason).toBe('claim_label_not_grantable');
    });

    it('a role open to JWT logins names its methods: a method another operator writes cannot log in to it', async () => {
      const unnamed = await call('PUT', '/v1/roles/jwt-any', undefined, {
        policies: ['search-team'],
        auth: ['jwt'],
        bound_claims: { sub: '*' },
        max_ttl: '5m',
      });
      expect(unnamed.statusCode).toBe(400);
      expect(unnamed.json().error.message).toMatch(/names its JWT methods/);
      // An operator with `admin` on JWT methods only configures a method with
      // its own keys: it gets no login to a role that does not name it.
      const rogue = await generateKeyPair('RS256');
      const rogueJwk = { ...(await exportJWK(rogue.publicKey)), kid: 'rogue', alg: 'RS256', use: 'sig' };
      await ok(
        await call('PUT', '/v1/auth/jwt/methods/rogue', undefined, {
          issuer: 'https://rogue.example.test',
          audience: 'custos',
          jwks: { keys: [rogueJwk] },
        }),
      );
      const forged = await new SignJWT({ team: 'search' })
        .setProtectedHeader({ alg: 'RS256', kid: 'rogue' })
        .setIssuer('https://rogue.example.test')
        .setAudience('custos')
        .setSubject('system:serviceaccount:agents:crawler')
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(rogue.privateKey);
      for (const method of [undefined, 'rogue']) {
        const login = await anonymousLogin('/v1/auth/jwt/login', {
          role: 'jwt-crawler',
          jwt: forged,
          ...(method ? { method } : {}),
        });
        expect(login.statusCode, String(method)).toBe(401);
      }
    });
  });

  describe('JWT claims', () => {
    it('a claim becomes a label only through the operator’s claim mapping, with the claim’s own value', async () => {
      const search = await anonymousLogin('/v1/auth/jwt/login', {
        role: 'jwt-crawler',
        jwt: await workloadJwt({ team: 'search' }),
      });
      expect(search.statusCode).toBe(200);
      expect(search.json().task.labels).toEqual({ team: 'search' });
      expect((await read(search.json().token, 'kv/search/index')).statusCode).toBe(200);
      const ads = await anonymousLogin('/v1/auth/jwt/login', {
        role: 'jwt-crawler',
        jwt: await workloadJwt({ team: 'ads' }),
      });
      expect((await read(ads.json().token, 'kv/search/index')).statusCode).toBe(403);
      // An unmapped claim is not a label, whatever its name.
      const unmapped = await anonymousLogin('/v1/auth/jwt/login', {
        role: 'jwt-crawler',
        jwt: await workloadJwt({ team: 'ads', 'team=search': 'x', labels: { team: 'search' } }),
      });
      expect(unmapped.json().task.labels).toEqual({ team: 'ads' });
    });

    it('a mapped claim that is not a plain value refuses the login rather than dropping the label', async () => {
      for (const team of [{ nested: 'search' }, ['search', 'ads'], 'x'.repeat(300)]) {
        const login = await anonymousLogin('/v1/auth/jwt/login', {
          role: 'jwt-crawler',
          jwt: await workloadJwt({ team }),
        });
        expect(login.statusCode, JSON.stringify(team).slice(0, 20)).toBe(401);
      }
    });

    it('bound claims still gate the login: a token of the issuer for another subject gets nothing', async () => {
      const other = await new SignJWT({ team: 'search' })
        .setProtectedHeader({ alg: 'RS256', kid: 'adv-key' })
        .setIssuer(ISSUER)
        .setAudience('custos')
        .setSubject('system:serviceaccount:other:intruder')
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(signingKey);
      const login = await anonymousLogin('/v1/auth/jwt/login', { role: 'jwt-crawler', jwt: other });
      expect(login.statusCode).toBe(401);
    });
  });

  describe('display names', () => {
    it('a token creator cannot name a token root (or any case of it)', async () => {
      for (const name of ['root', 'Root', ' ROOT ']) {
        const created = await call('POST', '/v1/auth/token/create', undefined, {
          policies: ['search-team'],
          ttl: '5m',
          display_name: name,
        });
        expect(created.statusCode, name).toBe(400);
      }
    });

    it('a policy cannot read principal.display_name: it fails validation with a clear message', async () => {
      const written = await call('PUT', '/v1/policies/by-name', undefined, {
        policy:
          'permit(principal is Custos::Token, action == Custos::Action::"read", resource) when { principal.display_name == "alice" };',
      });
      expect(written.statusCode).toBe(400);
      expect(written.json().error.code).toBe('CUSTOS_ERR_INVALID_POLICY');
      expect(written.json().error.message).toMatch(/display_name/);
      expect(written.json().error.message).toMatch(/accessor/);
    });

    it('the audit trail names every caller by accessor or task id, whatever display name it chose', async () => {
      await policy(
        'task-reader',
        'permit(principal, action in [Custos::Action::"read", Custos::Action::"revoke"], resource in Custos::Path::"sys/tasks/");',
      );
      const impostor = await ok(
        await call('POST', '/v1/auth/token/create', undefined, {
          policies: ['task-reader'],
          ttl: '5m',
          display_name: 'alice',
        }),
      );
      const victim = await start('crawler');
      const revoked = await ok(await call('POST', `/v1/tasks/${victim.task_id}/revoke`, impostor.token));
      expect(revoked.state).toBe('revoked');
      const shown = await ok(await call('GET', `/v1/tasks/${victim.task_id}`, undefined));
      expect(shown.state).toBe('revoked');
      const events = await auditEvents(s.storage);
      const event = events.find(
        (e) =>
          (e.request as { route?: string })?.route === '/v1/tasks/:id/revoke' &&
          (e.auth as { token_accessor?: string })?.token_accessor === impostor.accessor,
      );
      expect(event).toBeDefined();
      // The stable name is what `ended_by`-style fields record too, never the chosen name.
      const marker = (await auditEvents(s.storage)).filter((e) => JSON.stringify(e).includes('"alice"'));
      expect(marker.every((e) => (e.auth as { token_accessor?: string }).token_accessor === impostor.accessor)).toBe(
        true,
      );
      // A task's events carry its id and identity as first-class fields.
      const reader = await start('crawler');
      await read(reader.token, 'kv/shared/config');
      const taskEvent = (await auditEvents(s.storage)).find(
        (e) => (e.auth as { task_id?: string })?.task_id === reader.task_id,
      );
      expect(taskEvent?.auth).toMatchObject({ task_id: reader.task_id, identity: reader.task.sub, role: 'crawler' });
    });
  });

  describe('roles', () => {
    it('a deleted role recreated with the same name does not revive its tasks, tokens or bootstrap tokens', async () => {
      await role('phoenix', { policies: ['not-in-sandbox'] });
      const task = await start('phoenix');
      const child = await ok(await call('POST', '/v1/tasks/delegate', task.token, {}));
      const unused = await ok(await call('POST', '/v1/roles/phoenix/bootstrap', undefined, {}));
      expect((await read(task.token, 'kv/shared/config')).statusCode).toBe(200);
      expect((await call('DELETE', '/v1/roles/phoenix', undefined)).statusCode).toBe(204);
      await role('phoenix', { policies: ['not-in-sandbox'] });
      expect((await read(task.token, 'kv/shared/config')).statusCode).toBe(401);
      expect((await read(child.token, 'kv/shared/config')).statusCode).toBe(401);
      const login = await anonymousLogin('/v1/auth/bootstrap/login', { token: unused.token });
      expect(login.statusCode).toBe(401);
      // Deletion ended them, as recorded state, not only as refused tokens.
      expect((await ok(await call('GET', `/v1/tasks/${task.task_id}`, undefined))).state).toBe('revoked');
      expect((await ok(await call('GET', `/v1/tasks/${child.task_id}`, undefined))).state).toBe('revoked');
      // The new role works as a new role.
      const fresh = await start('phoenix');
      expect((await read(fresh.token, 'kv/shared/config')).statusCode).toBe(200);
    });

    it('an operator cannot write a role carrying policies it does not hold, nor widen one it may write', async () => {
      await policy(
        'role-writer',
        'permit(principal, action in [Custos::Action::"write", Custos::Action::"issue"], resource in Custos::Path::"sys/roles/");',
      );
      const writer = (
        await ok(await call('POST', '/v1/auth/token/create', undefined, { policies: ['role-writer'], ttl: '5m' }))
      ).token as string;
      const grab = await call('PUT', '/v1/roles/grab', writer, { policies: ['search-team'], max_ttl: '5m' });
      expect(grab.statusCode).toBe(403);
      const widen = await call('PUT', '/v1/roles/crawler', writer, { policies: ['search-team'], max_ttl: '5m' });
      expect(widen.statusCode).toBe(403);
    });
  });

  describe('accessors', () => {
    // An orchestrating agent whose role may read, list and revoke tasks: by
    // policy it could, but only within its own subtree.
    let orchestrator: { token: string; task_id: string; accessor: string };
    let stranger: { token: string; task_id: string; accessor: string };
    let own: { token: string; task_id: string; accessor: string };
    beforeAll(async () => {
      await policy(
        'task-admin',
        'permit(principal, action in [Custos::Action::"read", Custos::Action::"list", Custos::Action::"revoke", Custos::Action::"write", Custos::Action::"delegate"], resource);',
      );
      await role('orchestrator', { policies: ['task-admin'] });
      orchestrator = await start('orchestrator');
      stranger = await start('crawler');
      own = await ok(await call('POST', '/v1/tasks/delegate', orchestrator.token, {}));
    });

    it('a task lists only its own subtree', async () => {
      const listed = await ok(await call('GET', '/v1/tasks', orchestrator.token));
      const ids = (listed.tasks as Array<{ id: string }>).map((t) => t.id).sort();
      expect(ids).toEqual([orchestrator.task_id, own.task_id].sort());
      expect(JSON.stringify(listed)).not.toContain(stranger.accessor);
    });

    it('a task cannot look up, extend or revoke a task outside its subtree by accessor', async () => {
      const base = `/v1/tasks/accessors/${stranger.accessor}`;
      expect((await call('GET', base, orchestrator.token)).statusCode).toBe(403);
      expect((await call('POST', `${base}/extend`, orchestrator.token, { ttl: '5m' })).statusCode).toBe(403);
      expect((await call('POST', `${base}/revoke`, orchestrator.token)).statusCode).toBe(403);
      expect((await read(stranger.token, 'kv/shared/config')).statusCode).toBe(200);
      // A child cannot act on its parent by accessor either.
      expect((await call('POST', `/v1/tasks/accessors/${orchestrator.accessor}/revoke`, own.token)).statusCode).toBe(
        403,
      );
      // Its own subtree it may.
      expect((await call('GET', `/v1/tasks/accessors/${own.accessor}`, orchestrator.token)).statusCode).toBe(200);
      expect((await call('POST', `/v1/tasks/accessors/${own.accessor}/revoke`, orchestrator.token)).statusCode).toBe(
        200,
      );
    });

    it('an operator sees and acts on only the tasks its policy names on sys/tasks/<id>', async () => {
      const one = await start('crawler');
      const other = await start('crawler');
      await policy(
        'one-task-by-accessor',
        'permit(principal, action == Custos::Action::"list", resource == Custos::Path::"sys/tasks");\n' +
          `permit(principal, action in [Custos::Action::"read", Custos::Action::"revoke"], resource == Custos::Path::"sys/tasks/${one.task_id}");`,
      );
      const token = (
        await ok(
          await call('POST', '/v1/auth/token/create', undefined, { policies: ['one-task-by-accessor'], ttl: '5m' }),
        )
      ).token as string;
      const listed = await ok(await call('GET', '/v1/tasks', token));
      expect((listed.tasks as Array<{ id: string }>).map((t) => t.id)).toEqual([one.task_id]);
      expect((await call('GET', `/v1/tasks/accessors/${other.accessor}`, token)).statusCode).toBe(403);
      expect((await call('POST', `/v1/tasks/accessors/${other.accessor}/revoke`, token)).statusCode).toBe(403);
      expect((await call('GET', `/v1/tasks/accessors/${one.accessor}`, token)).statusCode).toBe(200);
      expect((await call('POST', `/v1/tasks/accessors/${one.accessor}/revoke`, token)).statusCode).toBe(200);
    });
  });
});

describe.skipIf(!hasPostgres())('a recreated role revives nothing, across nodes and restarts (postgres)', () => {
  let db: TestDatabase;
  let dir: string;
  const nodes: CustosNode[] = [];
  const openNode = async () => {
    const node = new CustosNode({
      storage: createStorage(db.url),
      seal: { type: 'dev', keyFile: join(dir, 'dev-seal.key') },
      audit: {},
    });
    await node.start();
    nodes.push(node);
    return node;
  };
  beforeAll(async () => {
    db = await createTestDatabase();
    dir = mkdtempSync(join(tmpdir(), 'custos-adv-ha-'));
  });
  afterAll(async () => {
    for (const node of nodes) await node.close();
    await db?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a task of a role deleted and recreated on one node is refused on the other, and after a restart', async () => {
    const a = await openNode();
    const b = await openNode();
    const role = await a.services().roles.write('ha-phoenix', { policies: [], max_ttl_ms: 600_000 });
    const task = await a.services().tasks.start({ role, sub: 'test', via: 'operator', ttlMs: 300_000 });
    const auth = (node: CustosNode) => node.services().authenticate(task.token, { method: 'GET', url: 'test' });
    await expect(auth(b)).resolves.toMatchObject({ kind: 'task' });
    // Deleted through the service alone (the API also ends the role's tasks;
    // here nothing is marked, so only the role's incarnation can refuse them).
    await b.services().roles.delete('ha-phoenix');
    await b.services().roles.write('ha-phoenix', { policies: [], max_ttl_ms: 600_000 });
    await expect(auth(a)).rejects.toMatchObject({ code: 'CUSTOS_ERR_UNAUTHENTICATED' });
    await expect(auth(b)).rejects.toMatchObject({ code: 'CUSTOS_ERR_UNAUTHENTICATED' });
    const restarted = await openNode();
    await expect(auth(restarted)).rejects.toMatchObject({ code: 'CUSTOS_ERR_UNAUTHENTICATED' });
  });
});

// The lease listing is the same class as the task listing (issue 11 #7): a
// list must show only what the caller could read one by one — a task its
// own subtree's leases, an operator the leases its policy names on
// sys/leases/<id> — or it hands out database user names and task chains.
describe.skipIf(!hasPostgres())('no lease of another task tree or outside an operator’s policy is listed', () => {
  let s: TestServer;
  let target: TestDatabase;
  type Task = { token: string; task_id: string };
  let parent: Task;
  let child: Task;
  let stranger: Task;
  const leaseOf: Record<string, string> = {};

  const ok = async (response: Awaited<ReturnType<TestServer['call']>>) => {
    expect(response.statusCode, response.body).toBe(200);
    return response.json();
  };
  const listed = async (token: string, query = '') =>
    ((await ok(await s.call({ method: 'GET', url: `/v1/leases${query}`, token }))).leases as Array<{ id: string }>)
      .map((l) => l.id)
      .sort();
  const operatorToken = async (name: string, text: string) => {
    await ok(await s.call({ method: 'PUT', url: `/v1/policies/${name}`, payload: { policy: text } }));
    return (
      await ok(await s.call({ method: 'POST', url: '/v1/auth/token/create', payload: { policies: [name], ttl: '5m' } }))
    ).token as string;
  };

  beforeAll(async () => {
    target = await createTestDatabase();
    s = await startTestServer('sqlite', { engineFactory: createEngine });
    await ok(await s.call({ method: 'PUT', url: '/v1/engines/pg1', payload: { type: 'postgres', url: target.url } }));
    await ok(await s.call({ method: 'PUT', url: '/v1/engines/pg1/roles/reader', payload: { default_ttl: '10m' } }));
    await ok(
      await s.call({
        method: 'PUT',
        url: '/v1/policies/db-agent',
        payload: {
          policy:
            'permit(principal, action == Custos::Action::"issue", resource in Custos::Path::"pg1/");\n' +
            'permit(principal, action == Custos::Action::"delegate", resource in Custos::Path::"sys/tasks/");',
        },
      }),
    );
    await ok(
      await s.call({ method: 'PUT', url: '/v1/roles/db-agent', payload: { policies: ['db-agent'], max_ttl: '15m' } }),
    );
    const start = async () =>
      ok(await s.call({ method: 'POST', url: '/v1/roles/db-agent/tasks', payload: { ttl: '10m' } }));
    parent = await start();
    stranger = await start();
    child = await ok(await s.call({ method: 'POST', url: '/v1/tasks/delegate', token: parent.token, payload: {} }));
    for (const [name, token] of [
      ['parent', parent.token],
      ['child', child.token],
      ['stranger', stranger.token],
      ['operator', s.rootToken],
    ] as const) {
      leaseOf[name] = (await ok(await s.call({ method: 'POST', url: '/v1/creds/pg1/reader', token }))).lease_id;
    }
  });
  afterAll(async () => {
    await s?.close();
    await target?.drop();
  });

  it('a task lists its own subtree’s leases only: never a stranger’s, nor its parent’s', async () => {
    expect(await listed(parent.token)).toEqual([leaseOf.parent, leaseOf.child].sort());
    expect(await listed(child.token)).toEqual([leaseOf.child]);
    expect(await listed(stranger.token)).toEqual([leaseOf.stranger]);
  });

  it('a task cannot list another tree’s leases by naming its task (?task_id=)', async () => {
    expect(await listed(parent.token, `?task_id=${stranger.task_id}`)).toEqual([]);
    expect(await listed(child.token, `?task_id=${parent.task_id}`)).toEqual([]);
    // Within its subtree it may narrow the list to one task.
    expect(await listed(parent.token, `?task_id=${child.task_id}`)).toEqual([leaseOf.child]);
  });

  it('an operator lists only the leases its policy lets it read on sys/leases/<id>, however it asks', async () => {
    const token = await operatorToken(
      'one-lease',
      'permit(principal, action == Custos::Action::"list", resource == Custos::Path::"sys/leases");\n' +
        `permit(principal, action == Custos::Action::"read", resource == Custos::Path::"sys/leases/${leaseOf.child}");`,
    );
    expect(await listed(token)).toEqual([leaseOf.child]);
    expect(await listed(token, `?task_id=${stranger.task_id}`)).toEqual([]);
    expect(await listed(token, `?task_id=${child.task_id}`)).toEqual([leaseOf.child]);
    expect(await listed(token, '?state=active')).toEqual([leaseOf.child]);
    // A policy over the folder shows them all; `list` alone shows none; no `list`, no listing.
    const all = await operatorToken(
      'all-leases',
      'permit(principal, action in [Custos::Action::"list", Custos::Action::"read"], resource in Custos::Path::"sys/leases/");\n' +
        'permit(principal, action == Custos::Action::"list", resource == Custos::Path::"sys/leases");',
    );
    expect(await listed(all)).toEqual(Object.values(leaseOf).sort());
    const listOnly = await operatorToken(
      'list-leases-only',
      'permit(principal, action == Custos::Action::"list", resource == Custos::Path::"sys/leases");',
    );
    expect(await listed(listOnly)).toEqual([]);
    const none = await operatorToken(
      'no-leases',
      'permit(principal, action == Custos::Action::"read", resource in Custos::Path::"kv/");',
    );
    expect((await s.call({ method: 'GET', url: '/v1/leases', token: none })).statusCode).toBe(403);
  });

  it('a listing returns at most `limit` leases', async () => {
    expect(await listed(s.rootToken, '?limit=2')).toHaveLength(2);
    expect((await s.call({ method: 'GET', url: '/v1/leases?limit=0' })).statusCode).toBe(400);
  });
});
