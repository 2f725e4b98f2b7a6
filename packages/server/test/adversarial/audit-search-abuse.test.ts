import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fakeSecret, startTestServer, type TestServer } from '../test-server.js';

// Attack class: abuse of the audit search (`GET /v1/audit/search`). Only a
// holder of `read sys/audit` may search; parameters are validated with
// stable codes and never echoed; filter text is data (never SQL, never a
// pattern beyond a trailing `*`); no answer ever holds a secret value.

const READER_POLICY = 'permit(principal, action == Custos::Action::"read", resource in Custos::Path::"kv/app/");';
const AUDITOR_POLICY = 'permit(principal, action == Custos::Action::"read", resource == Custos::Path::"sys/audit");';

describe('audit search abuse', () => {
  let s: TestServer;
  let secret: string;
  let reader: string;
  let auditor: string;
  let task: string;
  const get = (query: string, token?: string | null) =>
    s.call({ method: 'GET', url: `/v1/audit/search${query}`, ...(token === undefined ? {} : { token }) });

  beforeAll(async () => {
    s = await startTestServer('sqlite');
    secret = fakeSecret('audit-search');
    const ok = async (r: Awaited<ReturnType<TestServer['call']>>) => {
      expect(r.statusCode, r.body).toBe(200);
      return r.json();
    };
    await ok(await s.call({ method: 'PUT', url: '/v1/secrets/data/kv/app/db', payload: { data: { pw: secret } } }));
    await ok(await s.call({ method: 'PUT', url: '/v1/policies/reader', payload: { policy: READER_POLICY } }));
    await ok(await s.call({ method: 'PUT', url: '/v1/policies/auditor', payload: { policy: AUDITOR_POLICY } }));
    const token = async (policy: string) =>
      (
        await ok(
          await s.call({ method: 'POST', url: '/v1/auth/token/create', payload: { policies: [policy], ttl: '10m' } }),
        )
      ).token as string;
    reader = await token('reader');
    auditor = await token('auditor');
    await ok(await s.call({ method: 'PUT', url: '/v1/roles/app', payload: { policies: ['reader'], max_ttl: '10m' } }));
    task = (await ok(await s.call({ method: 'POST', url: '/v1/roles/app/tasks', payload: { ttl: '5m' } }))).token;
    // A secret read inside the window searched below, by the task and by the reader.
    await ok(await s.call({ method: 'GET', url: '/v1/secrets/data/kv/app/db', token: task }));
    await ok(await s.call({ method: 'GET', url: '/v1/secrets/data/kv/app/db', token: reader }));
  });
  afterAll(async () => {
    await s?.close();
  });

  it('refuses callers without a token, task tokens, and operators without read on sys/audit', async () => {
    expect((await get('?path=kv/app/db', null)).statusCode).toBe(401);
    for (const token of [task, reader]) {
      const r = await get('?path=kv/app/db', token);
      expect(r.statusCode, r.body).toBe(403);
      expect(r.body).not.toContain('kv/app/db"');
    }
    expect((await get('?path=kv/app/db', auditor)).statusCode).toBe(200);
  });

  it('never answers with a secret value, even for the reads of it', async () => {
    const r = await get('?path=kv/app/db&action=read&decision=allow&limit=500', auditor);
    expect(r.statusCode).toBe(200);
    expect(r.json().records).toHaveLength(2);
    expect(r.body).not.toContain(secret);
    for (const t of [task, reader, s.rootToken]) expect(r.body).not.toContain(t);
  });

  it('refuses bad parameters with CUSTOS_ERR_VALIDATION and without echoing them', async () => {
    const echo = fakeSecret('pasted');
    const bad = [
      '?limit=501',
      '?limit=0',
      '?limit=-1',
      '?limit=99999999999999999999',
      '?limit=1e2',
      '?before_seq=-5',
      '?before_seq=0',
      '?before_seq=99999999999999999999',
      '?before_seq=1.5',
      `?decision=${echo}`,
      '?decision=ALLOW',
      `?since=${echo}`,
      '?since=1',
      '?until=2026-13-45T00:00:00Z',
      '?since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z',
      `?nope=${echo}`,
      `?path=${'a'.repeat(2000)}`,
    ];
    for (const query of bad) {
      const r = await get(query);
      expect(r.statusCode, query).toBe(400);
      expect(r.json().error.code, query).toBe('CUSTOS_ERR_VALIDATION');
      expect(r.body).not.toContain(echo);
    }
  });

  it('treats injection-looking filters as plain text', async () => {
    const hostile = [
      "kv/app/db' OR '1'='1",
      'kv/app/%',
      'kv/app/__',
      'kv/app/.*',
      '*',
      "'; DROP TABLE audit_records; --",
      'kv/app/db\u0000',
    ];
    for (const path of hostile) {
      const r = await get(`?path=${encodeURIComponent(path)}`, auditor);
      expect(r.statusCode, path).toBe(200);
      // Only `*` alone (a prefix of everything with a path) matches anything.
      if (path !== '*') expect(r.json().records, path).toEqual([]);
    }
    for (const field of ['identity', 'task', 'action']) {
      const r = await get(`?${field}=${encodeURIComponent("x' OR 1=1 --")}`, auditor);
      expect(r.json().records).toEqual([]);
    }
    // The trail is intact and still verifies after all of that.
    const verify = await s.call({ method: 'GET', url: '/v1/audit/verify' });
    expect(verify.json()).toMatchObject({ ok: true });
  });

  it('a huge request is bounded: at most 500 records and a cursor to continue', async () => {
    for (let i = 0; i < 520; i++) await s.call({ method: 'GET', url: '/v1/policies/reader' });
    const page = (await get('?limit=500', auditor)).json();
    expect(page.records).toHaveLength(500);
    expect(page.complete).toBe(false);
    expect(page.next_before_seq).toBe(page.records[499].seq);
    const rest = (await get(`?limit=500&before_seq=${page.next_before_seq}`, auditor)).json();
    expect(rest.records[0].seq).toBe(page.records[499].seq - 1);
    // A cursor far past the head is simply the whole trail, not an error.
    expect((await get(`?limit=1&before_seq=${Number.MAX_SAFE_INTEGER}`, auditor)).statusCode).toBe(200);
  });
});
