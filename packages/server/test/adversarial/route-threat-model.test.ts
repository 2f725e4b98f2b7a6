import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../test-server.js';
import { routeKey, sweptRoutes } from './adversarial-support.js';

// Every route must say, in docs/security-model.md, who may call it, what it
// can change and what it can make custos send out: a route added without a
// line there fails here. The routes come from the app itself.

const doc = readFileSync(join(import.meta.dirname, '../../../../docs/security-model.md'), 'utf8');
// Only the table of this section: other sections may hold tables of routes too.
const from = doc.indexOf('## Per-route threat model');
const next = doc.indexOf('\n## ', from + 1);
const section = doc.slice(from, next === -1 ? undefined : next);
const documented = new Map(
  [...section.matchAll(/^\| `([A-Z]+ [^`]+)` \|(.*)\|\s*$/gm)].map((m) => [
    m[1] as string,
    (m[2] as string).split('|'),
  ]),
);

describe('the per-route threat model', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer('sqlite');
  });
  afterAll(async () => {
    await s?.close();
  });

  it('has a line for every registered route, with who may call it, what it changes and what it sends out', () => {
    const routes = sweptRoutes(s.app.routeTable).map(routeKey);
    expect(routes.length).toBeGreaterThan(50);
    const missing = routes.filter((route) => !documented.has(route));
    expect(missing, 'routes without a line in docs/security-model.md').toEqual([]);
    for (const route of routes) {
      const cells = documented.get(route) as string[];
      expect(cells.length, route).toBe(3);
      for (const cell of cells) expect(cell.trim(), route).not.toBe('');
    }
  });

  it('names only routes that exist (a removed route loses its line)', () => {
    const routes = new Set(sweptRoutes(s.app.routeTable).map(routeKey));
    expect([...documented.keys()].filter((line) => !routes.has(line))).toEqual([]);
  });

  it('marks exactly the public routes as public', () => {
    const publicRoutes = sweptRoutes(s.app.routeTable)
      .filter((r) => r.access?.kind === 'public')
      .map(routeKey)
      .sort();
    const documentedPublic = [...documented]
      .filter(([, cells]) => /^\s*public\b/.test(cells[0] as string))
      .map(([route]) => route)
      .sort();
    expect(documentedPublic).toEqual(publicRoutes);
  });
});
