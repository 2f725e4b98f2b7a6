import { createHash, createHmac, randomBytes } from 'node:crypto';
import type { ScanFinding } from './scan-types.js';

/**
 * Accepted findings, by fingerprint. A fingerprint hashes the rule, the file,
 * the location and an HMAC of the value under the baseline's own random salt:
 * the file never holds a value, and the salt stops precomputed tables (a
 * low-entropy value can still be guessed by whoever has the file, so baselines
 * are for keys, not for passwords like "changeme").
 */
export interface Baseline {
  readonly version: 1;
  readonly salt: string;
  readonly fingerprints: readonly string[];
}

/** The fingerprint of one finding under a salt. Lines are left out so that edits above a finding keep it accepted. */
export function findingFingerprint(f: ScanFinding, salt: string): string {
  const valueMac = createHmac('sha256', Buffer.from(salt, 'base64url')).update(f.value, 'utf8').digest('hex');
  return createHash('sha256')
    .update([f.kind, f.ruleId, f.file, ...f.location, valueMac].join('\0'), 'utf8')
    .digest('hex');
}

/** A baseline accepting exactly `findings`, under a fresh salt (or the given one, to keep a file stable). */
export function createBaseline(
  findings: readonly ScanFinding[],
  salt = randomBytes(16).toString('base64url'),
): Baseline {
  const fps = [...new Set(findings.map((f) => findingFingerprint(f, salt)))].sort();
  return { version: 1, salt, fingerprints: fps };
}

/** Parses a baseline file's JSON; throws a plain Error with a fixed message when it is not one. */
export function parseBaseline(json: string): Baseline {
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch {
    throw new Error('baseline is not JSON');
  }
  const b = doc as Partial<Baseline>;
  if (b?.version !== 1 || typeof b.salt !== 'string' || !Array.isArray(b.fingerprints)) {
    throw new Error('baseline is not a custos scan baseline (version 1)');
  }
  return { version: 1, salt: b.salt, fingerprints: b.fingerprints.filter((x): x is string => typeof x === 'string') };
}

/** Splits findings into those the baseline accepts and the rest. */
export function applyBaseline(
  findings: readonly ScanFinding[],
  baseline: Baseline,
): { kept: ScanFinding[]; accepted: number } {
  const known = new Set(baseline.fingerprints);
  const kept = findings.filter((f) => !known.has(findingFingerprint(f, baseline.salt)));
  return { kept, accepted: findings.length - kept.length };
}
