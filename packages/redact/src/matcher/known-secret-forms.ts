import { normaliseForm } from './line-junctions.js';
import { encodedFormsWithKind } from './secret-encodings.js';

const HEX = /^[0-9A-Fa-f]+$/;

/** ASCII-only case mapping: full Unicode mapping can change a string's length (`ß` → `SS`). */
const upper = (s: string): string => s.replace(/[a-z]+/g, (m) => m.toUpperCase());
const lower = (s: string): string => s.replace(/[A-Z]+/g, (m) => m.toLowerCase());

/**
 * Whether a value printed all in capitals or all in small letters
 * (`KEY.toUpperCase()`, `tr a-z A-Z`, a hex key in capitals) is still
 * unmistakably that value, so that looking for those spellings too adds no
 * false positives:
 *
 * - hex: case carries no information at all;
 * - otherwise at least 12 characters with a letter, and either a digit or
 *   symbol too or at least 20 characters. What these rules leave out are
 *   short values and single words (`Development`, `Administrators`), whose
 *   other spellings are ordinary text: those are matched as given only.
 */
export function caseFoldable(value: string): boolean {
  if (HEX.test(value)) return true;
  if (value.length < 12 || !/[A-Za-z]/.test(value)) return false;
  return /[^A-Za-z]/.test(value) || value.length >= 20;
}

/**
 * The forms of a known secret the matcher registers: its encodings (see
 * `secret-encodings.ts`), each normalised for line junctions (`line-junctions.ts`).
 * When the value is {@link caseFoldable}, its textual forms (raw, trimmed,
 * URL-encoded, JSON-escaped) are also registered all in capitals and all in
 * small letters. Whole-string case changes are what programs do to a value
 * (mixed case is not); registering them as forms of their own keeps the
 * matcher's inner loop and a stream's prefix tracking exactly as cheap as
 * for any other form. Base64 forms keep their case (a base64 character's
 * case is part of its value); the hex encoding is in lower and upper case, as
 * encoders write it. Returned in the order of the encodings, without
 * duplicates.
 */
export function matchForms(value: string): string[] {
  const foldable = caseFoldable(value.trim());
  const out = new Set<string>();
  for (const { form, kind } of encodedFormsWithKind(value)) {
    const normal = normaliseForm(form);
    if (normal.length === 0) continue;
    out.add(normal);
    if (kind === 'hex' || (kind === 'text' && foldable)) {
      out.add(lower(normal));
      out.add(upper(normal));
    }
  }
  return [...out];
}
