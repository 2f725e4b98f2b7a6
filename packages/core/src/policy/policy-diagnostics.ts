import type { DetailedError } from './cedar-runtime.js';

/** Longest detail we put into an error: enough for a line and a hint. */
const MAX_DETAIL = 240;

/**
 * One short sentence from Cedar's diagnostics for `text`: the first error's
 * position (1-based line:column), message and hint, and how many more there
 * are. Policy text is not secret, so quoting the parser is fine; the length
 * is capped so a pathological input cannot make an error message huge.
 */
export function describeCedarErrors(text: string, errors: readonly DetailedError[]): string {
  const first = errors[0];
  if (!first) return 'invalid policy';
  const start = first.sourceLocations?.[0]?.start;
  const at = start === undefined ? '' : `${position(text, start)}: `;
  const label = first.sourceLocations?.[0]?.label;
  const message = first.message.replace(/^for policy `[^`]*`, /, '');
  let detail = `${at}${message}`;
  if (label) detail += ` (${label})`;
  if (first.help) detail += `; ${first.help}`;
  if (errors.length > 1) detail += ` (+${errors.length - 1} more)`;
  return detail.length > MAX_DETAIL ? `${detail.slice(0, MAX_DETAIL - 1)}…` : detail;
}

/** Cedar reports UTF-8 byte offsets; turn one into `line L:C`. */
function position(text: string, byteOffset: number): string {
  const before = Buffer.from(text, 'utf8').subarray(0, byteOffset).toString('utf8');
  const lines = before.split('\n');
  const line = lines.length;
  const column = (lines[lines.length - 1] as string).length + 1;
  return `line ${line}:${column}`;
}
