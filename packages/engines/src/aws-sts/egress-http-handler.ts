import { type EgressPolicy, egressFetch } from '@custos/core';

/** The parts of a Smithy `HttpRequest` the handler reads. */
interface SdkHttpRequest {
  method: string;
  protocol: string;
  hostname: string;
  port?: number;
  path: string;
  query?: Record<string, string | string[] | null>;
  headers: Record<string, string>;
  body?: unknown;
}

/**
 * An AWS SDK v3 request handler that sends every call through custos's
 * egress policy ({@link egressFetch}): the endpoint's address is checked
 * (loopback, link-local and private ranges refused unless allowed), the
 * socket is pinned to the checked address, redirects are never followed and
 * one deadline covers the call. Without it the SDK would open its own
 * sockets wherever the endpoint points — the one outbound path in custos that
 * would skip the policy.
 *
 * Only the engine's API calls go through it; the SDK's credential providers
 * (instance metadata, container credentials) keep their own transport, since
 * their link-local addresses are theirs by design and never caller-chosen.
 */
export class EgressHttpHandler {
  readonly #egress: EgressPolicy;

  constructor(egress: EgressPolicy) {
    this.#egress = egress;
  }

  async handle(
    request: SdkHttpRequest,
    options: { abortSignal?: unknown } = {},
  ): Promise<{ response: { statusCode: number; reason?: string; headers: Record<string, string>; body: Uint8Array } }> {
    const query = new URLSearchParams();
    for (const [key, value] of Object.entries(request.query ?? {})) {
      if (value === null) query.append(key, '');
      else for (const v of Array.isArray(value) ? value : [value]) query.append(key, v);
    }
    const search = query.toString();
    const port = request.port ? `:${request.port}` : '';
    const url = `${request.protocol}//${request.hostname}${port}${request.path}${search ? `?${search}` : ''}`;
    const headers = { ...request.headers };
    // egressFetch sets the length of what it sends; Host follows the URL.
    delete headers['content-length'];
    delete headers.host;
    const body = request.body;
    const response = await egressFetch(this.#egress, url, {
      method: request.method,
      headers,
      ...(typeof body === 'string' || body instanceof Uint8Array ? { body } : {}),
      ...(options.abortSignal ? { signal: options.abortSignal as AbortSignal } : {}),
    });
    const responseHeaders: Record<string, string> = {};
    response.headers.forEach((value, key) => {
      responseHeaders[key] = value;
    });
    return {
      response: {
        statusCode: response.status,
        reason: response.statusText,
        headers: responseHeaders,
        body: new Uint8Array(await response.arrayBuffer()),
      },
    };
  }

  updateHttpClientConfig(): void {}

  httpHandlerConfigs(): Record<string, never> {
    return {};
  }

  destroy(): void {}
}
