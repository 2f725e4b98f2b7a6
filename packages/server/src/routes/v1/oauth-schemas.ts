/**
 * Response bodies of the OAuth endpoints. They are real response schemas
 * (fastify serialises with them, so no member outside them is ever sent) and
 * they document the endpoints in the OpenAPI description.
 */

/** RFC 6749 §5.2 error, with the stable custos code beside it. */
export const oauthErrorSchema = {
  type: 'object',
  description: 'RFC 6749 §5.2 error, with the stable custos code beside it',
  properties: {
    error: { type: 'string' },
    error_description: { type: 'string' },
    custos_code: { type: 'string' },
  },
  required: ['error', 'custos_code'],
} as const;

/** RFC 8693 §2.2.1 token response, with the child task's id and accessor. */
export const tokenExchangeResponseSchema = {
  type: 'object',
  description: 'RFC 8693 §2.2.1 token response: the child task token, with the child’s id and accessor',
  properties: {
    access_token: { type: 'string' },
    issued_token_type: { type: 'string' },
    token_type: { type: 'string', enum: ['Bearer', 'DPoP'] },
    expires_in: { type: 'integer' },
    scope: { type: 'string' },
    task_id: { type: 'string' },
    accessor: { type: 'string' },
    aud: {
      type: 'string',
      description: 'custos extension, present when a `resource` was asked: the child token’s audience (that URL)',
    },
  },
  required: ['access_token', 'issued_token_type', 'token_type', 'expires_in', 'scope', 'task_id', 'accessor'],
} as const;

/** RFC 7662 §2.2 introspection response: `{ active: false }`, or the live token's claims. */
export const introspectionResponseSchema = {
  type: 'object',
  description: 'RFC 7662 §2.2: `{ "active": false }`, or the live token’s claims',
  properties: {
    active: { type: 'boolean' },
    token_type: { type: 'string', enum: ['Bearer', 'DPoP'] },
    sub: { type: 'string' },
    scope: { type: 'string' },
    exp: { type: 'integer' },
    iss: { type: 'string' },
    aud: {
      description: 'The token’s audience: `custos`, or the URL of the registered resource it was minted for',
      anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }],
    },
    task_id: { type: 'string' },
    parent_task_id: { type: ['string', 'null'] },
    role: { type: 'string' },
    depth: { type: 'integer' },
    task_chain: { type: 'array', items: { type: 'string' } },
    act: {
      type: 'object',
      description: 'RFC 8693 actor chain: `{ sub, task_id, act: { … } }`, the delegating parent outermost',
      additionalProperties: true,
    },
    cnf: { type: 'object', properties: { jkt: { type: 'string' } } },
    elevations: {
      type: 'array',
      description:
        'Just-in-time elevations in force (docs/jit.md): the approved scope, its end (epoch seconds), the request, and the ancestor it was approved for (when inherited)',
      items: {
        type: 'object',
        properties: {
          scope: { type: 'string' },
          expires_at: { type: 'integer' },
          request_id: { type: 'string' },
          from_task: { type: 'string' },
        },
      },
    },
  },
  required: ['active'],
} as const;
