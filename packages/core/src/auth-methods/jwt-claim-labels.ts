import type { JWTPayload } from 'jose';
import { ValidationError } from '../errors/index.js';
import { claimValue, IdentityRejectedError, type JwtRejectReason } from '../identity/index.js';
import { MAX_LABELS, operatorLabels } from '../tasks/index.js';

const MAX_CLAIM_NAME = 256;
const MAX_VALUE = 256;

/**
 * Checks a JWT method's claim → label mapping when an operator writes it:
 * claim names are non-empty, label keys are operator label keys (never in
 * the `agent.` namespace) and no key is mapped twice. Returns a plain copy.
 */
export function validateClaimLabels(mapping: unknown): Record<string, string> {
  if (mapping === undefined) return {};
  if (typeof mapping !== 'object' || mapping === null || Array.isArray(mapping)) {
    throw new ValidationError('claim_labels maps a claim name to a label key.');
  }
  const out: Record<string, string> = {};
  const keys = new Set<string>();
  for (const [claim, key] of Object.entries(mapping)) {
    if (!claim || claim.length > MAX_CLAIM_NAME || typeof key !== 'string') {
      throw new ValidationError('claim_labels maps a claim name to a label key.');
    }
    if (keys.has(key)) throw new ValidationError(`claim_labels maps two claims to the label "${key}".`);
    keys.add(key);
    out[claim] = key;
  }
  // Label keys follow the operator-label rules (checked with a placeholder value).
  operatorLabels(Object.fromEntries([...keys].map((k) => [k, ''])));
  if (keys.size > MAX_LABELS) throw new ValidationError(`At most ${MAX_LABELS} claim labels.`);
  return out;
}

/**
 * The labels a verified token's claims give, through the method's mapping.
 * A missing claim gives no label (to require one, bind it in the role's
 * bound claims). A claim that is present but holds no plain value — an
 * object, a list, an over-long string — refuses the login: silently
 * leaving the label out could let the task past a `forbid` written on it.
 * Numbers and booleans become their JSON text.
 */
export function labelsFromClaims(
  claims: JWTPayload,
  mapping: Readonly<Record<string, string>> | undefined,
): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const [claim, key] of Object.entries(mapping ?? {})) {
    const value = claimValue(claims, claim);
    if (value === undefined || value === null) continue;
    const text =
      typeof value === 'string'
        ? value
        : typeof value === 'number' || typeof value === 'boolean'
          ? String(value)
          : undefined;
    if (text === undefined || text.length > MAX_VALUE) {
      throw new IdentityRejectedError<JwtRejectReason>('jwt', 'claim_label_unusable');
    }
    labels[key] = text;
  }
  return labels;
}
