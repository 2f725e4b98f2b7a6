import { type CustosNode, type UpstreamInput, upstreamConfigResource } from '@custos/core';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { authorizeUpstreamWrite } from '../../upstream-access.js';

type UpstreamRequest = FastifyRequest<{ Params: { name: string } }>;
const NAME = '^[a-z0-9][a-z0-9_-]{0,62}$';
const resource = (request: FastifyRequest) => upstreamConfigResource((request as UpstreamRequest).params.name);
const nameParams = {
  type: 'object',
  properties: { name: { type: 'string', pattern: NAME } },
  required: ['name'],
} as const;
const strings = (maxItems: number, maxLength: number) =>
  ({ type: 'array', items: { type: 'string', minLength: 1, maxLength }, maxItems }) as const;
const upstreamView = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    base_url: { type: 'string' },
    secret: { type: 'string' },
    inject: { type: 'array', items: { type: 'string' } },
    allow_hosts: { type: 'array', items: { type: 'string' } },
    allow_paths: { type: 'array', items: { type: 'string' } },
    allow_methods: { type: 'array', items: { type: 'string' } },
    tls_ca: { type: 'string' },
    created_time: { type: 'string' },
    updated_time: { type: 'string' },
  },
} as const;

/**
 * `/v1/upstreams`: APIs the credential proxy calls with a secret the caller
 * never holds (operator configuration). Managing one is an action on
 * `sys/upstreams/<name>`; *using* one is `use` on `upstream/<name>`, checked
 * by the proxy listener, not here.
 */
export async function upstreamRoutes(app: FastifyInstance, { node }: { node: CustosNode }): Promise<void> {
  const upstreams = () => node.services().upstreams;

  app.get('/upstreams', {
    config: { access: { kind: 'policy', action: 'list', resource: () => 'sys/upstreams/' } },
    schema: { tags: ['upstreams'], summary: 'List upstreams' },
    handler: async () => ({ keys: await upstreams().list() }),
  });

  app.put<{ Params: { name: string }; Body: UpstreamInput }>('/upstreams/:name', {
    config: { access: { kind: 'policy', action: 'write', resource, operatorOnly: true } },
    schema: {
      tags: ['upstreams'],
      summary: 'Add or replace an upstream (needs read on its secret; allow_hosts need admin on sys/egress)',
      params: nameParams,
      body: {
        type: 'object',
        properties: {
          base_url: { type: 'string', minLength: 1, maxLength: 2048 },
          secret: { type: 'string', minLength: 3, maxLength: 700 },
          inject: strings(8, 1200),
          allow_hosts: strings(64, 300),
          allow_paths: strings(64, 1024),
          allow_methods: strings(16, 16),
          // CA certificates (PEM) for an https upstream with a private CA: inline, never a path.
          tls_ca: { type: 'string', minLength: 1, maxLength: 65_536 },
        },
        required: ['base_url', 'secret', 'inject'],
        additionalProperties: false,
      },
      response: { 200: upstreamView },
    },
    handler: async (request) => {
      authorizeUpstreamWrite(request, node, request.body);
      return upstreams().write(request.params.name, request.body);
    },
  });

  app.get<{ Params: { name: string } }>('/upstreams/:name', {
    config: { access: { kind: 'policy', action: 'read', resource } },
    schema: {
      tags: ['upstreams'],
      summary: 'Read an upstream (its configuration; never a secret value)',
      params: nameParams,
      response: { 200: upstreamView },
    },
    handler: async (request) => upstreams().read(request.params.name),
  });

  app.delete<{ Params: { name: string } }>('/upstreams/:name', {
    config: { access: { kind: 'policy', action: 'delete', resource, operatorOnly: true } },
    schema: {
      tags: ['upstreams'],
      summary: 'Delete an upstream (calls through it are refused from now on)',
      params: nameParams,
    },
    handler: async (request, reply) => {
      await upstreams().delete(request.params.name);
      return reply.code(204).send();
    },
  });
}
