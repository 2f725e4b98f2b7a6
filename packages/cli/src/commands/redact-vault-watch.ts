import type { Redactor } from '@custos/redact';
import type { VaultFingerprints, VaultMatch } from '@custos/scan';
import { SecretMatcher, vaultMatchOf } from '@custos/scan';

/** Longest text held while waiting for whitespace: a token longer than this may be missed at a chunk edge. */
const MAX_CARRY = 64 * 1024;

/**
 * `custos redact --against-vault`: watches the text going through the
 * filter for stored secrets, by the keyed hashes the server gave
 * (`POST /v1/scan/fingerprints`), with the scanner's own matcher (tokens,
 * and the values detectors cut out, such as a URL's password). Text is
 * examined up to its last whitespace, the rest carried to the next chunk,
 * so a value split between chunks is still seen whole. Each stored secret
 * found is passed to `onMatch` once, as soon as it is seen: a long-running
 * filter (`agent | custos redact --against-vault`) reports while it runs.
 *
 * It only observes: what is written out is the redactor's business.
 */
export class RedactVaultWatch {
  readonly #matcher: SecretMatcher;
  readonly #versions = new Map<string, number>();
  readonly #reported = new Set<string>();
  readonly #onMatch: (match: VaultMatch) => void;
  #carry = '';

  constructor(redactor: Redactor, vault: VaultFingerprints, onMatch: (match: VaultMatch) => void) {
    this.#matcher = new SecretMatcher(redactor, vault);
    for (const f of vault.byHmac.values()) this.#versions.set(`vault:${f.path}#${f.field}`, f.version);
    this.#onMatch = onMatch;
  }

  write(text: string): void {
    const pending = this.#carry + text;
    let cut = Math.max(pending.lastIndexOf('\n'), pending.lastIndexOf(' '), pending.lastIndexOf('\t')) + 1;
    if (cut === 0 && pending.length > MAX_CARRY) cut = pending.length;
    this.#examine(pending.slice(0, cut));
    this.#carry = pending.slice(cut);
  }

  end(): void {
    this.#examine(this.#carry);
    this.#carry = '';
  }

  #examine(text: string): void {
    if (text === '') return;
    for (const m of this.#matcher.match(text, false)) {
      if (m.kind !== 'vault' || this.#reported.has(m.ruleId)) continue;
      const match = vaultMatchOf(m.ruleId, this.#versions.get(m.ruleId) ?? 0);
      if (!match) continue;
      this.#reported.add(m.ruleId);
      this.#onMatch(match);
    }
  }
}
