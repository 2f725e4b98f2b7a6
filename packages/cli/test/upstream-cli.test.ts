import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCliServer } from './cli-harness.js';

const fakeValue = () => `fake${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`;

describe('custos upstream add | list | show | delete', () => {
  let h: Awaited<ReturnType<typeof startCliServer>>;
  const ok = async (args: string[]) => {
    const run = await h.cli(args);
    if (run.code !== 0) throw new Error(`custos ${args.join(' ')} failed: ${run.stderr}`);
    return run.stdout;
  };

  beforeAll(async () => {
    h = await startCliServer({ proxyListen: '127.0.0.1:0' });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('adds an upstream with every option, shows it without any value, lists and deletes it', async () => {
    const key = fakeValue();
    await ok(['secret', 'put', 'kv/llm/openai', `api_key=${key}`]);
    const added = await ok([
      'upstream',
      'add',
      'openai',
      '--base-url',
      'http://127.0.0.1:9/v1',
      '--secret',
      'kv/llm/openai#api_key',
      '--inject',
      'header:Authorization=Bearer {{value}}',
      '--inject',
      'query:key={{value}}',
      '--allow-path',
      '/chat/*',
      '--allow-method',
      'POST',
    ]);
    expect(added).toContain('tasks call it at /u/openai/');
    const shown = await ok(['upstream', 'show', 'openai']);
    expect(shown).toContain('http://127.0.0.1:9/v1');
    expect(shown).toContain('header:authorization=Bearer {{value}}');
    expect(shown).not.toContain(key);
    expect(JSON.parse(await ok(['upstream', 'show', 'openai', '--json']))).toMatchObject({
      allow_paths: ['/chat/*'],
      allow_methods: ['POST'],
      inject: ['header:authorization=Bearer {{value}}', 'query:key={{value}}'],
    });
    expect(await ok(['upstream', 'list'])).toBe('openai\n');
    expect(await ok(['upstream', 'delete', 'openai'])).toBe('Deleted upstream openai\n');
    const gone = await h.cli(['upstream', 'show', 'openai']);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/^custos: CUSTOS_ERR_UPSTREAM_NOT_FOUND /);
  });

  it('a task calls the upstream through the server’s proxy listener with its token; the key stays out of its reach', async () => {
    const key = fakeValue();
    await ok(['secret', 'put', 'kv/llm/local', `api_key=${key}`]);
    const api = createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ saw: req.headers.authorization, url: req.url }));
    });
    await new Promise<void>((r) => api.listen(0, '127.0.0.1', r));
    try {
      const port = (api.address() as AddressInfo).port;
      await ok([
        'upstream',
        'add',
        'local',
        '--base-url',
        `http://127.0.0.1:${port}`,
        '--secret',
        'kv/llm/local#api_key',
        '--inject',
        'header:Authorization=Bearer {{value}}',
      ]);
      const policy = `${h.dir}/use.cedar`;
      const { writeFileSync } = await import('node:fs');
      writeFileSync(
        policy,
        'permit(principal, action == Custos::Action::"use", resource == Custos::Path::"upstream/local");\n',
      );
      await ok(['policy', 'write', 'use-local', policy]);
      await ok(['role', 'write', 'caller', '--policy', 'use-local', '--max-ttl', '10m']);
      const task = JSON.parse(await ok(['task', 'start', '--role', 'caller', '--ttl', '5m', '--json'])) as {
        token: string;
      };
      const proxy = h.server.proxy;
      expect(proxy).toBeDefined();
      const r = await fetch(`${proxy!.address}/u/local/hello`, { headers: { authorization: `Bearer ${task.token}` } });
      expect(r.status).toBe(200);
      expect(await r.json()).toEqual({ saw: 'Bearer [REDACTED:upstream:local]', url: '/hello' });
    } finally {
      api.closeAllConnections();
      await new Promise((r) => api.close(r));
    }
  });

  it('upstream add --tls-ca sends the file’s PEM inline; a file that is not certificates is refused', async () => {
    const { CertificateAuthority } = await import('@custos/core');
    const { writeFileSync } = await import('node:fs');
    const ca = await CertificateAuthority.create({ trustDomain: 'cli-upstream.test' });
    const good = `${h.dir}/ca.pem`;
    const bad = `${h.dir}/not-a-ca.pem`;
    writeFileSync(good, ca.certPem);
    writeFileSync(bad, 'this is not a certificate\n');
    const args = (file: string) => [
      'upstream',
      'add',
      'private-api',
      '--base-url',
      'https://127.0.0.1:9',
      '--secret',
      'kv/llm/openai#api_key',
      '--inject',
      'header:Authorization=Bearer {{value}}',
      '--tls-ca',
      file,
    ];
    const refused = await h.cli(args(bad));
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^custos: CUSTOS_ERR_VALIDATION .*tls_ca/);
    await ok(args(good));
    expect(await ok(['upstream', 'show', 'private-api'])).toMatch(/tls ca\s+\(set\)/);
    expect(JSON.parse(await ok(['upstream', 'show', 'private-api', '--json'])).tls_ca.trim()).toBe(ca.certPem.trim());
  });

  it('ca export prints the CA certificate clients trust for forward mode, or writes it to a file', async () => {
    const printed = await ok(['ca', 'export']);
    expect(printed).toMatch(/^-----BEGIN CERTIFICATE-----\n[\s\S]+-----END CERTIFICATE-----\n$/);
    expect(await ok(['ca', 'export', '--out', 'custos-ca.pem'])).toBe('Wrote the CA certificate to custos-ca.pem\n');
    const { readFileSync } = await import('node:fs');
    expect(readFileSync(`${h.dir}/custos-ca.pem`, 'utf8').trim()).toBe(printed.trim());
  });

  it('says which part is wrong with its code', async () => {
    const bad = await h.cli([
      'upstream',
      'add',
      'x',
      '--base-url',
      'http://api.example.com',
      '--secret',
      'kv/llm/openai#api_key',
      '--inject',
      'header:Authorization=Bearer {{value}}',
    ]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^custos: CUSTOS_ERR_UPSTREAM_URL_INVALID /);
    const injected = await h.cli([
      'upstream',
      'add',
      'x',
      '--base-url',
      'http://127.0.0.1:9',
      '--secret',
      'kv/llm/openai#api_key',
      '--inject',
      'header:Host={{value}}',
    ]);
    expect(injected.stderr).toMatch(/^custos: CUSTOS_ERR_UPSTREAM_INJECT_INVALID /);
  });
});
