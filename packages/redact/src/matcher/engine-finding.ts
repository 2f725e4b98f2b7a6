import type { Finding } from '../finding.js';

/** A finding as the engine tracks it internally. */
export interface EngineFinding extends Finding {
  /**
   * Where the whole match begins, context included (`password=` before the
   * value). A stream never cuts between `context` and `end`.
   */
  context: number;
  /** What a keyed-hash marker is computed over: the raw secret for known ones. */
  canonical: string;
}
