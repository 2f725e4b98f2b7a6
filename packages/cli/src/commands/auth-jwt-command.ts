import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { CliError, type CliIo, EXIT } from '../cli-io.js';
import { CustosClient } from '../http-client.js';
import { collectList, collectRepeat } from '../option-parsers.js';
import { emit, table } from '../output.js';
import { registerAuthAwsCommand } from './auth-aws-command.js';

interface JwtMethodView {
  name: string;
  issuer: string;
  audience: string | string[];
  jwks: { url: string } | { keys: unknown[] };
  algorithms?: string[];
  /** Claim → label key (the stored configuration's name for `claim_labels`). */
  claimLabels?: Record<string, string>;
}

interface AddOptions {
  issuer: string;
  jwksUrl?: string;
  jwksFile?: string;
  audience: string[];
  algorithms?: string[];
  claimLabel?: string[];
  json?: boolean;
}

const usage = (message: string) => new CliError('CUSTOS_ERR_USAGE', message, EXIT.usage);

/** A JWKS file: `{ "keys": [...] }`, or one bare public JWK. */
function readJwks(file: string): { keys: Record<string, unknown>[] } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code) throw error;
    throw usage(`${file} is not JSON`);
  }
  const object = parsed as { keys?: unknown; kty?: unknown } | null;
  if (object && Array.isArray(object.keys)) return { keys: object.keys as Record<string, unknown>[] };
  if (object && typeof object.kty === 'string') return { keys: [object as Record<string, unknown>] };
  throw usage(`${file} is neither a JWKS ({"keys": [...]}) nor a JWK`);
}

/** `--claim-label team=team --claim-label /kubernetes.io/namespace=namespace` → `{ claim: key }`. */
function claimLabelMap(pairs: string[]): Record<string, string> {
  const map: Record<string, string> = {};
  for (const pair of pairs) {
    // The claim may be a JSON Pointer with '=' in it; the label key never has one.
    const eq = pair.lastIndexOf('=');
    if (eq <= 0 || eq === pair.length - 1) throw usage(`--claim-label expects claim=key, got "${pair.slice(0, 40)}"`);
    const claim = pair.slice(0, eq);
    if (claim in map) throw usage(`--claim-label ${claim} given twice`);
    map[claim] = pair.slice(eq + 1);
  }
  return map;
}

/** `custos auth jwt add|list|read|delete`: JWT federation methods (OIDC issuers and their keys). */
export function registerAuthJwtCommand(program: Command, io: CliIo): void {
  const auth = program.command('auth').description('login methods for agents');
  registerAuthAwsCommand(auth, io);
  const jwt = auth.command('jwt').description('JWT federation: workload identity tokens from an OIDC issuer');

  jwt
    .command('add <name>')
    .description('configure (or replace) a JWT method: issuer, its keys, the audience custos expects')
    .requiredOption('--issuer <url>', 'the exact `iss` of accepted JWTs')
    .option('--jwks-url <url>', 'where the issuer publishes its keys (fetched and cached by the server)')
    .option('--jwks-file <file>', 'the issuer’s public keys: a JWKS JSON file (or one JWK)')
    .requiredOption('--audience <aud...>', 'accepted `aud` values (repeat or comma-separate)', collectList)
    .option('--algorithms <list>', 'accepted algorithms, e.g. RS256,ES256', collectList)
    .option(
      '--claim-label <claim=key...>',
      'a claim (or /json/pointer) whose value becomes operator label KEY of the task a login starts',
      collectRepeat,
    )
    .option('--json', 'JSON output')
    .action(async (name: string, opts: AddOptions) => {
      if (!opts.jwksUrl === !opts.jwksFile) throw usage('give --jwks-url or --jwks-file, not both');
      const audience = opts.audience.length === 1 ? opts.audience[0]! : opts.audience;
      const claimLabels = opts.claimLabel?.length ? claimLabelMap(opts.claimLabel) : undefined;
      const body = {
        issuer: opts.issuer,
        audience,
        ...(opts.jwksUrl ? { jwks_url: opts.jwksUrl } : { jwks: readJwks(opts.jwksFile!) }),
        ...(opts.algorithms?.length ? { algorithms: opts.algorithms } : {}),
        ...(claimLabels ? { claim_labels: claimLabels } : {}),
      };
      const result = await new CustosClient(io).request(
        'PUT',
        `/v1/auth/jwt/methods/${encodeURIComponent(name)}`,
        body,
      );
      emit(io, opts.json, result, () => `Wrote JWT method ${name}`);
    });

  jwt
    .command('list')
    .option('--json', 'JSON output')
    .action(async (opts: { json?: boolean }) => {
      const result = await new CustosClient(io).request<{ methods: string[] }>('GET', '/v1/auth/jwt/methods');
      emit(io, opts.json, result, () => result.methods.join('\n'));
    });

  jwt
    .command('read <name>')
    .option('--json', 'JSON output')
    .action(async (name: string, opts: { json?: boolean }) => {
      const m = await new CustosClient(io).request<JwtMethodView>(
        'GET',
        `/v1/auth/jwt/methods/${encodeURIComponent(name)}`,
      );
      emit(io, opts.json, m, () =>
        table([
          ['name', m.name],
          ['issuer', m.issuer],
          ['audience', Array.isArray(m.audience) ? m.audience.join(', ') : m.audience],
          ['jwks', 'url' in m.jwks ? m.jwks.url : `${m.jwks.keys.length} key(s) configured`],
          ['algorithms', m.algorithms?.join(', ') ?? 'default'],
          [
            'claim_labels',
            Object.entries(m.claimLabels ?? {})
              .map(([claim, key]) => `${claim}→${key}`)
              .join(' ') || '-',
          ],
        ]),
      );
    });

  jwt
    .command('delete <name>')
    .option('--json', 'JSON output')
    .action(async (name: string, opts: { json?: boolean }) => {
      await new CustosClient(io).request('DELETE', `/v1/auth/jwt/methods/${encodeURIComponent(name)}`);
      emit(io, opts.json, { deleted: name }, () => `Deleted JWT method ${name}`);
    });
}
