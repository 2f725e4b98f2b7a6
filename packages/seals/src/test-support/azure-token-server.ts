import { randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TestTls } from './test-tls.js';

/** A running local Microsoft Entra ID token endpoint. */
export interface AzureTokenServer {
  /** `https://127.0.0.1:PORT` — what AZURE_AUTHORITY_HOST points at. */
  readonly authorityHost: string;
  readonly tenantId: string;
  /** The app registration the server accepts (put it in AZURE_CLIENT_ID / AZURE_CLIENT_SECRET). */
  readonly clientId: string;
  readonly clientSecret: string;
  /** Token requests received, accepted or not. */
  readonly tokenRequests: number;
  /** The audience (resource) of a token this server issued and that has not expired; undefined otherwise. */
  audienceOf(token: string): string | undefined;
  close(): Promise<void>;
}

/**
 * A local stand-in for Microsoft Entra ID, written for the tests, serving
 * what `@azure/identity`'s ClientSecretCredential (reached through
 * DefaultAzureCredential → EnvironmentCredential) asks for: the OpenID
 * configuration of the tenant, and the v2.0 token endpoint's
 * client-credentials grant. It checks the client id and secret (constant
 * time) and issues opaque random access tokens bound to the requested
 * resource (`<resource>/.default`), which the Key Vault server then checks.
 */
export async function startAzureTokenServer(tls: TestTls): Promise<AzureTokenServer> {
  const tenantId = randomUUID();
  const clientId = randomUUID();
  // Obviously fake, generated per run.
  const clientSecret = `test-client-secret-${randomBytes(18).toString('base64url')}`;
  const issued = new Map<string, { audience: string; expires: number }>();
  let tokenRequests = 0;
  let base = '';

  const server: Server = createServer({ cert: tls.cert, key: tls.key }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', base);
      const json = (status: number, body: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
        res.end(JSON.stringify(body));
      };
      const tenantBase = `${base}/${tenantId}`;
      if (req.method === 'GET' && url.pathname === `/${tenantId}/v2.0/.well-known/openid-configuration`) {
        return json(200, {
          issuer: `${tenantBase}/v2.0`,
          authorization_endpoint: `${tenantBase}/oauth2/v2.0/authorize`,
          token_endpoint: `${tenantBase}/oauth2/v2.0/token`,
          end_session_endpoint: `${tenantBase}/oauth2/v2.0/logout`,
          jwks_uri: `${tenantBase}/discovery/v2.0/keys`,
          response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
          token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
        });
      }
      if (req.method === 'POST' && url.pathname === `/${tenantId}/oauth2/v2.0/token`) {
        tokenRequests += 1;
        const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
        const secret = Buffer.from(form.get('client_secret') ?? '');
        const expected = Buffer.from(clientSecret);
        const secretOk = secret.length === expected.length && timingSafeEqual(secret, expected);
        if (form.get('grant_type') !== 'client_credentials' || form.get('client_id') !== clientId || !secretOk) {
          return json(401, {
            error: 'invalid_client',
            error_description: 'AADSTS7000215: Invalid client secret provided.',
            error_codes: [7000215],
          });
        }
        const scope = (form.get('scope') ?? '').split(' ').find((s) => s.endsWith('/.default'));
        if (!scope) return json(400, { error: 'invalid_scope', error_description: 'AADSTS70011: invalid scope.' });
        const token = randomBytes(32).toString('base64url');
        issued.set(token, { audience: scope.slice(0, -'/.default'.length), expires: Date.now() + 3600_000 });
        return json(200, { token_type: 'Bearer', expires_in: 3599, ext_expires_in: 3599, access_token: token });
      }
      json(404, { error: 'not_found' });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    authorityHost: base,
    tenantId,
    clientId,
    clientSecret,
    get tokenRequests() {
      return tokenRequests;
    },
    audienceOf(token) {
      const t = issued.get(token);
      return t && t.expires > Date.now() ? t.audience : undefined;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
