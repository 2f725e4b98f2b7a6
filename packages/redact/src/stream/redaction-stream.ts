import type { EngineFinding } from '../matcher/engine-finding.js';
import type { RedactionEngine } from '../matcher/redaction-engine.js';
import { HoldBackTracker } from './hold-back-tracker.js';

/**
 * Characters kept before the cut (already emitted) so that detector
 * look-behinds such as "not preceded by a letter" see the same text as they
 * would in the whole input.
 */
const CONTEXT = 16;

/**
 * Incremental redaction, independent of any stream API: `write` returns the
 * redacted text that can be released now, `end` the rest. The concatenation
 * of all returned strings equals `redact(all input)` for every chunking.
 */
export interface RedactionStream {
  write(chunk: string): string;
  end(): string;
  /** Characters currently held back. */
  readonly held: number;
  /** The most characters ever held back at once. */
  readonly maxHeld: number;
}

export class EngineRedactionStream implements RedactionStream {
  private readonly engine: RedactionEngine;
  private readonly tracker: HoldBackTracker;
  private buffer = '';
  /** Absolute position of buffer[0]. */
  private base = 0;
  /** Absolute position up to which output was released. */
  private emitted = 0;
  private maxHeldSoFar = 0;
  private ended = false;

  constructor(engine: RedactionEngine) {
    this.engine = engine;
    this.tracker = new HoldBackTracker(engine);
  }

  get held(): number {
    return this.base + this.buffer.length - this.emitted;
  }

  get maxHeld(): number {
    return this.maxHeldSoFar;
  }

  write(chunk: string): string {
    if (this.ended) throw new Error('write after end');
    if (chunk.length === 0) return '';
    this.buffer += chunk;
    const end = this.base + this.buffer.length;
    const hold = this.tracker.update(this.buffer, this.base);
    if (hold <= this.emitted) {
      this.maxHeldSoFar = Math.max(this.maxHeldSoFar, end - this.emitted);
      return '';
    }
    const out = this.release(hold);
    this.maxHeldSoFar = Math.max(this.maxHeldSoFar, end - this.emitted);
    return out;
  }

  end(): string {
    if (this.ended) return '';
    const out = this.release(this.base + this.buffer.length);
    this.ended = true;
    this.buffer = '';
    return out;
  }

  /** Emits everything before `cut` (moved earlier so no finding is split). */
  private release(cut: number): string {
    const findings = this.engine.findAll(this.buffer, this.emitted - this.base);
    const base = this.base;
    let c = cut;
    for (let moved = true; moved; ) {
      moved = false;
      for (const f of findings) {
        if (f.context + base < c && f.end + base > c) {
          c = f.context + base;
          moved = true;
        }
      }
    }
    if (c < this.emitted) c = this.emitted;
    if (c === this.emitted) return '';
    const from = this.emitted - base;
    const to = c - base;
    const inside: EngineFinding[] = [];
    for (const f of findings) {
      if (f.end <= from || f.start >= to) continue;
      // A finding reaching back into released text cannot happen when the
      // hold-back is right; should it ever, the part not yet released is still
      // masked rather than shown.
      inside.push(
        f.start >= from && f.end <= to ? f : { ...f, start: Math.max(f.start, from), end: Math.min(f.end, to) },
      );
    }
    const text = this.buffer.slice(from, to);
    const out = this.engine.render(
      text,
      inside.map((f) => ({ ...f, start: f.start - from, end: f.end - from })),
    );
    this.emitted = c;
    const keepFrom = Math.max(this.base, c - CONTEXT);
    this.buffer = this.buffer.slice(keepFrom - this.base);
    this.base = keepFrom;
    return out;
  }
}
