import type { Command } from 'commander';
import { CliError, type CliIo, EXIT } from '../cli-io.js';
import { resolveToken } from '../http-client.js';
import { postOAuth } from '../oauth-request.js';
import { emit, table } from '../output.js';

interface Introspection {
  active: boolean;
  sub?: string;
  scope?: string;
  exp?: number;
  task_id?: string;
  parent_task_id?: string | null;
  role?: string;
  depth?: number;
  task_chain?: string[];
}

async function readStdin(io: CliIo): Promise<string> {
  let text = '';
  for await (const chunk of io.stdin) text += chunk.toString();
  return text.trim();
}

/**
 * `custos token introspect TOKEN`: RFC 7662 introspection of a task token.
 * Registered on the `token` command group. Exits 0 for an inactive token too:
 * `active false` is an answer, not a failure.
 */
export function registerTokenIntrospectCommand(token: Command, io: CliIo): void {
  token
    .command('introspect <token>')
    .description('is this task token active (not revoked, ended or expired)? - reads it from stdin')
    .option('--json', 'JSON output (RFC 7662 response)')
    .action(async (subject: string, opts: { json?: boolean }) => {
      const value = subject === '-' ? await readStdin(io) : subject;
      const caller = resolveToken(io);
      if (!caller)
        throw new CliError('CUSTOS_ERR_USAGE', 'introspection needs a token of your own: CUSTOS_TOKEN', EXIT.usage);
      const result = await postOAuth<Introspection>(io, '/v1/oauth/introspect', { token: value }, { bearer: caller });
      emit(io, opts.json, result, () =>
        result.active
          ? table([
              ['active', true],
              ['task_id', result.task_id],
              ['parent_task_id', result.parent_task_id ?? '-'],
              ['role', result.role],
              ['depth', result.depth],
              ['scope', result.scope || '(role grant)'],
              ['sub', result.sub],
              ['expires', result.exp ? new Date(result.exp * 1000).toISOString() : '-'],
            ])
          : table([['active', false]]),
      );
    });
}
