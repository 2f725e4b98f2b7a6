import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isCustosError } from '../errors/index.js';
import { EgressFailedError, type EgressPolicy, urlPort } from './egress-policy.js';

/** What {@link egressFetch} sends. */
export interface EgressRequest {
  method?: string;
  headers?: Record<string, string> | Headers;
  body?: string | Uint8Array;
  /** Cut the call off early (the policy's own deadline always applies too). */
  signal?: AbortSignal;
  /**
   * CA certificates (PEM) trusted *instead of* the system's for this https
   * call: a destination an operator configured behind a private CA (an
   * upstream's or a source's `tls_ca`). The certificate is still checked
   * against the URL's host name.
   */
  ca?: string;
}

/**
 * An HTTP(S) request through the egress policy — the one way custos's own
 * code calls out over HTTP (webhooks, JWKS; later alert sinks, upstreams).
 *
 * - The host is resolved and checked once by the policy, and the socket
 *   connects to that checked address (a pinned `lookup`): no DNS rebinding.
 *   TLS still verifies the certificate against the URL's host name.
 * - Redirects are never followed: a 3xx comes back as is, and callers treat
 *   anything but their expected status as failure. A credential sent to an
 *   allowed host therefore never travels on to wherever it points.
 * - One deadline (the policy's `timeoutMs`, or `signal`) covers resolution,
 *   connection, TLS, the answer and its body; the body is read up to the
 *   policy's `maxResponseBytes`.
 * - URLs with credentials (`https://user:pass@…`) are refused, like `fetch`.
 *
 * Resolves to a standard `Response` (status, headers, the body already read),
 * so it can stand in for `fetch` (jose's `customFetch`); throws
 * CUSTOS_ERR_EGRESS_REFUSED or CUSTOS_ERR_EGRESS_FAILED.
 *
 * @example
 * const response = await egressFetch(policy, 'https://hooks.example/rotate', {
 *   method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(payload),
 * });
 */
export async function egressFetch(
  policy: EgressPolicy,
  target: string | URL,
  init: EgressRequest = {},
): Promise<Response> {
  const url = new URL(target);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new EgressFailedError('Only http and https.');
  if (url.username || url.password) throw new EgressFailedError('A URL with credentials is not sent.');
  const deadline = AbortSignal.timeout(policy.timeoutMs);
  const signal = init.signal ? AbortSignal.any([init.signal, deadline]) : deadline;
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const port = urlPort(url);
  const destination = await policy.resolve(host, port, signal);
  if (signal.aborted) throw new EgressFailedError('The call timed out.');
  const headers: Record<string, string> = {};
  new Headers(init.headers).forEach((value, key) => {
    headers[key] = value;
  });
  const body = typeof init.body === 'string' ? Buffer.from(init.body) : init.body;
  if (body) headers['content-length'] = String(body.byteLength);
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise<Response>((resolve, reject) => {
    let settled = false;
    const fail = (error: unknown) => {
      if (settled) return;
      settled = true;
      request.destroy();
      reject(isCustosError(error) ? error : new EgressFailedError('The destination did not answer.'));
    };
    const onAbort = () => fail(new EgressFailedError('The call timed out.'));
    signal.addEventListener('abort', onAbort, { once: true });
    const request = send(
      {
        protocol: url.protocol,
        hostname: host,
        port,
        path: `${url.pathname}${url.search}`,
        method: init.method ?? 'GET',
        headers,
        agent: false,
        ...(init.ca && url.protocol === 'https:' ? { ca: init.ca } : {}),
        // The address the policy checked, whatever DNS says by now.
        lookup: (_name, options, callback) => {
          if (options.all) callback(null, [destination]);
          else callback(null, destination.address, destination.family);
        },
      },
      (response) => {
        readBody(response, policy.maxResponseBytes)
          .then((bytes) => toResponse(response, bytes))
          .then((answer) => {
            if (settled) return;
            settled = true;
            signal.removeEventListener('abort', onAbort);
            resolve(answer);
          }, fail);
      },
    );
    request.on('error', fail);
    request.end(body);
  });
}

async function readBody(response: IncomingMessage, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of response) {
    size += (chunk as Buffer).byteLength;
    if (size > limit) {
      response.destroy();
      throw new EgressFailedError(`The answer is larger than ${limit} bytes.`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

function toResponse(response: IncomingMessage, bytes: Buffer): Response {
  const status = response.statusCode ?? 0;
  if (status < 200 || status > 599) throw new EgressFailedError('The answer has no valid status.');
  const headers = new Headers();
  const raw = response.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    try {
      headers.append(raw[i] as string, raw[i + 1] as string);
    } catch {
      // A header the Fetch API refuses is not one a caller needs.
    }
  }
  const bodyless = status === 204 || status === 205 || status === 304 || bytes.byteLength === 0;
  return new Response(bodyless ? null : bytes, { status, headers });
}
