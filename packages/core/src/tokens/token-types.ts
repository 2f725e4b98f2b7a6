/** What custos keeps about an operator token (never the token itself). */
export interface TokenEntry {
  /** Non-secret handle to look up or revoke the token without holding it. */
  accessor: string;
  /** Names of the policies the token holds; ignored for root. */
  policies: string[];
  /** The root token bypasses policy; every use is audited as root. */
  root: boolean;
  /**
   * Cosmetic, chosen by the token's creator (never `root` unless it is the
   * root token): shown in listings and audit events beside the accessor,
   * never given to policies.
   */
  display_name: string;
  created_time: string;
  /** Epoch ms; null for a token that does not expire (only root). */
  expires_at: number | null;
  /** Accessor of the token that created this one, if any. */
  creator: string | null;
}

export interface CreateTokenOptions {
  policies: readonly string[];
  /** Lifetime in ms; required unless root. */
  ttlMs?: number;
  displayName?: string;
  root?: boolean;
}

export interface IssuedToken {
  /** The bearer secret: shown once, never stored. */
  token: string;
  entry: TokenEntry;
}
