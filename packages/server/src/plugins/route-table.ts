import type { FastifyInstance } from 'fastify';
import type { RouteAccess } from '../route-config.js';

/** One registered route, as the auth plugin will see it. */
export interface RegisteredRoute {
  readonly method: string;
  /** The full URL pattern, prefix included (`/v1/tasks/:id`). */
  readonly url: string;
  readonly access: RouteAccess | undefined;
  readonly whileSealed: boolean;
}

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * Every route of the application, in registration order. It is what the
     * adversarial suite sweeps and what the per-route threat model in
     * docs/security-model.md must cover, so a route added later is checked
     * without anyone remembering to list it.
     */
    readonly routeTable: readonly RegisteredRoute[];
  }
}

/**
 * Records every route as it is registered (an `onRoute` hook on the root
 * instance is inherited by every plugin registered after it). Register it
 * before any route.
 */
export function registerRouteTable(app: FastifyInstance): void {
  const routes: RegisteredRoute[] = [];
  app.decorate('routeTable', routes);
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) {
      routes.push({
        method,
        url: route.url,
        access: route.config?.access,
        whileSealed: route.config?.whileSealed === true,
      });
    }
  });
}
