import { type CustosNode, NotFoundError, principalName, validateSecretPath, validateSecretPrefix } from '@custos/core';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { errorSchema, secretDataSchema, versionMetadataSchema, versionsBodySchema, wildcardParams } from './schemas.js';

type WildcardRequest = FastifyRequest<{ Params: { '*': string } }>;

/** The secret path a request acts on; validation happens here, before policy. */
const secretPath = (request: FastifyRequest) => validateSecretPath((request as WildcardRequest).params['*']);
const listPrefix = (request: FastifyRequest) => validateSecretPrefix((request as WildcardRequest).params['*']);
const actor = (request: FastifyRequest) => (request.auth ? principalName(request.auth) : 'unknown');

/**
 * `/v1/secrets/*`: versioned KV secrets. Handlers only translate HTTP to the
 * secret service; access and audit are applied by the plugins.
 */
export async function secretRoutes(app: FastifyInstance, { node }: { node: CustosNode }): Promise<void> {
  const secrets = () => node.services().secrets;
  const sources = () => node.services().sources;

  app.get<{ Params: { '*': string }; Querystring: { version?: string } }>('/secrets/data/*', {
    config: { access: { kind: 'policy', action: 'read', resource: secretPath } },
    schema: {
      tags: ['secrets'],
      summary: 'Read a secret (the current version, or ?version=N)',
      params: wildcardParams,
      querystring: {
        type: 'object',
        properties: { version: { type: 'string', pattern: '^[1-9][0-9]{0,9}$' } },
        additionalProperties: false,
      },
      response: {
        200: { type: 'object', properties: { data: secretDataSchema, metadata: versionMetadataSchema } },
        '4xx': errorSchema,
      },
    },
    handler: async (request) => {
      const principal = request.auth;
      // A task tree reads one consistent version of each secret (pinned at
      // its root task): a rotation mid-pipeline is invisible to it.
      const pin = principal?.kind === 'task' ? { owner: principal.task.chain[0] ?? principal.task.task_id } : undefined;
      const path = secretPath(request);
      const version = request.query.version ? Number(request.query.version) : undefined;
      // A mounted path reads through its source, after the same policy check
      // and with the same pinning; the answer has the same shape, and the
      // audit event names the source.
      const mount = await sources().mountOf(path);
      if (mount) {
        request.auditSource = mount.name;
        const { data, metadata } = await sources().readSecret(path, version, pin ? { pin } : {});
        return { data, metadata };
      }
      return secrets().get(path, version, pin ? { pin } : {});
    },
  });

  app.put<{ Params: { '*': string }; Body: { data: Record<string, string>; options?: { cas?: number } } }>(
    '/secrets/data/*',
    {
      config: { access: { kind: 'policy', action: 'write', resource: secretPath } },
      schema: {
        tags: ['secrets'],
        summary: 'Write a new version (options.cas: check-and-set; 0 = create only)',
        params: wildcardParams,
        body: {
          type: 'object',
          properties: {
            data: secretDataSchema,
            options: {
              type: 'object',
              properties: { cas: { type: 'integer', minimum: 0 } },
              additionalProperties: false,
            },
          },
          required: ['data'],
          additionalProperties: false,
        },
        response: { 200: versionMetadataSchema, '4xx': errorSchema },
      },
      handler: async (request) =>
        secrets().put(secretPath(request), request.body.data, request.body.options ?? {}, actor(request)),
    },
  );

  app.delete('/secrets/data/*', {
    config: { access: { kind: 'policy', action: 'delete', resource: secretPath } },
    schema: { tags: ['secrets'], summary: 'Soft-delete the current version', params: wildcardParams },
    handler: async (request) => ({
      versions: await secrets().delete(secretPath(request), undefined, actor(request)),
    }),
  });

  for (const [verb, action, summary] of [
    ['delete', 'delete', 'Soft-delete versions'],
    ['undelete', 'write', 'Restore soft-deleted versions'],
    ['destroy', 'delete', 'Destroy versions for good'],
  ] as const) {
    app.post<{ Params: { '*': string }; Body: { versions: number[] } }>(`/secrets/${verb}/*`, {
      config: { access: { kind: 'policy', action, resource: secretPath } },
      schema: { tags: ['secrets'], summary, params: wildcardParams, body: versionsBodySchema },
      handler: async (request) => ({
        versions: await secrets()[verb](secretPath(request), request.body.versions, actor(request)),
      }),
    });
  }

  app.get('/secrets/metadata/*', {
    config: { access: { kind: 'policy', action: 'read', resource: secretPath } },
    schema: { tags: ['secrets'], summary: 'Read metadata and version history', params: wildcardParams },
    handler: async (request) => {
      const path = secretPath(request);
      const mount = await sources().mountOf(path);
      if (!mount) return secrets().readMetadata(path);
      request.auditSource = mount.name;
      return sources().readMetadata(path);
    },
  });

  app.put<{ Params: { '*': string }; Body: { max_versions?: number; cas_required?: boolean } }>('/secrets/metadata/*', {
    config: { access: { kind: 'policy', action: 'write', resource: secretPath } },
    schema: {
      tags: ['secrets'],
      summary: 'Set max_versions and cas_required',
      params: wildcardParams,
      body: {
        type: 'object',
        properties: { max_versions: { type: 'integer', minimum: 0 }, cas_required: { type: 'boolean' } },
        additionalProperties: false,
      },
    },
    handler: async (request) => secrets().writeMetadata(secretPath(request), request.body, actor(request)),
  });

  app.delete('/secrets/metadata/*', {
    config: { access: { kind: 'policy', action: 'delete', resource: secretPath } },
    schema: { tags: ['secrets'], summary: 'Delete the path, every version and its metadata', params: wildcardParams },
    handler: async (request, reply) => {
      await secrets().deleteAll(secretPath(request));
      return reply.code(204).send();
    },
  });

  app.get('/secrets/list/*', {
    config: { access: { kind: 'policy', action: 'list', resource: listPrefix } },
    schema: {
      tags: ['secrets'],
      summary: 'List names below a prefix (folders end with /)',
      params: wildcardParams,
      response: { 200: { type: 'object', properties: { keys: { type: 'array', items: { type: 'string' } } } } },
    },
    handler: async (request) => {
      const prefix = listPrefix(request);
      // A name below the prefix has the prefix's mount (the prefix itself ends in `/`).
      const mount = await sources().mountOf(`${prefix}_`);
      if (!mount) return secrets().list(prefix);
      request.auditSource = mount.name;
      return listMounted(await sources().listSecrets(mount.name), prefix.slice(`kv/${mount.name}/`.length));
    },
  });
}

/** A source's names below `below` (a folder inside the mount), as a kv listing: names and folders ending in `/`. */
function listMounted(names: readonly string[], below: string): { keys: string[] } {
  const keys = new Set<string>();
  for (const name of names) {
    if (!name.startsWith(below)) continue;
    const rest = name.slice(below.length);
    const slash = rest.indexOf('/');
    if (rest) keys.add(slash === -1 ? rest : rest.slice(0, slash + 1));
  }
  if (keys.size === 0) throw new NotFoundError();
  return { keys: [...keys] };
}
