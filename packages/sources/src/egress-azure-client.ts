import type { SecretClientOptions } from '@azure/keyvault-secrets';
import { type EgressPolicy, egressFetch } from '@custos/core';

type HttpClient = NonNullable<SecretClientOptions['httpClient']>;
type PipelineRequest = Parameters<HttpClient['sendRequest']>[0];
type PipelineResponse = Awaited<ReturnType<HttpClient['sendRequest']>>;
type HttpHeaders = PipelineResponse['headers'];

/**
 * An Azure SDK HttpClient that sends every Key Vault request through
 * custos's egress policy ({@link egressFetch}), with the same guarantees as
 * the AWS handler: checked and pinned address, no redirects, one deadline,
 * a bounded answer. The bearer challenge and token are the SDK's, unchanged.
 */
export function egressAzureClient(egress: EgressPolicy, ca?: string): HttpClient {
  return {
    async sendRequest(request: PipelineRequest): Promise<PipelineResponse> {
      const body = typeof request.body === 'string' ? request.body : undefined;
      const response = await egressFetch(egress, request.url, {
        method: request.method,
        headers: request.headers.toJSON() as Record<string, string>,
        ...(body !== undefined ? { body } : {}),
        ...(request.abortSignal instanceof AbortSignal ? { signal: request.abortSignal } : {}),
        ...(ca ? { ca } : {}),
      });
      const headers = new Headers(response.headers);
      return { request, status: response.status, headers: azureHeaders(headers), bodyAsText: await response.text() };
    },
  };
}

/** The SDK's HttpHeaders over a Fetch Headers (both case-insensitive). */
function azureHeaders(headers: Headers): HttpHeaders {
  const api: HttpHeaders = {
    get: (name) => headers.get(name) ?? undefined,
    has: (name) => headers.has(name),
    set: (name, value) => headers.set(name, String(value)),
    delete: (name) => headers.delete(name),
    toJSON: () => Object.fromEntries(headers.entries()),
    [Symbol.iterator]: () => headers.entries(),
  };
  return api;
}
