import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { CliError, type CliIo, EXIT } from '../cli-io.js';
import { CustosClient } from '../http-client.js';
import { collectList } from '../option-parsers.js';
import { emit, table } from '../output.js';

interface JwtMethodView {
  name: string;
  issuer: string;
  audience: string | string[];
  jwks: { url: string } | { keys: unknown[] };
  algorithms?: string[];
}

interface AddOptions {
  issuer: string;
  jwksUrl?: string;
  jwksFile?: string;
  audience: string[];
  algorithms?: string[];
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

/** `custos auth jwt add|list|read|delete`: JWT federation methods (OIDC issuers and their keys). */
export function registerAuthJwtCommand(program: Command, io: CliIo): void {
  const auth = program.command('auth').description('login methods for agents');
  const jwt = auth.command('jwt').description('JWT federation: workload identity tokens from an OIDC issuer');

  jwt
    .command('add <name>')
    .description('configure (or replace) a JWT method: issuer, its keys, the audience custos expects')
    .requiredOption('--issuer <url>', 'the exact `iss` of accepted JWTs')
    .option('--jwks-url <url>', 'where the issuer publishes its keys (fetched and cached by the server)')
    .option('--jwks-file <file>', 'the issuer’s public keys: a JWKS JSON file (or one JWK)')
    .requiredOption('--audience <aud...>', 'accepted `aud` values (repeat or comma-separate)', collectList)
    .option('--algorithms <list>', 'accepted algorithms, e.g. RS256,ES256', collectList)
    .option('--json', 'JSON output')
    .action(async (name: string, opts: AddOptions) => {
      if (!opts.jwksUrl === !opts.jwksFile) throw usage('give --jwks-url or --jwks-file, not both');
      const audience = opts.audience.length === 1 ? opts.audience[0]! : opts.audience;
      const body = {
        issuer: opts.issuer,
        audience,
        ...(opts.jwksUrl ? { jwks_url: opts.jwksUrl } : { jwks: readJwks(opts.jwksFile!) }),
        ...(opts.algorithms?.length ? { algorithms: opts.algorithms } : {}),
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
