import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { startCliServer } from '../cli-harness.js';

const BIN = join(fileURLToPath(new URL('.', import.meta.url)), '../../bin/custos.js');

export interface ToolResult {
  isError: boolean;
  text: string;
  /** The whole result as the client received it, for "never contains" assertions. */
  raw: string;
}

/**
 * A real custos (dev, SQLite) with its credential proxy on loopback, two
 * plain-HTTP upstreams on a fake API that echoes what it is sent (the
 * Authorization header among it, as a helpful model would), a role that may
 * use both, and `custos mcp` clients spawned over real stdio.
 */
export async function startMcpFixture() {
  const h = await startCliServer({ proxyListen: '127.0.0.1:0' });
  const key = `fake-upstream-key-${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`;
  const seen: Array<{ url: string; authorization: string | undefined }> = [];
  const api: Server = createServer((req, res) => {
    seen.push({ url: req.url ?? '', authorization: req.headers.authorization });
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      if (req.url?.startsWith('/v1/big')) {
        // An answer far beyond what a model should get: 256 KiB of text.
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('a'.repeat(256 * 1024));
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json', 'set-cookie': 'session=abc' });
      res.end(JSON.stringify({ method: req.method, url: req.url, you_sent: req.headers.authorization, body }));
    });
  });
  await new Promise<void>((r) => api.listen(0, '127.0.0.1', r));
  const port = (api.address() as AddressInfo).port;
  const ok = async (args: string[]) => {
    const run = await h.cli(args);
    if (run.code !== 0) throw new Error(`custos ${args.join(' ')} failed: ${run.stderr}`);
    return run.stdout.trim();
  };
  await ok(['secret', 'put', 'kv/llm/fake', `api_key=${key}`]);
  for (const name of ['fake', 'other']) {
    await ok([
      'upstream',
      'add',
      name,
      '--base-url',
      `http://127.0.0.1:${port}/v1`,
      '--secret',
      'kv/llm/fake#api_key',
      '--inject',
      'header:Authorization=Bearer {{value}}',
      '--allow-host',
      `127.0.0.1:${port}`,
    ]);
  }
  const policy = join(h.dir, 'use.cedar');
  writeFileSync(
    policy,
    [
      'permit(principal, action == Custos::Action::"use", resource == Custos::Path::"upstream/fake");',
      'permit(principal, action == Custos::Action::"use", resource == Custos::Path::"upstream/other");',
      'permit(principal, action == Custos::Action::"delegate", resource in Custos::Path::"sys/tasks/");',
      '',
    ].join('\n'),
  );
  await ok(['policy', 'write', 'use-upstreams', policy]);
  await ok(['role', 'write', 'mcp-agent', '--policy', 'use-upstreams', '--max-ttl', '10m']);

  /** A new root task of the role: its token and id. */
  const task = async () => {
    const issued = JSON.parse(
      await ok([
        'task',
        'start',
        '--role',
        'mcp-agent',
        '--ttl',
        '5m',
        '--scope',
        'use:upstream/fake',
        'use:upstream/other',
        'delegate:sys/tasks/*',
        '--json',
      ]),
    ) as { token: string; task_id: string };
    return { token: issued.token, taskId: issued.task_id };
  };

  const clients: Client[] = [];
  /** `custos mcp` spawned as an MCP host would, acting as `token`; the client speaks real MCP over its stdio. */
  const connect = async (token: string) => {
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [BIN, 'mcp', '--proxy', h.server.proxy!.address],
      env: { CUSTOS_ADDR: h.server.address, CUSTOS_TOKEN: token, PATH: process.env.PATH ?? '' },
      stderr: 'pipe',
    });
    const client = new Client({ name: 'custos-test', version: '0.0.0' });
    await client.connect(transport);
    clients.push(client);
    const call = async (name: string, args: Record<string, unknown> = {}): Promise<ToolResult> => {
      const result = (await client.callTool({ name, arguments: args })) as {
        isError?: boolean;
        content: Array<{ type: string; text?: string }>;
      };
      return {
        isError: result.isError === true,
        text: result.content.map((c) => c.text ?? '').join(''),
        raw: JSON.stringify(result),
      };
    };
    return { client, call };
  };

  return {
    h,
    key,
    seen,
    task,
    connect,
    ok,
    close: async () => {
      await Promise.allSettled(clients.map((c) => c.close()));
      api.closeAllConnections();
      await new Promise((r) => api.close(r));
      await h.close();
    },
  };
}
