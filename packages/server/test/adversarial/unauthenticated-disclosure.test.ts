import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fakeSecret, startTestServer, type TestServer } from '../test-server.js';

// Attack class: what a caller without a token can learn. Health and seal
// status answer anyone (load balancers, operators before unseal); they may
// say whether the node serves, never anything about secrets, keys, tokens,
// files or the errors behind a failure.

const HEALTH_FIELDS = ['degraded', 'initialized', 'problems', 'sealed', 'version'];
const SEAL_STATUS_FIELDS = ['initialized', 'progress', 'sealed', 'shares', 'term', 'threshold', 'type'];

describe('unauthenticated callers learn nothing from health and seal status', () => {
  let s: TestServer;
  let secretValue: string;
  let sealKey: string;
  let failure: string;

  beforeAll(async () => {
    // Audit to the database only, so a failing database write is a refused request.
    s = await startTestServer('sqlite', { audit: {} });
    secretValue = fakeSecret('disclosure');
    const put = await s.call({
      method: 'PUT',
      url: '/v1/secrets/data/kv/app/db',
      payload: { data: { pw: secretValue } },
    });
    expect(put.statusCode).toBe(200);
    sealKey = readFileSync(join(s.dir, 'dev-seal.key')).toString('base64');
    failure = `ENOSPC: no space left on device, write ${join(s.dir, 'custos.db')} near ${secretValue}`;
  });
  afterAll(async () => {
    await s?.close();
  });

  const anonymous = (url: string) => s.call({ method: 'GET', url, token: null });
  const leaks = (body: string) =>
    [secretValue, s.rootToken, sealKey, s.dir, 'custos.db', 'ENOSPC', 'no space'].filter((v) => body.includes(v));

  it('a healthy node answers health with fixed fields only', async () => {
    const health = await anonymous('/v1/sys/health');
    expect(health.statusCode).toBe(200);
    expect(Object.keys(health.json()).sort()).toEqual(HEALTH_FIELDS);
    expect(health.json()).toMatchObject({ degraded: false, problems: [] });
    expect(leaks(health.body)).toEqual([]);
  });

  it('a node refusing requests (audit cannot be written) says so in fixed words, not with the error, path or data behind it', async () => {
    const append = s.storage.audit.append.bind(s.storage.audit);
    s.storage.audit.append = async () => {
      throw new Error(failure);
    };
    try {
      const read = await s.call({ method: 'GET', url: '/v1/secrets/data/kv/app/db' });
      expect(read.statusCode).toBe(503);
      expect(read.json().error.code).toBe('CUSTOS_ERR_AUDIT_UNAVAILABLE');
      expect(leaks(read.body)).toEqual([]);

      const health = await anonymous('/v1/sys/health');
      expect(health.statusCode).toBe(503);
      expect(Object.keys(health.json()).sort()).toEqual(HEALTH_FIELDS);
      expect(health.json()).toMatchObject({ degraded: true, problems: ['audit_unavailable'] });
      expect(leaks(health.body)).toEqual([]);

      const sealStatus = await anonymous('/v1/sys/seal-status');
      expect(sealStatus.statusCode).toBe(200);
      expect(SEAL_STATUS_FIELDS).toEqual(expect.arrayContaining(Object.keys(sealStatus.json())));
      expect(leaks(sealStatus.body)).toEqual([]);
    } finally {
      s.storage.audit.append = append;
    }
    // Audit works again: the next request clears the state.
    expect((await s.call({ method: 'GET', url: '/v1/secrets/data/kv/app/db' })).statusCode).toBe(200);
    expect((await anonymous('/v1/sys/health')).json()).toMatchObject({ degraded: false, problems: [] });
  });
});
