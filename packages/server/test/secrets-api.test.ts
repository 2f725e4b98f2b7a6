import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasPostgres } from '../../../test-support/postgres.js';
import { auditEvents, type Backend, fakeSecret, startTestServer, type TestServer } from './test-server.js';

const backends: Backend[] = ['sqlite', ...(hasPostgres() ? (['postgres'] as const) : [])];

describe.each(backends)('secrets API on %s', (backend) => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer(backend);
  });
  afterAll(async () => {
    await s?.close();
  });

  const put = (path: string, data: unknown, options?: unknown) =>
    s.call({ method: 'PUT', url: `/v1/secrets/data/${path}`, payload: { data, ...(options ? { options } : {}) } });
  const get = (path: string, query = '') => s.call({ method: 'GET', url: `/v1/secrets/data/${path}${query}` });

  it('writes versions and reads each one back', async () => {
    const v1 = fakeSecret('v1');
    const v2 = fakeSecret('v2');
    expect((await put('kv/app/db', { password: v1 })).json()).toMatchObject({ version: 1 });
    expect((await put('kv/app/db', { password: v2 })).json()).toMatchObject({ version: 2 });
    expect((await get('kv/app/db')).json()).toMatchObject({ data: { password: v2 }, metadata: { version: 2 } });
    expect((await get('kv/app/db', '?version=1')).json()).toMatchObject({ data: { password: v1 } });
    const missing = await get('kv/app/db', '?version=9');
    expect(missing.statusCode).toBe(404);
    expect(missing.json().error.code).toBe('CUSTOS_ERR_VERSION_NOT_FOUND');
  });

  it('check-and-set: cas=0 creates only, a stale cas is a conflict that writes nothing', async () => {
    expect((await put('kv/cas/a', { k: fakeSecret() }, { cas: 0 })).statusCode).toBe(200);
    const again = await put('kv/cas/a', { k: fakeSecret() }, { cas: 0 });
    expect(again.statusCode).toBe(409);
    expect(again.json().error.code).toBe('CUSTOS_ERR_CAS_MISMATCH');
    expect((await put('kv/cas/a', { k: fakeSecret() }, { cas: 1 })).json().version).toBe(2);
    expect((await put('kv/cas/a', { k: fakeSecret() }, { cas: 1 })).statusCode).toBe(409);
    const meta = await s.call({ method: 'GET', url: '/v1/secrets/metadata/kv/cas/a' });
    expect(meta.json().current_version).toBe(2);
    // cas_required: a write without cas is refused
    await s.call({ method: 'PUT', url: '/v1/secrets/metadata/kv/cas/a', payload: { cas_required: true } });
    const noCas = await put('kv/cas/a', { k: fakeSecret() });
    expect(noCas.json().error.code).toBe('CUSTOS_ERR_CAS_REQUIRED');
  });

  it('soft delete, undelete and destroy', async () => {
    await put('kv/del/x', { k: fakeSecret('1') });
    const keep = fakeSecret('2');
    await put('kv/del/x', { k: keep });
    expect((await s.call({ method: 'DELETE', url: '/v1/secrets/data/kv/del/x' })).json()).toEqual({ versions: [2] });
    expect((await get('kv/del/x')).json().error.code).toBe('CUSTOS_ERR_VERSION_DELETED');
    await s.call({ method: 'POST', url: '/v1/secrets/undelete/kv/del/x', payload: { versions: [2] } });
    expect((await get('kv/del/x')).json().data.k).toBe(keep);
    await s.call({ method: 'POST', url: '/v1/secrets/destroy/kv/del/x', payload: { versions: [1] } });
    const destroyed = await get('kv/del/x', '?version=1');
    expect(destroyed.statusCode).toBe(410);
    expect(destroyed.json().error.code).toBe('CUSTOS_ERR_VERSION_DESTROYED');
    expect((await s.call({ method: 'DELETE', url: '/v1/secrets/metadata/kv/del/x' })).statusCode).toBe(204);
    expect((await get('kv/del/x')).statusCode).toBe(404);
  });

  it('keeps at most max_versions', async () => {
    await s.call({ method: 'PUT', url: '/v1/secrets/metadata/kv/max/a', payload: { max_versions: 2 } });
    for (let i = 0; i < 4; i++) await put('kv/max/a', { k: fakeSecret(String(i)) });
    const meta = (await s.call({ method: 'GET', url: '/v1/secrets/metadata/kv/max/a' })).json();
    expect(Object.keys(meta.versions)).toEqual(['3', '4']);
    expect((await get('kv/max/a', '?version=1')).json().error.code).toBe('CUSTOS_ERR_VERSION_NOT_FOUND');
  });

  it('lists names and folders below a prefix', async () => {
    await put('kv/list/a', { k: fakeSecret() });
    await put('kv/list/b/c', { k: fakeSecret() });
    const listing = await s.call({ method: 'GET', url: '/v1/secrets/list/kv/list/' });
    expect(listing.json().keys.sort()).toEqual(['a', 'b/']);
  });

  it.each([
    ['kv/../sys/x', 'traversal'],
    ['kv/%2e%2e/x', 'encoded traversal'],
    ['kv/a%00b', 'NUL'],
    ['kv//a', 'empty segment'],
    ['sys/keyring', 'reserved mount'],
    [`kv/${'a'.repeat(600)}`, 'overlong'],
  ])('refuses the path %s (%s) and writes nothing', async (path) => {
    const response = await put(path, { k: fakeSecret() });
    expect(response.statusCode).toBe(400);
    expect(response.json().error.code).toBe('CUSTOS_ERR_INVALID_PATH');
  });

  it('refuses malformed bodies with stable codes', async () => {
    const badJson = await s.call({
      method: 'PUT',
      url: '/v1/secrets/data/kv/bad/a',
      headers: { 'content-type': 'application/json' },
      payload: '{"data": {',
    });
    expect(badJson.json().error.code).toBe('CUSTOS_ERR_BAD_REQUEST');
    const wrongType = await put('kv/bad/a', { k: 42 });
    expect(wrongType.statusCode).toBe(400);
    expect(wrongType.json().error.code).toBe('CUSTOS_ERR_VALIDATION');
    const huge = await put('kv/bad/a', { k: 'x'.repeat(2 * 1024 * 1024) });
    expect(huge.statusCode).toBe(413);
    expect(huge.json().error.code).toBe('CUSTOS_ERR_BODY_TOO_LARGE');
    expect((await get('kv/bad/a')).statusCode).toBe(404);
  });

  it('refuses missing, garbage and revoked tokens alike', async () => {
    for (const token of [null, 'garbage', `cus_${'A'.repeat(43)}`]) {
      const response = await s.call({ method: 'GET', url: '/v1/secrets/data/kv/app/db', token });
      expect(response.statusCode).toBe(401);
      expect(response.json()).toEqual({
        error: { code: 'CUSTOS_ERR_UNAUTHENTICATED', message: expect.any(String) },
      });
    }
  });

  it('audits every request and never writes a secret value', async () => {
    const value = fakeSecret('audited');
    await put('kv/audit/a', { password: value });
    await get('kv/audit/a');
    await s.call({ method: 'GET', url: '/v1/secrets/data/kv/audit/a', token: 'garbage' });
    const events = await auditEvents(s.storage);
    const text = JSON.stringify(events);
    expect(text).not.toContain(value);
    expect(text).not.toContain(s.rootToken);
    const reads = events.filter(
      (e) =>
        (e.request as { path?: string })?.path === 'kv/audit/a' && (e.request as { method: string }).method === 'GET',
    );
    expect(reads.at(-1)).toMatchObject({ decision: 'allow', status: 200, auth: { root: true } });
    const writes = events.filter((e) => (e.request as { method?: string })?.method === 'PUT');
    // A write is audited before it runs and again with its outcome.
    expect(writes.some((e) => (e.details as { phase: string }).phase === 'request')).toBe(true);
    const denied = events.filter((e) => e.error_code === 'CUSTOS_ERR_UNAUTHENTICATED');
    expect(denied.length).toBeGreaterThan(0);
    const verify = await s.call({ method: 'GET', url: '/v1/audit/verify' });
    expect(verify.json()).toMatchObject({ ok: true });
  });

  it('reports a flipped byte in a stored ciphertext as an integrity error, never as data', async () => {
    await put('kv/flip/a', { k: fakeSecret() });
    const entry = await s.storage.entries.get('kv.data', 'kv/flip/a#1');
    const tampered = Buffer.from(entry!.value);
    tampered[tampered.length - 20] = (tampered[tampered.length - 20] ?? 0) ^ 0x01;
    await s.storage.entries.put('kv.data', 'kv/flip/a#1', tampered);
    const response = await get('kv/flip/a');
    expect(response.statusCode).toBe(500);
    expect(response.json().error.code).toBe('CUSTOS_ERR_INTEGRITY');
  });

  it('rotates the keyring online: old data stays readable, new writes use the new term', async () => {
    const old = fakeSecret('old');
    await put('kv/rot/a', { k: old });
    const rotated = await s.call({ method: 'POST', url: '/v1/sys/rotate' });
    expect(rotated.statusCode).toBe(200);
    const term = rotated.json().term as number;
    await put('kv/rot/b', { k: fakeSecret('new') });
    const blob = (await s.storage.entries.get('kv.data', 'kv/rot/b#1'))!.value;
    expect(Buffer.from(blob).readUInt32BE(1)).toBe(term);
    expect((await get('kv/rot/a')).json().data.k).toBe(old);
  });
});
