import { X509Certificate } from 'node:crypto';
import { chmodSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { defaultProvider } from '@aws-sdk/credential-provider-node';
import { signAwsLoginRequest } from '@custos/sdk';
import type { Command } from 'commander';
import { CliError, type CliIo, EXIT } from '../cli-io.js';
import { CustosClient } from '../http-client.js';
import { collectRepeat, collectScope, type StartOptions, startBody } from '../option-parsers.js';
import { emit } from '../output.js';
import { resolveRequestTimeout, withRequestTimeout } from '../request-timeout.js';

/** What every login and `task start` answer: the task token (shown once) and its handles. */
export interface IssuedTaskView {
  token: string;
  token_type: string;
  task_id: string;
  accessor: string;
  expire_time: string;
  scope: string;
  task: { role: string; depth: number };
}

interface LoginOptions extends StartOptions {
  aws?: boolean;
  serverId?: string;
  stsEndpoint?: string;
  awsRegion?: string;
  bootstrap?: string;
  jwt?: string;
  role?: string;
  method?: string;
  cert?: string;
  key?: string;
  ca?: string;
  save?: boolean;
  json?: boolean;
}

const usage = (message: string) => new CliError('CUSTOS_ERR_USAGE', message, EXIT.usage);

async function readStdin(io: CliIo): Promise<string> {
  let text = '';
  for await (const chunk of io.stdin) text += chunk.toString();
  return text.trim();
}

/** A credential given as an argument, or `-` to read it from stdin (kept out of `ps` and shell history). */
const argOrStdin = async (value: string, io: CliIo) => (value === '-' ? readStdin(io) : value.trim());

/**
 * Writes the token to `~/.custos-token`, where the CLI looks for it. Written
 * to a private temporary file and renamed over the old one, so the token is
 * never readable by others, not even for a moment, and a reader never sees
 * half a token.
 */
export function saveToken(io: CliIo, token: string): string {
  const file = join(io.env.HOME || homedir(), '.custos-token');
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, `${token}\n`, { mode: 0o600 });
  chmodSync(temporary, 0o600);
  renameSync(temporary, file);
  return file;
}

/** The role in a custos client certificate's SPIFFE id (`spiffe://<domain>/role/<role>/<id>`). */
function certificateRole(pem: string): string | undefined {
  const san = new X509Certificate(pem).subjectAltName ?? '';
  return /URI:spiffe:\/\/[^/]+\/role\/([^/,\s]+)\//.exec(san)?.[1];
}

/** Where mTLS logins go: CUSTOS_TLS_ADDR, else CUSTOS_ADDR when it is already https. */
function tlsAddress(io: CliIo): string {
  const addr = io.env.CUSTOS_TLS_ADDR || (io.env.CUSTOS_ADDR?.startsWith('https://') ? io.env.CUSTOS_ADDR : undefined);
  if (!addr) throw usage('--cert needs the mTLS listener: set CUSTOS_TLS_ADDR (https://host:port)');
  return addr.replace(/\/+$/, '');
}

/**
 * `POST /v1/auth/cert/login` over HTTPS, presenting the client certificate.
 * fetch cannot present a client certificate, hence node:https. The server is
 * authenticated against `ca` (custos's own CA, usually) or the system roots.
 */
function certLogin(
  addr: string,
  tls: { cert: string; key: string; ca?: string },
  body: unknown,
  timeoutMs: number,
): Promise<{ status: number; body: unknown }> {
  return withRequestTimeout(addr, timeoutMs, (signal) => certLoginRequest(addr, tls, body, signal));
}

function certLoginRequest(
  addr: string,
  tls: { cert: string; key: string; ca?: string },
  body: unknown,
  signal: AbortSignal,
): Promise<{ status: number; body: unknown }> {
  const url = new URL('/v1/auth/cert/login', addr);
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      url,
      {
        method: 'POST',
        cert: tls.cert,
        key: tls.key,
        ...(tls.ca ? { ca: tls.ca } : {}),
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
        // Aborting also ends a response that has begun but stalls: the whole exchange is bounded.
        signal,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
        });
        res.on('end', () => {
          let parsed: unknown;
          try {
            parsed = text ? JSON.parse(text) : undefined;
          } catch {
            parsed = undefined;
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
        res.on('error', reject);
      },
    );
    req.on('error', (cause: NodeJS.ErrnoException) => {
      if (signal.aborted) {
        reject(cause); // withRequestTimeout names the timeout
        return;
      }
      // An untrusted server certificate is the usual first-run mistake: say what to do.
      const hint = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY/.test(cause.code ?? '')
        ? '; trust its CA with --ca or CUSTOS_CACERT'
        : '';
      reject(new CliError('CUSTOS_ERR_UNREACHABLE', `cannot reach ${addr} (${cause.message})${hint}`, EXIT.usage));
    });
    req.end(payload);
  });
}

async function loginWithCert(io: CliIo, opts: LoginOptions, body: unknown): Promise<IssuedTaskView> {
  if (!opts.key) throw usage('--cert needs --key');
  const cert = readFileSync(opts.cert!, 'utf8');
  const key = readFileSync(opts.key, 'utf8');
  const caFile = opts.ca ?? io.env.CUSTOS_CACERT;
  const ca = caFile ? readFileSync(caFile, 'utf8') : undefined;
  // The role comes from the certificate; --role only guards against logging
  // in with the wrong certificate, before anything is sent.
  if (opts.role) {
    const role = certificateRole(cert);
    if (role !== opts.role) throw usage(`the certificate is for role ${role ?? '(none)'}, not ${opts.role}`);
  }
  const response = await certLogin(
    tlsAddress(io),
    { cert, key, ...(ca ? { ca } : {}) },
    body,
    resolveRequestTimeout(io),
  );
  if (response.status < 200 || response.status >= 300) {
    const error = (response.body as { error?: { code?: string; message?: string } } | undefined)?.error;
    throw new CliError(error?.code ?? `HTTP_${response.status}`, error?.message ?? 'login refused');
  }
  return response.body as IssuedTaskView;
}

/**
 * `custos login --aws`: the workload's AWS credentials (SDK default chain:
 * environment, shared config, web identity, container or instance role)
 * sign an `sts:GetCallerIdentity` request here; only the signed headers and
 * body go to custos, which forwards them to its configured STS endpoint.
 */
async function loginWithAws(io: CliIo, opts: LoginOptions, start: object): Promise<IssuedTaskView> {
  if (!opts.role) throw usage('--aws needs --role');
  if (!opts.serverId) throw usage('--aws needs --server-id (the server id of custos’s AWS method)');
  let credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  try {
    credentials = await defaultProvider()();
  } catch {
    throw new CliError('CUSTOS_ERR_AWS_NO_CREDENTIALS', 'the AWS SDK default chain found no credentials');
  }
  const request = signAwsLoginRequest({
    credentials,
    serverId: opts.serverId,
    ...(opts.stsEndpoint ? { stsEndpoint: opts.stsEndpoint } : {}),
    ...(opts.awsRegion ? { region: opts.awsRegion } : {}),
  });
  return new CustosClient(io).request<IssuedTaskView>('POST', '/v1/auth/aws/login', {
    role: opts.role,
    request,
    ...(opts.method ? { method: opts.method } : {}),
    ...start,
  });
}

/** `custos login --bootstrap TOKEN | --jwt FILE --role R | --aws --role R --server-id ID | --cert CERT --key KEY`. */
export function registerLoginCommand(program: Command, io: CliIo): void {
  program
    .command('login')
    .description('log an agent in and start its task; prints the task token alone')
    .option('--bootstrap <token>', 'a single-use bootstrap token (- reads it from stdin)')
    .option(
      '--aws',
      'sign sts:GetCallerIdentity with the AWS SDK default chain’s credentials; needs --role and --server-id',
    )
    .option('--server-id <id>', 'with --aws: the server id of custos’s AWS method (signed into the request)')
    .option(
      '--sts-endpoint <url>',
      'with --aws: the STS endpoint custos forwards to (default https://sts.amazonaws.com)',
    )
    .option('--aws-region <region>', 'with --aws: the signing region (default us-east-1)')
    .option('--jwt <file>', 'a workload identity JWT in a file (- reads stdin); needs --role')
    .option('--role <role>', 'with --jwt: the role to log in as; with --cert: check the certificate is for it')
    .option('--method <name>', 'with --jwt or --aws: the configured method to use')
    .option('--cert <file>', 'a client certificate from custos’s CA (PEM); needs --key; uses CUSTOS_TLS_ADDR')
    .option('--key <file>', 'with --cert: its private key (PEM)')
    .option('--ca <file>', 'with --cert: the CA that signed the server’s certificate (default CUSTOS_CACERT)')
    .option('--ttl <duration>', 'task lifetime, within the role’s max TTL, e.g. 10m')
    .option('--scope <entries...>', 'narrow the task: ACTION:PATTERN entries, e.g. read:kv/team/*', collectScope)
    .option(
      '--label <key=value...>',
      'the agent’s own labels: agent.* keys only (operator labels come from the role, bootstrap token or JWT claims)',
      collectRepeat,
    )
    .option('--save', 'also write the token to ~/.custos-token (mode 0600), where custos finds it')
    .option('--json', 'JSON output (token, task_id, accessor, expire_time, scope)')
    .action(async (opts: LoginOptions) => {
      const modes = [opts.bootstrap, opts.jwt, opts.cert, opts.aws].filter((m) => m !== undefined).length;
      if (modes !== 1) throw usage('give exactly one of --bootstrap, --jwt, --aws or --cert');
      if (opts.method && !opts.jwt && !opts.aws) throw usage('--method goes with --jwt or --aws');
      if ((opts.key || opts.ca) && !opts.cert) throw usage('--key and --ca go with --cert');
      const start = startBody(opts);
      let issued: IssuedTaskView;
      if (opts.bootstrap !== undefined) {
        const token = await argOrStdin(opts.bootstrap, io);
        if (opts.role) throw usage('--role does not go with --bootstrap: the token names its role');
        issued = await new CustosClient(io).request<IssuedTaskView>('POST', '/v1/auth/bootstrap/login', {
          token,
          ...start,
        });
      } else if (opts.aws) {
        issued = await loginWithAws(io, opts, start);
      } else if (opts.jwt !== undefined) {
        if (!opts.role) throw usage('--jwt needs --role');
        const jwt = opts.jwt === '-' ? await readStdin(io) : readFileSync(opts.jwt, 'utf8').trim();
        issued = await new CustosClient(io).request<IssuedTaskView>('POST', '/v1/auth/jwt/login', {
          role: opts.role,
          jwt,
          ...(opts.method ? { method: opts.method } : {}),
          ...start,
        });
      } else {
        issued = await loginWithCert(io, opts, start);
      }
      if (opts.save) saveToken(io, issued.token);
      emit(io, opts.json, issued, () => issued.token);
    });
}
