import { createHmac } from 'node:crypto';
import type { RawMatch } from '../secret-matcher.js';

/** One stored secret field, known only by its keyed hash. */
export interface VaultFingerprint {
  readonly path: string;
  readonly field: string;
  readonly version: number;
  readonly hmac: string;
}

/**
 * The server's answer to `POST /v1/scan/fingerprints`, ready for matching.
 * The key is random per request, so the hashes are useless outside this scan;
 * but whoever holds key and hashes can test guesses offline, which is why the
 * server fingerprints only values the token may read anyway.
 */
export interface VaultFingerprints {
  readonly key: Buffer;
  readonly minLength: number;
  readonly byHmac: ReadonlyMap<string, VaultFingerprint>;
}

/** Splits on whitespace, quotes, `=`, `:`, `,` and brackets: how values sit in configs and source. */
const TOKEN = /[^\s"'`=:,;()[\]{}<>]+/g;

/** Vault matches in `text`: every token (and the whole text, for an extracted value) whose HMAC is stored. */
export function matchVault(vault: VaultFingerprints, text: string, whole: boolean): RawMatch[] {
  const out: RawMatch[] = [];
  const seen = new Set<number>();
  const test = (value: string, start: number): void => {
    if (value.length < vault.minLength || seen.has(start * 65_537 + value.length)) return;
    const hit = vault.byHmac.get(createHmac('sha256', vault.key).update(value, 'utf8').digest('hex'));
    if (!hit) return;
    seen.add(start * 65_537 + value.length);
    out.push({ kind: 'vault', ruleId: `vault:${hit.path}#${hit.field}`, start, end: start + value.length, value });
  };
  if (whole) test(text, 0);
  for (const m of text.matchAll(TOKEN)) test(m[0], m.index);
  return out;
}
