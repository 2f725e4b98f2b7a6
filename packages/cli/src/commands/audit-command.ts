import { createPublicKey, type KeyObject } from 'node:crypto';
import { createWriteStream, readFileSync, statSync } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  auditFilesInDirectory,
  auditKeyId,
  parseAuditArchiveTime,
  verifyAuditArchives,
  verifyAuditArchivesAndFiles,
  verifyAuditFiles,
} from '@custos/core';
import type { Command } from 'commander';
import { CliError, type CliIo, EXIT } from '../cli-io.js';
import { CustosClient } from '../http-client.js';
import { emit } from '../output.js';
import { registerAuditSearchCommand } from './audit-search-command.js';

type Report =
  | {
      ok: true;
      events: number;
      checkpoints: number;
      legacyCheckpoints?: number;
      lastSeq: number;
      lastCheckpointSeq: number;
      interval?: { every: number; intervalMs: number };
      files?: number;
      unlinkedFiles?: number;
      archives?: number;
      archivedEvents?: number;
      archivedThrough?: number;
    }
  | { ok: false; seq: number; problem: string; detail: string; events: number; file?: string; line?: number };

/** How the checkpoints were chained, for the OK line: the interval they were signed with, and legacy ones. */
const chaining = (r: Extract<Report, { ok: true }>) =>
  [
    r.interval ? `chained, at most ${r.interval.every} records apart` : undefined,
    r.legacyCheckpoints ? `${r.legacyCheckpoints} legacy (v1, not chained)` : undefined,
    r.files && r.files > 1 ? `${r.files} files in sequence` : undefined,
    r.unlinkedFiles ? `${r.unlinkedFiles} linked by the chain only (see docs/audit.md)` : undefined,
    r.archives
      ? `${r.archives} archive${r.archives === 1 ? '' : 's'} in sequence (${r.archivedEvents} events)`
      : undefined,
    r.archivedThrough
      ? `records up to seq ${r.archivedThrough} archived, verified from that archive's checkpoint`
      : undefined,
  ]
    .filter(Boolean)
    .map((s) => `; ${s}`)
    .join('');

const describe = (r: Report) =>
  r.ok
    ? `OK: ${r.events} events, ${r.checkpoints} signed checkpoints${chaining(r)} (last at seq ${r.lastCheckpointSeq} of ${r.lastSeq})`
    : `FAILED at seq ${r.seq}${r.file ? ` in ${r.file}${r.line ? ` line ${r.line}` : ''}` : ''}: ${r.problem} — ${r.detail} (${r.events} events verified before it)`;

/** `custos audit verify|tail|search|export|hash`. */
export function registerAuditCommand(program: Command, io: CliIo): void {
  const audit = program.command('audit').description('the tamper-evident audit log');

  audit
    .command('verify')
    .description('verify the chain and signed checkpoints (on the server, or an export file offline)')
    .option(
      '--file <path...>',
      'verify offline: an export, the audit file, rotated audit files in order (files, or a directory of them), archives (.gz) in order, or archives then the audit files that follow them (one chain)',
    )
    .option('--public-key <pem...>', 'with --file: trusted checkpoint public key(s) (PEM files)')
    .option('--partial', 'with --file: the export starts after seq 1 (export --since)')
    .option('--json', 'JSON output')
    .action(async (opts: { file?: string[]; publicKey?: string[]; partial?: boolean; json?: boolean }) => {
      let report: Report;
      if (opts.file) {
        const publicKeys = new Map<string, KeyObject>();
        for (const pem of opts.publicKey ?? []) {
          const key = createPublicKey(readFileSync(pem));
          publicKeys.set(auditKeyId(key), key);
        }
        if (publicKeys.size === 0) throw new CliError('CUSTOS_ERR_USAGE', '--file needs --public-key', EXIT.usage);
        // A directory stands for its audit files in sequence order (rotated ones, then the current one).
        const files: string[] = [];
        for (const path of opts.file) {
          files.push(...(statSync(path).isDirectory() ? await auditFilesInDirectory(path) : [path]));
        }
        if (files.length === 0) throw new CliError('CUSTOS_ERR_USAGE', 'no audit file found', EXIT.usage);
        // Archives (.gz) first, then the audit files that continue them: one chain end to end.
        const archives = files.filter((f) => f.endsWith('.gz'));
        const online = files.filter((f) => !f.endsWith('.gz'));
        if (archives.length > 0 && files.slice(0, archives.length).some((f) => !f.endsWith('.gz'))) {
          throw new CliError(
            'CUSTOS_ERR_USAGE',
            'give the archives (.gz) first, then the audit files that follow them',
            EXIT.usage,
          );
        }
        if (archives.length > 0 && opts.partial) {
          throw new CliError('CUSTOS_ERR_USAGE', '--partial is for an export, not with archives', EXIT.usage);
        }
        report =
          archives.length === 0
            ? await verifyAuditFiles(files, { publicKeys, ...(opts.partial ? { partial: true } : {}) })
            : online.length === 0
              ? await verifyAuditArchives(archives, { publicKeys })
              : await verifyAuditArchivesAndFiles(archives, online, { publicKeys });
      } else {
        report = await new CustosClient(io).request<Report>('GET', '/v1/audit/verify');
      }
      emit(io, opts.json, report, () => describe(report));
      if (!report.ok) process.exitCode = EXIT.failed;
    });

  audit
    .command('tail')
    .description('the last events')
    .option('-n, --lines <n>', 'how many', Number, 20)
    .option('--json', 'JSON output')
    .action(async (opts: { lines: number; json?: boolean }) => {
      const { records } = await new CustosClient(io).request<{
        records: Array<{ seq: number; ts: string; event: Record<string, unknown> }>;
      }>('GET', `/v1/audit/tail?n=${opts.lines}`);
      emit(io, opts.json, records, () =>
        records
          .map((r) => {
            const e = r.event as {
              type: string;
              decision?: string;
              status?: number;
              request?: { method?: string; route?: string; path?: string };
              auth?: { display_name?: string; token_accessor?: string; task_id?: string };
              error_code?: string;
            };
            return [
              r.seq,
              r.ts,
              e.type,
              // Who asked, by stable id (a display name is the token creator's choice).
              e.auth?.token_accessor ?? e.auth?.task_id ?? e.auth?.display_name ?? '-',
              e.request ? `${e.request.method} ${e.request.path ?? e.request.route}` : '',
              e.decision ?? '',
              e.status ?? '',
              e.error_code ?? '',
            ].join('  ');
          })
          .join('\n'),
      );
    });

  audit
    .command('export')
    .description('records since a time, with checkpoints, as JSON lines (verifiable with verify --file)')
    .option('--since <time>', 'ISO-8601 time (default: everything)')
    .option('--output <file>', 'write here instead of stdout')
    .action(async (opts: { since?: string; output?: string }) => {
      const query = opts.since ? `?since=${encodeURIComponent(opts.since)}` : '';
      const response = await new CustosClient(io).raw('GET', `/v1/audit/export${query}`);
      if (!response.ok || !response.body) {
        const body = (await response.json().catch(() => ({}))) as { error?: { code?: string; message?: string } };
        throw new CliError(body.error?.code ?? `HTTP_${response.status}`, body.error?.message ?? response.statusText);
      }
      const out = opts.output ? createWriteStream(opts.output, { mode: 0o600 }) : io.stdout;
      await pipeline(Readable.fromWeb(response.body as import('node:stream/web').ReadableStream), out, {
        end: Boolean(opts.output),
      });
    });

  audit
    .command('archive')
    .description('archive the records sealed before a time on the server, then remove them from its database')
    .requiredOption(
      '--before <time>',
      'a date or a date-time with its zone: records sealed by a checkpoint signed before it',
    )
    .option('--output <file>', 'also download the archive written, to this file')
    .option('--json', 'JSON output')
    .action(async (opts: { before: string; output?: string; json?: boolean }) => {
      if (!parseAuditArchiveTime(opts.before)) {
        throw new CliError(
          'CUSTOS_ERR_USAGE',
          '--before must be a date (2030-01-01) or a date-time with its zone (2030-01-01T00:00:00Z)',
          EXIT.usage,
        );
      }
      const client = new CustosClient(io);
      const result = await client.request<{
        archived: { archive: number; file: string; first_seq: number; last_seq: number; records: number } | null;
        deleted: number;
        resumed?: string;
        busy?: boolean;
      }>('POST', '/v1/audit/archive', { before: opts.before });
      if (opts.output && result.archived) {
        const response = await client.raw('GET', `/v1/audit/archive/${result.archived.archive}`);
        if (!response.ok || !response.body) {
          const body = (await response.json().catch(() => ({}))) as { error?: { code?: string; message?: string } };
          throw new CliError(body.error?.code ?? `HTTP_${response.status}`, body.error?.message ?? response.statusText);
        }
        await pipeline(
          Readable.fromWeb(response.body as import('node:stream/web').ReadableStream),
          createWriteStream(opts.output, { mode: 0o600 }),
        );
      }
      emit(io, opts.json, result, () =>
        [
          result.busy ? 'another node is archiving (it holds the archival lease); nothing done' : undefined,
          result.resumed ? `finished an interrupted run (${result.resumed})` : undefined,
          result.busy
            ? undefined
            : result.archived
              ? `archive ${result.archived.archive} (${result.archived.file}): seqs ${result.archived.first_seq}–${result.archived.last_seq}, ${result.archived.records} records${opts.output ? `, saved to ${opts.output}` : ''}`
              : 'nothing new sealed before that time',
          `${result.deleted} rows removed from the database`,
        ]
          .filter(Boolean)
          .join('\n'),
      );
    });

  audit
    .command('hash <value>')
    .description('HMAC a known value with the audit key, to search events for it')
    .option('--json', 'JSON output')
    .action(async (value: string, opts: { json?: boolean }) => {
      const result = await new CustosClient(io).request<{ hash: string }>('POST', '/v1/audit/hash', { input: value });
      emit(io, opts.json, result, () => result.hash);
    });

  registerAuditSearchCommand(audit, io);
}
