import { request as httpsRequest } from 'node:https';
import {
  type AuditEventInput,
  generateAuditHistory,
  type HistoryOperator,
  type HistoryTask,
  historyEvents,
} from '@custos/core';
import { createEngine } from '@custos/engines';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, hasPostgres, type TestDatabase } from '../../../test-support/postgres.js';
import { buildApp } from '../src/app.js';
import { type ProxyListener, startProxyListener } from '../src/proxy/index.js';
import { echo, type FakeUpstream, fakeUpstream } from './proxy/proxy-test-support.js';
import { auditEvents, fakeSecret, startTestServer, type TestServer } from './test-server.js';

// The history generator (packages/core/src/anomaly/simulation) must write the
// records a real server writes, or the measured detection quality measures
// nothing. Each operation it models is performed here against a real server
// (a real proxy listener and upstream, a real PostgreSQL engine), and its
// records are compared with the generator's, field by field: the same keys
// and value types everywhere, the same values where the rules branch on them
// (type, route, method, action, decision, status, error code, reason, phase,
// proxy mode). Then every record of a generated history must have the shape
// of one of these real records.

/** Values the rules branch on: compared exactly. Everything else: by key and type. */
const CATEGORICAL = new Set([
  'type',
  'kind',
  'request.method',
  'request.route',
  'request.action',
  'decision',
  'status',
  'error_code',
  'reason',
  'details.phase',
  'details.proxy',
]);

function shape(value: unknown, path = ''): string[] {
  if (CATEGORICAL.has(path)) return [`${path}=${JSON.stringify(value)}`];
  if (Array.isArray(value)) return [`${path}:array<${[...new Set(value.map((v) => typeof v))].join('|')}>`];
  if (value !== null && typeof value === 'object') {
    return Object.keys(value)
      .filter((k) => k !== 'time' || path !== '')
      .sort()
      .flatMap((k) => shape((value as Record<string, unknown>)[k], path ? `${path}.${k}` : k));
  }
  return [`${path}:${typeof value}`];
}
const shapeOf = (event: unknown) => shape(event).join(' ');

const ok = (r: { statusCode: number; body: string }) => {
  expect(r.statusCode, r.body).toBeLessThan(300);
  return r;
};

describe.skipIf(!hasPostgres())('the history generator writes what a real server writes', () => {
  let s: TestServer;
  let target: TestDatabase;
  let proxy: ProxyListener;
  let api: FakeUpstream;
  /** Per operation: the real records and the generator's. */
  const pairs: { op: string; real: unknown[]; generated: AuditEventInput[] }[] = [];

  let jwtKey: CryptoKey;

  /**
   * `POST /v1/auth/cert/login` over mutual TLS with a certificate custos issued for gpu-infer; `recorded`
   * covers only the login (the certificate is issued and the TLS listener started before).
   */
  const loginByCertificate = async () => {
    const services = s.node.services();
    const server = await services.certs.issueServerCertificate({ ipAddresses: ['127.0.0.1'] });
    const tls = await buildApp({ node: s.node, logger: false, https: { key: server.keyPem, cert: server.certPem } });
    await tls.listen({ host: '127.0.0.1', port: 0 });
    const issued = ok(
      await s.call({ method: 'POST', url: '/v1/roles/gpu-infer/certs', payload: { ttl: '1h' } }),
    ).json();
    try {
      return await recorded(async () => {
        const status = await new Promise<number>((resolve, reject) => {
          const req = httpsRequest(
            {
              host: '127.0.0.1',
              port: (tls.server.address() as { port: number }).port,
              path: '/v1/auth/cert/login',
              method: 'POST',
              ca: services.certs.caPem,
              headers: { 'content-type': 'application/json' },
              cert: issued.cert_pem,
              key: issued.key_pem,
            },
            (res) => {
              res.resume();
              res.on('end', () => resolve(res.statusCode ?? 0));
            },
          );
          req.on('error', reject);
          req.end('{}');
        });
        expect(status).toBe(200);
      });
    } finally {
      await tls.close();
    }
  };

  /** Runs `act` and returns the records it added to the real audit log. */
  const recorded = async (act: () => Promise<unknown>) => {
    const head = (await s.storage.audit.head())?.seq ?? 0;
    await act();
    return (await auditEvents(s.storage)).slice(head);
  };
  /** The generator's view of a real task: its id, identity, role, chain and address as the server saw them. */
  const asHistoryTask = (event: Record<string, unknown>): HistoryTask => {
    const auth = event.auth as {
      task_id: string;
      identity: string;
      role: string;
      task_chain: string[];
      policies: string[];
    };
    return {
      id: auth.task_id,
      identity: auth.identity,
      role: auth.role,
      chain: auth.task_chain,
      policies: auth.policies,
      ip: (event.request as { source_ip: string }).source_ip,
    };
  };

  beforeAll(async () => {
    target = await createTestDatabase();
    s = await startTestServer('sqlite', { engineFactory: createEngine });
    proxy = await startProxyListener({
      node: s.node,
      host: '127.0.0.1',
      port: 0,
      logger: pino({ level: 'silent' }),
      options: {},
    });
    api = await fakeUpstream((req, res, body) => echo(req, res, body));
    ok(await s.call({ method: 'PUT', url: '/v1/secrets/data/kv/app/db', payload: { data: { pw: fakeSecret() } } }));
    ok(
      await s.call({
        method: 'PUT',
        url: '/v1/policies/agent',
        payload: {
          policy:
            'permit(principal, action == Custos::Action::"read", resource in Custos::Path::"kv/app/");\n' +
            'permit(principal, action == Custos::Action::"use", resource in Custos::Path::"upstream/");\n' +
            'permit(principal, action == Custos::Action::"issue", resource in Custos::Path::"pg-main/");\n' +
            'permit(principal, action == Custos::Action::"delegate", resource in Custos::Path::"sys/tasks/");',
        },
      }),
    );
    ok(
      await s.call({
        method: 'PUT',
        url: '/v1/policies/rotator',
        payload: { policy: 'permit(principal, action == Custos::Action::"write", resource in Custos::Path::"kv/");' },
      }),
    );
    ok(
      await s.call({
        method: 'PUT',
        url: '/v1/roles/agent',
        payload: { policies: ['agent'], max_ttl: '15m', max_depth: 3, auth: ['bootstrap'] },
      }),
    );
    const keys = await generateKeyPair('RS256');
    jwtKey = keys.privateKey as CryptoKey;
    ok(
      await s.call({
        method: 'PUT',
        url: '/v1/auth/jwt/methods/actions',
        payload: {
          issuer: 'https://token.actions.example.test',
          audience: 'custos',
          jwks: { keys: [{ ...(await exportJWK(keys.publicKey)), kid: 'ci-key-1', alg: 'RS256', use: 'sig' }] },
        },
      }),
    );
    ok(
      await s.call({
        method: 'PUT',
        url: '/v1/roles/ci',
        payload: {
          policies: ['agent'],
          auth: ['jwt'],
          jwt_methods: ['actions'],
          bound_claims: { repository: 'acme/*' },
          max_ttl: '10m',
        },
      }),
    );
    ok(
      await s.call({
        method: 'PUT',
        url: '/v1/roles/gpu-infer',
        payload: { policies: ['agent'], auth: ['cert'], max_ttl: '10m' },
      }),
    );
    ok(await s.call({ method: 'PUT', url: '/v1/engines/pg-main', payload: { type: 'postgres', url: target.url } }));
    ok(
      await s.call({
        method: 'PUT',
        url: '/v1/engines/pg-main/roles/reader',
        payload: { default_ttl: '5m', max_ttl: '1h' },
      }),
    );
    ok(
      await s.call({
        method: 'PUT',
        url: '/v1/upstreams/llm',
        payload: {
          secret: 'kv/app/db#pw',
          base_url: `http://127.0.0.1:${api.port}/v1`,
          inject: ['header:Authorization=Bearer {{value}}'],
          allow_hosts: [`127.0.0.1:${api.port}`],
        },
      }),
    );

    // Each operation, for real, then the generator's records for the same operation.
    const bootstrap = ok(
      await s.call({ method: 'POST', url: '/v1/roles/agent/bootstrap', payload: { ttl: '5m' } }),
    ).json().token as string;
    let root = { token: '', task_id: '' };
    const login = await recorded(async () => {
      root = ok(
        await s.call({ method: 'POST', url: '/v1/auth/bootstrap/login', token: null, payload: { token: bootstrap } }),
      ).json();
    });
    const rootTask = asHistoryTask(login[1]!);
    pairs.push({ op: 'login', real: login, generated: historyEvents.login('r', '/v1/auth/bootstrap/login', rootTask) });
    const reuse = await recorded(() =>
      s.call({ method: 'POST', url: '/v1/auth/bootstrap/login', token: null, payload: { token: bootstrap } }),
    );
    pairs.push({
      op: 'bootstrap reuse',
      real: reuse,
      generated: historyEvents.bootstrapReuse('r', rootTask.ip, 'bac_x', `hmac-sha256:${'0'.repeat(64)}`),
    });
    const read = await recorded(() => s.call({ method: 'GET', url: '/v1/secrets/data/kv/app/db', token: root.token }));
    pairs.push({ op: 'secret read', real: read, generated: historyEvents.secretRead('r', rootTask, 'kv/app/db') });
    const denied = await recorded(() => s.call({ method: 'GET', url: '/v1/secrets/data/kv/hr/x', token: root.token }));
    pairs.push({
      op: 'secret read, denied',
      real: denied,
      generated: historyEvents.secretRead('r', rootTask, 'kv/hr/x', true),
    });
    let child = { token: '', task_id: '' };
    const delegated = await recorded(async () => {
      child = ok(
        await s.call({ method: 'POST', url: '/v1/tasks/delegate', token: root.token, payload: { ttl: '5m' } }),
      ).json();
    });
    pairs.push({
      op: 'delegate (JSON)',
      real: delegated,
      generated: historyEvents.delegate('r', rootTask, child.task_id, 'json'),
    });
    const childTask: HistoryTask = { ...rootTask, id: child.task_id, chain: [rootTask.id, child.task_id] };
    const exchanged = await recorded(() =>
      s.call({
        method: 'POST',
        url: '/v1/oauth/token',
        token: null,
        payload: {
          grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
          subject_token: child.token,
          subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
          ttl: '2m',
        },
      }),
    );
    pairs.push({
      op: 'delegate (token exchange)',
      real: exchanged,
      generated: historyEvents.delegate('r', childTask, 'tsk_x', 'exchange'),
    });
    const creds = await recorded(async () =>
      ok(await s.call({ method: 'POST', url: '/v1/creds/pg-main/reader', token: root.token, payload: {} })),
    );
    pairs.push({
      op: 'dynamic credentials',
      real: creds,
      generated: historyEvents.credsIssue('r', rootTask, 'pg-main/reader'),
    });
    const proxied = await recorded(async () => {
      const response = await fetch(`${proxy.address}/u/llm/chat`, {
        method: 'POST',
        headers: { authorization: `Bearer ${root.token}` },
        body: '{}',
      });
      await response.text();
    });
    pairs.push({
      op: 'proxied call',
      real: proxied,
      generated: historyEvents.proxyCall('r', rootTask, {
        upstream: 'llm',
        path: '/chat',
        status: 200,
        bytesIn: 2,
        bytesOut: 300,
        durationMs: 5,
      }),
    });
    const ended = await recorded(async () =>
      ok(await s.call({ method: 'POST', url: `/v1/tasks/${child.task_id}/end`, token: child.token })),
    );
    pairs.push({ op: 'task end', real: ended, generated: historyEvents.taskEnd('r', childTask) });
    const dead = await recorded(() => s.call({ method: 'GET', url: '/v1/secrets/data/kv/app/db', token: child.token }));
    pairs.push({
      op: 'dead task token',
      real: dead,
      generated: historyEvents.deadToken('r', childTask, rootTask.ip, 'task_ended'),
    });
    // The other two login routes the generator uses (GPU nodes by certificate, CI by workload JWT).
    const jwtLogin = await recorded(async () => {
      const jwt = await new SignJWT({ repository: 'acme/service-0' })
        .setProtectedHeader({ alg: 'RS256', kid: 'ci-key-1' })
        .setIssuer('https://token.actions.example.test')
        .setAudience('custos')
        .setSubject('repo:acme/service-0:ref:refs/heads/main')
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(jwtKey);
      ok(await s.call({ method: 'POST', url: '/v1/auth/jwt/login', token: null, payload: { role: 'ci', jwt } }));
    });
    pairs.push({
      op: 'JWT login',
      real: jwtLogin,
      generated: historyEvents.login('r', '/v1/auth/jwt/login', asHistoryTask(jwtLogin[1]!)),
    });
    const certLogin = await loginByCertificate();
    pairs.push({
      op: 'certificate login',
      real: certLogin,
      generated: historyEvents.login('r', '/v1/auth/cert/login', asHistoryTask(certLogin[1]!)),
    });
    const rotator = ok(
      await s.call({ method: 'POST', url: '/v1/auth/token/create', payload: { policies: ['rotator'], ttl: '10m' } }),
    ).json().token as string;
    const written = await recorded(async () =>
      ok(
        await s.call({
          method: 'PUT',
          url: '/v1/secrets/data/kv/app/db',
          token: rotator,
          payload: { data: { pw: fakeSecret() } },
        }),
      ),
    );
    const operator: HistoryOperator = { accessor: 'acc_x', name: 'ops', policies: ['rotator'], ip: rootTask.ip };
    pairs.push({
      op: 'operator write',
      real: written,
      generated: historyEvents.operatorWrite('r', operator, 'kv/app/db'),
    });
  }, 60_000);
  afterAll(async () => {
    await proxy?.close();
    await api?.close();
    await s?.close();
    await target?.drop();
  });

  it('writes each operation as the server records it', () => {
    expect(pairs).toHaveLength(13);
    for (const { op, real, generated } of pairs) {
      expect(generated.map(shapeOf), op).toEqual(real.map(shapeOf));
    }
  });

  it('gives every record of a generated history the shape of a real record', () => {
    const real = new Set(pairs.flatMap((p) => p.real.map(shapeOf)));
    const unknown = new Map<string, number>();
    let n = 0;
    for (const { event } of generateAuditHistory({ seed: 7, weeks: 2, incidents: [] }).events()) {
      n++;
      const s = shapeOf(event);
      if (!real.has(s)) unknown.set(s, (unknown.get(s) ?? 0) + 1);
    }
    expect(n).toBeGreaterThan(50_000);
    expect([...unknown.entries()]).toEqual([]);
  });
});
