import type { EgressPolicy } from '../egress/egress-policy.js';

/** The cloud services custos reads secrets from. */
export type SourceType = 'aws-secrets-manager' | 'azure-key-vault';

/**
 * How a source's values become kv fields: `auto` parses a value that looks
 * like a JSON object (`{…}`, or Azure's content type `application/json`) and
 * serves anything else as one `value` field; `json` requires a JSON object;
 * `raw` never parses.
 */
export type SourceFormat = 'auto' | 'json' | 'raw';

/** What an operator sets (`PUT /v1/sources/:name`). Never a cloud credential: those come from the SDKs' default chains. */
export interface SourceInput {
  type: SourceType;
  /** AWS: the region (`eu-west-1`). */
  region?: string;
  /** AWS: only secrets whose name starts with this are reachable (`agents/`); kv/<source>/x reads `<prefix>x`. */
  prefix?: string;
  /** AWS: another endpoint (a VPC endpoint); https, or http to a loopback host. */
  endpoint?: string;
  /** Azure: the vault URL (`https://myvault.vault.azure.net`). */
  vault_url?: string;
  /** CA certificates (PEM) for an endpoint behind a private CA: inline, never a path. */
  tls_ca?: string;
  format?: SourceFormat;
  /** How long a version listing and a value are served from memory (0–300 s; default 30). */
  cache_ttl_seconds?: number;
  /** Deadline of one cloud call, retries included (0.5–30 s; default 5). */
  timeout_ms?: number;
}

/** A stored source (sealed by the barrier like every configuration). */
export interface SourceRecord {
  name: string;
  type: SourceType;
  region?: string;
  prefix: string;
  endpoint?: string;
  vault_url?: string;
  tls_ca?: string;
  format: SourceFormat;
  cache_ttl_seconds: number;
  timeout_ms: number;
  created_time: string;
  updated_time: string;
}

/** What reads of the configuration show (the CA only as a flag). */
export type SourceView = Omit<SourceRecord, 'tls_ca'> & { tls_ca?: true };

/** One live version of a cloud secret. */
export interface SourceVersionInfo {
  /** The cloud's version id (AWS VersionId, Azure version). */
  id: string;
  /** The custos stage the cloud's label maps to, if any. */
  stage?: 'current' | 'previous' | 'pending';
  created_time: string;
}

/** A cloud value, as the cloud holds it. */
export interface SourceValue {
  value: string;
  /** Azure's content type, when set: `application/json` declares JSON. */
  content_type?: string;
}

/**
 * A client for one configured source, implemented per cloud in
 * `@custos/sources` over the cloud's SDK. Every method throws
 * {@link SourceFault} for a cloud failure — never the SDK's error, whose
 * message may carry an ARN with the account id.
 */
export interface SourceClient {
  /** The live versions of a secret (AWS: those with a stage; Azure: enabled ones), with their stages. */
  versions(name: string, signal: AbortSignal): Promise<SourceVersionInfo[]>;
  read(name: string, versionId: string, signal: AbortSignal): Promise<SourceValue>;
  /** Secret names (with the source's prefix removed), at most `limit`. */
  list(limit: number, signal: AbortSignal): Promise<string[]>;
  close?(): void;
}

/** Opens a client for a source; every HTTP call it makes goes through `egress`. */
export type SourceClientFactory = (record: SourceRecord, deps: { egress: EgressPolicy }) => SourceClient;

/** What went wrong at the cloud, classified; the cloud's own message is deliberately not kept. */
export type SourceFaultKind = 'throttled' | 'denied' | 'not_found' | 'timeout' | 'no_credentials' | 'failed';

/** A classified cloud failure (thrown by {@link SourceClient}s, turned into a custos error by the reader). */
export class SourceFault extends Error {
  readonly kind: SourceFaultKind;
  /** Throttling: what the service asked to wait, if it said. */
  readonly retryAfterMs: number | undefined;

  constructor(kind: SourceFaultKind, retryAfterMs?: number) {
    super(`secret source: ${kind}`);
    this.name = 'SourceFault';
    this.kind = kind;
    this.retryAfterMs = retryAfterMs;
  }
}
