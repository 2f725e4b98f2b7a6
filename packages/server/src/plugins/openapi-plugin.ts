import type { CustosNode } from '@custos/core';
import swagger from '@fastify/swagger';
import type { FastifyInstance, FastifySchema, RouteOptions } from 'fastify';
import { errorSchema } from '../routes/v1/schemas.js';

/** The name under which the OpenAPI document shows a wildcard route's rest-of-path parameter. */
export const WILDCARD_PARAM = 'path';

const documentedError = { ...errorSchema, description: 'Refused: a stable custos error code and its message' };
const anySuccess = { description: 'Success' };

/**
 * The OpenAPI 3.1 document (`GET /openapi.json`), generated from the routes
 * themselves. Every route is documented from what it already declares, in
 * one transform, so that no route can forget it and the document cannot
 * drift from the code:
 *
 * - **security**: a route declaring `access: { kind: 'public' }` gets
 *   `security: []` (callable without a token); every other route inherits
 *   the document's three alternatives (`Authorization: Bearer`,
 *   `Authorization: DPoP` with a `DPoP` proof, `X-Custos-Token`).
 * - **operationId**: derived from method and URL (`GET /v1/secrets/data/*` →
 *   `getSecretsDataByPath`): stable as long as the URL is, readable, and
 *   unique because fastify refuses two routes with the same method and URL.
 * - **wildcard paths**: fastify's `*` (which @fastify/swagger would print as
 *   the invalid `{*}`) is shown as the named parameter `{path}`. Only the
 *   document changes: the route still matches the rest of the URL, so
 *   `kv/team/db` may be sent with its slashes as they are or, as OpenAPI
 *   clients do for a path parameter, percent-encoded.
 * - **responses**: a route that documents no success gets a `2XX`; a route
 *   that can refuse a request (it needs a token, takes input, or is rate
 *   limited) and documents no 4xx answer gets the custos error body as its
 *   `4XX`. Routes that cannot answer 4xx (public documents and probes
 *   without input) are left without one, truthfully.
 *
 * Documentation only: the transform's output feeds the generator, never
 * fastify's validation or serialization.
 */
export async function registerOpenApi(app: FastifyInstance, node: CustosNode): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'custos',
        version: node.version,
        description: 'Secrets control plane for multi-agent AI systems',
        license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
      },
      components: {
        securitySchemes: {
          bearer: {
            type: 'http',
            scheme: 'bearer',
            description: 'An operator token (`cus_…`) or a task token that is not DPoP-bound.',
          },
          dpop: {
            type: 'http',
            scheme: 'DPoP',
            description: 'A DPoP-bound task token, with a fresh DPoP proof in the `DPoP` header (RFC 9449).',
          },
          custosToken: {
            type: 'apiKey',
            in: 'header',
            name: 'X-Custos-Token',
            description: 'The same tokens as `bearer`, in a header of their own.',
          },
        },
      },
      security: [{ bearer: [] }, { dpop: [] }, { custosToken: [] }],
    },
    transform: ({ schema, url, route }) => documentRoute(schema, url, route),
  });

  app.get('/openapi.json', {
    // Public, static and unaudited (it describes the API, nothing stored); like
    // every route but health, seal status, init and unseal, not served while sealed.
    config: { access: { kind: 'public' }, unaudited: true, publicCache: { maxAgeSec: 60 } },
    schema: { hide: true },
    // The server is this deployment's issuer URL, known only once unsealed.
    handler: async () => ({ ...app.swagger(), servers: [{ url: node.services().issuer }] }),
  });
}

/** The parts of a route schema the transform reads or writes (fastify types the rest as `unknown`). */
interface DocumentedSchema {
  operationId?: string;
  security?: ReadonlyArray<Readonly<Record<string, readonly string[]>>>;
  body?: unknown;
  querystring?: unknown;
  params?: { properties?: Record<string, unknown>; required?: string[] };
  response?: Record<string, unknown>;
}

function documentRoute(
  schema: FastifySchema | undefined,
  url: string,
  route: RouteOptions,
): { schema: FastifySchema; url: string } {
  const doc = { ...(schema ?? {}) } as DocumentedSchema;
  const config = route.config as { access?: { kind: string }; rateLimit?: unknown } | undefined;
  const method = Array.isArray(route.method) ? (route.method[0] as string) : route.method;
  const wildcard = url.endsWith('*');
  doc.operationId ??= operationId(method, url);
  if (config?.access?.kind === 'public') doc.security = [];
  if (wildcard && doc.params?.properties?.['*'] !== undefined) {
    const { '*': rest, ...others } = doc.params.properties;
    doc.params = {
      ...doc.params,
      properties: { ...others, [WILDCARD_PARAM]: rest },
      required: [...(doc.params.required ?? []).filter((n) => n !== '*'), WILDCARD_PARAM],
    };
  }
  const canRefuse =
    config?.access?.kind !== 'public' ||
    config?.rateLimit !== undefined ||
    doc.body !== undefined ||
    doc.querystring !== undefined ||
    doc.params !== undefined ||
    wildcard;
  const responses: Record<string, unknown> = { ...(doc.response ?? {}) };
  const documents = (digit: string) => Object.keys(responses).some((status) => status.startsWith(digit));
  // A route without a response schema may answer 200 or 204: say "success", not a status it may not use.
  if (!documents('2')) responses['2xx'] = anySuccess;
  if (canRefuse && !documents('4')) responses['4xx'] = documentedError;
  doc.response = responses;
  return { schema: doc as FastifySchema, url: wildcard ? `${url.slice(0, -1)}:${WILDCARD_PARAM}` : url };
}

/**
 * `getSecretsDataByPath` for `GET /v1/secrets/data/*`: the method, then each
 * static segment (split at `-`, `.` and `_`), each parameter as `By<Name>`;
 * the `/v1` prefix, shared by almost every route, is left out.
 */
function operationId(method: string, url: string): string {
  const words = [method.toLowerCase()];
  for (const segment of url.split('/')) {
    if (segment === '' || segment === 'v1') continue;
    if (segment === '*') words.push('by', WILDCARD_PARAM);
    else if (segment.startsWith(':')) words.push('by', ...segment.slice(1).split(/[^A-Za-z0-9]+/));
    else words.push(...segment.split(/[^A-Za-z0-9]+/));
  }
  return words
    .filter((w) => w !== '')
    .map((w, i) => (i === 0 ? w : `${w[0]?.toUpperCase()}${w.slice(1)}`))
    .join('');
}
