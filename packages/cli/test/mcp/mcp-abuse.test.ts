import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMcpFixture, type ToolResult } from './mcp-harness.js';

// Abuse cases of `custos mcp`. It adds no route to custos (it speaks MCP on
// stdio and calls the existing API and proxy), so its attacker is the model
// driving it, or whoever wrote what the model read: it must not get a token
// or a key out, act with a handle it was not given, or get a request past the
// proxy's checks by shaping the arguments.

const BIN = join(fileURLToPath(new URL('.', import.meta.url)), '../../bin/custos.js');
const JWT = /eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+/;

describe('custos mcp abuse', () => {
  let f: Awaited<ReturnType<typeof startMcpFixture>>;
  beforeAll(async () => {
    f = await startMcpFixture();
  }, 60_000);
  afterAll(async () => {
    await f?.close();
  });

  const clean = (results: ToolResult[], token: string) => {
    expect(results.length).toBeGreaterThan(0);
    for (const r of results) {
      expect(r.raw).not.toContain(token);
      expect(r.raw).not.toContain(f.key);
      // No token at all: neither the session's nor a child's (whose text the test never sees).
      expect(r.raw).not.toMatch(JWT);
    }
  };

  it('no result of any tool holds a token or the upstream key, whatever the upstream echoes', async () => {
    const { token } = await f.task();
    const { call } = await f.connect(token);
    const d = await call('delegate', { scope: 'use:upstream/fake', ttl: '1m' });
    const { handle } = JSON.parse(d.text) as { handle: string };
    const results = [
      d,
      await call('whoami'),
      await call('whoami', { handle }),
      await call('list_upstreams', { handle }),
      await call('call_upstream', { upstream: 'fake', method: 'GET', path: '/echo' }),
      await call('call_upstream', { upstream: 'fake', method: 'GET', path: '/echo', handle }),
      await call('delegate', { scope: 'read:kv/llm/*' }), // refused: outside the scope
      await call('request_access', { scope: 'use:upstream/*' }),
    ];
    expect(results.at(-2)?.isError).toBe(true);
    clean(results, token);
  });

  it('a handle from another session, or a made-up one, is refused', async () => {
    const { token } = await f.task();
    const a = await f.connect(token);
    const b = await f.connect(token);
    const { handle } = JSON.parse((await a.call('delegate', { scope: 'use:upstream/fake' })).text) as {
      handle: string;
    };
    const results = [
      await b.call('whoami', { handle }),
      await b.call('call_upstream', { upstream: 'fake', method: 'GET', path: '/x', handle }),
      await b.call('delegate', { scope: 'use:upstream/fake', handle }),
      await a.call('whoami', { handle: `hdl_${'A'.repeat(22)}` }),
      await a.call('whoami', { handle: token }), // a token is not a handle either
    ];
    for (const r of results) expect(r.text).toMatch(/^CUSTOS_ERR_UNKNOWN_HANDLE: /);
    // The handle still works where it was issued.
    expect((await a.call('whoami', { handle })).isError).toBe(false);
    clean(results, token);
  });

  it('path traversal through call_upstream reaches the proxy as written and is refused there', async () => {
    const { token } = await f.task();
    const { call } = await f.connect(token);
    const before = f.seen.length;
    const paths = ['/../../admin', '/a/../../admin', '/%2e%2e/admin', '/..%2fadmin', '//evil.example/x', '/a\\..\\b'];
    const results: ToolResult[] = [];
    for (const path of paths) {
      const r = await call('call_upstream', { upstream: 'fake', method: 'GET', path });
      results.push(r);
      // The proxy refused it (nothing went out): a tool error with the proxy's code.
      expect(r.isError, path).toBe(true);
      expect(r.text, path).toMatch(/^CUSTOS_ERR_PROXY_PATH_REFUSED: /);
    }
    expect(f.seen.length).toBe(before); // nothing reached the upstream
    clean(results, token);
  });

  it('header injection, reserved headers and bad arguments are refused before anything is sent', async () => {
    const { token } = await f.task();
    const { call } = await f.connect(token);
    const before = f.seen.length;
    const refused = [
      await call('call_upstream', { upstream: 'fake', method: 'GET', path: '/x\r\nX-Injected: 1' }),
      await call('call_upstream', { upstream: 'fake', method: 'GET', path: '/x y' }),
      await call('call_upstream', { upstream: 'fake', method: 'GET', path: 'x' }),
      await call('call_upstream', { upstream: 'fake', method: 'GET', path: '/x', headers: { 'X-A': 'v\r\nX-B: 1' } }),
      await call('call_upstream', { upstream: 'fake', method: 'GET', path: '/x', headers: { Authorization: 'x' } }),
      await call('call_upstream', { upstream: 'fake', method: 'GET', path: '/x', headers: { Host: 'evil.example' } }),
      await call('call_upstream', { upstream: 'fake', method: 'CONNECT', path: '/x' }),
      await call('call_upstream', { upstream: '../fake', method: 'GET', path: '/x' }),
      await call('call_upstream', { upstream: 'fake', method: 'GET', path: '/x', extra: 1 }),
      await call('call_upstream', { upstream: 'fake', method: 'GET', path: 7 }),
      await call('whoami', { handle: 7 }),
      await call('no_such_tool'),
    ];
    for (const r of refused) {
      expect(r.isError).toBe(true);
      expect(r.text).toMatch(/^CUSTOS_ERR_VALIDATION: /);
    }
    expect(f.seen.length).toBe(before);
    clean(refused, token);
  });

  it('an oversized answer is cut at 64 KiB and marked truncated', async () => {
    const { token } = await f.task();
    const { call } = await f.connect(token);
    const r = await call('call_upstream', { upstream: 'fake', method: 'GET', path: '/big' });
    const answer = JSON.parse(r.text) as { status: number; body: string; truncated: boolean };
    expect(answer.status).toBe(200);
    expect(answer.truncated).toBe(true);
    expect(answer.body.length).toBe(64 * 1024);
  });

  it('refuses to start with a token that is not a live task token, and does not print it', async () => {
    const { token, taskId } = await f.task();
    await f.ok(['task', 'revoke', taskId]);
    for (const given of [f.h.rootToken(), token, 'not-a-token']) {
      const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>(
        (resolve) => {
          const child = execFile(
            process.execPath,
            [BIN, 'mcp'],
            { env: { CUSTOS_ADDR: f.h.server.address, CUSTOS_TOKEN: given, PATH: process.env.PATH ?? '' } },
            (error, out, err) => resolve({ code: error ? Number(error.code) : 0, stdout: out, stderr: err }),
          );
          child.stdin?.end();
        },
      );
      expect(code).not.toBe(0);
      expect(stderr).toMatch(/^custos: CUSTOS_ERR_UNAUTHENTICATED custos mcp needs a live task token/);
      expect(stdout + stderr).not.toContain(given);
    }
  });
});
