import { type Agent, type ClientRequest, request as httpRequest, type OutgoingHttpHeaders } from 'node:http';
import { type Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { EgressFailedError, type EgressPolicy, urlPort } from './egress-policy.js';

/** What {@link openEgressRequest} opens. */
export interface EgressStreamRequest {
  method: string;
  headers: OutgoingHttpHeaders;
  /**
   * The request target sent as is (`/v1/chat?x=1`), for a caller that has
   * validated it and must not have it re-encoded by the URL parser; default
   * the URL's path and query.
   */
  path?: string;
  /** Cuts resolution short (the caller owns every later deadline). */
  signal?: AbortSignal;
  /**
   * Connections to reuse, for a caller that sends many requests to one
   * destination (an upstream). It must be dedicated to that destination:
   * a kept socket was connected to an address this policy checked for it,
   * and must never carry a request meant for anywhere else. Default: none,
   * one connection per request.
   */
  agent?: Agent | HttpsAgent;
}

/**
 * Opens a streaming HTTP(S) request through the egress policy, for callers
 * that must not buffer (the credential proxy): the same checks as
 * {@link egressFetch} — the host resolved and checked once, the socket
 * connected to that checked address (no DNS rebinding), TLS verified against
 * the URL's host name, no credentials in the URL, no connection reused
 * across destinations (no agent, or one the caller dedicates to this one) — but the caller writes the body, reads the
 * response as it arrives and sets its own timeouts. Nothing here follows a
 * redirect: a 3xx is a response like any other.
 *
 * Throws CUSTOS_ERR_EGRESS_REFUSED before anything is sent to a refused
 * destination, CUSTOS_ERR_EGRESS_FAILED when it does not resolve in time.
 */
export async function openEgressRequest(
  policy: EgressPolicy,
  url: URL,
  init: EgressStreamRequest,
): Promise<ClientRequest> {
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new EgressFailedError('Only http and https.');
  if (url.username || url.password) throw new EgressFailedError('A URL with credentials is not sent.');
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const port = urlPort(url);
  const destination = await policy.resolve(host, port, init.signal);
  if (init.signal?.aborted) throw new EgressFailedError('The call was cut off.');
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return send({
    protocol: url.protocol,
    hostname: host,
    port,
    path: init.path ?? `${url.pathname}${url.search}`,
    method: init.method,
    headers: init.headers,
    agent: init.agent ?? false,
    // The address the policy checked, whatever DNS says by now.
    lookup: (_name, options, callback) => {
      if (options.all) callback(null, [destination]);
      else callback(null, destination.address, destination.family);
    },
  });
}
