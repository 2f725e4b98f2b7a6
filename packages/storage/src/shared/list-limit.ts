/** The most rows one `list`, `scan`, `listExpired` or `range` call returns. */
export const MAX_LIST_LIMIT = 10_000;

/** Clamps a caller's limit to 0…{@link MAX_LIST_LIMIT}; absent means the maximum. */
export function clampLimit(limit: number | undefined): number {
  if (limit === undefined || Number.isNaN(limit)) return MAX_LIST_LIMIT;
  return Math.max(0, Math.min(MAX_LIST_LIMIT, Math.floor(limit)));
}
