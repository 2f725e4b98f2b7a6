import { readFileSync } from 'node:fs';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import type { Command } from 'commander';
import { CliError, type CliIo, EXIT } from '../cli-io.js';
import { DEFAULT_ADDR } from '../http-client.js';
import { CustosCalls } from '../mcp/custos-calls.js';
import type { McpToolError } from '../mcp/mcp-errors.js';
import { isLoopback, serveMcpHttp } from '../mcp/mcp-http.js';
import { createMcpServer } from '../mcp/mcp-server.js';
import { McpSession } from '../mcp/mcp-session.js';
import { resolveRequestTimeout } from '../request-timeout.js';
import { DEFAULT_PROXY_ADDR } from './run-proxy-env.js';

/**
 * `custos mcp`: an MCP server on stdio (or, with `--http`, streamable HTTP
 * on loopback: mcp-http.ts) acting as one custos task. Its token
 * comes from CUSTOS_TOKEN or CUSTOS_TOKEN_FILE only — not from
 * `~/.custos-token` or a dev root token, which are an operator's — and must
 * be a live task token, checked before the first message is read.
 */
export function registerMcpCommand(program: Command, io: CliIo): void {
  program
    .command('mcp')
    .description('serve MCP tools on stdio for an agent, acting as the task whose token is in CUSTOS_TOKEN')
    .option('--proxy <url>', `the credential proxy (default CUSTOS_PROXY_ADDR, else ${DEFAULT_PROXY_ADDR})`)
    .option(
      '--http <host:port>',
      'serve the streamable HTTP transport at http://HOST:PORT/mcp instead of stdio (loopback only; clients send the task token as Bearer)',
    )
    .action(async (options: { proxy?: string; http?: string }) => {
      const listen = options.http === undefined ? undefined : parseListen(options.http);
      const token = taskToken(io);
      const proxy = parseProxy(options.proxy ?? io.env.CUSTOS_PROXY_ADDR ?? DEFAULT_PROXY_ADDR);
      const calls = new CustosCalls(
        (io.env.CUSTOS_ADDR ?? DEFAULT_ADDR).replace(/\/+$/, ''),
        resolveRequestTimeout(io),
      );
      try {
        await calls.introspect(token);
      } catch (error) {
        const e = error as McpToolError;
        throw new CliError(e.code ?? 'CUSTOS_ERR_LOCAL', `custos mcp needs a live task token: ${e.message}`);
      }
      if (listen) {
        const listener = await serveMcpHttp(listen.host, listen.port, token, calls, proxy);
        io.stderr.write(`custos mcp: streamable HTTP at ${listener.url}\n`);
        await new Promise<void>((resolve) => {
          process.once('SIGINT', resolve);
          process.once('SIGTERM', resolve);
        });
        await listener.close();
        return;
      }
      const session = new McpSession(token, calls, proxy);
      const server = createMcpServer(session);
      // stdout is the protocol channel: nothing else may be written to it from here on.
      const transport = new StdioServerTransport();
      const closed = new Promise<void>((resolve) => {
        server.onclose = () => resolve();
        process.stdin.on('end', () => resolve());
      });
      await server.connect(transport);
      await closed;
      await session.close();
      await server.close();
    });
}

function taskToken(io: CliIo): string {
  const fromEnv = io.env.CUSTOS_TOKEN?.trim();
  if (fromEnv) return fromEnv;
  if (io.env.CUSTOS_TOKEN_FILE) {
    try {
      return readFileSync(io.env.CUSTOS_TOKEN_FILE, 'utf8').trim();
    } catch {
      throw new CliError('CUSTOS_ERR_LOCAL', 'CUSTOS_TOKEN_FILE cannot be read', EXIT.usage);
    }
  }
  throw new CliError(
    'CUSTOS_ERR_USAGE',
    'custos mcp needs a task token in CUSTOS_TOKEN or CUSTOS_TOKEN_FILE',
    EXIT.usage,
  );
}

function parseProxy(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new CliError('CUSTOS_ERR_USAGE', '--proxy: an http(s) URL', EXIT.usage);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new CliError('CUSTOS_ERR_USAGE', '--proxy: an http(s) URL', EXIT.usage);
  }
  return url.origin;
}

/** `HOST:PORT` on loopback: the listener acts as the task, so it is refused anywhere else. */
function parseListen(value: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(value);
  const host = m?.[1] ?? m?.[2];
  const port = Number(m?.[3]);
  if (!host || !(port >= 0 && port <= 65535)) throw new CliError('CUSTOS_ERR_USAGE', '--http: HOST:PORT', EXIT.usage);
  if (!isLoopback(host)) {
    throw new CliError('CUSTOS_ERR_USAGE', '--http: loopback only (127.0.0.1, [::1], localhost)', EXIT.usage);
  }
  return { host, port };
}
