import { AuditConflictError } from '@custos/core';
import { afterEach, describe, expect, it } from 'vitest';
import { fakeSecret, startTestServer, type TestServer } from './test-server.js';

describe('seal lifecycle over HTTP', () => {
  let s: TestServer | undefined;
  afterEach(async () => {
    await s?.close();
    s = undefined;
  });

  it('shamir: init returns shares and a root token once; 3 of 5 shares unseal; sealed answers only health, seal-status and unseal', async () => {
    s = await startTestServer('sqlite', { seal: 'shamir' });
    const health = await s.call({ method: 'GET', url: '/v1/sys/health', token: null });
    expect(health.statusCode).toBe(501);
    const init = await s.call({
      method: 'POST',
      url: '/v1/sys/init',
      token: null,
      payload: { shares: 5, threshold: 3 },
    });
    expect(init.statusCode).toBe(200);
    const { shares, root_token: root } = init.json() as { shares: string[]; root_token: string };
    expect(shares).toHaveLength(5);
    const again = await s.call({ method: 'POST', url: '/v1/sys/init', token: null, payload: {} });
    expect(again.json().error.code).toBe('CUSTOS_ERR_ALREADY_INITIALIZED');

    // Sealed: everything but the three routes answers CUSTOS_ERR_SEALED.
    const sealedRead = await s.call({ method: 'GET', url: '/v1/secrets/data/kv/a', token: root });
    expect(sealedRead.statusCode).toBe(503);
    expect(sealedRead.json().error.code).toBe('CUSTOS_ERR_SEALED');
    expect((await s.call({ method: 'GET', url: '/v1/policies', token: root })).json().error.code).toBe(
      'CUSTOS_ERR_SEALED',
    );
    expect((await s.call({ method: 'GET', url: '/openapi.json', token: null })).statusCode).toBe(503);
    expect((await s.call({ method: 'GET', url: '/.well-known/jwks.json', token: null })).statusCode).toBe(503);

    const unseal = (key: string) => s!.call({ method: 'POST', url: '/v1/sys/unseal', token: null, payload: { key } });
    expect((await unseal(shares[4]!)).json()).toMatchObject({ sealed: true, progress: 1 });
    expect((await unseal('not-a-share')).json().error.code).toBe('CUSTOS_ERR_INVALID_SHARE');
    expect((await unseal(shares[1]!)).json()).toMatchObject({ sealed: true, progress: 2 });
    expect((await unseal(shares[2]!)).json()).toMatchObject({ sealed: false });

    const value = fakeSecret();
    const put = await s.call({
      method: 'PUT',
      url: '/v1/secrets/data/kv/a',
      token: root,
      payload: { data: { k: value } },
    });
    expect(put.statusCode).toBe(200);

    expect((await s.call({ method: 'POST', url: '/v1/sys/seal', token: root })).statusCode).toBe(204);
    expect((await s.call({ method: 'GET', url: '/v1/secrets/data/kv/a', token: root })).statusCode).toBe(503);
    for (const share of shares.slice(0, 3)) await unseal(share);
    const read = await s.call({ method: 'GET', url: '/v1/secrets/data/kv/a', token: root });
    expect(read.json().data.k).toBe(value);
    expect((await s.call({ method: 'GET', url: '/v1/audit/verify', token: root })).json().ok).toBe(true);
  });

  it('wrong shares fail the unseal and reset progress', async () => {
    s = await startTestServer('sqlite', { seal: 'shamir' });
    const first = (
      await s.call({ method: 'POST', url: '/v1/sys/init', token: null, payload: { shares: 3, threshold: 2 } })
    ).json().shares as string[];
    // shares from a different initialisation do not combine with these
    const other = await startTestServer('sqlite', { seal: 'shamir' });
    const foreign = (
      await other.call({ method: 'POST', url: '/v1/sys/init', token: null, payload: { shares: 3, threshold: 2 } })
    ).json().shares as string[];
    await other.close();
    const unseal = (key: string) => s!.call({ method: 'POST', url: '/v1/sys/unseal', token: null, payload: { key } });
    await unseal(first[0]!);
    const mixed = await unseal(foreign[1]!);
    expect(mixed.json().error.code).toBe('CUSTOS_ERR_UNSEAL_FAILED');
    expect((await s.call({ method: 'GET', url: '/v1/sys/seal-status', token: null })).json().progress).toBe(0);
  });

  it('fail-closed: when no audit sink can record, a read is refused and no secret is returned', async () => {
    s = await startTestServer('sqlite', { audit: {} }); // database sink only
    const value = fakeSecret('must-not-leak');
    await s.call({ method: 'PUT', url: '/v1/secrets/data/kv/fc', payload: { data: { k: value } } });
    const audit = s.storage.audit;
    const original = audit.append.bind(audit);
    audit.append = async () => {
      throw new Error('disk full');
    };
    try {
      const read = await s.call({ method: 'GET', url: '/v1/secrets/data/kv/fc' });
      expect(read.statusCode).toBe(503);
      expect(read.json().error.code).toBe('CUSTOS_ERR_AUDIT_UNAVAILABLE');
      expect(read.body).not.toContain(value);
      // a write is refused before it runs: nothing changes without a trace
      const write = await s.call({ method: 'PUT', url: '/v1/secrets/data/kv/fc', payload: { data: { k: 'changed' } } });
      expect(write.statusCode).toBe(503);
    } finally {
      audit.append = original;
    }
    const after = await s.call({ method: 'GET', url: '/v1/secrets/data/kv/fc' });
    expect(after.json()).toMatchObject({ data: { k: value }, metadata: { version: 1 } });
    expect((await s.call({ method: 'GET', url: '/v1/audit/verify' })).json().ok).toBe(true);
    expect(AuditConflictError).toBeDefined();
  });

  it('serves the OpenAPI document and the audit public key without a token', async () => {
    s = await startTestServer('sqlite');
    const doc = (await s.call({ method: 'GET', url: '/openapi.json', token: null })).json();
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/v1/sys/health', '/v1/policies/{name}']));
    const keys = (await s.call({ method: 'GET', url: '/v1/audit/public-keys', token: null })).json().keys;
    expect(keys[0].public_key_pem).toContain('BEGIN PUBLIC KEY');
  });

  it('unknown routes get a stable code', async () => {
    s = await startTestServer('sqlite');
    const response = await s.call({ method: 'GET', url: '/v1/nope' });
    expect(response.statusCode).toBe(404);
    expect(response.json().error.code).toBe('CUSTOS_ERR_ROUTE_NOT_FOUND');
  });
});
