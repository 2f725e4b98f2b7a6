/**
 * The forms in which a known secret can appear in text other than verbatim.
 * Each form is registered in the matcher as its own pattern, so finding any of
 * them costs the same as finding the raw value.
 */

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/**
 * The base64 characters that depend only on the secret's bytes when the
 * secret starts `shift` bytes (0, 1 or 2) into a 3-byte group. This is what
 * finds a password inside `base64("user:" + password)`: whatever precedes it,
 * one of the three alignments applies, and the characters at either edge that
 * mix in neighbouring bytes are left out.
 */
export function base64Core(bytes: Uint8Array, shift: number, alphabet: string): string {
  const firstBit = shift * 8;
  const endBit = firstBit + bytes.length * 8;
  let out = '';
  for (let j = Math.ceil(firstBit / 6); (j + 1) * 6 <= endBit; j++) {
    let v = 0;
    for (let b = j * 6; b < j * 6 + 6; b++) {
      const byteIndex = (b >> 3) - shift;
      const bit = (bytes[byteIndex]! >> (7 - (b & 7))) & 1;
      v = (v << 1) | bit;
    }
    out += alphabet[v];
  }
  return out;
}

/** Every distinct form of `value` to look for, raw first. */
export function encodedForms(value: string): string[] {
  const forms = new Set<string>();
  const add = (v: string): void => {
    if (v.length > 0) forms.add(v);
  };
  add(value);
  const trimmed = value.trim().replace(/^(["'`])(.*)\1$/s, '$2');
  add(trimmed);
  for (const v of trimmed === value ? [value] : [value, trimmed]) {
    const bytes = new TextEncoder().encode(v);
    for (let shift = 0; shift < 3; shift++) {
      add(base64Core(bytes, shift, B64));
      add(base64Core(bytes, shift, B64URL));
    }
    let hex = '';
    for (const b of bytes) hex += b.toString(16).padStart(2, '0');
    add(hex);
    add(hex.toUpperCase());
    add(encodeURIComponent(v));
    // application/x-www-form-urlencoded writes spaces as '+'.
    add(encodeURIComponent(v).replace(/%20/g, '+'));
    add(JSON.stringify(v).slice(1, -1));
  }
  return [...forms];
}
