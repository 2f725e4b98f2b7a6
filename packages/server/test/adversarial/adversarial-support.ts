import type { EntryStore, Storage } from '@custos/core';
import type { RegisteredRoute } from '../../src/plugins/route-table.js';

/** Every write a node made to its entry store (not the audit store), as `op namespace/key`. */
export interface WriteLog {
  readonly writes: string[];
  /** Runs `fn` and returns the entry writes made while it ran. */
  during(fn: () => Promise<unknown>): Promise<string[]>;
}

/**
 * Wraps a storage so every entry write is logged: "changes nothing" then
 * means no put, putIfAbsent or delete of any entry, in a transaction or not.
 * Audit records are not counted — recording a refused request is the point.
 */
export function watchWrites(): { log: WriteLog; wrap: (storage: Storage) => Storage } {
  const writes: string[] = [];
  const watched = (entries: EntryStore): EntryStore => ({
    get: (ns, key) => entries.get(ns, key),
    list: (ns, prefix, options) => entries.list(ns, prefix, options),
    scan: (ns, prefix, options) => entries.scan(ns, prefix, options),
    listExpired: (ns, now, limit) => entries.listExpired(ns, now, limit),
    put: (ns, key, value, options) => {
      writes.push(`put ${ns}/${key}`);
      return entries.put(ns, key, value, options);
    },
    putIfAbsent: (ns, key, value, options) => {
      writes.push(`putIfAbsent ${ns}/${key}`);
      return entries.putIfAbsent(ns, key, value, options);
    },
    delete: (ns, key) => {
      writes.push(`delete ${ns}/${key}`);
      return entries.delete(ns, key);
    },
  });
  const wrap = (storage: Storage): Storage => {
    const entries = watched(storage.entries);
    // A proxy, so methods a storage gains later pass through untouched; they
    // are bound to the real object (its private fields need it).
    return new Proxy(storage, {
      get(target, property) {
        if (property === 'entries') return entries;
        if (property === 'transaction') {
          return <T>(fn: Parameters<Storage['transaction']>[0]) =>
            target.transaction((tx) => fn({ entries: watched(tx.entries), audit: tx.audit }) as Promise<T>);
        }
        const value = Reflect.get(target, property, target) as unknown;
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
  };
  return {
    wrap,
    log: {
      writes,
      async during(fn) {
        const from = writes.length;
        await fn();
        return writes.slice(from);
      },
    },
  };
}

/** Plausible values for route parameters, so a request reaches the route (and its auth hook), not a 404. */
const PARAM_VALUES: Record<string, string> = {
  id: 'tsk_AAAAAAAAAAAAAAAAAAAAAA',
  accessor: 'tac_AAAAAAAAAAAAAAAAAAAAAA',
  name: 'adv-probe',
  role: 'adv-probe',
  engine: 'adv-probe',
  archive: '1',
};

/** A concrete URL for a route pattern: `:param` (with or without a regex) and `*` filled in. */
export function concreteUrl(pattern: string): string {
  return pattern
    .replace(/:([A-Za-z0-9_]+)(\([^)]*\))?/g, (_m, name: string) => {
      if (name === 'id' && pattern.startsWith('/v1/leases/')) return 'lea_AAAAAAAAAAAAAAAAAAAAAA';
      return PARAM_VALUES[name] ?? 'kv/adv/probe';
    })
    .replace(/\*$/, 'kv/adv/probe');
}

/** `METHOD url` of a route, as the threat model and the public-route checks name it. */
export const routeKey = (route: Pick<RegisteredRoute, 'method' | 'url'>) => `${route.method} ${route.url}`;

/**
 * The routes worth sweeping: every method of every route, except the HEAD
 * twin fastify adds to each GET (it runs the GET's hooks and handler).
 */
export function sweptRoutes(table: readonly RegisteredRoute[]): RegisteredRoute[] {
  const gets = new Set(table.filter((r) => r.method === 'GET').map((r) => r.url));
  return table.filter((r) => !(r.method === 'HEAD' && gets.has(r.url)));
}

/**
 * The routes answered without a token: each is checked one by one in
 * unauthenticated-state-changes.test.ts, and a route joining this list is a
 * security decision to review.
 */
export const PUBLIC_ROUTES = [
  'GET /openapi.json',
  'GET /v1/sys/health',
  'GET /v1/sys/seal-status',
  'POST /v1/sys/init',
  'POST /v1/sys/unseal',
  'GET /v1/audit/public-keys',
  'POST /v1/auth/bootstrap/login',
  'POST /v1/oauth/token',
  'POST /v1/auth/jwt/login',
  'POST /v1/auth/aws/login',
  'GET /v1/auth/cert/ca',
  'POST /v1/auth/cert/login',
  'GET /.well-known/jwks.json',
  'GET /.well-known/oauth-authorization-server',
  // RFC 9728 metadata of registered resources: public by nature; what it
  // reveals is in docs/security-model.md (resource-audience.test.ts).
  'GET /.well-known/oauth-protected-resource/:name',
  // The console's static files: no data, no token, nothing written
  // (console-static-files.test.ts).
  'GET /ui',
  'GET /ui/',
  'GET /ui/assets/:name',
].sort();

/**
 * A subscription to `GET /v1/events` on a listening server, read as text:
 * `until(needle)` reads until the stream holds it, `stop()` hangs up.
 */
export async function openEventStream(base: string, token: string) {
  const controller = new AbortController();
  const response = await fetch(`${base}/v1/events`, {
    headers: { authorization: `Bearer ${token}` },
    signal: controller.signal,
  });
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  const state = { text: '' };
  const until = async (needle: string) => {
    while (!state.text.includes(needle)) {
      const { value, done } = await reader.read();
      if (done) break;
      state.text += new TextDecoder().decode(value);
    }
  };
  await until(': subscribed');
  return { state, until, stop: () => controller.abort() };
}
