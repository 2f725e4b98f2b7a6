import { isIP } from 'node:net';
import type { CustosNode } from '@custos/core';

const RENEW_BEFORE_MS = 86_400_000;
const MAX_CACHED = 256;

/**
 * Server certificates for intercepted hosts (forward mode), issued by
 * custos's internal CA — the one `custos ca export` prints and a client
 * trusts to let custos intercept. Only ever issued for a host some upstream
 * is bound to (the CONNECT handler checks that first), kept in memory only
 * (the CA's server-certificate lifetime, 30 days), reissued a day before
 * they expire. The private keys never
 * leave this process.
 */
export class ProxyCerts {
  readonly #node: CustosNode;
  readonly #cache = new Map<string, Promise<{ key: string; cert: string; notAfter: number }>>();

  constructor(node: CustosNode) {
    this.#node = node;
  }

  async for(host: string): Promise<{ key: string; cert: string }> {
    const cached = this.#cache.get(host);
    if (cached) {
      const issued = await cached.catch(() => undefined);
      if (issued && issued.notAfter - RENEW_BEFORE_MS > Date.now()) return issued;
      this.#cache.delete(host);
    }
    if (this.#cache.size >= MAX_CACHED) this.#cache.clear();
    const ip = isIP(host) !== 0;
    const issuing = this.#node
      .services()
      .certs.issueServerCertificate({ dnsNames: ip ? [] : [host], ipAddresses: ip ? [host] : [] })
      .then((c) => ({ key: c.keyPem, cert: c.certPem, notAfter: c.notAfter.getTime() }));
    this.#cache.set(host, issuing);
    return issuing;
  }
}
