import { PassThrough } from 'node:stream';
import type { CustosEvent, CustosNode } from '@custos/core';
import type { FastifyInstance } from 'fastify';

const KEEPALIVE_MS = 15_000;

/**
 * `GET /v1/events`: server-sent events so long-running agents learn of
 * rotations and re-read. A subscriber is told only about paths it may
 * `read`, checked per event with the same policy decision as a read (a task
 * ended or revoked later stops receiving).
 *
 * Findings of the anomaly engine (`alert.raised`) go to operator tokens
 * only, and only with `read` on `sys/alerts/<id>` — the same rule as
 * `GET /v1/alerts/<id>`. A task never hears of them, whatever its policies
 * say: an agent must not learn which of its moves were noticed.
 *
 * Task lifecycle events (`task.created`, `task.ended`, `task.revoked`, the
 * console's live tree) go to operator tokens only too, with `read` on
 * `sys/tasks/<id>` — the rule of `GET /v1/tasks/<id>`. A task would learn of
 * tasks outside its own subtree (its siblings, its parent's other children).
 */
export async function eventsRoutes(app: FastifyInstance, { node }: { node: CustosNode }): Promise<void> {
  // Event streams never finish on their own: end them when the server
  // closes, so a graceful shutdown does not wait on them.
  const open = new Set<() => void>();
  app.addHook('preClose', async () => {
    for (const stop of open) stop();
  });

  app.get('/events', {
    config: { access: { kind: 'self' } },
    schema: {
      tags: ['events'],
      summary:
        'Server-sent events: secret.rotated { path, version }, alert.raised { id, rule, severity }, alert.action { id, rule, action, outcome }, task.created|ended|revoked { task_id, parent_id, chain, role } (operators)',
    },
    handler: async (request, reply) => {
      const principal = request.auth;
      const services = node.services();
      const stream = new PassThrough();
      const send = async (event: CustosEvent) => {
        if (!principal) return;
        // Findings and the actions taken on them (`alert.*`), and task
        // lifecycle (`task.*`): never to a task, whatever its policies.
        if ((event.type.startsWith('alert.') || event.type.startsWith('task.')) && principal.kind !== 'operator')
          return;
        // Access requests (`request.*`): operators only too — an agent must not watch others' asks or their fate.
        if (event.type.startsWith('request.') && principal.kind !== 'operator') return;
        // A task ended or revoked, or an operator token revoked or expired,
        // after subscribing hears nothing more.
        const live =
          principal.kind === 'task'
            ? (await services.tasks.isActive(principal.task.chain)).active
            : await services.tokens.lookupAccessor(principal.token.accessor).then(
                () => true,
                () => false,
              );
        if (!live) {
          stop();
          return;
        }
        const allowed = services.authorize(principal, 'read', event.path, { sourceIp: request.ip, now: new Date() });
        if (!allowed.allowed) return;
        stream.write(`event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`);
      };
      const unsubscribe = services.events.subscribe((event) => {
        send(event).catch(() => undefined);
      });
      const keepalive = setInterval(() => stream.write(': keepalive\n\n'), KEEPALIVE_MS);
      keepalive.unref();
      const stop = () => {
        open.delete(stop);
        clearInterval(keepalive);
        unsubscribe();
        stream.end();
      };
      open.add(stop);
      request.raw.on('close', stop);
      stream.write(': subscribed\n\n');
      return reply
        .header('content-type', 'text/event-stream; charset=utf-8')
        .header('cache-control', 'no-cache')
        .header('x-accel-buffering', 'no')
        .send(stream);
    },
  });
}
