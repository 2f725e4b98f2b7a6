import {
  type CustosNode,
  principalName,
  type SourceInput,
  sourceConfigResource,
  validateSecretPath,
} from '@custos/core';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { authorizeSourceWrite, importPermission } from '../../source-access.js';
import { errorSchema } from './schemas.js';

type SourceRequest = FastifyRequest<{ Params: { name: string } }>;
const NAME = '^[a-z0-9][a-z0-9_-]{0,62}$';
const resource = (request: FastifyRequest) => sourceConfigResource((request as SourceRequest).params.name);
const nameParams = {
  type: 'object',
  properties: { name: { type: 'string', pattern: NAME } },
  required: ['name'],
} as const;
const sourceView = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    type: { type: 'string' },
    region: { type: 'string' },
    prefix: { type: 'string' },
    endpoint: { type: 'string' },
    vault_url: { type: 'string' },
    tls_ca: { type: 'boolean' },
    format: { type: 'string' },
    cache_ttl_seconds: { type: 'integer' },
    timeout_ms: { type: 'integer' },
    created_time: { type: 'string' },
    updated_time: { type: 'string' },
  },
} as const;

/**
 * `/v1/sources`: AWS Secrets Manager and Azure Key Vault mounted
 * read-through at `kv/<name>/` (operator configuration, actions on
 * `sys/sources/<name>`). Reading a mounted secret is a kv read
 * (`/v1/secrets/data/kv/<name>/…`), not a route here.
 */
export async function sourceRoutes(app: FastifyInstance, { node }: { node: CustosNode }): Promise<void> {
  const sources = () => node.services().sources;

  app.get('/sources', {
    config: { access: { kind: 'policy', action: 'list', resource: () => 'sys/sources/' } },
    schema: { tags: ['sources'], summary: 'List secret sources' },
    handler: async () => ({ keys: await sources().list() }),
  });

  app.put<{ Params: { name: string }; Body: SourceInput }>('/sources/:name', {
    config: { access: { kind: 'policy', action: 'write', resource, operatorOnly: true } },
    schema: {
      tags: ['sources'],
      summary: 'Add or replace a source mounted at kv/<name>/ (needs write on kv/<name>/*; no cloud credentials here)',
      params: nameParams,
      body: {
        type: 'object',
        properties: {
          type: { type: 'string', enum: ['aws-secrets-manager', 'azure-key-vault'] },
          region: { type: 'string', minLength: 1, maxLength: 32 },
          prefix: { type: 'string', maxLength: 256 },
          endpoint: { type: 'string', minLength: 1, maxLength: 2048 },
          vault_url: { type: 'string', minLength: 1, maxLength: 2048 },
          tls_ca: { type: 'string', minLength: 1, maxLength: 65_536 },
          format: { type: 'string', enum: ['auto', 'json', 'raw'] },
          cache_ttl_seconds: { type: 'integer', minimum: 0, maximum: 300 },
          timeout_ms: { type: 'integer', minimum: 500, maximum: 30_000 },
        },
        required: ['type'],
        additionalProperties: false,
      },
      response: { 200: sourceView, '4xx': errorSchema },
    },
    handler: async (request) => {
      authorizeSourceWrite(request, node, request.params.name);
      return sources().write(request.params.name, request.body);
    },
  });

  app.get<{ Params: { name: string } }>('/sources/:name', {
    config: { access: { kind: 'policy', action: 'read', resource } },
    schema: {
      tags: ['sources'],
      summary: 'Read a source’s configuration',
      params: nameParams,
      response: { 200: sourceView },
    },
    handler: async (request) => sources().read(request.params.name),
  });

  app.delete<{ Params: { name: string } }>('/sources/:name', {
    config: { access: { kind: 'policy', action: 'delete', resource, operatorOnly: true } },
    schema: { tags: ['sources'], summary: 'Delete a source (kv/<name>/… reads fail from now on)', params: nameParams },
    handler: async (request, reply) => {
      await sources().delete(request.params.name);
      return reply.code(204).send();
    },
  });

  app.post<{ Params: { name: string } }>('/sources/:name/refresh', {
    config: { access: { kind: 'policy', action: 'write', resource, operatorOnly: true } },
    schema: {
      tags: ['sources'],
      summary: 'Drop this node’s cached listings and values of a source',
      params: nameParams,
    },
    handler: async (request) => sources().refresh(request.params.name),
  });

  app.post<{ Params: { name: string }; Body: { path?: string } }>('/sources/:name/import', {
    config: { access: { kind: 'policy', action: 'write', resource, operatorOnly: true } },
    schema: {
      tags: ['sources'],
      summary:
        'Copy the current version of each source secret into custos’s kv once, below path (default kv/imported/<name>); needs read on each kv/<name>/… and write on each destination',
      params: nameParams,
      body: {
        type: 'object',
        properties: { path: { type: 'string', minLength: 4, maxLength: 256 } },
        additionalProperties: false,
      },
    },
    handler: async (request) => {
      const name = request.params.name;
      const destination = validateSecretPath(request.body?.path ?? `kv/imported/${name}`);
      const actor = request.auth ? principalName(request.auth) : 'unknown';
      request.auditSource = name;
      // The copies are local secrets: a destination under a mount is refused by the secret service (READ_ONLY).
      return sources().importSecrets(
        name,
        destination,
        async (path, data) => {
          await node.services().secrets.put(path, data, {}, actor);
        },
        importPermission(request, node),
      );
    },
  });
}
