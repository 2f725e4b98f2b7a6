/** What a honeytoken imitates: its value is shaped like this kind of credential. */
export type HoneytokenKind = 'aws' | 'openai' | 'db-url' | 'generic';

export const HONEYTOKEN_KINDS: readonly HoneytokenKind[] = ['aws', 'openai', 'db-url', 'generic'];

/**
 * What the registry keeps about one honeytoken, sealed behind the barrier.
 * Never its value: the decoy value lives only as an ordinary secret at
 * `path`, and here only as audit-key HMACs of its secret fields, so that a
 * presented or reported value can be recognised without being kept.
 */
export interface HoneytokenRecord {
  readonly path: string;
  readonly kind: HoneytokenKind;
  readonly created_time: string;
  readonly created_by: string;
  /** `hmac-sha256:<hex>` of each secret field's value with the deployment's audit HMAC key. */
  readonly fingerprints: readonly string[];
  /** Lengths of those values: a cheap filter before hashing what a request carries. */
  readonly lengths: readonly number[];
}

/** What an admin sees of a honeytoken (`GET /v1/honeytokens`): never a value or a fingerprint. */
export interface HoneytokenView {
  readonly path: string;
  readonly kind: HoneytokenKind;
  readonly created_time: string;
  readonly created_by: string;
}

/**
 * The kept-current, in-memory view of the registry that detection uses on
 * hot paths (the anomaly rule per audit event, the proxy per call): set
 * lookups only, never storage.
 */
export interface HoneytokenWatch {
  /** True when any honeytoken's value is watched: what costs per byte (a body scan) is skipped otherwise. */
  readonly watching: boolean;
  /** True when `path` is a honeytoken's secret path. */
  hasPath(path: string): boolean;
  /** True when `hmac` (an audit-key HMAC) is the fingerprint of a honeytoken's value. */
  hasFingerprint(hmac: string): boolean;
  /**
   * The audit-key HMAC of the first honeytoken value among `texts` (each
   * tested whole and split into tokens), or undefined. Only candidates of a
   * honeytoken value's length are hashed.
   */
  findValue(texts: Iterable<string>): string | undefined;
}
