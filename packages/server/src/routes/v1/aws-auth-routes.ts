import { type AwsAuthConfig, type CustosNode, NotFoundError, UnauthenticatedError } from '@custos/core';
import type { FastifyInstance } from 'fastify';
import { authorizeAwsMethodBindings } from '../../aws-method-access.js';
import { loginLimit, loginRole, taskSubject } from './bootstrap-routes.js';
import { nameParams, resourceByName } from './route-params.js';
import { issuedView, type StartBody, startBodySchema, startTask } from './task-routes.js';

const methodResource = resourceByName('sys/auth/aws/');
const patterns = { type: 'array', items: { type: 'string', minLength: 1, maxLength: 512 }, maxItems: 32 } as const;

/**
 * AWS IAM logins (a signed `sts:GetCallerIdentity` request, as Vault's aws
 * auth method): method configuration for operators, and the public login.
 */
export async function awsAuthRoutes(app: FastifyInstance, { node }: { node: CustosNode }): Promise<void> {
  app.put<{ Params: { name: string }; Body: Omit<AwsAuthConfig, 'name'> }>('/auth/aws/methods/:name', {
    config: { access: { kind: 'policy', action: 'admin', resource: methodResource, operatorOnly: true } },
    schema: {
      tags: ['auth'],
      summary: 'Configure an AWS IAM login method (server id, STS endpoint, role bindings)',
      params: nameParams,
      body: {
        type: 'object',
        properties: {
          server_id: { type: 'string', minLength: 1, maxLength: 128 },
          sts_endpoint: { type: 'string', minLength: 1, maxLength: 2048 },
          bindings: {
            type: 'array',
            minItems: 1,
            maxItems: 64,
            items: {
              type: 'object',
              properties: {
                role: { type: 'string', maxLength: 64 },
                accounts: patterns,
                principal_arns: patterns,
                session_names: patterns,
              },
              required: ['role'],
              additionalProperties: false,
            },
          },
        },
        required: ['server_id', 'bindings'],
        additionalProperties: false,
      },
    },
    handler: async (request) => {
      // Binding a role lets AWS principals into it: the role's own write grant is needed too.
      authorizeAwsMethodBindings(request, node, request.body.bindings);
      return node.services().awsMethods.write({ name: request.params.name, ...request.body });
    },
  });

  app.get('/auth/aws/methods', {
    config: { access: { kind: 'policy', action: 'list', resource: () => 'sys/auth/aws/' } },
    schema: { tags: ['auth'], summary: 'List AWS IAM login methods' },
    handler: async () => ({ methods: await node.services().awsMethods.list() }),
  });

  app.get<{ Params: { name: string } }>('/auth/aws/methods/:name', {
    config: { access: { kind: 'policy', action: 'read', resource: methodResource } },
    schema: { tags: ['auth'], summary: 'Read an AWS IAM login method', params: nameParams },
    handler: async (request) => node.services().awsMethods.read(request.params.name),
  });

  app.delete<{ Params: { name: string } }>('/auth/aws/methods/:name', {
    config: { access: { kind: 'policy', action: 'admin', resource: methodResource, operatorOnly: true } },
    schema: { tags: ['auth'], summary: 'Delete an AWS IAM login method', params: nameParams },
    handler: async (request, reply) => {
      await node.services().awsMethods.delete(request.params.name);
      return reply.code(204).send();
    },
  });

  app.post<{
    Body: StartBody & { role: string; method?: string; request: { headers: Record<string, string>; body: string } };
  }>('/auth/aws/login', {
    config: { access: { kind: 'public' }, rateLimit: loginLimit },
    schema: {
      tags: ['auth'],
      summary:
        'Exchange a signed sts:GetCallerIdentity request (headers and body; never a URL) for a task token of a role',
      body: {
        ...startBodySchema,
        properties: {
          ...startBodySchema.properties,
          role: { type: 'string', maxLength: 64 },
          method: { type: 'string', maxLength: 64 },
          request: {
            type: 'object',
            properties: {
              headers: {
                type: 'object',
                additionalProperties: { type: 'string', maxLength: 8192 },
                maxProperties: 32,
              },
              body: { type: 'string', maxLength: 1024 },
            },
            required: ['headers', 'body'],
            additionalProperties: false,
          },
        },
        required: ['role', 'request'],
      },
    },
    handler: async (request) => {
      const { role: roleName, method, request: signed, ...start } = request.body;
      const role = await loginRole(node, request, 'aws', roleName);
      // Why a login was refused reaches the audit event through the error's
      // auditReason, never the client.
      const identity = await node
        .services()
        .awsMethods.login(role, signed, method)
        .catch((error: unknown) => {
          throw error instanceof NotFoundError ? new UnauthenticatedError() : error;
        });
      const issued = await startTask(node, role, `aws:${identity.arn}`, 'aws', start, { from: 'login' });
      request.auth = { kind: 'task', task: taskSubject(issued.task), role, labels: issued.task.labels };
      return { ...issuedView(request, issued), aws: { arn: identity.arn, account: identity.account } };
    },
  });
}
