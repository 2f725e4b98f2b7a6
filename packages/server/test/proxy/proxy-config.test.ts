import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveServerConfig } from '../../src/server-config.js';

describe('the proxy listener settings', () => {
  const dir = mkdtempSync(join(tmpdir(), 'custos-proxy-config-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('is off by default, on at 127.0.0.1:8421 in --dev, and off in --dev with another --listen unless asked', () => {
    expect(resolveServerConfig({}, dir).proxy).toBeUndefined();
    expect(resolveServerConfig({ dev: true }, dir).proxy).toMatchObject({ host: '127.0.0.1', port: 8421 });
    expect(resolveServerConfig({ dev: true, listen: '127.0.0.1:0' }, dir).proxy).toBeUndefined();
    expect(resolveServerConfig({ dev: true, listen: '127.0.0.1:0', proxyListen: '[::1]:0' }, dir).proxy).toMatchObject({
      host: '::1',
      port: 0,
      bodyLimit: 10 * 1024 * 1024,
      headersTimeoutMs: 60_000,
    });
  });

  it('reads proxy.* from the config file and refuses bad values', () => {
    const file = (proxy: unknown) => {
      const path = join(dir, `c${Math.random().toString(36).slice(2)}.json`);
      writeFileSync(path, JSON.stringify({ seal: 'dev', proxy }));
      return path;
    };
    expect(
      resolveServerConfig(
        { config: file({ listen: '127.0.0.1:9000', body_limit: 1024, headers_timeout: '5s', idle_timeout: '2m' }) },
        dir,
      ).proxy,
    ).toEqual({ host: '127.0.0.1', port: 9000, bodyLimit: 1024, headersTimeoutMs: 5_000, idleTimeoutMs: 120_000 });
    expect(() => resolveServerConfig({ proxyListen: 'nonsense' }, dir)).toThrow(/--proxy-listen is HOST:PORT/);
    expect(() => resolveServerConfig({ config: file({ listen: '127.0.0.1:1', body_limit: 0 }) }, dir)).toThrow(
      /body_limit/,
    );
    expect(() => resolveServerConfig({ config: file({ listen: '127.0.0.1:1', idle_timeout: '1ms' }) }, dir)).toThrow(
      /idle_timeout/,
    );
  });
});
