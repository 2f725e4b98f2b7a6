import { isLoopbackHost } from '../egress/loopback-host.js';
import { CustosError } from '../errors/index.js';
import { validateTlsCa } from '../leases/engine-tls-ca.js';
import type { SourceFormat, SourceInput, SourceRecord } from './source-types.js';

const REGION = /^[a-z]{2}(?:-[a-z]+)+-\d{1,2}$/;
/** AWS secret names: letters, digits and /_+=.@- ; the prefix must be a plain start of one. */
const AWS_PREFIX = /^[A-Za-z0-9/_+=.@-]{0,256}$/;
const FORMATS: readonly SourceFormat[] = ['auto', 'json', 'raw'];
export const DEFAULT_CACHE_TTL_SECONDS = 30;
export const MAX_CACHE_TTL_SECONDS = 300;
export const DEFAULT_SOURCE_TIMEOUT_MS = 5_000;

const invalid = (detail: string) => new CustosError('CUSTOS_ERR_SOURCE_INVALID', detail);

/**
 * Validates a source's configuration into what is stored. There is no field
 * for a cloud credential, on purpose: custos reaches the cloud with its own
 * identity from the SDK's default chain (environment, shared config,
 * instance role or managed identity), so no access key or client secret is
 * ever in custos's configuration, its API or its audit trail.
 */
export function validateSourceInput(
  name: string,
  input: SourceInput,
  time: string,
  created?: string,
): Omit<SourceRecord, never> {
  const format = input.format ?? 'auto';
  if (!FORMATS.includes(format)) throw invalid('format is auto, json or raw.');
  const ttl = input.cache_ttl_seconds ?? DEFAULT_CACHE_TTL_SECONDS;
  if (!Number.isInteger(ttl) || ttl < 0 || ttl > MAX_CACHE_TTL_SECONDS) {
    throw invalid(`cache_ttl_seconds is 0–${MAX_CACHE_TTL_SECONDS}.`);
  }
  const timeout = input.timeout_ms ?? DEFAULT_SOURCE_TIMEOUT_MS;
  if (!Number.isInteger(timeout) || timeout < 500 || timeout > 30_000) throw invalid('timeout_ms is 500–30000.');
  const tlsCa = input.tls_ca === undefined ? undefined : validateTlsCa(input.tls_ca);
  const common = {
    name,
    format,
    cache_ttl_seconds: ttl,
    timeout_ms: timeout,
    ...(tlsCa ? { tls_ca: tlsCa } : {}),
    created_time: created ?? time,
    updated_time: time,
  };
  if (input.type === 'aws-secrets-manager') {
    if (input.vault_url !== undefined) throw invalid('vault_url is for azure-key-vault.');
    if (typeof input.region !== 'string' || !REGION.test(input.region)) throw invalid('region is an AWS region.');
    const prefix = input.prefix ?? '';
    if (typeof prefix !== 'string' || !AWS_PREFIX.test(prefix))
      throw invalid('prefix uses AWS secret-name characters.');
    const endpoint = input.endpoint === undefined ? undefined : validateEndpoint(input.endpoint);
    if (tlsCa && !endpoint?.startsWith('https:')) throw invalid('tls_ca needs an https endpoint.');
    return { ...common, type: input.type, region: input.region, prefix, ...(endpoint ? { endpoint } : {}) };
  }
  if (input.type === 'azure-key-vault') {
    if (input.region !== undefined || input.prefix !== undefined || input.endpoint !== undefined) {
      throw invalid('region, prefix and endpoint are for aws-secrets-manager.');
    }
    const vaultUrl = validateEndpoint(input.vault_url ?? '');
    // Key Vault's bearer challenge policy sends tokens only over TLS.
    if (!vaultUrl.startsWith('https:')) throw invalid('vault_url must be https.');
    return { ...common, type: input.type, prefix: '', vault_url: vaultUrl };
  }
  throw invalid('type is aws-secrets-manager or azure-key-vault.');
}

/**
 * An endpoint: https, or http only to a loopback host (secret values come
 * back in the answer, so they never cross a network in clear); no
 * credentials, query, fragment or path beyond `/`. Where it may point is
 * the egress policy's decision, checked when the source is written and on
 * every call.
 */
function validateEndpoint(text: string): string {
  if (typeof text !== 'string' || text.length === 0 || text.length > 2048 || /[\s\\]/.test(text)) {
    throw invalid('The endpoint is an absolute URL.');
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw invalid('The endpoint is an absolute URL.');
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopbackHost(url.hostname))) {
    throw invalid('The endpoint must use https (http only to a loopback host).');
  }
  if (url.username || url.password || url.search || url.hash || text.includes('@')) {
    throw invalid('The endpoint has no credentials, query or fragment.');
  }
  if (url.pathname !== '/') throw invalid('The endpoint has no path.');
  return `${url.protocol}//${url.host}`;
}
