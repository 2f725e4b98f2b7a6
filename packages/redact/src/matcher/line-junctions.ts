/**
 * Line breaks that a known secret may be split by. Programs wrap long values
 * (base64 at 64 or 76 columns, `fold`, loggers and tracebacks that wrap at the
 * terminal width with an indent, HTTP header folding), so the matcher reads
 * text as if every *junction* were absent:
 *
 *   a junction is a line break — LF, CRLF or a lone CR — and up to
 *   {@link MAX_INDENT} spaces or tabs right after it.
 *
 * The definition is local — whether a character belongs to a junction depends
 * only on the characters just around it — so a stream that starts matching in
 * the middle of a text classifies everything after its start as whole-text
 * matching does. Forms of known secrets have their own junctions removed
 * (a multi-line secret matches whatever line endings it is printed with) and
 * their leading and trailing whitespace trimmed (so no match starts or ends in
 * a junction).
 *
 * Limits, against false positives and to bound how much a stream holds back:
 * a match may cross junctions only if its form has at least
 * {@link SPLIT_MIN_LENGTH} characters, and at most {@link maxJunctions} of
 * them.
 */

/** Spaces or tabs after a line break that still count as indentation of a wrapped line. */
export const MAX_INDENT = 24;

/** Forms shorter than this are never matched across a line break: too many short strings meet at line ends by chance. */
export const SPLIT_MIN_LENGTH = 12;

/** Characters one junction can span: CR, LF and the indentation. */
export const JUNCTION_MAX_CHARS = 2 + MAX_INDENT;

/** How many junctions a match of a form of `length` characters may cross: one, plus one per 16 characters (a wrap width). */
export function maxJunctions(length: number): number {
  return length < SPLIT_MIN_LENGTH ? 0 : 1 + Math.floor(length / 16);
}

/** The most original characters a match of a form of `length` characters can span. */
export function maxSpan(length: number): number {
  return length + maxJunctions(length) * JUNCTION_MAX_CHARS;
}

const JUNCTION = new RegExp(`(?:\\r\\n?|\\n)[ \\t]{0,${MAX_INDENT}}`, 'g');

/** Removes the junctions from a form and trims the whitespace around it. */
export function normaliseForm(form: string): string {
  return form.replace(JUNCTION, '').replace(/^[ \t\r\n]+|[ \t\r\n]+$/g, '');
}

/**
 * Reads text as its junction-free view. Positions are indices into the
 * original text; `junctions` counts the junctions crossed by the last
 * {@link skip}, so a caller can bound them.
 */
export class JunctionReader {
  junctions = 0;
  constructor(private readonly text: string) {}

  /** The first position at or after `p` that is not in a junction (`p` itself when no junction starts there). */
  skip(p: number): number {
    const text = this.text;
    const n = text.length;
    let at = p;
    this.junctions = 0;
    for (;;) {
      const c = text.charCodeAt(at);
      if (c === 10) at++;
      else if (c === 13) at += text.charCodeAt(at + 1) === 10 ? 2 : 1;
      else return at;
      this.junctions++;
      const indentEnd = Math.min(n, at + MAX_INDENT);
      while (at < indentEnd) {
        const w = text.charCodeAt(at);
        if (w !== 32 && w !== 9) break;
        at++;
      }
    }
  }

  /**
   * The position of the character before `p` in the junction-free view, or −1.
   * `p` must not be inside a junction.
   */
  previous(p: number): number {
    const text = this.text;
    let x = p - 1;
    for (;;) {
      if (x < 0) return -1;
      const c = text.charCodeAt(x);
      if (c === 10 || c === 13) {
        x--; // a CRLF is crossed in two steps; only the count of breaks needs care, and skip() keeps it
        continue;
      }
      if (c === 32 || c === 9) {
        // Indentation if a line break is at most MAX_INDENT blanks back.
        let y = x - 1;
        const stop = x - MAX_INDENT;
        while (y >= stop && y >= 0) {
          const w = text.charCodeAt(y);
          if (w !== 32 && w !== 9) break;
          y--;
        }
        if (y >= 0 && y >= x - MAX_INDENT) {
          const b = text.charCodeAt(y);
          if (b === 10 || b === 13) {
            x = y;
            continue;
          }
        }
      }
      return x;
    }
  }
}
