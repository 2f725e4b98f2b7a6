import type { ResourceView } from '@custos/core';
import type { Command } from 'commander';
import type { CliIo } from '../cli-io.js';
import { CustosClient } from '../http-client.js';
import { collectRepeat } from '../option-parsers.js';
import { emit, table } from '../output.js';

const resourceTable = (r: ResourceView) =>
  table([
    ['name', r.name],
    ['url', r.url],
    ['scopes', r.scopes.length ? r.scopes.join(' ') : '(any the parent holds)'],
    ['description', r.description ?? ''],
    ['updated', r.updated_time],
  ]);

const path = (name: string) => `/v1/resources/${encodeURIComponent(name)}`;

/** `custos resource add|list|show|delete`. */
export function registerResourceCommand(program: Command, io: CliIo): void {
  const resource = program
    .command('resource')
    .description('APIs and MCP servers that accept custos task tokens (RFC 8707 resources)');

  resource
    .command('add <name>')
    .description(
      'register or replace a resource; tasks with use:resource/NAME exchange for tokens whose aud is its URL',
    )
    .requiredOption('--url <url>', 'the resource identifier: https URL (http only to loopback), no query or fragment')
    .option('--scope <entry>', 'ACTION:PATTERN its tokens may carry, e.g. use:mcp/github/* (repeatable)', collectRepeat)
    .option('--description <text>', 'shown in its public metadata as resource_name')
    .option('--json', 'JSON output')
    .action(async (name: string, opts: { url: string; scope?: string[]; description?: string; json?: boolean }) => {
      const view = await new CustosClient(io).request<ResourceView>('PUT', path(name), {
        url: opts.url,
        ...(opts.scope ? { scopes: opts.scope } : {}),
        ...(opts.description !== undefined ? { description: opts.description } : {}),
      });
      emit(
        io,
        opts.json,
        view,
        () =>
          `Resource ${view.name} → ${view.url} stored; metadata at /.well-known/oauth-protected-resource/${view.name}`,
      );
    });

  resource
    .command('list')
    .description('list resources')
    .option('--json', 'JSON output')
    .action(async (opts: { json?: boolean }) => {
      const { keys } = await new CustosClient(io).request<{ keys: string[] }>('GET', '/v1/resources');
      emit(io, opts.json, keys, () => keys.join('\n'));
    });

  resource
    .command('show <name>')
    .description('show a resource')
    .option('--json', 'JSON output')
    .action(async (name: string, opts: { json?: boolean }) => {
      const view = await new CustosClient(io).request<ResourceView>('GET', path(name));
      emit(io, opts.json, view, () => resourceTable(view));
    });

  resource
    .command('delete <name>')
    .description('delete a resource; exchanges for it are refused from then on')
    .action(async (name: string) => {
      await new CustosClient(io).request('DELETE', path(name));
      io.stdout.write(`Deleted resource ${name}\n`);
    });
}
