import type { VaultFingerprint, VaultFingerprints } from './vault-fingerprints.js';

/** Where and as whom to ask for fingerprints (`CUSTOS_ADDR`, `CUSTOS_TOKEN`). */
export interface VaultClientOptions {
  readonly addr: string;
  readonly token: string;
  /** Injected for tests; defaults to the global fetch. */
  readonly fetch?: typeof fetch;
}

/** The vault could not be asked, or answered something else than the contract. */
export class VaultFetchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'VaultFetchError';
  }
}

/**
 * Fetches the keyed hashes of every secret field the token may read. The
 * values themselves never leave the server; the token goes only in the
 * Authorization header and never into an error message.
 */
export async function fetchVaultFingerprints(options: VaultClientOptions): Promise<VaultFingerprints> {
  const doFetch = options.fetch ?? fetch;
  const url = `${options.addr.replace(/\/+$/, '')}/v1/scan/fingerprints`;
  let res: Response;
  try {
    res = await doFetch(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${options.token}`, 'content-type': 'application/json' },
      body: '{}',
    });
  } catch {
    throw new VaultFetchError(`could not reach ${url}`);
  }
  if (!res.ok) throw new VaultFetchError(`${url} answered HTTP ${res.status}`);
  const body = (await res.json().catch(() => undefined)) as Record<string, unknown> | undefined;
  if (
    body?.algorithm !== 'hmac-sha256' ||
    typeof body.key !== 'string' ||
    typeof body.min_length !== 'number' ||
    !Array.isArray(body.fingerprints)
  ) {
    throw new VaultFetchError(`${url} answered an unexpected document`);
  }
  const byHmac = new Map<string, VaultFingerprint>();
  for (const f of body.fingerprints as unknown[]) {
    const e = f as Partial<VaultFingerprint>;
    if (typeof e?.hmac !== 'string' || typeof e.path !== 'string' || typeof e.field !== 'string') continue;
    byHmac.set(e.hmac.toLowerCase(), { path: e.path, field: e.field, version: Number(e.version ?? 0), hmac: e.hmac });
  }
  return { key: Buffer.from(body.key, 'base64url'), minLength: Math.max(1, body.min_length), byHmac };
}

/** One stored secret found by fingerprint, as reported back: where it is stored, never its value. */
export interface VaultMatch {
  readonly path: string;
  readonly field: string;
  readonly version: number;
}

/**
 * Tells the server which stored secrets were found (`POST
 * /v1/scan/matches`): each is recorded in its audit trail, where the anomaly
 * rules judge it — a stored secret turning up in files or output is worth an
 * operator's look, and a honeytoken's is an alarm. Paths and field names
 * only, never a value. Every match is reported: the client cannot tell a
 * honeytoken from any other secret, and the server answers the same either
 * way. Sent in batches of 100.
 */
export async function reportVaultMatches(
  options: VaultClientOptions & { readonly source: 'scan' | 'redact'; readonly matches: readonly VaultMatch[] },
): Promise<void> {
  const doFetch = options.fetch ?? fetch;
  const url = `${options.addr.replace(/\/+$/, '')}/v1/scan/matches`;
  for (let i = 0; i < options.matches.length; i += 100) {
    let res: Response;
    try {
      res = await doFetch(url, {
        method: 'POST',
        headers: { authorization: `Bearer ${options.token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ source: options.source, matches: options.matches.slice(i, i + 100) }),
      });
    } catch {
      throw new VaultFetchError(`could not reach ${url}`);
    }
    await res.body?.cancel();
    if (!res.ok) throw new VaultFetchError(`${url} answered HTTP ${res.status}`);
  }
}

/** The stored secret a vault rule id (`vault:PATH#FIELD`) names; undefined for any other rule. */
export function vaultMatchOf(ruleId: string, version = 0): VaultMatch | undefined {
  if (!ruleId.startsWith('vault:')) return undefined;
  const rest = ruleId.slice('vault:'.length);
  const hash = rest.lastIndexOf('#');
  if (hash <= 0) return undefined;
  return { path: rest.slice(0, hash), field: rest.slice(hash + 1), version };
}
