import { createHash } from 'node:crypto';
import { createRedactor, type Redactor } from '@custos/redact';

const MAX_CACHED = 64;

/**
 * Redactors for proxied responses, one per (upstream, injected value):
 * building one encodes the value in every form the redactor knows (base64,
 * URL-encoding, JSON escapes, …) and compiles every detector, which is too
 * slow to do per request. Keyed by a hash of the value so the key itself
 * holds nothing; a rotated value gets a new redactor. The map is cleared
 * when full (a few dozen upstreams at most in practice).
 */
export class ProxyRedactors {
  readonly #cache = new Map<string, Redactor>();

  for(upstream: string, value: string): Redactor {
    const key = createHash('sha256').update(upstream).update('\0').update(value).digest('base64url');
    let redactor = this.#cache.get(key);
    if (!redactor) {
      // The marker names the upstream (not secret), so a reader sees which key was hidden.
      redactor = createRedactor({
        secrets: [{ name: `upstream:${upstream}`, value }],
        detectors: 'all',
        minSecretLength: 1,
      });
      if (this.#cache.size >= MAX_CACHED) this.#cache.clear();
      this.#cache.set(key, redactor);
    }
    return redactor;
  }
}
