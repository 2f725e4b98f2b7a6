import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { CliIo } from '../cli-io.js';
import { CustosClient } from '../http-client.js';
import { emit } from '../output.js';

/** `custos policy write|read|list|delete`. */
export function registerPolicyCommand(program: Command, io: CliIo): void {
  const policy = program.command('policy').description('Cedar policies');

  policy
    .command('write <name> <file>')
    .description('create or replace a policy from a .cedar file (- for stdin)')
    .option('--json', 'JSON output')
    .action(async (name: string, file: string, opts: { json?: boolean }) => {
      const text = file === '-' ? readFileSync(0, 'utf8') : readFileSync(file, 'utf8');
      const result = await new CustosClient(io).request('PUT', `/v1/policies/${encodeURIComponent(name)}`, {
        policy: text,
      });
      emit(io, opts.json, result, () => `Wrote policy ${name}`);
    });

  policy
    .command('read <name>')
    .option('--json', 'JSON output')
    .action(async (name: string, opts: { json?: boolean }) => {
      const result = await new CustosClient(io).request<{ policy: string; load_error?: string }>(
        'GET',
        `/v1/policies/${encodeURIComponent(name)}`,
      );
      // The text stays alone on stdout (it is often redirected to a file);
      // why it does not load — it then denies everything — goes to stderr.
      if (result.load_error && !opts.json) {
        io.stderr.write(`custos: warning: this policy does not load and denies everything: ${result.load_error}\n`);
      }
      emit(io, opts.json, result, () => result.policy.replace(/\n$/, ''));
    });

  policy
    .command('list')
    .option('--json', 'JSON output')
    .action(async (opts: { json?: boolean }) => {
      const result = await new CustosClient(io).request<{ policies: string[] }>('GET', '/v1/policies');
      emit(io, opts.json, result, () => result.policies.join('\n'));
    });

  policy
    .command('delete <name>')
    .option('--json', 'JSON output')
    .action(async (name: string, opts: { json?: boolean }) => {
      await new CustosClient(io).request('DELETE', `/v1/policies/${encodeURIComponent(name)}`);
      emit(io, opts.json, { deleted: name }, () => `Deleted policy ${name}`);
    });
}
