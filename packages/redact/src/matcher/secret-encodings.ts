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

/** What an encoded form is, for the matcher: text compares like the value, base64 exactly, hex in any case. */
export type FormKind = 'text' | 'base64' | 'hex';

/** Every distinct form of `value` to look for, raw first, with its kind. Hex is listed once, in lower case. */
export function encodedFormsWithKind(value: string): { form: string; kind: FormKind }[] {
  const forms = new Map<string, FormKind>();
  const add = (v: string, kind: FormKind): void => {
    if (v.length > 0 && !forms.has(v)) forms.set(v, kind);
  };
  add(value, 'text');
  const trimmed = value.trim().replace(/^(["'`])(.*)\1$/s, '$2');
  add(trimmed, 'text');
  for (const v of trimmed === value ? [value] : [value, trimmed]) {
    const bytes = new TextEncoder().encode(v);
    for (let shift = 0; shift < 3; shift++) {
      add(base64Core(bytes, shift, B64), 'base64');
      add(base64Core(bytes, shift, B64URL), 'base64');
    }
    let hex = '';
    for (const b of bytes) hex += b.toString(16).padStart(2, '0');
    add(hex, 'hex');
    add(encodeURIComponent(v), 'text');
    // application/x-www-form-urlencoded writes spaces as '+'.
    add(encodeURIComponent(v).replace(/%20/g, '+'), 'text');
    add(JSON.stringify(v).slice(1, -1), 'text');
  }
  return [...forms].map(([form, kind]) => ({ form, kind }));
}

/** Every distinct form of `value` to look for, raw first (hex in lower and upper case). */
export function encodedForms(value: string): string[] {
  const forms = new Set<string>();
  for (const { form, kind } of encodedFormsWithKind(value)) {
    forms.add(form);
    if (kind === 'hex') forms.add(form.toUpperCase());
  }
  return [...forms];
}
