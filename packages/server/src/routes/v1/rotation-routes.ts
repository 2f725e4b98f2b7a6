import { type CustosNode, parseDuration, principalName, type RotatorConfig, validateSecretPath } from '@custos/core';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { authorizeRotator } from '../../rotator-access.js';
import { wildcardParams } from './schemas.js';

type WildcardRequest = FastifyRequest<{ Params: { '*': string } }>;
const secretPath = (request: FastifyRequest) => validateSecretPath((request as WildcardRequest).params['*']);

const rotatorSchema = {
  oneOf: [
    {
      type: 'object',
      properties: {
        type: { const: 'random' },
        field: { type: 'string', maxLength: 128 },
        length: { type: 'integer', minimum: 16, maximum: 256 },
      },
      required: ['type'],
      additionalProperties: false,
    },
    {
      type: 'object',
      properties: {
        type: { const: 'database' },
        engine: { type: 'string', pattern: '^[a-z0-9][a-z0-9_-]{0,62}$' },
        username: { type: 'string', minLength: 1, maxLength: 128 },
        field: { type: 'string', maxLength: 128 },
      },
      required: ['type', 'engine', 'username'],
      additionalProperties: false,
    },
    {
      type: 'object',
      properties: {
        type: { const: 'webhook' },
        url: { type: 'string', minLength: 8, maxLength: 2048 },
        field: { type: 'string', maxLength: 128 },
      },
      required: ['type', 'url'],
      additionalProperties: false,
    },
  ],
} as const;

/**
 * Staged rotation: `PUT /v1/rotation/{path}` sets a secret's rotator and
 * schedule (`rotate` on the secret, plus what the rotator will exercise:
 * see rotator-access.ts); `POST /v1/secrets/rotate/{path}` rotates now.
 */
export async function rotationRoutes(app: FastifyInstance, { node }: { node: CustosNode }): Promise<void> {
  const rotation = () => node.services().rotation;

  app.put<{ Params: { '*': string }; Body: { rotator: RotatorConfig; every?: string; cron?: string; grace?: string } }>(
    '/rotation/*',
    {
      config: { access: { kind: 'policy', action: 'rotate', resource: secretPath, operatorOnly: true } },
      schema: {
        tags: ['secrets'],
        summary: 'Set the rotation policy of a secret (rotator, every or cron schedule, grace for previous)',
        params: wildcardParams,
        body: {
          type: 'object',
          properties: {
            rotator: rotatorSchema,
            every: { type: 'string', maxLength: 32 },
            cron: { type: 'string', maxLength: 128 },
            grace: { type: 'string', maxLength: 32 },
          },
          required: ['rotator'],
          additionalProperties: false,
        },
      },
      handler: async (request) => {
        const { body } = request;
        authorizeRotator(request, node, secretPath(request), body.rotator);
        return rotation().configure(secretPath(request), {
          rotator: body.rotator,
          ...(body.every ? { every_ms: parseDuration(body.every) } : {}),
          ...(body.cron ? { cron: body.cron } : {}),
          ...(body.grace ? { grace_ms: parseDuration(body.grace) } : {}),
        });
      },
    },
  );

  app.get('/rotation/*', {
    config: { access: { kind: 'policy', action: 'read', resource: secretPath } },
    schema: { tags: ['secrets'], summary: 'Read the rotation policy of a secret', params: wildcardParams },
    handler: async (request) => rotation().read(secretPath(request)),
  });

  app.post('/secrets/rotate/*', {
    config: { access: { kind: 'policy', action: 'rotate', resource: secretPath } },
    schema: { tags: ['secrets'], summary: 'Rotate a secret now (pending → applied → current)', params: wildcardParams },
    handler: async (request) =>
      rotation().rotate(secretPath(request), request.auth ? principalName(request.auth) : 'unknown'),
  });
}
