import { BlockList, isIPv4 } from 'node:net';
import {
  agentLabels,
  assertGrantable,
  type CustosNode,
  isTaskOfRole,
  labelGrantRefusal,
  operatorLabels,
  parseDuration,
  principalName,
  type Role,
  UnauthenticatedError,
} from '@custos/core';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { nameParams, roleAllowing, roleResource, ttlBody } from './route-params.js';
import { issuedView, labelsSchema, type StartBody, startBodySchema, startTask } from './task-routes.js';

// Login routes take secrets from anonymous callers: rate limited per source.
export const loginLimit = { max: 60, timeWindow: '1 minute' };

/**
 * The role `name` a login asks for, if the caller may log in to it with
 * `method` from its address. `madeFor` names the role incarnation a
 * credential was made for (bootstrap tokens, certificates): one made for a
 * role since deleted — perhaps recreated under its name — is not this role's.
 * Refusals say only the code: which check failed is for the audit log.
 */
export async function loginRole(
  node: CustosNode,
  request: FastifyRequest,
  method: 'bootstrap' | 'jwt' | 'cert' | 'aws',
  name: string,
  madeFor?: { roleId: string | undefined },
): Promise<Role> {
  const role = await node.services().roles.find(name);
  // Refusals at login are all the same UNAUTHENTICATED: an anonymous caller
  // must not learn which roles exist or how they may be entered.
  if (
    madeFor &&
    !(role && isTaskOfRole({ role: name, ...(madeFor.roleId ? { role_id: madeFor.roleId } : {}) }, role))
  ) {
    request.auditReason = 'role_deleted';
    throw new UnauthenticatedError();
  }
  if (!role) throw new UnauthenticatedError();
  if (!role.auth.includes(method)) throw new UnauthenticatedError();
  if (role.bound_cidrs.length > 0) {
    const list = new BlockList();
    for (const cidr of role.bound_cidrs) {
      const [address = '', prefix = '0'] = cidr.split('/');
      list.addSubnet(address, Number(prefix), isIPv4(address) ? 'ipv4' : 'ipv6');
    }
    const ip = request.ip.startsWith('::ffff:') ? request.ip.slice(7) : request.ip;
    if (!list.check(ip, isIPv4(ip) ? 'ipv4' : 'ipv6')) throw new UnauthenticatedError();
  }
  return role;
}

/** `/v1/roles/:name/bootstrap` and `/v1/auth/bootstrap/login`: single-use secure introduction. */
export async function bootstrapRoutes(app: FastifyInstance, { node }: { node: CustosNode }): Promise<void> {
  app.post<{ Params: { name: string }; Body: { ttl?: string; labels?: Record<string, string> } }>(
    '/roles/:name/bootstrap',
    {
      config: { access: { kind: 'policy', action: 'issue', resource: roleResource, operatorOnly: true } },
      schema: {
        tags: ['auth'],
        summary: 'Create a single-use bootstrap token for a freshly spawned agent of this role',
        params: nameParams,
        body: {
          type: 'object',
          properties: { ...ttlBody.properties, labels: labelsSchema },
          additionalProperties: false,
        },
      },
      handler: async (request) => {
        const role = await roleAllowing(node, request.params.name, 'bootstrap');
        const ttlMs = parseDuration(request.body?.ttl ?? '5m');
        // Operator labels for the task this token starts: only keys the role
        // lets be granted, never contradicting the role's own. (Checked again
        // at login: the role may have changed meanwhile.)
        const labels = operatorLabels(request.body?.labels);
        assertGrantable(role, labels);
        return node.services().bootstrap.create(role, ttlMs, principalName(request.auth!), labels);
      },
    },
  );

  app.post<{ Body: StartBody & { token: string } }>('/auth/bootstrap/login', {
    config: { access: { kind: 'public' }, rateLimit: loginLimit },
    schema: {
      tags: ['auth'],
      summary: 'Exchange a bootstrap token (once) for a task token',
      body: {
        ...startBodySchema,
        properties: { ...startBodySchema.properties, token: { type: 'string', maxLength: 128 } },
        required: ['token'],
      },
    },
    handler: async (request) => {
      const { token, ...start } = request.body;
      // Checked before the single-use token is spent: a label the agent may
      // not set is refused without costing it its only login.
      agentLabels(start.labels);
      const services = node.services();
      const outcome = await services.bootstrap.consume(token);
      if (outcome.kind === 'reused') {
        // Someone used this token before: either the agent it was meant for
        // is replaying it, or an intruder got it first. Either way an operator
        // must look. The alert is written before the refusal is sent; if it
        // cannot be written, the request fails closed like any other.
        await services.audit.record({
          type: 'security_alert',
          kind: 'bootstrap_token_reused',
          request_id: request.id,
          request: { method: request.method, route: '/v1/auth/bootstrap/login', source_ip: request.ip },
          data: { bootstrap_token: services.auditHmac(token) },
          details: { bootstrap_accessor: outcome.accessor },
        });
        throw new UnauthenticatedError();
      }
      if (outcome.kind === 'invalid') {
        // Recorded by HMAC, as every refused credential is (see auth-plugin.ts).
        request.auditCredential = services.auditHmac(token);
        throw new UnauthenticatedError();
      }
      // Made for a role since deleted (perhaps recreated): spent, and nothing more.
      const role = await loginRole(node, request, 'bootstrap', outcome.role, { roleId: outcome.roleId });
      // The token's labels were grantable when it was made; the role may
      // have narrowed since. The agent cannot fix that, an operator can.
      if (labelGrantRefusal(role, outcome.labels)) {
        request.auditReason = 'label_not_grantable';
        throw new UnauthenticatedError();
      }
      const issued = await startTask(node, role, `bootstrap:${outcome.accessor}`, 'bootstrap', start, {
        from: 'login',
        granted: outcome.labels,
      });
      request.auth = { kind: 'task', task: taskSubject(issued.task), role, labels: issued.task.labels };
      return issuedView(request, issued);
    },
  });
}

/** The principal a freshly started task becomes, for the audit event of its own login. */
export function taskSubject(task: {
  id: string;
  sub: string;
  parent_id: string | null;
  scope: string;
  depth: number;
  role: string;
  chain: string[];
  act: import('@custos/core').ActorClaim | null;
  expire_time: string;
  jkt: string | null;
}) {
  return {
    sub: task.sub,
    task_id: task.id,
    parent_task_id: task.parent_id,
    scope: task.scope,
    depth: task.depth,
    role: task.role,
    chain: task.chain,
    act: task.act,
    exp: Math.floor(Date.parse(task.expire_time) / 1000),
    jkt: task.jkt,
  };
}
