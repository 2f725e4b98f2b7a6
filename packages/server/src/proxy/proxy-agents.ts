import { Agent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { UpstreamRecord } from '@custos/core';

/**
 * Kept-alive connections, one pool per upstream configuration. Opening a
 * connection per call costs a handshake (and a TLS one for https) and
 * leaves a TIME_WAIT port behind each time; a pool per upstream avoids both.
 *
 * Why a pool never crosses destinations: it is keyed by the upstream's name,
 * base URL and allow-hosts, so a socket was opened to an address the egress
 * policy checked *for this upstream* and only ever carries this upstream's
 * calls. When an upstream is rewritten its old pool is closed; a call that
 * was cut (timeout, reset, too large) destroys its socket rather than
 * returning it to the pool.
 */
export class ProxyAgents {
  readonly #pools = new Map<string, { key: string; agent: Agent | HttpsAgent }>();
  readonly #idleMs: number;

  constructor(idleMs: number) {
    this.#idleMs = idleMs;
  }

  for(upstream: UpstreamRecord): Agent | HttpsAgent {
    const key = `${upstream.base_url}\n${upstream.allow_hosts.join(',')}\n${upstream.updated_time}\n${upstream.tls_ca ?? ''}`;
    const pool = this.#pools.get(upstream.name);
    if (pool?.key === key) return pool.agent;
    pool?.agent.destroy();
    const options = { keepAlive: true, maxSockets: 256, maxFreeSockets: 32, timeout: this.#idleMs };
    // An upstream's own CA replaces the system's trust store for it; the
    // certificate is still checked against the base URL's host name.
    const agent = upstream.base_url.startsWith('https:')
      ? new HttpsAgent({ ...options, ...(upstream.tls_ca ? { ca: upstream.tls_ca } : {}) })
      : new Agent(options);
    this.#pools.set(upstream.name, { key, agent });
    return agent;
  }

  /** Closes every pool (on shutdown). */
  close(): void {
    for (const { agent } of this.#pools.values()) agent.destroy();
    this.#pools.clear();
  }
}
