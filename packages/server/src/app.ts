import { CustosError, type CustosNode, onCedarRuntimeRebuild } from '@custos/core';
import rateLimit from '@fastify/rate-limit';
import Fastify, { type FastifyInstance, type FastifyServerOptions, LogController } from 'fastify';
import type { DiskGuard } from './disk-guard.js';
import { NodeHealth } from './node-health.js';
import { registerAudit } from './plugins/audit-plugin.js';
import { registerAuth } from './plugins/auth-plugin.js';
import { registerErrorHandler } from './plugins/error-handler.js';
import { registerJsonBodyParser } from './plugins/json-body-parser.js';
import { registerOpenApi } from './plugins/openapi-plugin.js';
import { registerResponseHeaders } from './plugins/response-headers-plugin.js';
import { registerRouteTable } from './plugins/route-table.js';
import { consoleRoutes } from './routes/console-routes.js';
import { alertRoutes } from './routes/v1/alerts-routes.js';
import { auditRoutes } from './routes/v1/audit-routes.js';
import { awsAuthRoutes } from './routes/v1/aws-auth-routes.js';
import { bootstrapRoutes } from './routes/v1/bootstrap-routes.js';
import { credsRoutes } from './routes/v1/creds-routes.js';
import { engineRoutes } from './routes/v1/engine-routes.js';
import { eventsRoutes } from './routes/v1/events-routes.js';
import { honeytokenRoutes } from './routes/v1/honeytoken-routes.js';
import { identityRoutes } from './routes/v1/identity-routes.js';
import { leaseRoutes } from './routes/v1/lease-routes.js';
import { oauthRoutes } from './routes/v1/oauth-routes.js';
import { policyRoutes } from './routes/v1/policy-routes.js';
import { requestRoutes } from './routes/v1/request-routes.js';
import { resourceRoutes } from './routes/v1/resource-routes.js';
import { roleRoutes } from './routes/v1/role-routes.js';
import { rotationRoutes } from './routes/v1/rotation-routes.js';
import { scanRoutes } from './routes/v1/scan-routes.js';
import { secretRoutes } from './routes/v1/secret-routes.js';
import { sourceRoutes } from './routes/v1/source-routes.js';
import { sysRoutes, taskKeyRoutes } from './routes/v1/sys-routes.js';
import { taskRoutes } from './routes/v1/task-routes.js';
import { tokenRoutes } from './routes/v1/token-routes.js';
import { upstreamRoutes } from './routes/v1/upstream-routes.js';
import { wellKnownRoutes } from './routes/well-known-routes.js';
import './route-config.js';

export interface AppOptions {
  node: CustosNode;
  /** A pino logger or fastify logger options; false for none (tests). */
  logger?: FastifyServerOptions['logger'] | FastifyServerOptions['loggerInstance'];
  /** Largest accepted body in bytes (default 1 MiB). */
  bodyLimit?: number;
  /**
   * TLS key and certificate (PEM) for an HTTPS listener. Client certificates
   * are requested but not required at the TLS layer: a client without one
   * uses a bearer token as usual, and `/v1/auth/cert/login` verifies a
   * presented certificate against custos's own CA itself.
   */
  https?: { key: string | Buffer; cert: string | Buffer };
  /** Trust X-Forwarded-For from a proxy in front (off by default: the source IP feeds policy). */
  trustProxy?: boolean;
  /** Where the built console is (default: the `@custos/console` package's `dist/`). */
  consoleDir?: string;
  /** The node's health beyond seal state, shared by every listener of one node (default: one of its own). */
  health?: NodeHealth;
  /** The disk guard, whose figures `GET /v1/sys/disk` shows operators (when configured). */
  diskGuard?: DiskGuard;
}

/**
 * Builds the custos HTTP application. Cross-cutting concerns are registered
 * once, for every route: errors, authentication/authorisation (onRequest),
 * audit (preHandler/onSend), protective response headers (onSend) and the
 * OpenAPI description. Route plugins only translate HTTP to services.
 */
export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  const { node } = options;
  const health = options.health ?? new NodeHealth();
  const base: FastifyServerOptions = {
    bodyLimit: options.bodyLimit ?? 1024 * 1024,
    trustProxy: options.trustProxy ?? false,
    // Request ids go into every audit event and log line.
    genReqId: () => crypto.randomUUID(),
    // Long path parameters are refused by the router (huge bodies by bodyLimit,
    // deep JSON by the body parser).
    routerOptions: { maxParamLength: 1024 },
    return503OnClosing: true,
    // Every request is in the audit log already; a second per-request log line
    // would only cost throughput. Errors are still logged.
    logController: new LogController({ disableRequestLogging: true }),
    // No type coercion: a number where a string field is expected is refused,
    // not silently turned into a string. Query numbers are parsed by routes.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
  };
  const loggerIsInstance = options.logger && typeof (options.logger as { info?: unknown }).info === 'function';
  const app = Fastify({
    ...base,
    ...(loggerIsInstance
      ? { loggerInstance: options.logger as FastifyServerOptions['loggerInstance'] }
      : { logger: (options.logger as FastifyServerOptions['logger']) ?? false }),
    ...(options.https ? { https: { ...options.https, requestCert: true, rejectUnauthorized: false } } : {}),
  }) as unknown as FastifyInstance;

  registerRouteTable(app);
  registerErrorHandler(app);
  registerJsonBodyParser(app);
  // Cedar's runtime is rebuilt after a fault (see the policy engine); say so,
  // never with policy text (the event carries none).
  const stopCedarLog = onCedarRuntimeRebuild((cedar) => app.log.error({ cedar }, 'policy engine runtime rebuilt'));
  app.addHook('onClose', async () => stopCedarLog());
  registerAuth(app, node);
  registerAudit(app, node, health);
  // After the audit hook: it may still replace a response, and the headers
  // must describe the response that is actually sent.
  registerResponseHeaders(app);

  await app.register(rateLimit, {
    global: false,
    errorResponseBuilder: () => new CustosError('CUSTOS_ERR_RATE_LIMITED'),
  });
  await registerOpenApi(app, node);

  await app.register(
    async (v1) => {
      await v1.register(sysRoutes, { node, health, ...(options.diskGuard ? { diskGuard: options.diskGuard } : {}) });
      await v1.register(taskKeyRoutes, { node });
      await v1.register(secretRoutes, { node });
      await v1.register(policyRoutes, { node });
      await v1.register(tokenRoutes, { node });
      await v1.register(auditRoutes, { node });
      await v1.register(roleRoutes, { node });
      await v1.register(taskRoutes, { node });
      await v1.register(bootstrapRoutes, { node });
      await v1.register(oauthRoutes, { node });
      await v1.register(identityRoutes, { node });
      await v1.register(awsAuthRoutes, { node });
      await v1.register(scanRoutes, { node });
      await v1.register(honeytokenRoutes, { node });
      await v1.register(engineRoutes, { node });
      await v1.register(credsRoutes, { node });
      await v1.register(leaseRoutes, { node });
      await v1.register(rotationRoutes, { node });
      await v1.register(eventsRoutes, { node });
      await v1.register(upstreamRoutes, { node });
      await v1.register(sourceRoutes, { node });
      await v1.register(resourceRoutes, { node });
      await v1.register(alertRoutes, { node });
      await v1.register(requestRoutes, { node });
    },
    { prefix: '/v1' },
  );
  await app.register(wellKnownRoutes, { node });
  await app.register(consoleRoutes, options.consoleDir ? { dir: options.consoleDir } : {});
  return app;
}
