import { PassThrough } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../src/app.js';
import { fakeSecret, startTestServer, type TestServer } from './test-server.js';

describe('server logs', () => {
  let s: TestServer;
  let lines = '';
  beforeAll(async () => {
    s = await startTestServer('sqlite');
  });
  afterAll(async () => {
    await s?.close();
  });

  it('never carry a token or a secret value, even for failing requests', async () => {
    const stream = new PassThrough();
    stream.on('data', (c) => {
      lines += c;
    });
    const app = await buildApp({ node: s.node, logger: pino({ level: 'trace' }, stream) });
    const value = fakeSecret('log-probe');
    const auth = { authorization: `Bearer ${s.rootToken}` };
    await app.inject({
      method: 'PUT',
      url: '/v1/secrets/data/kv/log/a',
      headers: auth,
      payload: { data: { k: value } },
    });
    await app.inject({ method: 'GET', url: '/v1/secrets/data/kv/log/a', headers: auth });
    await app.inject({
      method: 'GET',
      url: '/v1/secrets/data/kv/log/a',
      headers: { authorization: `Bearer ${value}` },
    });
    await app.inject({
      method: 'PUT',
      url: '/v1/secrets/data/kv/log/b',
      headers: auth,
      payload: `{"data":{"k":"${value}"`,
    });
    // A failure inside a handler is logged (code and error), not the request.
    const entries = s.storage.entries;
    const original = entries.get.bind(entries);
    entries.get = async () => {
      throw new Error(`driver failure near ${value}`.replace(value, 'REDACTED-BY-DRIVER'));
    };
    try {
      const failed = await app.inject({ method: 'GET', url: '/v1/secrets/data/kv/log/a', headers: auth });
      expect(failed.statusCode).toBeGreaterThanOrEqual(500);
      expect(failed.body).not.toContain('driver failure');
    } finally {
      entries.get = original;
    }
    await app.close();
    expect(lines.length).toBeGreaterThan(0);
    expect(lines).not.toContain(s.rootToken);
    expect(lines).not.toContain(value);
  });
});
