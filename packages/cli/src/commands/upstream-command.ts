import { readFileSync } from 'node:fs';
import type { UpstreamView } from '@custos/core';
import type { Command } from 'commander';
import type { CliIo } from '../cli-io.js';
import { CustosClient } from '../http-client.js';
import { collectRepeat } from '../option-parsers.js';
import { emit, table } from '../output.js';

const upstreamTable = (u: UpstreamView) =>
  table([
    ['name', u.name],
    ['base url', u.base_url],
    ['secret', u.secret],
    ['inject', u.inject.join('\n')],
    ['allow hosts', u.allow_hosts.length ? u.allow_hosts.join(', ') : '(egress policy only)'],
    ['allow paths', u.allow_paths.length ? u.allow_paths.join(', ') : '(any)'],
    ['allow methods', u.allow_methods.length ? u.allow_methods.join(', ') : '(GET HEAD POST PUT PATCH DELETE OPTIONS)'],
    ['tls ca', u.tls_ca ? '(set)' : '(system)'],
    ['updated', u.updated_time],
  ]);

const path = (name: string) => `/v1/upstreams/${encodeURIComponent(name)}`;

/** `custos upstream add|list|show|delete`. */
export function registerUpstreamCommand(program: Command, io: CliIo): void {
  const upstream = program
    .command('upstream')
    .description('APIs the proxy calls for a task with a key the task never holds');

  upstream
    .command('add <name>')
    .description('add or replace an upstream (needs read on its secret; --allow-host needs admin on sys/egress)')
    .requiredOption('--base-url <url>', 'https URL requests go to (http only to loopback); no query or credentials')
    .requiredOption('--secret <path#field>', 'the secret field injected, e.g. kv/llm/openai#api_key')
    .requiredOption(
      '--inject <rule>',
      "where the value goes: 'header:Authorization=Bearer {{value}}' or 'query:key={{value}}' (repeatable)",
      collectRepeat,
    )
    .option(
      '--allow-host <entry>',
      'egress allow entry for this upstream only, e.g. 127.0.0.1:8080 (repeatable)',
      collectRepeat,
    )
    .option(
      '--allow-path <pattern>',
      "path below the base URL, '*' only at the end: '/v1/*' (repeatable)",
      collectRepeat,
    )
    .option('--allow-method <method>', 'GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS (repeatable)', collectRepeat)
    .option('--tls-ca <file>', 'CA certificates (PEM) an https upstream’s certificate must chain to; sent inline')
    .option('--json', 'JSON output')
    .action(
      async (
        name: string,
        opts: {
          baseUrl: string;
          secret: string;
          inject: string[];
          allowHost?: string[];
          allowPath?: string[];
          allowMethod?: string[];
          tlsCa?: string;
          json?: boolean;
        },
      ) => {
        const view = await new CustosClient(io).request<UpstreamView>('PUT', path(name), {
          base_url: opts.baseUrl,
          secret: opts.secret,
          inject: opts.inject,
          ...(opts.allowHost ? { allow_hosts: opts.allowHost } : {}),
          ...(opts.allowPath ? { allow_paths: opts.allowPath } : {}),
          ...(opts.allowMethod ? { allow_methods: opts.allowMethod } : {}),
          // Read here, by the operator's CLI: the server never reads a path it is given.
          ...(opts.tlsCa ? { tls_ca: readFileSync(opts.tlsCa, 'utf8') } : {}),
        });
        emit(
          io,
          opts.json,
          view,
          () => `Upstream ${view.name} → ${view.base_url} stored; tasks call it at /u/${view.name}/`,
        );
      },
    );

  upstream
    .command('list')
    .description('list upstreams')
    .option('--json', 'JSON output')
    .action(async (opts: { json?: boolean }) => {
      const { keys } = await new CustosClient(io).request<{ keys: string[] }>('GET', '/v1/upstreams');
      emit(io, opts.json, keys, () => keys.join('\n'));
    });

  upstream
    .command('show <name>')
    .description('show an upstream’s configuration (never a secret value)')
    .option('--json', 'JSON output')
    .action(async (name: string, opts: { json?: boolean }) => {
      const view = await new CustosClient(io).request<UpstreamView>('GET', path(name));
      emit(io, opts.json, view, () => upstreamTable(view));
    });

  upstream
    .command('delete <name>')
    .description('delete an upstream; calls through it are refused from then on')
    .action(async (name: string) => {
      await new CustosClient(io).request('DELETE', path(name));
      io.stdout.write(`Deleted upstream ${name}\n`);
    });
}
