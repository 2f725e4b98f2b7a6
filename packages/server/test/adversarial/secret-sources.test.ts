import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addTestSources, type SourceClouds, startSourceClouds } from '../source-clouds.js';
import { auditEvents, fakeSecret } from '../test-server.js';

// Attack class: secret sources. A source runs with custos's own cloud
// identity and answers every read of its mount, so who may add, read or
// import one, what it may be named, where it may point and what it may
// shadow are each a promise, tested here.

const permit = (action: string, folder: string) =>
  `permit(principal, action == Custos::Action::"${action}", resource in Custos::Path::"${folder}");`;

describe('adversarial: secret sources', () => {
  let c: SourceClouds;
  /** write on sys/sources/ only: may configure sources but not write kv/finance/. */
  let sourcesOnly: string;
  /** write on sys/sources/ and kv/team/: may mount a source at kv/team. */
  let teamOperator: string;
  /** read on kv/ only: no sys permission at all. */
  let kvReader: string;
  let taskToken: string;

  const token = async (policies: string[]) =>
    (await c.s.call({ method: 'POST', url: '/v1/auth/token/create', payload: { policies, ttl: '30m' } })).json()
      .token as string;
  const addAws = (name: string, t?: string | null, extra: Record<string, unknown> = {}) =>
    c.s.call({
      method: 'PUT',
      url: `/v1/sources/${name}`,
      ...(t !== undefined ? { token: t } : {}),
      payload: { type: 'aws-secrets-manager', region: c.sm.region, endpoint: c.sm.endpoint, ...extra },
    });

  beforeAll(async () => {
    c = await startSourceClouds();
    await addTestSources(c);
    c.sm.putSecret('agents/db', JSON.stringify({ password: fakeSecret('adv') }));
    for (const [name, policy] of [
      ['sources-admin', `${permit('write', 'sys/sources/')}\n${permit('read', 'sys/sources/')}`],
      ['team-write', permit('write', 'kv/team/')],
      ['kv-read', `${permit('read', 'kv/')}\n${permit('list', 'kv/')}`],
      ['everything-sources', `${permit('write', 'sys/sources/')}\n${permit('write', 'kv/')}\n${permit('read', 'kv/')}`],
    ]) {
      const r = await c.s.call({ method: 'PUT', url: `/v1/policies/${name}`, payload: { policy: policy as string } });
      expect(r.statusCode, r.body).toBe(200);
    }
    sourcesOnly = await token(['sources-admin']);
    teamOperator = await token(['sources-admin', 'team-write']);
    kvReader = await token(['kv-read']);
    await c.s.call({
      method: 'PUT',
      url: '/v1/roles/greedy',
      payload: { policies: ['everything-sources'], max_ttl: '15m', auth: ['bootstrap'] },
    });
    const boot = await c.s.call({ method: 'POST', url: '/v1/roles/greedy/bootstrap', payload: { ttl: '5m' } });
    const login = await c.s.call({
      method: 'POST',
      url: '/v1/auth/bootstrap/login',
      token: null,
      payload: { token: boot.json().token, ttl: '10m' },
    });
    taskToken = login.json().token;
  });
  afterAll(async () => {
    await c?.close();
  });

  it('unauthenticated callers can neither configure, list, show, refresh, import nor read a source', async () => {
    for (const [method, url] of [
      ['GET', '/v1/sources'],
      ['GET', '/v1/sources/aws-prod'],
      ['DELETE', '/v1/sources/aws-prod'],
      ['POST', '/v1/sources/aws-prod/refresh'],
      ['POST', '/v1/sources/aws-prod/import'],
      ['GET', '/v1/secrets/data/kv/aws-prod/db'],
    ] as const) {
      const r = await c.s.call({ method, url, token: null, ...(method === 'POST' ? { payload: {} } : {}) });
      expect(r.statusCode, `${method} ${url}`).toBe(401);
    }
    expect((await addAws('anon', null)).statusCode).toBe(401);
    expect((await c.s.call({ method: 'GET', url: '/v1/sources' })).json().keys).toEqual(['aws-prod', 'azure-prod']);
  });

  it('a task never configures a source, whatever its policies say', async () => {
    const r = await addAws('task-made', taskToken, {});
    expect(r.statusCode).toBe(403);
    for (const [method, url] of [
      ['DELETE', '/v1/sources/aws-prod'],
      ['POST', '/v1/sources/aws-prod/refresh'],
      ['POST', '/v1/sources/aws-prod/import'],
    ] as const) {
      const refused = await c.s.call({ method, url, token: taskToken, ...(method === 'POST' ? { payload: {} } : {}) });
      expect(refused.statusCode, `${method} ${url}`).toBe(403);
    }
    expect((await c.s.call({ method: 'GET', url: '/v1/sources/aws-prod' })).statusCode).toBe(200);
  });

  it('an operator without sys/sources permission cannot add, show or list sources', async () => {
    expect((await addAws('kv-made', kvReader)).statusCode).toBe(403);
    expect((await c.s.call({ method: 'GET', url: '/v1/sources', token: kvReader })).statusCode).toBe(403);
    expect((await c.s.call({ method: 'GET', url: '/v1/sources/aws-prod', token: kvReader })).statusCode).toBe(403);
  });

  it('mounting a source needs write on the mount: a source operator cannot feed values to readers of kv/finance', async () => {
    const refused = await addAws('finance', sourcesOnly);
    expect(refused.statusCode).toBe(403);
    const event = (await auditEvents(c.s.storage)).findLast(
      (e) => (e.request as { path?: string })?.path === 'sys/sources/finance',
    );
    expect(event).toMatchObject({ decision: 'deny', reason: 'source_requires_mount_write' });
    expect((await c.s.call({ method: 'GET', url: '/v1/sources/finance' })).statusCode).toBe(404);
    // With write on kv/team/ the same operator may mount kv/team.
    expect((await addAws('team', teamOperator)).statusCode).toBe(200);
  });

  it('a source is never mounted over local secrets, and nothing is written under a mount', async () => {
    await c.s.call({ method: 'PUT', url: '/v1/secrets/data/kv/local/app', payload: { data: { k: 'v' } } });
    const r = await addAws('local');
    expect(r.statusCode).toBe(409);
    expect(r.json().error.code).toBe('CUSTOS_ERR_SOURCE_MOUNT_CONFLICT');
    expect((await c.s.call({ method: 'GET', url: '/v1/secrets/data/kv/local/app' })).json().data).toEqual({ k: 'v' });
    for (const [method, url, payload] of [
      ['PUT', '/v1/secrets/data/kv/aws-prod/db', { data: { password: 'attacker' } }],
      ['POST', '/v1/secrets/destroy/kv/aws-prod/db', { versions: [1] }],
      ['PUT', '/v1/secrets/metadata/kv/aws-prod/db', { max_versions: 1 }],
    ] as const) {
      const refused = await c.s.call({ method, url, payload });
      expect(refused.json().error.code, `${method} ${url}`).toBe('CUSTOS_ERR_SOURCE_READ_ONLY');
    }
    // Not only the kv routes: every writer of local secrets (a decoy, an import's copies) is refused there.
    const decoy = await c.s.call({
      method: 'POST',
      url: '/v1/honeytokens',
      payload: { path: 'kv/aws-prod/decoy', kind: 'generic' },
    });
    expect(decoy.json().error.code).toBe('CUSTOS_ERR_SOURCE_READ_ONLY');
    const into = await c.s.call({
      method: 'POST',
      url: '/v1/sources/aws-prod/import',
      payload: { path: 'kv/azure-prod/copies' },
    });
    expect(into.statusCode).toBe(200);
    expect(into.json().imported).toEqual([]);
    expect(into.json().failed).toEqual([{ path: 'kv/aws-prod/db', code: 'CUSTOS_ERR_SOURCE_READ_ONLY' }]);
  });

  it('source names with traversal or a second spelling are refused before anything is stored', async () => {
    for (const name of ['..', '..%2F..%2Fsys', '%2e%2e', 'Aws-Prod', 'a%2Fb', '-x', 'a.b', 'x'.repeat(64)]) {
      const r = await addAws(name);
      expect([400, 404], name).toContain(r.statusCode);
    }
    const traversal = await c.s.call({ method: 'GET', url: '/v1/secrets/data/kv/aws-prod/../../sys/sources/aws-prod' });
    expect(traversal.statusCode).not.toBe(200);
    expect((await c.s.call({ method: 'GET', url: '/v1/sources' })).json().keys).toEqual([
      'aws-prod',
      'azure-prod',
      'team',
    ]);
  });

  it('an endpoint at the metadata service, a private or link-local address is refused by the egress policy', async () => {
    for (const endpoint of [
      'https://169.254.169.254',
      'https://[::ffff:169.254.169.254]',
      'https://[fe80::1]',
      'https://10.0.0.5',
      'https://192.168.1.1:8443',
      'https://2852039166',
    ]) {
      const r = await addAws('metadata', undefined, { endpoint });
      expect(r.statusCode, endpoint).toBe(403);
      expect(r.json().error.code).toBe('CUSTOS_ERR_EGRESS_REFUSED');
    }
    const vault = await c.s.call({
      method: 'PUT',
      url: '/v1/sources/metadata',
      payload: { type: 'azure-key-vault', vault_url: 'https://169.254.169.254' },
    });
    expect(vault.json().error.code).toBe('CUSTOS_ERR_EGRESS_REFUSED');
    // Clear text (secrets come back in the answer) and credentials in the URL are refused outright.
    for (const endpoint of ['http://10.0.0.5', 'https://user:pass@secretsmanager.example', 'https://h.example/x?y']) {
      expect((await addAws('metadata', undefined, { endpoint })).json().error.code, endpoint).toBe(
        'CUSTOS_ERR_SOURCE_INVALID',
      );
    }
    expect((await c.s.call({ method: 'GET', url: '/v1/sources/metadata' })).statusCode).toBe(404);
  });

  it('no field carries a cloud credential: unknown fields are refused', async () => {
    const r = await addAws('creds', undefined, { access_key_id: 'AKIAFAKE', secret_access_key: 'fake' });
    expect(r.statusCode).toBe(400);
    expect(r.body).not.toContain('fake');
  });

  it('import moves only what the caller could read and write by hand', async () => {
    const r = await c.s.call({
      method: 'POST',
      url: '/v1/sources/aws-prod/import',
      token: teamOperator,
      payload: { path: 'kv/elsewhere' },
    });
    expect(r.statusCode).toBe(200);
    expect(r.json()).toMatchObject({ imported: [], refused: ['kv/aws-prod/db'] });
    expect((await c.s.call({ method: 'GET', url: '/v1/secrets/data/kv/elsewhere/db' })).statusCode).toBe(404);
  });
});
