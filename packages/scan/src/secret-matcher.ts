import type { VaultFingerprints } from './vault/vault-fingerprints.js';
import { matchVault } from './vault/vault-fingerprints.js';

/** The part of `@custos/redact`'s Redactor the scanner uses: the same detectors, no second copy of any rule. */
export interface FindAllSource {
  findAll(text: string): readonly {
    kind: 'known' | 'detector';
    ruleId: string;
    start: number;
    end: number;
    value: string;
  }[];
}

/** One match inside one string, before it is given a file location. */
export interface RawMatch {
  kind: 'known' | 'detector' | 'vault';
  ruleId: string;
  start: number;
  end: number;
  value: string;
}

/**
 * Everything that can recognise a secret in a string: the redaction package's
 * detectors and known values, plus (optionally) the vault's fingerprints.
 */
export class SecretMatcher {
  constructor(
    private readonly redactor: FindAllSource,
    private readonly vault?: VaultFingerprints,
  ) {}

  /**
   * Matches in `text`. `whole` says the text is one extracted value (a
   * metadata string, a pickle argument): the vault then also tries it whole,
   * not only its tokens.
   */
  match(text: string, whole: boolean): RawMatch[] {
    const out: RawMatch[] = [];
    for (const f of this.redactor.findAll(text)) {
      // Known values are named by the user; the prefix keeps their names apart from detector ids.
      const ruleId = f.kind === 'known' ? `known:${f.ruleId}` : f.ruleId;
      out.push({ kind: f.kind, ruleId, start: f.start, end: f.end, value: f.value });
    }
    if (!this.vault) return out;
    const vault = matchVault(this.vault, text, whole);
    // A detector's finding is tried whole too: a value inside a larger token
    // (the password of `postgres://user:PASSWORD@host/db`) is not a token of
    // its own, but the detector has cut it out.
    const seen = new Set(vault.map((m) => `${m.start}:${m.end}:${m.ruleId}`));
    for (const f of out) {
      if (f.kind !== 'detector') continue;
      for (const m of matchVault(this.vault, f.value, true)) {
        const at = { ...m, start: f.start + m.start, end: f.start + m.end };
        const key = `${at.start}:${at.end}:${at.ruleId}`;
        if (seen.has(key)) continue;
        seen.add(key);
        vault.push(at);
      }
    }
    out.push(...vault);
    return out;
  }
}
