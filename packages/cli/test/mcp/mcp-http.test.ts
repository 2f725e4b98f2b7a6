import { type ChildProcess, spawn } from 'node:child_process';
import { request } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMcpFixture } from './mcp-harness.js';

// `custos mcp --http`: the streamable HTTP transport on loopback. A loopback
// port is open to every local process (and, by DNS rebinding, to web
// pages), so each request must name the listener in Host, carry no foreign
// Origin, and present the task token the server acts with.

const BIN = join(fileURLToPath(new URL('.', import.meta.url)), '../../bin/custos.js');

describe('custos mcp --http', () => {
  let f: Awaited<ReturnType<typeof startMcpFixture>>;
  let child: ChildProcess;
  let url: string;
  let token: string;
  let taskId: string;
  const clients: Client[] = [];

  const connect = async (bearer: string) => {
    const client = new Client({ name: 'custos-http-test', version: '0.0.0' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(url), {
        requestInit: { headers: { authorization: `Bearer ${bearer}` } },
      }),
    );
    clients.push(client);
    const call = async (name: string, args: Record<string, unknown> = {}) => {
      const r = (await client.callTool({ name, arguments: args })) as {
        isError?: boolean;
        content: Array<{ text?: string }>;
      };
      return { isError: r.isError === true, text: r.content.map((c) => c.text ?? '').join(''), raw: JSON.stringify(r) };
    };
    return call;
  };

  beforeAll(async () => {
    f = await startMcpFixture();
    ({ token, taskId } = await f.task());
    child = spawn(process.execPath, [BIN, 'mcp', '--http', '127.0.0.1:0', '--proxy', f.h.server.proxy!.address], {
      env: { CUSTOS_ADDR: f.h.server.address, CUSTOS_TOKEN: token, PATH: process.env.PATH ?? '' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    url = await new Promise<string>((resolve, reject) => {
      let err = '';
      child.stderr?.on('data', (c) => {
        err += c;
        const m = /streamable HTTP at (\S+)/.exec(err);
        if (m) resolve(m[1] as string);
      });
      child.on('exit', () => reject(new Error(`custos mcp --http exited: ${err}`)));
    });
  }, 60_000);
  afterAll(async () => {
    await Promise.allSettled(clients.map((c) => c.close()));
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
    await f?.close();
  });

  it('listens on loopback and serves the same tools, results free of the token and the key', async () => {
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/mcp$/);
    const call = await connect(token);
    const me = await call('whoami');
    expect(JSON.parse(me.text)).toMatchObject({ task_id: taskId });
    const r = await call('call_upstream', { upstream: 'fake', method: 'GET', path: '/echo' });
    expect(JSON.parse(JSON.parse(r.text).body).you_sent).toBe('Bearer [REDACTED:upstream:fake]');
    for (const x of [me, r]) {
      expect(x.raw).not.toContain(token);
      expect(x.raw).not.toContain(f.key);
    }
  });

  it('refuses a request without the task token, with another token, a foreign Host or Origin, or another path', async () => {
    const init = {
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '0' } },
    };
    const post = (headers: Record<string, string>, at = url) =>
      fetch(at, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
        body: JSON.stringify(init),
      });
    const other = (await f.task()).token;
    const cases: Array<[Record<string, string>, number, string?]> = [
      [{}, 401],
      [{ authorization: `Bearer ${other}` }, 401], // another live task's token is not this server's
      [{ authorization: 'Bearer not-a-token' }, 401],
      [{ authorization: `Bearer ${token}`, origin: 'http://evil.example' }, 403],
      [{ authorization: `Bearer ${token}` }, 404, url.replace(/\/mcp$/, '/other')],
    ];
    for (const [headers, status, at] of cases) {
      const res = await post(headers, at);
      expect(res.status).toBe(status);
      const text = await res.text();
      expect(text).toMatch(/"code":"CUSTOS_ERR_/);
      expect(text).not.toContain(token);
    }
    // A rebound name: the right port under another Host.
    // A rebound name: the right port under another Host (node:http: fetch will not set Host).
    const rebound = await new Promise<number>((resolve, reject) => {
      const target = new URL(url);
      const req = request(
        {
          host: target.hostname,
          port: target.port,
          path: target.pathname,
          method: 'POST',
          headers: { host: `evil.example:${target.port}`, authorization: `Bearer ${token}` },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.end();
    });
    expect(rebound).toBe(403);
  });

  it('a handle works only in the session that delegated it', async () => {
    const a = await connect(token);
    const b = await connect(token);
    const { handle } = JSON.parse((await a('delegate', { scope: 'use:upstream/fake' })).text) as { handle: string };
    expect((await a('whoami', { handle })).isError).toBe(false);
    const refused = await b('whoami', { handle });
    expect(refused.text).toMatch(/^CUSTOS_ERR_UNKNOWN_HANDLE: /);
  });

  it('refuses to listen anywhere but loopback', async () => {
    const run = await f.h.cli(['mcp', '--http', '0.0.0.0:0'], { token });
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/^custos: CUSTOS_ERR_USAGE --http: loopback only/);
  });
});
