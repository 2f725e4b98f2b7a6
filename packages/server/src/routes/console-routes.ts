import { NotFoundError } from '@custos/core';
import type { FastifyInstance } from 'fastify';
import { type ConsoleAssets, loadConsoleAssets } from '../console/console-assets.js';

/** Hashed assets never change under their name: browsers may keep them for a year. */
const ASSET_MAX_AGE_SEC = 365 * 24 * 3600;

/**
 * `/ui`: the console (docs/console.md), static files built at install time.
 *
 * Public, because the files hold no secret and no state: every page loads its
 * data from the API with the operator's token, which the page keeps in memory
 * or `sessionStorage` and sends as `Authorization: Bearer` — never in a
 * cookie, so no other site can make the browser use it (CSRF is impossible by
 * construction: custos does not read cookies at all). Unaudited, like the
 * OpenAPI document: loading a page changes nothing and reads nothing stored,
 * and four lines per page load would only bury the trail; every API call the
 * page then makes is audited as usual.
 *
 * `config.console` makes the response-headers plugin send the console's
 * strict Content-Security-Policy (no inline script or style, nothing from
 * another origin, no framing). Every URL in the page is relative and the
 * page computes the API base from its own location, so the console works
 * behind a reverse proxy that mounts custos under a path prefix.
 */
export async function consoleRoutes(app: FastifyInstance, options: { dir?: string }): Promise<void> {
  const built: ConsoleAssets | undefined = loadConsoleAssets(options.dir);
  const missing = () => new NotFoundError('The console is not built (npm run build -w @custos/console).');
  const config = { access: { kind: 'public' }, unaudited: true, console: true } as const;

  app.get('/ui', {
    config,
    schema: { hide: true },
    // Relative, so a path prefix in front (`/custos/ui` → `/custos/ui/`) is kept.
    handler: async (_request, reply) => reply.redirect('ui/', 308),
  });

  app.get('/ui/', {
    config,
    schema: { hide: true },
    handler: async (_request, reply) => {
      if (!built) throw missing();
      return reply.type(built.index.contentType).send(built.index.body);
    },
  });

  app.get<{ Params: { name: string } }>('/ui/assets/:name', {
    config: { ...config, publicCache: { maxAgeSec: ASSET_MAX_AGE_SEC } },
    schema: { hide: true },
    handler: async (request, reply) => {
      // Only a file the build wrote, looked up by exact name in memory: no path ever reaches the disk.
      const asset = built?.assets.get(request.params.name);
      if (!asset) throw built ? new NotFoundError() : missing();
      return reply.type(asset.contentType).send(asset.body);
    },
  });
}
