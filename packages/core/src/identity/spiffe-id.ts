import { ValidationError } from '../errors/index.js';

/** The parts of a custos workload SPIFFE ID, `spiffe://<trust-domain>/role/<role>/<id>`. */
export interface WorkloadSpiffeId {
  spiffeId: string;
  trustDomain: string;
  role: string;
  id: string;
}

// SPIFFE ID spec §2.1/§2.2: trust domain is lowercase letters, digits, ".",
// "-" and "_"; path segments add uppercase letters. Keeping to these exact
// character sets means no percent-encoding, no case folding and no "..":
// the ID a verifier reads is byte-for-byte the one that was issued.
const TRUST_DOMAIN = /^[a-z0-9._-]{1,255}$/;
const SEGMENT = /^[A-Za-z0-9._-]{1,128}$/;

/** Throws {@link ValidationError} unless `td` is a valid SPIFFE trust domain name. */
export function assertTrustDomain(td: string): void {
  if (typeof td !== 'string' || !TRUST_DOMAIN.test(td) || td.startsWith('.') || td.endsWith('.')) {
    throw new ValidationError('The trust domain must be a lowercase DNS-like name (a-z, 0-9, ".", "-", "_").');
  }
}

function assertSegment(value: string, what: string): void {
  if (typeof value !== 'string' || !SEGMENT.test(value) || value === '.' || value === '..') {
    throw new ValidationError(`The ${what} must use A-Z, a-z, 0-9, ".", "-" and "_" (at most 128).`);
  }
}

/**
 * Builds `spiffe://<trustDomain>/role/<role>/<id>`, validating every part.
 *
 * @example
 * ```ts
 * formatWorkloadSpiffeId('custos.internal', 'enricher', 'task-7f3a'); // 'spiffe://custos.internal/role/enricher/task-7f3a'
 * ```
 */
export function formatWorkloadSpiffeId(trustDomain: string, role: string, id: string): string {
  assertTrustDomain(trustDomain);
  assertSegment(role, 'role');
  assertSegment(id, 'id');
  return `spiffe://${trustDomain}/role/${role}/${id}`;
}

/**
 * Parses a custos workload SPIFFE ID; returns `undefined` for anything that is
 * not exactly `spiffe://<td>/role/<role>/<id>` in canonical form (no port,
 * user info, query, fragment, empty or dot segments, percent-encoding).
 */
export function parseWorkloadSpiffeId(uri: string): WorkloadSpiffeId | undefined {
  if (typeof uri !== 'string' || uri.length > 2048 || !uri.startsWith('spiffe://')) return undefined;
  const parts = uri.slice('spiffe://'.length).split('/');
  if (parts.length !== 4 || parts[1] !== 'role') return undefined;
  const [trustDomain, , role, id] = parts as [string, string, string, string];
  if (!TRUST_DOMAIN.test(trustDomain) || trustDomain.startsWith('.') || trustDomain.endsWith('.')) return undefined;
  for (const s of [role, id]) if (!SEGMENT.test(s) || s === '.' || s === '..') return undefined;
  return { spiffeId: uri, trustDomain, role, id };
}
