/**
 * A found value as reports show it: the first 4 characters, an ellipsis and
 * the length (`ghp_…(40)`), enough to tell two findings apart, never enough
 * to use. Values of 8 characters or fewer show no characters at all.
 */
export function maskValue(value: string): string {
  const chars = [...value];
  const head = chars.length > 8 ? chars.slice(0, 4).join('') : '';
  return `${head}…(${chars.length})`;
}
