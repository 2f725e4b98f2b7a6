import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { CliError, type CliIo, EXIT } from '../cli-io.js';
import { CustosClient, encodePath } from '../http-client.js';
import { emit, parseVersions, table } from '../output.js';

interface VersionMeta {
  version: number;
  created_time: string;
  created_by: string;
  deletion_time: string | null;
  destroyed: boolean;
}

/** Parses `k=v` arguments; `k=@file` reads a file, `k=-` reads stdin once. */
async function parseFields(pairs: string[], io: CliIo): Promise<Record<string, string>> {
  const data: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new CliError('CUSTOS_ERR_USAGE', `expected key=value, got "${pair.slice(0, 40)}"`, EXIT.usage);
    const key = pair.slice(0, eq);
    const raw = pair.slice(eq + 1);
    if (raw === '-') data[key] = (await readAll(io.stdin)).replace(/\r?\n$/, '');
    else if (raw.startsWith('@')) data[key] = readFileSync(raw.slice(1), 'utf8');
    else data[key] = raw;
  }
  return data;
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  let text = '';
  for await (const chunk of stream) text += chunk.toString();
  return text;
}

/** `custos secret put|get|list|delete|undelete|destroy|metadata`. */
export function registerSecretCommand(program: Command, io: CliIo): void {
  const secret = program.command('secret').description('versioned key/value secrets');

  secret
    .command('put <path> <fields...>')
    .description('write a new version: key=value, key=@file, key=- (stdin)')
    .option('--cas <version>', 'check-and-set: the current version you expect (0 = create only)', Number)
    .option('--json', 'JSON output')
    .action(async (path: string, fields: string[], opts: { cas?: number; json?: boolean }) => {
      const data = await parseFields(fields, io);
      const body = { data, ...(opts.cas !== undefined ? { options: { cas: opts.cas } } : {}) };
      const meta = await new CustosClient(io).request<VersionMeta>('PUT', `/v1/secrets/data/${encodePath(path)}`, body);
      emit(io, opts.json, meta, () => `Wrote ${path} version ${meta.version}`);
    });

  secret
    .command('get <path>')
    .description('read a secret (current version by default)')
    .option('--version <n>', 'read this version', Number)
    .option('--field <key>', 'print only this field, raw')
    .option('--json', 'JSON output')
    .action(async (path: string, opts: { version?: number; field?: string; json?: boolean }) => {
      const query = opts.version !== undefined ? `?version=${opts.version}` : '';
      const result = await new CustosClient(io).request<{ data: Record<string, string>; metadata: VersionMeta }>(
        'GET',
        `/v1/secrets/data/${encodePath(path)}${query}`,
      );
      if (opts.field !== undefined) {
        const value = result.data[opts.field];
        if (value === undefined) throw new CliError('CUSTOS_ERR_FIELD_NOT_FOUND', `no field "${opts.field}"`);
        io.stdout.write(opts.json ? `${JSON.stringify(value)}\n` : value);
        return;
      }
      emit(io, opts.json, result, () =>
        table([
          ['version', result.metadata.version],
          ['created', result.metadata.created_time],
          ...Object.entries(result.data).map(([k, v]) => [k, v] as const),
        ]),
      );
    });

  secret
    .command('list [prefix]')
    .description('list names below a prefix (folders end with /)')
    .option('--json', 'JSON output')
    .action(async (prefix: string | undefined, opts: { json?: boolean }) => {
      const result = await new CustosClient(io).request<{ keys: string[] }>(
        'GET',
        `/v1/secrets/list/${encodePath(prefix ?? 'kv/')}`,
      );
      emit(io, opts.json, result, () => result.keys.join('\n'));
    });

  for (const [verb, help] of [
    ['delete', 'soft-delete versions (the current one by default)'],
    ['undelete', 'restore soft-deleted versions'],
    ['destroy', 'destroy versions for good (--all: the path and its history)'],
  ] as const) {
    const cmd = secret
      .command(`${verb} <path>`)
      .description(help)
      .option('--versions <list>', 'comma-separated version numbers')
      .option('--json', 'JSON output');
    if (verb === 'destroy') cmd.option('--all', 'delete the path, every version and its metadata');
    cmd.action(async (path: string, opts: { versions?: string; json?: boolean; all?: boolean }) => {
      const client = new CustosClient(io);
      const url = encodePath(path);
      if (opts.all) {
        await client.request('DELETE', `/v1/secrets/metadata/${url}`);
        emit(io, opts.json, { path, destroyed: 'all' }, () => `Destroyed ${path} and all its versions`);
        return;
      }
      let result: { versions: number[] };
      if (verb === 'delete' && !opts.versions) {
        result = await client.request('DELETE', `/v1/secrets/data/${url}`);
      } else {
        if (!opts.versions) throw new CliError('CUSTOS_ERR_USAGE', `${verb} needs --versions`, EXIT.usage);
        result = await client.request('POST', `/v1/secrets/${verb}/${url}`, { versions: parseVersions(opts.versions) });
      }
      emit(io, opts.json, result, () => `${verb}: ${path} versions ${result.versions.join(', ') || '(none)'}`);
    });
  }

  const metadata = secret.command('metadata').description('read or change a path’s settings and history');
  metadata
    .command('get <path>')
    .option('--json', 'JSON output')
    .action(async (path: string, opts: { json?: boolean }) => {
      const meta = await new CustosClient(io).request<{
        current_version: number;
        max_versions: number;
        cas_required: boolean;
        created_time: string;
        updated_time: string;
        versions: Record<string, VersionMeta>;
      }>('GET', `/v1/secrets/metadata/${encodePath(path)}`);
      emit(io, opts.json, meta, () =>
        [
          table([
            ['current_version', meta.current_version],
            ['max_versions', meta.max_versions],
            ['cas_required', meta.cas_required],
            ['created', meta.created_time],
            ['updated', meta.updated_time],
          ]),
          '',
          ...Object.values(meta.versions).map(
            (v) =>
              `v${v.version}  ${v.created_time}  ${v.created_by}${v.destroyed ? '  destroyed' : v.deletion_time ? '  deleted' : ''}`,
          ),
        ].join('\n'),
      );
    });
  metadata
    .command('put <path>')
    .option('--max-versions <n>', 'versions kept (0 = default 10)', Number)
    .option('--cas-required', 'every write must give --cas')
    .option('--no-cas-required', 'writes need no --cas')
    .option('--json', 'JSON output')
    .action(async (path: string, opts: { maxVersions?: number; casRequired?: boolean; json?: boolean }) => {
      const body = {
        ...(opts.maxVersions !== undefined ? { max_versions: opts.maxVersions } : {}),
        ...(opts.casRequired !== undefined ? { cas_required: opts.casRequired } : {}),
      };
      const meta = await new CustosClient(io).request('PUT', `/v1/secrets/metadata/${encodePath(path)}`, body);
      emit(io, opts.json, meta, () => `Updated ${path}`);
    });
}
