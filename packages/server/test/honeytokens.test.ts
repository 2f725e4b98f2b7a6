import type { Finding } from '@custos/core';
import { createRedactor } from '@custos/redact';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evidenceEvent as evidenceOf, raisedSince } from '../../../test-support/finding-evidence.js';
import { auditEvents, fakeSecret, startTestServer, type TestServer } from './test-server.js';

// Honeytokens end to end on a real server and SQLite: every kind of touch that reaches the server — a read, a
// reported match, a login attempt — raises one critical `honeytoken` finding naming the subject, whose evidence
// is the audit record of the touch. (The proxy's touches: proxy/proxy-honeytoken.test.ts; the CLI's: the cli
// package's honeytoken-cli.test.ts.)

type Call = Awaited<ReturnType<TestServer['call']>>;

describe('honeytokens', () => {
  let s: TestServer;
  const ok = async (r: Call) => {
    expect(r.statusCode, r.body).toBeLessThan(300);
    return r.statusCode === 204 ? undefined : r.json();
  };
  const idle = () => s.node.services().anomaly!.idle();
  const findings = async () =>
    ((await ok(await s.call({ method: 'GET', url: '/v1/alerts?rule=honeytoken' }))) as { alerts: Finding[] }).alerts;
  /** The findings raised since `before`, once the engine has seen every record. */
  const newFindings = async (before: readonly Finding[]) => {
    await idle();
    return raisedSince(before, await findings());
  };
  const evidenceEvent = (finding: Finding) => evidenceOf(s.storage.audit, finding);
  /** Creates a honeytoken as root (an admin); its decoy fields come back once, in the answer. */
  const create = async (path: string, kind: string, extra: Record<string, string> = {}) =>
    (await ok(await s.call({ method: 'POST', url: '/v1/honeytokens', payload: { path, kind, ...extra } }))) as {
      path: string;
      kind: string;
      created_by: string;
      created_time: string;
      data: Record<string, string>;
    };
  const value = async (path: string, kind: string, extra: Record<string, string> = {}) =>
    (await create(path, kind, extra)).data;
  const startTask = async () =>
    (await ok(await s.call({ method: 'POST', url: '/v1/roles/clerk/tasks', payload: { ttl: '10m' } }))) as {
      token: string;
      task_id: string;
    };
  /** An operator token with `read`/`list` on kv/finance/ and no admin on sys/honeytokens. */
  let reader: string;

  beforeAll(async () => {
    s = await startTestServer('sqlite');
    await ok(
      await s.call({
        method: 'PUT',
        url: '/v1/policies/finance-read',
        payload: {
          policy:
            'permit(principal, action in [Custos::Action::"read", Custos::Action::"list"], resource in Custos::Path::"kv/finance/");',
        },
      }),
    );
    await ok(
      await s.call({ method: 'PUT', url: '/v1/roles/clerk', payload: { policies: ['finance-read'], max_ttl: '15m' } }),
    );
    reader = (
      (await ok(
        await s.call({
          method: 'POST',
          url: '/v1/auth/token/create',
          payload: { policies: ['finance-read'], ttl: '1h' },
        }),
      )) as { token: string }
    ).token;
  });
  afterAll(async () => {
    await s?.close();
  });

  describe('generated values', () => {
    it('are recognised by custos own detectors as their kind, and random per creation', async () => {
      const redactor = createRedactor();
      const ids = (text: string) => redactor.findAll(text).map((f) => f.ruleId);
      const aws = await value('kv/gen/aws-1', 'aws');
      expect(Object.keys(aws).sort()).toEqual(['access_key_id', 'secret_access_key']);
      expect(ids(aws.access_key_id!)).toContain('aws-access-key-id');
      expect(ids(`aws_secret_access_key = ${aws.secret_access_key}`)).toContain('aws-secret-access-key');
      expect(await value('kv/gen/aws-2', 'aws')).not.toEqual(aws);
      // What the creating admin got back is what is stored (an admin's read, which trips like any other).
      expect(
        ((await s.call({ method: 'GET', url: '/v1/secrets/data/kv/gen/aws-1' })).json() as { data: unknown }).data,
      ).toEqual(aws);

      const openai = await value('kv/gen/openai-1', 'openai');
      expect(ids(openai.api_key!)).toEqual(['openai-key']);
      expect((await value('kv/gen/openai-2', 'openai')).api_key).not.toBe(openai.api_key);

      const db = await value('kv/gen/legacy-admin', 'db-url', { host: 'db.example.internal:6432' });
      const db2 = await value('kv/gen/legacy-admin-2', 'db-url', { host: 'db.example.internal' });
      expect(db.url).toBe(`postgres://legacy_admin:${db.password}@db.example.internal:6432/gen`);
      const found = redactor.findAll(`DATABASE_URL=${db.url}`);
      expect(found.map((f) => [f.ruleId, f.value])).toContainEqual(['database-connection-string', db.password]);
      expect(db2.password).not.toBe(db.password);
      expect(db2.url).toMatch(/@db\.example\.internal:5432\/gen$/);

      const generic = await value('kv/gen/ci-token', 'generic');
      expect(ids(generic.token!)).toEqual(['custos-token']);
      expect((await value('kv/gen/ci-token-2', 'generic')).token).not.toBe(generic.token);
    });

    it('db-url takes scheme, host and port from a registered engine, never its credential', async () => {
      // No engine of that name: the admin is told so (an admin-only answer).
      const missing = await s.call({
        method: 'POST',
        url: '/v1/honeytokens',
        payload: { path: 'kv/gen/engine-db', kind: 'db-url', engine: 'nowhere' },
      });
      expect(missing.statusCode).toBe(404);
      // Without host or engine: a validation error, nothing written.
      const bare = await s.call({
        method: 'POST',
        url: '/v1/honeytokens',
        payload: { path: 'kv/gen/bare', kind: 'db-url' },
      });
      expect(bare.json().error.code).toBe('CUSTOS_ERR_VALIDATION');
      expect((await s.call({ method: 'GET', url: '/v1/secrets/metadata/kv/gen/bare' })).statusCode).toBe(404);
    });
  });

  describe('admin routes', () => {
    it('create, list and delete; never a value in the list', async () => {
      const { data, ...created } = await create('kv/admin/decoy', 'openai');
      expect(created).toMatchObject({ path: 'kv/admin/decoy', kind: 'openai' });
      expect(created.created_by).toMatch(/^token:acc_/);
      const listed = (await ok(await s.call({ method: 'GET', url: '/v1/honeytokens' }))) as { honeytokens: unknown[] };
      expect(listed.honeytokens).toContainEqual(created);
      expect(JSON.stringify(listed)).not.toContain(data.api_key);
      // A second honeytoken, or one over an existing secret, at the same path is refused.
      expect(
        (await s.call({ method: 'POST', url: '/v1/honeytokens', payload: { path: 'kv/admin/decoy', kind: 'aws' } }))
          .statusCode,
      ).toBe(409);
      await ok(
        await s.call({ method: 'PUT', url: '/v1/secrets/data/kv/admin/real', payload: { data: { v: fakeSecret() } } }),
      );
      expect(
        (await s.call({ method: 'POST', url: '/v1/honeytokens', payload: { path: 'kv/admin/real', kind: 'aws' } }))
          .statusCode,
      ).toBe(409);
      expect(
        (
          (await ok(await s.call({ method: 'GET', url: '/v1/honeytokens' }))) as { honeytokens: { path: string }[] }
        ).honeytokens.map((h) => h.path),
      ).not.toContain('kv/admin/real');

      await ok(await s.call({ method: 'POST', url: '/v1/honeytokens/delete', payload: { path: 'kv/admin/decoy' } }));
      expect((await s.call({ method: 'GET', url: '/v1/secrets/metadata/kv/admin/decoy' })).statusCode).toBe(404);
      expect(
        (await s.call({ method: 'POST', url: '/v1/honeytokens/delete', payload: { path: 'kv/admin/decoy' } }))
          .statusCode,
      ).toBe(404);
      // The path of an ordinary secret is not a honeytoken to delete: the secret stays.
      expect(
        (await s.call({ method: 'POST', url: '/v1/honeytokens/delete', payload: { path: 'kv/admin/real' } }))
          .statusCode,
      ).toBe(404);
      expect((await s.call({ method: 'GET', url: '/v1/secrets/data/kv/admin/real' })).statusCode).toBe(200);
    });

    it('a deleted honeytoken no longer trips', async () => {
      await create('kv/finance/retired', 'generic');
      await ok(
        await s.call({ method: 'POST', url: '/v1/honeytokens/delete', payload: { path: 'kv/finance/retired' } }),
      );
      await ok(
        await s.call({
          method: 'PUT',
          url: '/v1/secrets/data/kv/finance/retired',
          payload: { data: { v: fakeSecret() } },
        }),
      );
      const before = await findings();
      await ok(await s.call({ method: 'GET', url: '/v1/secrets/data/kv/finance/retired', token: reader }));
      expect(await newFindings(before)).toEqual([]);
    });

    it('the registry survives a restart of the services (seal, unseal) and still trips', async () => {
      await create('kv/finance/after-restart', 'aws');
      await s.node.seal();
      await s.node.start();
      expect(s.node.sealed).toBe(false);
      const before = await findings();
      await s.call({ method: 'GET', url: '/v1/secrets/data/kv/finance/after-restart', token: reader });
      const raised = await newFindings(before);
      expect(raised).toHaveLength(1);
      expect((await evidenceEvent(raised[0]!)).request.path).toBe('kv/finance/after-restart');
    });
  });

  describe('every touch raises a critical finding at once', () => {
    it('a task reading a honeytoken: subject is the task, its identity and role; evidence is the read', async () => {
      await create('kv/finance/legacy-admin', 'db-url', { host: 'db.example.internal:5432' });
      const task = await startTask();
      const before = await findings();
      const read = await s.call({ method: 'GET', url: '/v1/secrets/data/kv/finance/legacy-admin', token: task.token });
      expect(read.statusCode).toBe(200);
      const raised = await newFindings(before);
      expect(raised).toHaveLength(1);
      const finding = raised[0]!;
      expect(finding).toMatchObject({
        rule: 'honeytoken',
        severity: 'critical',
        state: 'open',
        subject: { task_id: task.task_id, role: 'clerk' },
      });
      expect(finding.subject.identity).toMatch(/^token:/);
      expect(finding.explanation).toContain('read the honeytoken kv/finance/legacy-admin');
      const event = await evidenceEvent(finding);
      expect(event).toMatchObject({
        request: { path: 'kv/finance/legacy-admin', action: 'read', route: '/v1/secrets/data/*' },
        auth: { task_id: task.task_id },
        decision: 'allow',
      });
      expect(finding.evidence[0]!.request_id).toBe(event.request_id);
      // Its quarantine action by default: the task's whole tree is revoked before its next request.
      const shown = (await ok(await s.call({ method: 'GET', url: `/v1/alerts/${finding.id}` }))) as Finding;
      expect(shown.actions).toEqual([
        expect.objectContaining({
          action: 'revoke-task-tree',
          outcome: 'done',
          target: expect.objectContaining({ task_id: task.task_id }),
        }),
      ]);
      const after = await s.call({ method: 'GET', url: '/v1/secrets/data/kv/finance/ordinary-x', token: task.token });
      expect(after.statusCode).toBe(401);
    });

    it('a metadata read and a refused read trip too', async () => {
      await create('kv/finance/meta-decoy', 'openai');
      await create('kv/hr/payroll-admin', 'aws');
      const task = await startTask();
      const before = await findings();
      expect(
        (await s.call({ method: 'GET', url: '/v1/secrets/metadata/kv/finance/meta-decoy', token: task.token }))
          .statusCode,
      ).toBe(200);
      expect(
        (await s.call({ method: 'GET', url: '/v1/secrets/data/kv/hr/payroll-admin', token: task.token })).statusCode,
      ).toBe(403);
      const raised = await newFindings(before);
      expect(raised.map((f) => [f.subject.task_id, f.severity])).toEqual([
        [task.task_id, 'critical'],
        [task.task_id, 'critical'],
      ]);
      const events = await Promise.all(raised.map(evidenceEvent));
      expect(events.map((e) => [e.request.route, e.request.path, e.decision]).sort()).toEqual([
        ['/v1/secrets/data/*', 'kv/hr/payroll-admin', 'deny'],
        ['/v1/secrets/metadata/*', 'kv/finance/meta-decoy', 'allow'],
      ]);
      expect(raised.find((f) => f.explanation.includes('payroll'))!.explanation).toContain('tried to read (refused)');
    });

    it('an operator token reading it: the subject is its accessor', async () => {
      await create('kv/finance/ops-decoy', 'aws');
      const before = await findings();
      await s.call({ method: 'GET', url: '/v1/secrets/data/kv/finance/ops-decoy', token: reader });
      const raised = await newFindings(before);
      expect(raised).toHaveLength(1);
      expect(raised[0]!.subject.token_accessor).toMatch(/^acc_/);
    });

    it('a reported match (custos scan / redact): recorded per path, the honeytoken one raises', async () => {
      await create('kv/finance/reported', 'aws');
      await ok(
        await s.call({
          method: 'PUT',
          url: '/v1/secrets/data/kv/finance/ordinary',
          payload: { data: { v: fakeSecret() } },
        }),
      );
      const task = await startTask();
      const before = await findings();
      const r = await s.call({
        method: 'POST',
        url: '/v1/scan/matches',
        token: task.token,
        payload: {
          source: 'scan',
          matches: [
            { path: 'kv/finance/ordinary', field: 'v', version: 1 },
            { path: 'kv/finance/reported', field: 'secret_access_key', version: 1 },
          ],
        },
      });
      expect(r.statusCode).toBe(204);
      const raised = await newFindings(before);
      expect(raised).toHaveLength(1);
      expect(raised[0]).toMatchObject({ severity: 'critical', subject: { task_id: task.task_id, role: 'clerk' } });
      expect(raised[0]!.explanation).toContain('found by `custos scan`');
      const event = await evidenceEvent(raised[0]!);
      expect(event).toMatchObject({
        request: { path: 'kv/finance/reported', route: '/v1/scan/matches' },
        details: { phase: 'path_report', reported_by: 'scan' },
      });
      expect(event.request.action).toBeUndefined();
      // The ordinary secret's report is on record too, alike.
      const reports = (await auditEvents(s.storage)).filter(
        (e) => (e.details as { phase?: string } | undefined)?.phase === 'path_report',
      ) as Array<{ request: { path: string } }>;
      expect(reports.map((e) => e.request.path)).toContain('kv/finance/ordinary');
    });

    it('a generic honeytoken presented as a custos credential: Bearer, X-Custos-Token, bootstrap login', async () => {
      const token = (await value('kv/finance/ci-token', 'generic')).token!;
      const before = await findings();
      const bearer = await s.call({ method: 'GET', url: '/v1/auth/token/self', token, remoteAddress: '198.51.100.7' });
      const header = await s.call({
        method: 'GET',
        url: '/v1/secrets/list/kv/',
        token: null,
        headers: { 'x-custos-token': token },
        remoteAddress: '198.51.100.8',
      });
      const bootstrap = await s.call({
        method: 'POST',
        url: '/v1/auth/bootstrap/login',
        token: null,
        payload: { token },
        remoteAddress: '198.51.100.9',
      });
      const exchange = await s.call({
        method: 'POST',
        url: '/v1/oauth/token',
        token: null,
        payload: {
          grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
          subject_token: token,
          subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
        },
        remoteAddress: '198.51.100.10',
      });
      expect(exchange.statusCode).toBeGreaterThanOrEqual(400);
      // Refused exactly as a random token of the same shape is.
      const random = `cus_${'A'.repeat(21)}${fakeSecret()
        .replace(/[^A-Za-z0-9]/g, '')
        .slice(0, 22)
        .padEnd(22, 'b')}`;
      const control = await s.call({ method: 'GET', url: '/v1/auth/token/self', token: random });
      for (const r of [bearer, header, bootstrap]) {
        expect(r.statusCode).toBe(401);
        expect(r.json()).toEqual(control.json());
      }
      const raised = await newFindings(before);
      expect(raised.map((f) => f.subject.source_ip).sort()).toEqual([
        '198.51.100.10',
        '198.51.100.7',
        '198.51.100.8',
        '198.51.100.9',
      ]);
      for (const f of raised) {
        expect(f.severity).toBe('critical');
        expect(f.explanation).toContain('as a credential');
        const event = await evidenceEvent(f);
        // By HMAC only: the value is nowhere in the trail.
        expect(event.data.credential).toMatch(/^hmac-sha256:[0-9a-f]{64}$/);
        expect(JSON.stringify(event)).not.toContain(token);
      }
      const routes = await Promise.all(raised.map(async (f) => (await evidenceEvent(f)).request.route));
      expect(routes.sort()).toEqual([
        '/v1/auth/bootstrap/login',
        '/v1/auth/token/self',
        '/v1/oauth/token',
        '/v1/secrets/list/*',
      ]);
      // The random token's refusal carries its HMAC too (every refusal does) and raises nothing.
      const all = await auditEvents(s.storage);
      expect(
        all.filter((e) => (e.data as { credential?: string } | undefined)?.credential).length,
      ).toBeGreaterThanOrEqual(4);
      expect(JSON.stringify(all)).not.toContain(token);
    });
  });

  describe('the scanner fingerprint list', () => {
    it('holds a honeytoken the caller may read like any secret, and handing it out is not a touch', async () => {
      await create('kv/finance/fp-decoy', 'openai');
      const before = await findings();
      const answer = (await ok(
        await s.call({ method: 'POST', url: '/v1/scan/fingerprints', token: reader, payload: {} }),
      )) as {
        fingerprints: { path: string; field: string; version: number; hmac: string }[];
      };
      const entry = answer.fingerprints.find((f) => f.path === 'kv/finance/fp-decoy');
      expect(Object.keys(entry!).sort()).toEqual(['field', 'hmac', 'path', 'version']);
      expect(entry).toMatchObject({ field: 'api_key', version: 1 });
      expect(await newFindings(before)).toEqual([]);
    });
  });
});
