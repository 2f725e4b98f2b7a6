import { existsSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { CertificateAuthority } from '@custos/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCliServer } from './cli-harness.js';
import { pythonWithRequests } from './python-agent.js';

// `custos run --proxy`: an unmodified Python agent (requests) calls an https
// upstream through the credential proxy's forward mode, never holding its
// key; the upstream sees the key, the agent's output shows it redacted.

const python = pythonWithRequests();

describe('custos run --proxy', () => {
  let h: Awaited<ReturnType<typeof startCliServer>>;
  const key = `fake-llm-key-${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`;
  const seen: Array<string | undefined> = [];
  let upstream: ReturnType<typeof createServer>;
  let port: number;
  const ok = async (args: string[]) => {
    const run = await h.cli(args);
    if (run.code !== 0) throw new Error(`custos ${args.join(' ')} failed: ${run.stderr}`);
    return run.stdout;
  };

  beforeAll(async () => {
    h = await startCliServer({ proxyListen: '127.0.0.1:0' });
    const ca = await CertificateAuthority.create({ trustDomain: 'run-proxy.test' });
    const leaf = await ca.issueServerCertificate({ ipAddresses: ['127.0.0.1'] });
    upstream = createServer({ key: leaf.keyPem, cert: leaf.certPem }, (req, res) => {
      seen.push(req.headers.authorization);
      res.writeHead(200, { 'content-type': 'application/json' });
      // A helpful model echoing what it was sent.
      res.end(JSON.stringify({ you_sent: req.headers.authorization }));
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    port = (upstream.address() as AddressInfo).port;
    writeFileSync(join(h.dir, 'upstream-ca.pem'), ca.certPem);
    await ok(['secret', 'put', 'kv/llm/fake', `api_key=${key}`]);
    await ok([
      'upstream',
      'add',
      'fake-llm',
      '--base-url',
      `https://127.0.0.1:${port}/v1`,
      '--secret',
      'kv/llm/fake#api_key',
      '--inject',
      'header:Authorization=Bearer {{value}}',
      '--tls-ca',
      join(h.dir, 'upstream-ca.pem'),
    ]);
    const policy = join(h.dir, 'use.cedar');
    writeFileSync(
      policy,
      'permit(principal, action == Custos::Action::"use", resource == Custos::Path::"upstream/fake-llm");\n',
    );
    await ok(['policy', 'write', 'use-llm', policy]);
    await ok(['role', 'write', 'model-agent', '--policy', 'use-llm', '--max-ttl', '10m']);
  });
  afterAll(async () => {
    upstream?.closeAllConnections();
    await new Promise((r) => upstream?.close(r));
    await h?.close();
  });

  it.skipIf(!python)('an unmodified Python agent calls the upstream without ever holding its key', async () => {
    const agent = [
      'import os, requests',
      `r = requests.get("https://127.0.0.1:${port}/v1/models", headers={"Authorization": "Bearer " + os.environ["LLM_API_KEY"]})`,
      'print("api key:", os.environ["LLM_API_KEY"])',
      'print(r.status_code, r.text)',
      `print("key in env:", any("${key}" in v for v in os.environ.values()))`,
      'print("base url:", os.environ.get("CUSTOS_UPSTREAM_FAKE_LLM_URL", "").endswith("/u/fake-llm"))',
    ].join('\n');
    const run = await h.cli([
      'run',
      '--role',
      'model-agent',
      '--ttl',
      '2m',
      '--proxy',
      h.server.proxy!.address,
      // An upstream's key asked for as a variable: under --proxy it is a placeholder.
      '--secret',
      'LLM_API_KEY=kv/llm/fake#api_key',
      '--',
      python as string,
      '-c',
      agent,
    ]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('200 {"you_sent":"Bearer [REDACTED:upstream:fake-llm]"}');
    expect(run.stdout).toContain('key in env: False');
    expect(run.stdout).toContain('api key: custos-placeholder-fake-llm');
    expect(run.stdout).toContain('base url: True');
    expect(run.stdout).not.toContain(key);
    expect(seen.at(-1)).toBe(`Bearer ${key}`);
  });

  it('a proxy that does not answer stops the run before CMD starts, and the task is ended', async () => {
    const marker = join(h.dir, 'started');
    const run = await h.cli([
      'run',
      '--role',
      'model-agent',
      '--proxy',
      'http://127.0.0.1:1',
      '--',
      process.execPath,
      '-e',
      `require('node:fs').writeFileSync(${JSON.stringify(marker)}, 'x')`,
    ]);
    expect(run.code).not.toBe(0);
    expect(run.stderr).toMatch(/CUSTOS_ERR_UNREACHABLE .*credential proxy/);
    expect(existsSync(marker)).toBe(false);
    const tasks = JSON.parse(await ok(['task', 'list', '--json'])) as
      | { tasks?: Array<{ state: string }> }
      | Array<{ state: string }>;
    const list = Array.isArray(tasks) ? tasks : (tasks.tasks ?? []);
    expect(list.length).toBeGreaterThan(0);
    expect(list.filter((t) => t.state === 'active')).toEqual([]);
  });
});
