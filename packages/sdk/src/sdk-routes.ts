import { CustosProtocolError } from './custos-errors.js';

/**
 * Every custos endpoint the SDK calls, as the OpenAPI document names it,
 * with the response fields the SDK reads. The types in this package are
 * written by hand; `test/sdk-openapi.test.ts` checks each entry against the
 * `/openapi.json` of a real server (the operation exists, takes every
 * parameter or body field the SDK sends, and a documented response schema
 * has every field read), and {@link pick} checks the same
 * fields on every real response, so a server that drifts fails loudly rather
 * than handing `undefined` to an agent.
 */
export const SDK_ROUTES = {
  bootstrapLogin: {
    method: 'POST',
    path: '/v1/auth/bootstrap/login',
    sends: ['token', ...startFields()],
    reads: issuedFields(),
  },
  jwtLogin: {
    method: 'POST',
    path: '/v1/auth/jwt/login',
    sends: ['role', 'jwt', 'method', ...startFields()],
    reads: issuedFields(),
  },
  awsLogin: {
    method: 'POST',
    path: '/v1/auth/aws/login',
    sends: ['role', 'method', 'request', ...startFields()],
    reads: issuedFields(),
  },
  certLogin: { method: 'POST', path: '/v1/auth/cert/login', sends: startFields(), reads: issuedFields() },
  startTask: { method: 'POST', path: '/v1/roles/{name}/tasks', sends: startFields(), reads: issuedFields() },
  tokenExchange: {
    method: 'POST',
    path: '/v1/oauth/token',
    sends: [
      'grant_type',
      'subject_token',
      'subject_token_type',
      'requested_token_type',
      'scope',
      'ttl',
      'dpop_jkt',
      'resource',
    ],
    reads: ['access_token', 'token_type', 'expires_in', 'scope', 'task_id', 'accessor'],
  },
  showTask: {
    method: 'GET',
    path: '/v1/tasks/{id}',
    sends: [],
    reads: ['id', 'state', 'scope', 'expire_time', 'accessor'],
  },
  endTask: { method: 'POST', path: '/v1/tasks/{id}/end', sends: [], reads: [] },
  revokeTask: { method: 'POST', path: '/v1/tasks/{id}/revoke', sends: [], reads: [] },
  readSecret: { method: 'GET', path: '/v1/secrets/data/{path}', sends: ['version'], reads: ['data', 'metadata'] },
  secretMetadata: {
    method: 'GET',
    path: '/v1/secrets/metadata/{path}',
    sends: [],
    reads: ['path', 'current_version', 'versions'],
  },
  issueCreds: {
    method: 'POST',
    path: '/v1/creds/{engine}/{role}',
    sends: ['ttl'],
    reads: ['lease_id', 'username', 'password', 'expire_time', 'ttl_seconds'],
  },
  renewLease: {
    method: 'POST',
    path: '/v1/leases/{id}/renew',
    sends: ['increment'],
    reads: ['id', 'expire_time', 'state'],
  },
  revokeLease: { method: 'POST', path: '/v1/leases/{id}/revoke', sends: [], reads: [] },
  requestAccess: {
    method: 'POST',
    path: '/v1/requests',
    sends: ['scope', 'reason', 'ttl', 'children'],
    reads: ['request'],
  },
  showRequest: { method: 'GET', path: '/v1/requests/{id}', sends: ['wait'], reads: ['request'] },
  jwks: { method: 'GET', path: '/.well-known/jwks.json', sends: [], reads: ['keys'] },
  events: { method: 'GET', path: '/v1/events', sends: [], reads: [] },
  metadata: { method: 'GET', path: '/.well-known/oauth-authorization-server', sends: [], reads: ['issuer'] },
} as const satisfies Record<
  string,
  { method: string; path: string; sends: readonly string[]; reads: readonly string[] }
>;

function startFields() {
  return ['ttl', 'scope', 'labels', 'dpop_jkt'] as const;
}

function issuedFields() {
  return ['token', 'token_type', 'task_id', 'accessor', 'expire_time', 'scope'] as const;
}

export type SdkRouteName = keyof typeof SDK_ROUTES;

/**
 * The body of a response of `route`, checked to be an object holding every
 * field the SDK reads from it.
 */
export function pick(route: SdkRouteName, body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new CustosProtocolError(`${route}: not an object`);
  }
  const record = body as Record<string, unknown>;
  for (const field of SDK_ROUTES[route].reads) {
    if (!(field in record)) throw new CustosProtocolError(`${route}: no "${field}"`);
  }
  return record;
}

/**
 * The URL path of `route` with its parameters filled in: each encoded, and
 * a custos path (`{path}`: `kv/team/db`) segment by segment, its slashes kept.
 */
export function routePath(route: SdkRouteName, params: Readonly<Record<string, string>> = {}): string {
  return SDK_ROUTES[route].path.replace(/\{([a-z]+)\}/g, (_, name: string) => {
    const value = params[name];
    if (value === undefined) throw new TypeError(`${route}: no value for {${name}}`);
    return name === 'path' ? value.split('/').map(encodeURIComponent).join('/') : encodeURIComponent(value);
  });
}
