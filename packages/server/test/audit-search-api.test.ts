import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasPostgres } from '../../../test-support/postgres.js';
import { type Backend, fakeSecret, startTestServer, type TestServer } from './test-server.js';

// `GET /v1/audit/search` on a real node, on SQLite and PostgreSQL: filters,
// a root task finding its subtree, newest-first paging with the cursor, time
// windows, and full events in the answer.
const backends: Backend[] = ['sqlite', ...(hasPostgres() ? (['postgres'] as const) : [])];

const POLICY =
  'permit(principal, action == Custos::Action::"delegate", resource in Custos::Path::"sys/tasks/");\n' +
  'permit(principal, action == Custos::Action::"read", resource in Custos::Path::"kv/finance/");';

interface Found {
  records: Array<{
    seq: number;
    ts: string;
    hash: string;
    event: {
      time: string;
      decision?: string;
      auth?: { identity?: string; task_id?: string; task_chain?: string[] };
      request?: { path?: string; action?: string };
    };
  }>;
  next_before_seq?: number;
  scanned_through_seq: number;
  complete: boolean;
}

describe.each(backends)('audit search (%s)', (backend) => {
  let s: TestServer;
  let root: { token: string; task_id: string };
  let child: { token: string; task_id: string };
  let secret: string;
  let start: string;
  const search = async (query: string, token?: string) => {
    const r = await s.call({ method: 'GET', url: `/v1/audit/search?${query}`, ...(token ? { token } : {}) });
    expect(r.statusCode, r.body).toBe(200);
    return r.json() as Found;
  };

  beforeAll(async () => {
    s = await startTestServer(backend);
    start = new Date().toISOString();
    secret = fakeSecret('ledger');
    const put = async (url: string, payload: unknown) =>
      expect((await s.call({ method: 'PUT', url, payload })).statusCode).toBe(200);
    await put('/v1/policies/ledger', { policy: POLICY });
    await put('/v1/roles/ledger', { policies: ['ledger'], max_ttl: '15m', max_depth: 3 });
    await put('/v1/secrets/data/kv/finance/ledger', { data: { password: secret } });
    await put('/v1/secrets/data/kv/other/thing', { data: { password: fakeSecret('other') } });
    root = (await s.call({ method: 'POST', url: '/v1/roles/ledger/tasks', payload: { ttl: '10m' } })).json();
    child = (
      await s.call({ method: 'POST', url: '/v1/tasks/delegate', token: root.token, payload: { ttl: '5m' } })
    ).json();
    // The child reads the ledger (allowed) and another path (denied); then noise after it.
    expect(
      (await s.call({ method: 'GET', url: '/v1/secrets/data/kv/finance/ledger', token: child.token })).statusCode,
    ).toBe(200);
    expect(
      (await s.call({ method: 'GET', url: '/v1/secrets/data/kv/other/thing', token: child.token })).statusCode,
    ).toBe(403);
    for (let i = 0; i < 30; i++) await s.call({ method: 'GET', url: '/v1/policies/ledger' });
  });
  afterAll(async () => {
    await s?.close();
  });

  it('finds the subtree of a root task, with full events and no secret value', async () => {
    const found = await search(`task=${root.task_id}&path=kv/*`);
    expect(found.complete).toBe(true);
    expect(found.records.map((r) => [r.event.request?.path, r.event.decision])).toEqual([
      ['kv/other/thing', 'deny'],
      ['kv/finance/ledger', 'allow'],
    ]);
    for (const r of found.records) {
      expect(r.event.auth?.task_id).toBe(child.task_id);
      expect(r.event.auth?.task_chain).toEqual([root.task_id, child.task_id]);
      expect(r.hash).toMatch(/^[0-9a-f]{64}$/);
    }
    // The trail records who read what, never the value read.
    const all = await s.call({ method: 'GET', url: '/v1/audit/search?limit=500' });
    expect(all.body).not.toContain(secret);
  });

  it('matches path exactly or by prefix, action and decision exactly, identity by name', async () => {
    expect((await search('path=kv/finance/ledger&action=read&decision=allow')).records).toHaveLength(1);
    expect((await search('path=kv/finance/ledge')).records).toHaveLength(0);
    expect((await search('path=kv/finance/*&decision=deny')).records).toHaveLength(0);
    expect((await search('action=read&decision=deny')).records.map((r) => r.event.request?.path)).toEqual([
      'kv/other/thing',
    ]);
    const identity = (await search(`task=${child.task_id}&limit=1`)).records[0]!.event.auth!.identity!;
    expect((await search(`identity=${encodeURIComponent(identity)}&path=kv/*`)).records).toHaveLength(2);
  });

  it('pages newest first with the cursor until complete', async () => {
    const everything = (await search('limit=500')).records.map((r) => r.seq);
    expect(everything).toEqual([...everything].sort((a, b) => b - a));
    const paged: number[] = [];
    let cursor: number | undefined;
    do {
      const page = await search(`limit=7${cursor === undefined ? '' : `&before_seq=${cursor}`}`);
      expect(page.records.length).toBeLessThanOrEqual(7);
      paged.push(...page.records.map((r) => r.seq));
      cursor = page.next_before_seq;
      if (cursor === undefined) expect(page.complete).toBe(true);
    } while (cursor !== undefined);
    // The paging requests are audited too, after the first answer: the pages hold every older record.
    expect(paged.filter((seq) => seq <= everything[0]!)).toEqual(everything);
  });

  it('narrows by time', async () => {
    const ledger = (await search('path=kv/finance/ledger')).records[0]!;
    const at = ledger.event.time;
    expect((await search(`path=kv/finance/ledger&since=${at}&until=${at}`)).records).toHaveLength(1);
    expect((await search(`path=kv/finance/ledger&until=${start.slice(0, 10)}T00:00:00Z`)).records).toHaveLength(0);
    const after = new Date(Date.parse(at) + 1).toISOString();
    expect((await search(`path=kv/finance/ledger&since=${after}`)).records).toHaveLength(0);
  });
});
