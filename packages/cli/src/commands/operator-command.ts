import type { Command } from 'commander';
import { CliError, type CliIo, EXIT } from '../cli-io.js';
import { CustosClient } from '../http-client.js';
import { emit, table } from '../output.js';

interface SealStatus {
  initialized: boolean;
  sealed: boolean;
  type: string | null;
  threshold?: number;
  shares?: number;
  progress?: number;
  term?: number;
  /** Wrapped seals: the wrapper type (pkcs11, …). */
  wrapper?: string;
  /** Why the node stays sealed although its seal opened (e.g. CUSTOS_ERR_AUDIT_INTEGRITY). */
  reason?: string;
}

const statusTable = (s: SealStatus) =>
  table([
    ['initialized', s.initialized],
    ['sealed', s.sealed],
    ['seal type', s.type === 'wrapped' && s.wrapper ? `${s.wrapper} (auto-unseal)` : s.type],
    ...(s.type === 'shamir'
      ? ([
          ['threshold', s.threshold],
          ['shares', s.shares],
          ['unseal progress', `${s.progress ?? 0}/${s.threshold}`],
        ] as const)
      : []),
    ...(s.term !== undefined ? ([['keyring term', s.term]] as const) : []),
    ...(s.reason !== undefined ? ([['sealed because', s.reason]] as const) : []),
  ]);

/** Reads one line from stdin (a share pasted or piped), without echoing it anywhere. */
async function readLine(stream: NodeJS.ReadableStream): Promise<string> {
  let text = '';
  for await (const chunk of stream) {
    text += chunk.toString();
    const nl = text.indexOf('\n');
    if (nl !== -1) return text.slice(0, nl).trim();
  }
  return text.trim();
}

/** `custos operator init|unseal|seal|status|rotate-keyring|rotate-seal`. */
export function registerOperatorCommand(program: Command, io: CliIo): void {
  const operator = program.command('operator').description('initialise, unseal, seal and rotate the keyring');

  operator
    .command('init')
    .description('initialise a server with the shamir seal; prints the key shares and root token once')
    .option('--shares <n>', 'number of key shares', Number, 5)
    .option('--threshold <t>', 'shares needed to unseal', Number, 3)
    .option('--json', 'JSON output')
    .action(async (opts: { shares: number; threshold: number; json?: boolean }) => {
      const result = await new CustosClient(io).request<{ shares?: string[]; root_token: string }>(
        'POST',
        '/v1/sys/init',
        { shares: opts.shares, threshold: opts.threshold },
      );
      emit(io, opts.json, result, () =>
        [
          ...(result.shares ?? []).map((s, i) => `Unseal key share ${i + 1}: ${s}`),
          `Root token: ${result.root_token}`,
          '',
          `Store the shares apart. ${opts.threshold} of them unseal custos; they are not shown again.`,
        ].join('\n'),
      );
    });

  operator
    .command('unseal [share]')
    .description('submit one key share (argument, or one line on stdin); --reset to start over')
    .option('--reset', 'discard the shares submitted so far')
    .option('--json', 'JSON output')
    .action(async (share: string | undefined, opts: { reset?: boolean; json?: boolean }) => {
      const body = opts.reset ? { reset: true } : { key: share ?? (await readLine(io.stdin)) };
      if (!opts.reset && !body.key) throw new CliError('CUSTOS_ERR_USAGE', 'no share given', EXIT.usage);
      const status = await new CustosClient(io).request<SealStatus>('POST', '/v1/sys/unseal', body);
      emit(io, opts.json, status, () => statusTable(status));
    });

  operator
    .command('seal')
    .description('seal the server: every key leaves memory')
    .option('--json', 'JSON output')
    .action(async (opts: { json?: boolean }) => {
      await new CustosClient(io).request('POST', '/v1/sys/seal');
      emit(io, opts.json, { sealed: true }, () => 'Sealed');
    });

  operator
    .command('status')
    .description('seal status')
    .option('--json', 'JSON output')
    .action(async (opts: { json?: boolean }) => {
      const status = await new CustosClient(io).request<SealStatus>('GET', '/v1/sys/seal-status');
      emit(io, opts.json, status, () => statusTable(status));
    });

  operator
    .command('rotate-keyring')
    .description('add a new encryption key term; old data stays readable')
    .option('--json', 'JSON output')
    .action(async (opts: { json?: boolean }) => {
      const result = await new CustosClient(io).request<{ term: number }>('POST', '/v1/sys/rotate');
      emit(io, opts.json, result, () => `Keyring rotated: new writes use term ${result.term}`);
    });

  operator
    .command('rotate-seal')
    .description('re-wrap the root key under another key of the seal (HSM key label, KMS key); no downtime')
    .requiredOption('--key <name>', 'the new key: a PKCS#11 key label (or a KMS key id)')
    .option('--create-key', 'create the key first, non-extractable, where the seal allows it')
    .option('--json', 'JSON output')
    .action(async (opts: { key: string; createKey?: boolean; json?: boolean }) => {
      const result = await new CustosClient(io).request<{ generation: number; seal_key: Record<string, string> }>(
        'POST',
        '/v1/sys/seal/rotate',
        { key: opts.key, ...(opts.createKey ? { create_key: true } : {}) },
      );
      emit(io, opts.json, result, () =>
        [
          `Root key re-wrapped (generation ${result.generation}) under ${JSON.stringify(result.seal_key)}.`,
          'Now switch the server config to the new key (e.g. seal.key_label); the next start under it',
          'deletes the older wrapping. Until then both keys open the root key.',
        ].join('\n'),
      );
    });
}
