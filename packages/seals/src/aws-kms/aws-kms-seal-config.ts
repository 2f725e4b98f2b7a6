import { CustosError } from '@custos/core';

/** `seal: { type: awskms, key_id, region, endpoint? }` as custos reads it. Never a credential. */
export interface AwsKmsSealConfig {
  /** Key id, key ARN, alias name (`alias/custos`) or alias ARN. */
  readonly keyId: string;
  readonly region: string;
  /** An https endpoint (a VPC endpoint, a FIPS endpoint); default the SDK's regional endpoint. */
  readonly endpoint?: string;
  /** Names the cluster in the encryption context; default `custos`. */
  readonly cluster?: string;
}

const KEY_ID =
  /^(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32}|alias\/[A-Za-z0-9/_-]{1,250}|arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(?:key\/[A-Za-z0-9-]{1,64}|alias\/[A-Za-z0-9/_-]{1,250}))$/;
const REGION = /^[a-z]{2}(?:-[a-z]+)+-\d{1,2}$/;
export const CLUSTER_NAME = /^[A-Za-z0-9._-]{1,64}$/;

/**
 * Validates the `awskms` seal block. Credential fields are refused outright
 * rather than ignored: custos takes AWS credentials only from the SDK's
 * default provider chain (environment, shared config and SSO, web identity,
 * container and instance roles), so that no long-lived key ever sits in a
 * custos config file next to the data it protects.
 */
export function parseAwsKmsSealConfig(raw: Readonly<Record<string, unknown>>): AwsKmsSealConfig {
  const invalid = (detail: string) => new CustosError('CUSTOS_ERR_SEAL_CONFIG_INVALID', detail);
  const allowed = new Set(['type', 'key_id', 'region', 'endpoint', 'cluster']);
  for (const k of Object.keys(raw)) {
    if (!allowed.has(k)) {
      throw invalid(
        /secret|access_key|token|credential|password/i.test(k)
          ? `seal.${k}: credentials come from the AWS SDK's default provider chain, never from custos's config.`
          : `seal.${k} is not an awskms option.`,
      );
    }
  }
  const { key_id: keyId, region, endpoint, cluster } = raw;
  if (typeof keyId !== 'string' || !KEY_ID.test(keyId))
    throw invalid('seal.key_id is not a KMS key id, key ARN or alias.');
  if (typeof region !== 'string' || !REGION.test(region)) throw invalid('seal.region is not an AWS region name.');
  if (endpoint !== undefined && !isEndpoint(endpoint)) {
    throw invalid(
      'seal.endpoint must be an https URL (http only to a loopback address) without credentials, path or query.',
    );
  }
  if (cluster !== undefined && (typeof cluster !== 'string' || !CLUSTER_NAME.test(cluster))) {
    throw invalid('seal.cluster is 1 to 64 letters, digits, dots, dashes or underscores.');
  }
  return {
    keyId,
    region,
    ...(endpoint !== undefined ? { endpoint: endpoint as string } : {}),
    ...(cluster !== undefined ? { cluster: cluster as string } : {}),
  };
}

/**
 * An endpoint custos will sign requests for. Plain http is accepted only to a
 * loopback address (a local test server or a sidecar): anywhere else the
 * signed request, and the root key in the Encrypt call, would cross the
 * network in clear.
 */
export function isEndpoint(value: unknown): value is string {
  if (typeof value !== 'string') return false;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return false;
  }
  if (url.username || url.password || url.search || url.hash || (url.pathname !== '/' && url.pathname !== '')) {
    return false;
  }
  if (url.protocol === 'https:') return true;
  return (
    url.protocol === 'http:' &&
    (url.hostname === '127.0.0.1' || url.hostname === '[::1]' || url.hostname === 'localhost')
  );
}
