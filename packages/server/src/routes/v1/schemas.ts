/** Shared JSON Schemas: input validated at the edge, output serialised fast. */

export const errorSchema = {
  type: 'object',
  properties: {
    error: {
      type: 'object',
      properties: { code: { type: 'string' }, message: { type: 'string' } },
      required: ['code', 'message'],
    },
  },
} as const;

export const secretDataSchema = {
  type: 'object',
  additionalProperties: { type: 'string' },
  maxProperties: 256,
} as const;

export const versionMetadataSchema = {
  type: 'object',
  properties: {
    version: { type: 'integer' },
    created_time: { type: 'string' },
    created_by: { type: 'string' },
    deletion_time: { type: ['string', 'null'] },
    destroyed: { type: 'boolean' },
  },
} as const;

export const versionsBodySchema = {
  type: 'object',
  properties: { versions: { type: 'array', items: { type: 'integer', minimum: 1 }, minItems: 1, maxItems: 1000 } },
  required: ['versions'],
  additionalProperties: false,
} as const;

/**
 * The rest of the URL after a wildcard route's prefix: a custos path such as
 * `kv/team/db`. The OpenAPI document names it `path` (see
 * plugins/openapi-plugin.ts); fastify calls it `*`.
 */
export const wildcardParams = {
  type: 'object',
  properties: {
    '*': {
      type: 'string',
      maxLength: 512,
      description: 'A custos path such as `kv/team/db`: its slashes may be sent as they are or percent-encoded.',
    },
  },
} as const;
