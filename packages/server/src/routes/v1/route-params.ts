import { type AuthMethodKind, CustosError, type CustosNode, type Role } from '@custos/core';
import type { FastifyRequest } from 'fastify';

/** `:name` of policies, roles and JWT methods: the policy-name alphabet. */
export const nameParams = {
  type: 'object',
  properties: { name: { type: 'string', pattern: '^[a-z0-9][a-z0-9_.-]{0,63}$' } },
  required: ['name'],
} as const;

/** A body with only an optional `ttl` (`5m`). */
export const ttlBody = {
  type: 'object',
  properties: { ttl: { type: 'string', maxLength: 32 } },
  additionalProperties: false,
} as const;

/** The policy resource of a named object: `sys/roles/<name>`, `sys/policies/<name>`, … */
export const resourceByName = (prefix: string) => (request: FastifyRequest) =>
  `${prefix}${(request as FastifyRequest<{ Params: { name: string } }>).params.name}`;

export const roleResource = resourceByName('sys/roles/');

/** The role, if it allows `method`: issuing a bootstrap token or a certificate for a role that refuses it is an error. */
export async function roleAllowing(node: CustosNode, name: string, method: AuthMethodKind): Promise<Role> {
  const role = await node.services().roles.read(name);
  if (!role.auth.includes(method)) throw new CustosError('CUSTOS_ERR_AUTH_METHOD_NOT_ALLOWED');
  return role;
}
