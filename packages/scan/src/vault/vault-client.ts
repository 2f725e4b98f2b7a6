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
