import type { Command } from 'commander';
import { CliError, type CliIo, EXIT } from '../cli-io.js';
import { CustosClient } from '../http-client.js';
import { emit } from '../output.js';

interface SearchPage {
  records: Array<{
    seq: number;
    ts: string;
    event: {
      type: string;
      kind?: string;
      decision?: string;
      status?: number;
      error_code?: string;
      request?: { method?: string; route?: string; path?: string; action?: string };
      auth?: { identity?: string; display_name?: string; token_accessor?: string; task_id?: string };
    };
  }>;
  next_before_seq?: number;
  scanned_through_seq: number;
  complete: boolean;
}

interface SearchOptions {
  identity?: string;
  task?: string;
  path?: string;
  action?: string;
  decision?: string;
  since?: string;
  until?: string;
  limit?: string;
  beforeSeq?: string;
  json?: boolean;
}

const line = (r: SearchPage['records'][number]) => {
  const e = r.event;
  return [
    r.seq,
    r.ts,
    e.auth?.identity ?? e.auth?.display_name ?? '-',
    e.auth?.task_id ?? e.auth?.token_accessor ?? '-',
    e.request ? `${e.request.action ?? e.request.method} ${e.request.path ?? e.request.route}` : (e.kind ?? e.type),
    e.decision ?? '',
    e.status ?? '',
    e.error_code ?? '',
  ].join('  ');
};

/** `custos audit search`: the server-side search of the online trail (GET /v1/audit/search). */
export function registerAuditSearchCommand(audit: Command, io: CliIo): void {
  audit
    .command('search')
    .description('search the whole online trail on the server, newest first')
    .option('--identity <name>', 'the caller identity or display name (exact)')
    .option('--task <id>', 'a task id anywhere in the chain (a root task finds its subtree)')
    .option('--path <path>', 'exact path, or a prefix ending in * (kv/finance/*)')
    .option('--action <action>', 'policy action (exact): read, write, …')
    .option('--decision <decision>', 'allow, deny or error')
    .option('--since <time>', 'ISO-8601 time, inclusive')
    .option('--until <time>', 'ISO-8601 time, inclusive')
    .option('--limit <n>', 'at most this many records (1–500, default 100)')
    .option('--before-seq <seq>', 'continue below this seq (the previous answer’s next_before_seq)')
    .option('--json', 'JSON output (the whole answer, with next_before_seq)')
    .action(async (opts: SearchOptions) => {
      const params = new URLSearchParams();
      for (const [name, value] of [
        ['identity', opts.identity],
        ['task', opts.task],
        ['path', opts.path],
        ['action', opts.action],
        ['decision', opts.decision],
        ['since', opts.since],
        ['until', opts.until],
        ['limit', opts.limit],
        ['before_seq', opts.beforeSeq],
      ] as const) {
        if (value !== undefined) params.set(name, value);
      }
      if (opts.decision !== undefined && !['allow', 'deny', 'error'].includes(opts.decision))
        throw new CliError('CUSTOS_ERR_USAGE', '--decision must be allow, deny or error', EXIT.usage);
      const page = await new CustosClient(io).request<SearchPage>('GET', `/v1/audit/search?${params}`);
      emit(io, opts.json, page, () => {
        const rows = page.records.map(line);
        if (rows.length === 0) rows.push('No matching records');
        if (page.next_before_seq !== undefined)
          rows.push(
            `More: rerun with --before-seq ${page.next_before_seq} (searched down to seq ${page.scanned_through_seq})`,
          );
        return rows.join('\n');
      });
    });
}
