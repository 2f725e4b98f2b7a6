import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../src/app.js';
import { addTestSources, type SourceClouds, startSourceClouds } from './source-clouds.js';
import { auditEvents, fakeSecret } from './test-server.js';

// Secret sources read through custos: AWS Secrets Manager and Azure Key
// Vault, verified against wire-compatible local servers, not the clouds.

interface Task {
  token: string;
  task_id: string;
}

describe('secret sources (AWS Secrets Manager, Azure Key Vault) mounted at kv/<source>/', () => {
  let c: SourceClouds;

  const login = async (role: string): Promise<Task> => {
    const created = await c.s.call({ method: 'POST', url: `/v1/roles/${role}/bootstrap`, payload: { ttl: '5m' } });
    const response = await c.s.call({
      method: 'POST',
      url: '/v1/auth/bootstrap/login',
      token: null,
      payload: { token: created.json().token, ttl: '10m' },
    });
    expect(response.statusCode).toBe(200);
    return response.json();
  };
  const get = (path: string, token?: string, version?: number) =>
    c.s.call({
      method: 'GET',
      url: `/v1/secrets/data/${path}${version ? `?version=${version}` : ''}`,
      ...(token ? { token } : {}),
    });
  const read = async (path: string, token?: string) => {
    const response = await get(path, token);
    expect(response.statusCode, response.body).toBe(200);
    return response.json() as { data: Record<string, string>; metadata: { version: number } };
  };
  const refresh = async (name: string) => {
    const r = await c.s.call({ method: 'POST', url: `/v1/sources/${name}/refresh` });
    expect(r.statusCode).toBe(200);
  };
  /** Nothing of custos's cloud identity in an answer, the audit trail or the audit file. */
  const expectNoCloudSecrets = async (...bodies: string[]) => {
    const trail = JSON.stringify(await auditEvents(c.s.storage));
    const file = readFileSync(join(c.s.dir, 'audit.jsonl'), 'utf8');
    for (const forbidden of c.forbidden()) {
      for (const text of [...bodies, trail, file]) expect(text).not.toContain(forbidden);
    }
  };

  beforeAll(async () => {
    c = await startSourceClouds();
    await addTestSources(c);
    await c.s.call({
      method: 'PUT',
      url: '/v1/policies/cloud-read',
      payload: {
        policy:
          'permit(principal, action == Custos::Action::"read", resource in Custos::Path::"kv/aws-prod/");\n' +
          'permit(principal, action == Custos::Action::"read", resource in Custos::Path::"kv/azure-prod/");\n' +
          'permit(principal, action == Custos::Action::"delegate", resource in Custos::Path::"sys/tasks/");',
      },
    });
    await c.s.call({
      method: 'PUT',
      url: '/v1/policies/other-read',
      payload: {
        policy: 'permit(principal, action == Custos::Action::"read", resource in Custos::Path::"kv/other/");',
      },
    });
    for (const [role, policy] of [
      ['cloud-reader', 'cloud-read'],
      ['outsider', 'other-read'],
    ] as const) {
      const r = await c.s.call({
        method: 'PUT',
        url: `/v1/roles/${role}`,
        payload: { policies: [policy], max_ttl: '15m', max_depth: 2, auth: ['bootstrap'] },
      });
      expect(r.statusCode).toBe(200);
    }
  });
  afterAll(async () => {
    await c?.close();
  });

  it('a task with a policy on kv/aws-prod/… reads an AWS JSON secret as kv fields; the audit event names the source', async () => {
    const password = fakeSecret('aws-db');
    c.sm.putSecret('agents/db/main', JSON.stringify({ username: 'svc', password, port: 5432 }));
    const task = await login('cloud-reader');
    const response = await get('kv/aws-prod/db/main', task.token);
    expect(response.statusCode).toBe(200);
    expect(response.headers['cache-control']).toContain('no-store');
    expect(response.json()).toMatchObject({
      data: { username: 'svc', password, port: '5432' },
      metadata: { version: 1, created_by: 'source:aws-prod', destroyed: false },
    });
    const event = (await auditEvents(c.s.storage)).findLast(
      (e) => (e.request as { path?: string })?.path === 'kv/aws-prod/db/main',
    ) as { decision: string; details: { source?: string }; auth: { task_id?: string } };
    expect(event).toMatchObject({
      decision: 'allow',
      details: { source: 'aws-prod' },
      auth: { task_id: task.task_id },
    });
    expect(JSON.stringify(event)).not.toContain(password);
    // The SDK's requests reached the wire server signed (SigV4 verified there).
    expect(c.sm.requests).toEqual(
      expect.arrayContaining(['secretsmanager.ListSecretVersionIds', 'secretsmanager.GetSecretValue']),
    );
    await expectNoCloudSecrets(response.body);
  });

  it('a task without a policy on the mount is refused before the source is asked', async () => {
    c.sm.putSecret('agents/refused', JSON.stringify({ token: fakeSecret('refused') }));
    const before = c.sm.requests.length;
    const outsider = await login('outsider');
    const response = await get('kv/aws-prod/refused', outsider.token);
    expect(response.statusCode).toBe(403);
    expect(response.json().error.code).toBe('CUSTOS_ERR_PERMISSION_DENIED');
    expect(c.sm.requests.length).toBe(before);
  });

  it('Azure Key Vault: a plain value is one `value` field; application/json becomes fields', async () => {
    const plain = fakeSecret('azure-plain');
    c.vault.secrets.setSecret('api-key', plain);
    const fields = fakeSecret('azure-json');
    c.vault.secrets.setSecret('db-login', JSON.stringify({ user: 'svc', pass: fields }), {
      contentType: 'application/json',
    });
    const task = await login('cloud-reader');
    expect((await read('kv/azure-prod/api-key', task.token)).data).toEqual({ value: plain });
    expect((await read('kv/azure-prod/db-login', task.token)).data).toEqual({ user: 'svc', pass: fields });
    // A kv path Azure cannot name (two segments) is simply not found.
    expect((await get('kv/azure-prod/a/b', task.token)).statusCode).toBe(404);
    await expectNoCloudSecrets();
  });

  it('a rotation done by AWS is a staged rotation: a pinned task tree keeps its version, new trees get the new one', async () => {
    const path = 'kv/aws-prod/rotating';
    const v1 = fakeSecret('v1');
    c.sm.putSecret('agents/rotating', JSON.stringify({ password: v1 }));
    const running = await login('cloud-reader');
    expect((await read(path, running.token)).data.password).toBe(v1);

    // AWS's rotation: createSecret (AWSPENDING), then finishSecret (AWSCURRENT moves).
    const v2 = fakeSecret('v2');
    c.sm.stagePending('agents/rotating', JSON.stringify({ password: v2 }));
    await refresh('aws-prod');
    let meta = (await c.s.call({ method: 'GET', url: `/v1/secrets/metadata/${path}` })).json();
    expect(meta.stages).toMatchObject({ current: 1, pending: 2 });
    expect((await read(path)).data.password).toBe(v1);
    const seen: unknown[] = [];
    const unsubscribe = c.s.node.services().events.subscribe((e) => seen.push(e));
    c.sm.promotePending('agents/rotating');
    await refresh('aws-prod');
    meta = (await c.s.call({ method: 'GET', url: `/v1/secrets/metadata/${path}` })).json();
    unsubscribe();
    // Subscribers (GET /v1/events) hear of it as of a custos rotation, once.
    expect(seen).toEqual([{ type: 'secret.rotated', path, version: 2, time: expect.any(String) }]);
    expect(meta).toMatchObject({ source: 'aws-prod', stages: { current: 2, previous: 1, pending: null } });

    // The running tree — and a child it spawns after the rotation — still read v1.
    expect((await read(path, running.token)).data.password).toBe(v1);
    const child = await c.s.call({
      method: 'POST',
      url: '/v1/tasks/delegate',
      token: running.token,
      payload: { scope: 'read:kv/aws-prod/*', ttl: '5m' },
    });
    expect(child.statusCode).toBe(200);
    expect((await read(path, child.json().token)).data.password).toBe(v1);
    // A new tree and the operator get v2; v1 stays readable by number while AWS labels it previous.
    expect((await read(path, (await login('cloud-reader')).token)).data.password).toBe(v2);
    expect((await read(path)).data.password).toBe(v2);
    expect((await get(path, undefined, 1)).json().data.password).toBe(v1);

    // AWS rotates again: v1 loses AWSPREVIOUS, so the old pin moves forward to current.
    const v3 = fakeSecret('v3');
    c.sm.putSecret('agents/rotating', JSON.stringify({ password: v3 }));
    await refresh('aws-prod');
    expect((await read(path, running.token)).data.password).toBe(v3);
    expect((await get(path, undefined, 1)).json().error.code).toBe('CUSTOS_ERR_VERSION_NOT_FOUND');
  });

  it('Azure versions likewise: the newest enabled version is current, the one before previous, pins hold', async () => {
    const path = 'kv/azure-prod/rotating';
    const v1 = fakeSecret('az-v1');
    c.vault.secrets.setSecret('rotating', v1);
    const running = await login('cloud-reader');
    expect((await read(path, running.token)).data.value).toBe(v1);
    const v2 = fakeSecret('az-v2');
    c.vault.secrets.setSecret('rotating', v2);
    await refresh('azure-prod');
    const meta = (await c.s.call({ method: 'GET', url: `/v1/secrets/metadata/${path}` })).json();
    expect(meta.stages).toMatchObject({ current: 2, previous: 1 });
    expect((await read(path, running.token)).data.value).toBe(v1);
    expect((await read(path, (await login('cloud-reader')).token)).data.value).toBe(v2);
    // A version not active yet (nbf in the future) is pending, not current.
    c.vault.secrets.setSecret('rotating', fakeSecret('az-v3'), { notBefore: new Date(Date.now() + 3_600_000) });
    await refresh('azure-prod');
    const staged = (await c.s.call({ method: 'GET', url: `/v1/secrets/metadata/${path}` })).json();
    expect(staged.stages).toMatchObject({ current: 2, previous: 1, pending: 3 });
    expect((await read(path)).data.value).toBe(v2);
  });

  it('values are cached for the TTL; `source refresh` drops the cache', async () => {
    const path = 'kv/aws-prod/cached';
    const first = fakeSecret('cached-1');
    c.sm.putSecret('agents/cached', JSON.stringify({ key: first }));
    expect((await read(path)).data.key).toBe(first);
    const asked = c.sm.requests.length;
    expect((await read(path)).data.key).toBe(first);
    expect(c.sm.requests.length).toBe(asked);
    // Changed at the source: still the cached value within the TTL…
    const second = fakeSecret('cached-2');
    c.sm.putSecret('agents/cached', JSON.stringify({ key: second }));
    expect((await read(path)).data.key).toBe(first);
    // …and the new one once refreshed.
    await refresh('aws-prod');
    expect((await read(path)).data.key).toBe(second);
    expect(c.sm.requests.length).toBeGreaterThan(asked);
  });

  it('throttling is retried with bounded backoff; throttling that persists is CUSTOS_ERR_SOURCE_THROTTLED', async () => {
    c.sm.putSecret('agents/throttled', JSON.stringify({ k: fakeSecret('t') }));
    c.sm.faults.throttle = 2;
    const asked = c.sm.requests.length;
    expect((await get('kv/aws-prod/throttled')).statusCode).toBe(200);
    expect(c.sm.requests.length - asked).toBe(4); // 2 throttled + listing + value
    await refresh('aws-prod');
    c.sm.faults.throttle = Number.POSITIVE_INFINITY;
    const started = Date.now();
    const response = await get('kv/aws-prod/throttled');
    c.sm.faults.throttle = 0;
    expect(response.statusCode).toBe(503);
    expect(response.json().error.code).toBe('CUSTOS_ERR_SOURCE_THROTTLED');
    expect(response.json().error.message).toContain('aws-prod');
    expect(Date.now() - started).toBeLessThan(5_000);

    // Azure's 429 with Retry-After likewise (Retry-After 0 here: the wait is the backoff's).
    c.vault.secrets.setSecret('throttled', fakeSecret('az-t'));
    c.vault.faults.retryAfterSeconds = 0;
    c.vault.faults.throttle = 2;
    expect((await get('kv/azure-prod/throttled')).statusCode).toBe(200);
    c.vault.faults.throttle = 0;
  });

  it('access denied is a 403 naming the source — never the cloud’s message, ARN, account or credentials', async () => {
    c.sm.putSecret('agents/denied', JSON.stringify({ k: fakeSecret('d') }));
    c.sm.faults.deny = true;
    const aws = await get('kv/aws-prod/denied');
    c.sm.faults.deny = false;
    expect(aws.statusCode).toBe(403);
    expect(aws.json().error.code).toBe('CUSTOS_ERR_SOURCE_ACCESS_DENIED');
    expect(aws.json().error.message).toContain('"aws-prod"');
    expect(aws.body).not.toMatch(/arn:aws|not authorized|custos-test/);

    c.vault.secrets.setSecret('denied', fakeSecret('az-d'));
    c.vault.faults.deny = true;
    const azure = await get('kv/azure-prod/denied');
    c.vault.faults.deny = false;
    expect(azure.statusCode).toBe(403);
    expect(azure.json().error.code).toBe('CUSTOS_ERR_SOURCE_ACCESS_DENIED');
    expect(azure.json().error.message).toContain('"azure-prod"');
    expect(azure.body).not.toContain('permission on this key vault');
    const refused = (await auditEvents(c.s.storage)).filter((e) => e.error_code === 'CUSTOS_ERR_SOURCE_ACCESS_DENIED');
    expect(refused.map((e) => (e.details as { source?: string }).source)).toEqual(['aws-prod', 'azure-prod']);
    await expectNoCloudSecrets(aws.body, azure.body);
  });

  it('a missing secret is a 404 like any kv read', async () => {
    const response = await get('kv/aws-prod/does-not-exist');
    expect(response.statusCode).toBe(404);
    expect(response.json().error.code).toBe('CUSTOS_ERR_NOT_FOUND');
    expect((await get('kv/azure-prod/does-not-exist')).statusCode).toBe(404);
  });

  it('a secret larger than the kv limit, or malformed JSON, is refused with its code and never echoed', async () => {
    const big = 'x'.repeat(600 * 1024);
    c.sm.putSecret('agents/oversize', big);
    const oversize = await get('kv/aws-prod/oversize');
    expect(oversize.statusCode).toBe(502);
    expect(oversize.json().error.code).toBe('CUSTOS_ERR_SOURCE_SECRET_TOO_LARGE');
    expect(oversize.body.length).toBeLessThan(1_000);

    const marker = fakeSecret('malformed');
    c.sm.putSecret('agents/malformed', `{"password": "${marker}"`);
    const malformed = await get('kv/aws-prod/malformed');
    expect(malformed.statusCode).toBe(502);
    expect(malformed.json().error.code).toBe('CUSTOS_ERR_SOURCE_SECRET_MALFORMED');
    expect(malformed.body).not.toContain(marker);

    c.vault.secrets.setSecret('declared-json', `not json ${marker}`, { contentType: 'application/json' });
    const azure = await get('kv/azure-prod/declared-json');
    expect(azure.json().error.code).toBe('CUSTOS_ERR_SOURCE_SECRET_MALFORMED');
    expect(azure.body).not.toContain(marker);
  });

  it('a source that does not answer in time is CUSTOS_ERR_SOURCE_TIMEOUT within the source’s timeout', async () => {
    c.sm.putSecret('agents/slow', JSON.stringify({ k: fakeSecret('slow') }));
    c.sm.faults.delayMs = 4_000;
    const started = Date.now();
    const response = await get('kv/aws-prod/slow');
    c.sm.faults.delayMs = 0;
    expect(response.statusCode).toBe(504);
    expect(response.json().error.code).toBe('CUSTOS_ERR_SOURCE_TIMEOUT');
    expect(Date.now() - started).toBeLessThan(3_500);
  });

  it('paths under a mount are read-only; the mount lists the source’s names', async () => {
    const write = await c.s.call({
      method: 'PUT',
      url: '/v1/secrets/data/kv/aws-prod/db/main',
      payload: { data: { password: 'x' } },
    });
    expect(write.statusCode).toBe(409);
    expect(write.json().error.code).toBe('CUSTOS_ERR_SOURCE_READ_ONLY');
    const destroy = await c.s.call({ method: 'DELETE', url: '/v1/secrets/metadata/kv/aws-prod/db/main' });
    expect(destroy.json().error.code).toBe('CUSTOS_ERR_SOURCE_READ_ONLY');
    const list = await c.s.call({ method: 'GET', url: '/v1/secrets/list/kv/aws-prod/' });
    expect(list.statusCode).toBe(200);
    expect(list.json().keys).toEqual(expect.arrayContaining(['db/', 'rotating', 'cached']));
  });

  it('import copies the current versions into custos’s own kv once', async () => {
    const r = await c.s.call({ method: 'POST', url: '/v1/sources/azure-prod/import', payload: { path: 'kv/copied' } });
    expect(r.statusCode, r.body).toBe(200);
    const result = r.json() as { imported: string[]; failed: { path: string; code: string }[] };
    expect(result.imported).toEqual(expect.arrayContaining(['kv/copied/api-key', 'kv/copied/rotating']));
    expect(result.failed).toEqual(
      expect.arrayContaining([{ path: 'kv/azure-prod/declared-json', code: 'CUSTOS_ERR_SOURCE_SECRET_MALFORMED' }]),
    );
    const copy = await read('kv/copied/rotating');
    expect(copy.metadata.version).toBe(1);
    expect(copy.data.value).toBe((await read('kv/azure-prod/rotating')).data.value);
  });

  it('source list, show (no CA text, no credentials) and delete', async () => {
    expect((await c.s.call({ method: 'GET', url: '/v1/sources' })).json().keys).toEqual(['aws-prod', 'azure-prod']);
    const shown = await c.s.call({ method: 'GET', url: '/v1/sources/azure-prod' });
    expect(shown.json()).toMatchObject({ name: 'azure-prod', type: 'azure-key-vault', tls_ca: true });
    expect(shown.body).not.toContain('BEGIN CERTIFICATE');
    const added = await c.s.call({
      method: 'PUT',
      url: '/v1/sources/scratch',
      payload: { type: 'aws-secrets-manager', region: c.sm.region, endpoint: c.sm.endpoint },
    });
    expect(added.statusCode).toBe(200);
    expect((await c.s.call({ method: 'DELETE', url: '/v1/sources/scratch' })).statusCode).toBe(204);
    const gone = await c.s.call({ method: 'GET', url: '/v1/sources/scratch' });
    expect(gone.json().error.code).toBe('CUSTOS_ERR_SOURCE_NOT_FOUND');
    await expectNoCloudSecrets(shown.body);
  });

  it('the server log (trace level) carries no cloud credential, ARN, account or value for any source failure', async () => {
    let lines = '';
    const stream = new PassThrough();
    stream.on('data', (chunk) => {
      lines += chunk;
    });
    const app = await buildApp({ node: c.s.node, logger: pino({ level: 'trace' }, stream) });
    const auth = { authorization: `Bearer ${c.s.rootToken}` };
    const value = fakeSecret('log-probe');
    c.sm.putSecret('agents/log-ok', JSON.stringify({ k: value }));
    c.sm.putSecret('agents/log-denied', JSON.stringify({ k: value }));
    c.sm.putSecret('agents/log-oversize', `${value}${'y'.repeat(600 * 1024)}`);
    c.vault.secrets.setSecret('log-denied', value);
    const inject = (path: string) => app.inject({ method: 'GET', url: `/v1/secrets/data/${path}`, headers: auth });
    expect((await inject('kv/aws-prod/log-ok')).statusCode).toBe(200);
    c.sm.faults.deny = true;
    c.vault.faults.deny = true;
    expect((await inject('kv/aws-prod/log-denied')).statusCode).toBe(403);
    expect((await inject('kv/azure-prod/log-denied')).statusCode).toBe(403);
    c.sm.faults.deny = false;
    c.vault.faults.deny = false;
    expect((await inject('kv/aws-prod/log-oversize')).statusCode).toBe(502);
    await app.close();
    expect(lines).toContain('CUSTOS_ERR_SOURCE_SECRET_TOO_LARGE');
    for (const forbidden of [...c.forbidden(), value, 'arn:aws', 'not authorized']) {
      expect(lines).not.toContain(forbidden);
    }
  });

  it('an upstream whose key is held in a source injects the cloud value (the task never holds it)', async () => {
    const key = fakeSecret('upstream-key');
    c.sm.putSecret('agents/llm/openai', JSON.stringify({ api_key: key }));
    const added = await c.s.call({
      method: 'PUT',
      url: '/v1/upstreams/cloud-llm',
      payload: {
        base_url: 'http://127.0.0.1:9/v1',
        secret: 'kv/aws-prod/llm/openai#api_key',
        inject: ['header:Authorization=Bearer {{value}}'],
      },
    });
    expect(added.statusCode, added.body).toBe(200);
    const upstreams = c.s.node.services().upstreams;
    expect(await upstreams.credential(await upstreams.get('cloud-llm'), undefined)).toBe(key);
  });
});
