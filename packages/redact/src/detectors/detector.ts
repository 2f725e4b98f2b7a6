/**
 * A pattern detector: finds credentials custos was not told about by their
 * shape. One detector per file under `detectors/`; `@custos/scan` reuses these
 * very objects, so a rule exists exactly once.
 *
 * Streaming contract (see `stream/`): every match of `pattern` starts at most
 * `lookback` characters before an occurrence of one of `keywords`, is at most
 * `maxLength` characters long, and consists only of characters accepted by
 * `span`. This is what lets a stream hold back only the text that could still
 * become a match.
 */
export interface Detector {
  /** Stable id, kebab-case, e.g. `github-token`. Shown in markers and reports. */
  readonly id: string;
  /** One line for humans. */
  readonly description: string;
  /**
   * Literal ASCII strings of 3 or more characters, one of which every match
   * contains (a prefilter: the pattern only runs at them). Compared case-insensitively when
   * `caseInsensitiveKeywords` is set.
   */
  readonly keywords: readonly string[];
  readonly caseInsensitiveKeywords?: boolean;
  /**
   * Global regex. If it has a capture group named `secret`, only that group is
   * the finding (the rest is context such as `password=`). Must be linear:
   * no nested quantifiers over overlapping classes.
   */
  readonly pattern: RegExp;
  /** Most characters between a match's start and its keyword. Default 0. */
  readonly lookback?: number;
  /** Upper bound on the length of a whole match (context included). */
  readonly maxLength: number;
  /** Character class of everything a whole match can contain, e.g. `[A-Za-z0-9_]`. */
  readonly span: RegExp;
  /**
   * For patterns with context (`password = "…"`), a regex that accepts every
   * prefix of a match, tested on the text from the keyword to the end of what
   * a stream has received: while it accepts, the stream holds the text back.
   * Without it, a candidate stays open while every character is in `span`.
   */
  readonly partial?: RegExp;
  /** Minimum Shannon entropy (bits per character) of the secret part. */
  readonly minEntropy?: number;
  /** Structural check (checksum, decode). False drops the match. */
  readonly validate?: (secret: string) => boolean;
}
