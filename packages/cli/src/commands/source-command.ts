import { readFileSync } from 'node:fs';
import { parseDuration, type SourceView } from '@custos/core';
import type { Command } from 'commander';
import type { CliIo } from '../cli-io.js';
import { CustosClient } from '../http-client.js';
import { emit, table } from '../output.js';

const sourceTable = (s: SourceView) =>
  table([
    ['name', s.name],
    ['type', s.type],
    ...(s.type === 'aws-secrets-manager'
      ? ([
          ['region', s.region ?? ''],
          ['prefix', s.prefix || '(none)'],
          ['endpoint', s.endpoint ?? '(the region’s)'],
        ] as [string, string][])
      : ([['vault url', s.vault_url ?? '']] as [string, string][])),
    ['mounted at', `kv/${s.name}/`],
    ['format', s.format],
    ['cache ttl', `${s.cache_ttl_seconds}s`],
    ['timeout', `${s.timeout_ms}ms`],
    ['tls ca', s.tls_ca ? '(set)' : '(system)'],
    ['updated', s.updated_time],
  ]);

const path = (name: string) => `/v1/sources/${encodeURIComponent(name)}`;

/** `0`, or a duration (`30s`, `2m`) in seconds — the cache TTL may be off. */
function ttlSeconds(text: string): number {
  return text === '0' || text === '0s' ? 0 : Math.round(parseDuration(text) / 1000);
}

/** `custos source add|list|show|delete|refresh|import`. */
export function registerSourceCommand(program: Command, io: CliIo): void {
  const source = program
    .command('source')
    .description('AWS Secrets Manager and Azure Key Vault mounted read-through at kv/<name>/');

  source
    .command('add <name>')
    .description(
      'add or replace a source mounted at kv/<name>/ (needs write on sys/sources/<name> and on kv/<name>/*); cloud credentials come from the SDKs’ default chains, never from here',
    )
    .requiredOption('--type <type>', 'aws-secrets-manager or azure-key-vault')
    .option('--region <region>', 'AWS region, e.g. eu-west-1')
    .option('--prefix <prefix>', 'AWS: only secrets named <prefix>…; kv/<name>/x reads <prefix>x')
    .option('--endpoint <url>', 'AWS: another https endpoint (a VPC endpoint)')
    .option('--vault-url <url>', 'Azure: https://<vault>.vault.azure.net')
    .option('--format <format>', 'auto (JSON objects become fields), json or raw', 'auto')
    .option('--cache-ttl <duration>', 'how long listings and values are cached, 0–300s', '30s')
    .option('--timeout <duration>', 'deadline of one cloud call, retries included, 0.5–30s', '5s')
    .option('--tls-ca <file>', 'CA certificates (PEM) for an endpoint behind a private CA; sent inline')
    .option('--json', 'JSON output')
    .action(
      async (
        name: string,
        opts: {
          type: string;
          region?: string;
          prefix?: string;
          endpoint?: string;
          vaultUrl?: string;
          format: string;
          cacheTtl: string;
          timeout: string;
          tlsCa?: string;
          json?: boolean;
        },
      ) => {
        const view = await new CustosClient(io).request<SourceView>('PUT', path(name), {
          type: opts.type,
          ...(opts.region ? { region: opts.region } : {}),
          ...(opts.prefix !== undefined ? { prefix: opts.prefix } : {}),
          ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
          ...(opts.vaultUrl ? { vault_url: opts.vaultUrl } : {}),
          format: opts.format,
          cache_ttl_seconds: ttlSeconds(opts.cacheTtl),
          timeout_ms: parseDuration(opts.timeout),
          // Read here, by the operator's CLI: the server never reads a path it is given.
          ...(opts.tlsCa ? { tls_ca: readFileSync(opts.tlsCa, 'utf8') } : {}),
        });
        emit(io, opts.json, view, () => `Source ${view.name} (${view.type}) mounted at kv/${view.name}/`);
      },
    );

  source
    .command('list')
    .description('list sources')
    .option('--json', 'JSON output')
    .action(async (opts: { json?: boolean }) => {
      const { keys } = await new CustosClient(io).request<{ keys: string[] }>('GET', '/v1/sources');
      emit(io, opts.json, keys, () => keys.join('\n'));
    });

  source
    .command('show <name>')
    .description('show a source’s configuration')
    .option('--json', 'JSON output')
    .action(async (name: string, opts: { json?: boolean }) => {
      const view = await new CustosClient(io).request<SourceView>('GET', path(name));
      emit(io, opts.json, view, () => sourceTable(view));
    });

  source
    .command('delete <name>')
    .description('delete a source; reads of kv/<name>/… fail from then on')
    .action(async (name: string) => {
      await new CustosClient(io).request('DELETE', path(name));
      io.stdout.write(`Deleted source ${name}\n`);
    });

  source
    .command('refresh <name>')
    .description('drop this server’s cached listings and values of a source (the next read asks the cloud)')
    .action(async (name: string) => {
      const { dropped } = await new CustosClient(io).request<{ dropped: number }>('POST', `${path(name)}/refresh`);
      io.stdout.write(`Refreshed source ${name} (${dropped} cached entries dropped)\n`);
    });

  source
    .command('import <name>')
    .description(
      'copy the current version of each of the source’s secrets into custos’s own kv, once (needs read on each kv/<name>/… and write on each destination)',
    )
    .option('--path <prefix>', 'where the copies go', undefined)
    .option('--json', 'JSON output')
    .action(async (name: string, opts: { path?: string; json?: boolean }) => {
      const result = await new CustosClient(io).request<{
        imported: string[];
        refused: string[];
        failed: { path: string; code: string }[];
      }>('POST', `${path(name)}/import`, opts.path ? { path: opts.path } : {});
      emit(io, opts.json, result, () =>
        [
          ...result.imported.map((p) => `imported ${p}`),
          ...result.refused.map((p) => `refused  ${p} (no read on it, or no write on its destination)`),
          ...result.failed.map((f) => `failed   ${f.path} (${f.code})`),
          `${result.imported.length} imported, ${result.refused.length} refused, ${result.failed.length} failed`,
        ].join('\n'),
      );
    });
}
