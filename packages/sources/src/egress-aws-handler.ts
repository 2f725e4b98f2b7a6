import { type EgressPolicy, egressFetch } from '@custos/core';

/** The parts of a smithy HttpRequest the handler reads (structural: no dependency on smithy's packages). */
interface SmithyRequest {
  protocol: string;
  hostname: string;
  port?: number;
  method: string;
  path: string;
  query?: Record<string, string | string[] | null>;
  headers: Record<string, string>;
  body?: unknown;
}

/**
 * An AWS SDK v3 request handler that sends every request through custos's
 * egress policy ({@link egressFetch}): the endpoint's address is checked
 * (no metadata service, loopback or private range unless an operator
 * allowed it), the socket connects to the checked address (no DNS
 * rebinding), redirects are never followed, one deadline covers the call
 * and the answer is bounded in size. The SDK signs the request before it
 * gets here, so SigV4 is unchanged.
 */
export function egressAwsHandler(egress: EgressPolicy, ca?: string) {
  return {
    metadata: { handlerProtocol: 'http/1.1' },
    async handle(request: SmithyRequest, options?: { abortSignal?: unknown }) {
      const query = new URLSearchParams();
      for (const [k, v] of Object.entries(request.query ?? {})) {
        for (const item of Array.isArray(v) ? v : [v]) if (item !== null) query.append(k, item);
      }
      const search = query.size > 0 ? `?${query.toString()}` : '';
      const port = request.port ? `:${request.port}` : '';
      const url = `${request.protocol}//${request.hostname}${port}${request.path}${search}`;
      const body = typeof request.body === 'string' || request.body instanceof Uint8Array ? request.body : undefined;
      const response = await egressFetch(egress, url, {
        method: request.method,
        headers: request.headers,
        ...(body !== undefined ? { body } : {}),
        ...(options?.abortSignal instanceof AbortSignal ? { signal: options.abortSignal } : {}),
        ...(ca ? { ca } : {}),
      });
      const headers: Record<string, string> = {};
      response.headers.forEach((value, key) => {
        headers[key] = value;
      });
      const bytes = new Uint8Array(await response.arrayBuffer());
      return { response: { statusCode: response.status, reason: response.statusText, headers, body: bytes } };
    },
    updateHttpClientConfig() {},
    httpHandlerConfigs() {
      return {};
    },
    destroy() {},
  };
}
