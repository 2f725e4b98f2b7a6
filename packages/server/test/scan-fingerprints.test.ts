import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditEvents, fakeSecret, startTestServer, type TestServer } from './test-server.js';

describe('POST /v1/scan/fingerprints', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer('sqlite');
    for (const path of ['kv/scan/a', 'kv/scan/b', 'kv/other/c']) {
      await s.call({ method: 'PUT', url: `/v1/secrets/data/${path}`, payload: { data: { password: fakeSecret() } } });
    }
    await s.call({ method: 'PUT', url: '/v1/secrets/data/kv/scan/short', payload: { data: { pin: '1234' } } });
    await s.call({
      method: 'PUT',
      url: '/v1/policies/scan-read',
      payload: { policy: 'permit(principal, action == Custos::Action::"read", resource in Custos::Path::"kv/scan/");' },
    });
  });
  afterAll(async () => {
    await s?.close();
  });

  it('audits each fingerprinted secret as a read of its path, and only those', async () => {
    const token = (
      await s.call({ method: 'POST', url: '/v1/auth/token/create', payload: { policies: ['scan-read'], ttl: '10m' } })
    ).json().token as string;
    const answer = await s.call({ method: 'POST', url: '/v1/scan/fingerprints', token, payload: {} });
    expect(answer.statusCode).toBe(200);
    const paths = [...new Set(answer.json().fingerprints.map((f: { path: string }) => f.path))].sort();
    expect(paths).toEqual(['kv/scan/a', 'kv/scan/b']);
    const reads = (await auditEvents(s.storage)).filter(
      (e) => (e.details as { phase?: string } | undefined)?.phase === 'path_read',
    );
    expect(reads.map((e) => (e.request as { path: string }).path).sort()).toEqual(['kv/scan/a', 'kv/scan/b']);
    const response = (await auditEvents(s.storage)).find(
      (e) =>
        (e.request as { route?: string }).route === '/v1/scan/fingerprints' &&
        (e.details as { phase?: string }).phase === 'response',
    );
    for (const e of reads) {
      // The same request as the response event, so the trail ties each read to it.
      expect(e.request_id).toBe(response?.request_id);
      expect(e).toMatchObject({ decision: 'allow', request: { action: 'read', route: '/v1/scan/fingerprints' } });
      expect((e.auth as { policies: string[] }).policies).toEqual(['scan-read']);
    }
  });
});
