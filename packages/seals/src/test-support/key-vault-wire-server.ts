import {
  constants,
  generateKeyPairSync,
  type KeyObject,
  privateDecrypt,
  publicEncrypt,
  randomBytes,
} from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { AzureTokenServer } from './azure-token-server.js';
import { createKeyVaultSecrets, type KeyVaultSecrets } from './key-vault-secrets-api.js';
import type { TestTls } from './test-tls.js';

/** Faults the tests switch on and off while the server runs. */
export interface KeyVaultFaults {
  /** Answer this many of the next key requests with 429 Throttled and Retry-After (Infinity: all). */
  throttle: number;
  /** Seconds sent in Retry-After with a throttled answer. */
  retryAfterSeconds: number;
  /** Wait this long before answering a key request. */
  delayMs: number;
  /** Answer every key request with 403 Forbidden (the identity lacks the permission). */
  deny: boolean;
  /** Key names whose every version is disabled. */
  disabled: Set<string>;
}

interface KeyVersion {
  readonly version: string;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
}

/** A running wire-compatible Azure Key Vault (keys only). */
export interface KeyVaultWireServer {
  /** `https://127.0.0.1:PORT`, the vault URL. */
  readonly vaultUrl: string;
  readonly faults: KeyVaultFaults;
  /** Key requests received, as `METHOD operation` (`GET key`, `POST wrapkey`, `POST unwrapkey`), authenticated or not. */
  readonly requests: string[];
  /** The vault's secrets (for the secret-source tests): add versions, disable them. */
  readonly secrets: Pick<KeyVaultSecrets, 'setSecret' | 'setEnabled'>;
  /** Creates an RSA key, or a new version of it; returns the version. */
  createKey(name: string): string;
  close(): Promise<void>;
}

/** What Key Vault names as the resource of its challenge. */
export const KEY_VAULT_RESOURCE = 'https://vault.azure.net';
const API_VERSION = /^(?:7\.\d+|\d{4}-\d{2}-\d{2})(?:-preview)?$/;

/**
 * A local server speaking the Azure Key Vault keys REST API (and the secrets
 * API, key-vault-secrets-api.ts, behind the same authentication and faults) — `GET
 * /keys/{name}[/{version}]`, `POST /keys/{name}/{version}/wrapkey` and
 * `/unwrapkey` with `?api-version=7.x` — written for the tests. It does what
 * the real service does for authentication: a request without a valid
 * bearer token gets `401` with `WWW-Authenticate: Bearer
 * authorization="<authority>/<tenant>", resource="https://vault.azure.net"`,
 * the SDK's challenge-based policy then asks the credential for a token for
 * that resource, and the server accepts only tokens its token server issued
 * for that audience. Keys are real RSA-2048, wrap is RSA-OAEP-256, errors
 * have the service's shape (`{"error":{"code","message"}}`); throttling is a
 * 429 with Retry-After. "Verified against a wire-compatible local server,
 * not against the cloud."
 */
export async function startKeyVaultWireServer(tls: TestTls, tokens: AzureTokenServer): Promise<KeyVaultWireServer> {
  const keys = new Map<string, KeyVersion[]>();
  const faults: KeyVaultFaults = { throttle: 0, retryAfterSeconds: 1, delayMs: 0, deny: false, disabled: new Set() };
  const requests: string[] = [];
  const secrets = createKeyVaultSecrets();
  let base = '';

  const kidOf = (name: string, v: KeyVersion) => `${base}/keys/${name}/${v.version}`;

  const handle = async (req: IncomingMessage, res: ServerResponse, body: Buffer) => {
    const url = new URL(req.url ?? '/', base);
    const error = (status: number, code: string, message: string, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
      res.end(JSON.stringify({ error: { code, message } }));
    };
    const json = (body: unknown) => {
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
      res.end(JSON.stringify(body));
    };
    const m = /^\/keys\/([A-Za-z0-9-]{1,127})(?:\/([0-9a-f]{32})?)?(?:\/(wrapkey|unwrapkey))?$/.exec(url.pathname);
    const operation = m?.[3] ?? (url.pathname.startsWith('/secrets') ? 'secret' : 'key');
    requests.push(`${req.method} ${operation}`);
    if (!API_VERSION.test(url.searchParams.get('api-version') ?? '')) {
      return error(400, 'BadParameter', 'The api-version query parameter is missing or not supported.');
    }
    const auth = /^Bearer (\S+)$/.exec(String(req.headers.authorization ?? ''));
    if (!auth || tokens.audienceOf(auth[1]!) !== KEY_VAULT_RESOURCE) {
      return error(
        401,
        'Unauthorized',
        auth ? 'AKV10022: Invalid audience.' : 'AKV10000: Request is missing a Bearer or PoP token.',
        {
          'www-authenticate': `Bearer authorization="${tokens.authorityHost}/${tokens.tenantId}", resource="${KEY_VAULT_RESOURCE}"`,
        },
      );
    }
    if (faults.delayMs > 0) await new Promise((r) => setTimeout(r, faults.delayMs));
    if (res.destroyed) return;
    if (faults.throttle > 0) {
      faults.throttle -= 1;
      return error(429, 'Throttled', 'Request was not allowed because the application is being throttled.', {
        'retry-after': String(faults.retryAfterSeconds),
      });
    }
    if (faults.deny) {
      return error(403, 'Forbidden', `The application does not have keys ${operation} permission on this key vault.`);
    }
    if (!m) {
      if (secrets.handle(req.method ?? '', url, base, { json, error })) return;
      return error(404, 'NotFound', 'No such operation.');
    }
    const versions = keys.get(m[1]!);
    const key = m[2] ? versions?.find((v) => v.version === m[2]) : versions?.at(-1);
    if (!versions || !key)
      return error(404, 'KeyNotFound', `A key with (name/id) ${m[1]} was not found in this key vault.`);
    const enabled = !faults.disabled.has(m[1]!);
    if (req.method === 'GET' && operation === 'key') {
      const jwk = key.publicKey.export({ format: 'jwk' });
      return json({
        key: {
          kid: kidOf(m[1]!, key),
          kty: 'RSA',
          key_ops: ['encrypt', 'decrypt', 'wrapKey', 'unwrapKey'],
          n: jwk.n,
          e: jwk.e,
        },
        attributes: { enabled, created: 1_700_000_000, updated: 1_700_000_000, recoveryLevel: 'Recoverable' },
      });
    }
    if (req.method !== 'POST' || operation === 'key') return error(405, 'BadParameter', 'Method not allowed.');
    if (!enabled) return error(403, 'Forbidden', `Operation ${operation} is not allowed on a disabled key.`);
    let input: { alg?: unknown; value?: unknown };
    try {
      input = JSON.parse(body.toString('utf8')) as typeof input;
    } catch {
      return error(400, 'BadParameter', 'The request body is not JSON.');
    }
    if (input.alg !== 'RSA-OAEP-256' || typeof input.value !== 'string') {
      return error(400, 'BadParameter', 'alg must be RSA-OAEP-256 here and value a base64url string.');
    }
    const value = Buffer.from(input.value, 'base64url');
    const oaep = { padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' };
    try {
      const out =
        operation === 'wrapkey'
          ? publicEncrypt({ key: key.publicKey, ...oaep }, value)
          : privateDecrypt({ key: key.privateKey, ...oaep }, value);
      return json({ kid: kidOf(m[1]!, key), value: out.toString('base64url') });
    } catch {
      return error(400, 'BadParameter', 'The parameter is incorrect.');
    }
  };

  const server: Server = createServer({ cert: tls.cert, key: tls.key }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      handle(req, res, Buffer.concat(chunks)).catch(() => {
        if (!res.headersSent) res.writeHead(500);
        res.end();
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    vaultUrl: base,
    faults,
    requests,
    secrets,
    createKey(name) {
      const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
      const version = randomBytes(16).toString('hex');
      keys.set(name, [...(keys.get(name) ?? []), { version, privateKey, publicKey }]);
      return version;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
