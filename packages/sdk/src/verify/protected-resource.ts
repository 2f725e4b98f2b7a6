import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  CustosProtocolError,
  CustosSdkError,
  CustosTimeoutError,
  CustosUnreachableError,
  CustosUsageError,
} from '../custos-errors.js';
import { readBounded } from './bounded-body.js';

/** Options of {@link protectedResourceMetadata}. */
export interface ProtectedResourceMetadataOptions {
  /** custos's issuer URL: the document's `authorization_servers` must name it. */
  readonly issuer: string;
  /** Where custos answers, when not at its issuer URL (as `jwksUrl` for verification). Default `issuer`. */
  readonly address?: string;
  /** The resource's name in custos (`custos resource add NAME`). */
  readonly name: string;
  /**
   * This resource's identifier, exactly as custos stores it (`custos
   * resource show NAME`): the document's `resource` must equal it, and it
   * is the `audience` to verify tokens with.
   */
  readonly resource: string;
  /** How long a fetched document is served before it is fetched again. Default 60 s. */
  readonly maxAgeMs?: number;
  /** Per fetch. Default 5 s. */
  readonly timeoutMs?: number;
}

/** The RFC 9728 document custos serves for a registered resource. */
export interface ProtectedResourceDocument {
  readonly resource: string;
  readonly authorization_servers: readonly string[];
  readonly scopes_supported?: readonly string[];
  readonly bearer_methods_supported: readonly string[];
  readonly resource_name?: string;
}

/** Serves custos's metadata document of one resource (see {@link protectedResourceMetadata}). */
export interface ProtectedResourceMetadata {
  /** Where a client finds it on this resource server (RFC 9728 §3.1): the URL for `custosAuth`'s `resourceMetadata`. */
  readonly url: string;
  /** The document, from cache or fetched from custos. */
  document(): Promise<ProtectedResourceDocument>;
  /** A Node / Express / Connect handler answering with the document (503 while custos cannot be reached). */
  handler(request: IncomingMessage, response: ServerResponse): void;
}

const MAX_DOCUMENT_BYTES = 64 * 1024;

/**
 * The RFC 9728 §3.1 well-known URL of a resource's metadata: the path
 * `/.well-known/oauth-protected-resource` inserted between the host and the
 * resource's own path (`https://mcp.example.com/mcp` →
 * `https://mcp.example.com/.well-known/oauth-protected-resource/mcp`).
 */
export function protectedResourceMetadataUrl(resource: string): string {
  let url: URL;
  try {
    url = new URL(resource);
  } catch {
    throw new CustosUsageError('resource: an absolute URL');
  }
  if (url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
    throw new CustosUsageError('resource: no query, fragment or userinfo');
  }
  const path = url.pathname === '/' ? '' : url.pathname;
  return `${url.origin}/.well-known/oauth-protected-resource${path}`;
}

/**
 * Lets a resource server serve its RFC 9728 metadata from custos: the
 * document custos publishes for the resource registered as `name`, fetched
 * from `${issuer}/.well-known/oauth-protected-resource/${name}` and kept for
 * `maxAgeMs`. Serve it at {@link ProtectedResourceMetadata.url} and pass that
 * URL to `custosAuth({ resourceMetadata })`, so a client that gets a 401
 * finds custos as the authorization server (RFC 9728 §5).
 *
 * The document's `resource` must be exactly `resource` and its
 * `authorization_servers` must name `issuer`: a server that would advertise
 * another resource's metadata, or another issuer, answers 503 instead
 * (`CustosProtocolError`), since a client would then send its tokens to
 * the wrong place. A failed refetch keeps the last good document; redirects
 * are not followed; the answer is capped at 64 KiB.
 *
 * @example
 * ```ts
 * const RESOURCE = 'https://mcp.example.com/mcp';
 * const metadata = protectedResourceMetadata({ issuer, name: 'github-mcp', resource: RESOURCE });
 * app.get(new URL(metadata.url).pathname, metadata.handler);                   // Express
 * fastify.get(new URL(metadata.url).pathname, () => metadata.document());      // fastify
 * app.use(custosAuth({ issuer, audience: RESOURCE, resourceMetadata: metadata.url }));
 * ```
 */
export function protectedResourceMetadata(options: ProtectedResourceMetadataOptions): ProtectedResourceMetadata {
  const issuer = typeof options.issuer === 'string' ? options.issuer.replace(/\/+$/, '') : '';
  if (!/^https?:\/\//.test(issuer)) throw new CustosUsageError('issuer: custos’s issuer URL is required');
  if (typeof options.name !== 'string' || !/^[a-z0-9][a-z0-9_-]{0,62}$/.test(options.name)) {
    throw new CustosUsageError('name: the resource’s name in custos');
  }
  const url = protectedResourceMetadataUrl(options.resource);
  const address = (options.address ?? issuer).replace(/\/+$/, '');
  if (!/^https?:\/\//.test(address)) throw new CustosUsageError('address: an http(s) URL');
  const source = `${address}/.well-known/oauth-protected-resource/${options.name}`;
  const maxAgeMs = options.maxAgeMs ?? 60_000;
  const timeoutMs = options.timeoutMs ?? 5_000;
  let cached: { document: ProtectedResourceDocument; at: number } | undefined;
  let inFlight: Promise<ProtectedResourceDocument> | undefined;

  const fetchDocument = async (): Promise<ProtectedResourceDocument> => {
    const signal = AbortSignal.timeout(timeoutMs);
    let response: Response;
    let text: string;
    try {
      response = await fetch(source, { headers: { accept: 'application/json' }, redirect: 'error', signal });
      text = await readBounded(response, MAX_DOCUMENT_BYTES, 'resource metadata');
    } catch (cause) {
      if (cause instanceof CustosProtocolError) throw cause;
      if (signal.aborted) throw new CustosTimeoutError(timeoutMs);
      throw new CustosUnreachableError(new URL(source).origin, { cause });
    }
    if (!response.ok) throw new CustosProtocolError(`resource metadata answered ${response.status}`);
    let body: Partial<ProtectedResourceDocument>;
    try {
      body = JSON.parse(text) as Partial<ProtectedResourceDocument>;
    } catch {
      throw new CustosProtocolError('resource metadata is not JSON');
    }
    if (body?.resource !== options.resource) throw new CustosProtocolError('resource metadata names another resource');
    if (!Array.isArray(body.authorization_servers) || !body.authorization_servers.includes(issuer)) {
      throw new CustosProtocolError('resource metadata names another authorization server');
    }
    return body as ProtectedResourceDocument;
  };

  const document = async (): Promise<ProtectedResourceDocument> => {
    if (cached && performance.now() - cached.at < maxAgeMs) return cached.document;
    inFlight ??= fetchDocument().finally(() => {
      inFlight = undefined;
    });
    try {
      const fresh = await inFlight;
      cached = { document: fresh, at: performance.now() };
      return fresh;
    } catch (error) {
      if (cached) return cached.document; // the last good one, until custos answers again
      throw error;
    }
  };

  const handler = (_request: IncomingMessage, response: ServerResponse): void => {
    document().then(
      (body) => {
        response.statusCode = 200;
        response.setHeader('content-type', 'application/json; charset=utf-8');
        response.setHeader('cache-control', `public, max-age=${Math.floor(maxAgeMs / 1000)}`);
        response.end(JSON.stringify(body));
      },
      (error: unknown) => {
        response.statusCode = 503;
        response.setHeader('content-type', 'application/json; charset=utf-8');
        response.setHeader('cache-control', 'no-store');
        const code = error instanceof CustosSdkError ? error.code : 'CUSTOS_ERR_UNREACHABLE';
        response.end(JSON.stringify({ error: { code, message: 'The resource metadata is not available.' } }));
      },
    );
  };

  return { url, document, handler };
}
