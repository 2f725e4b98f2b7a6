import { type AuditSearchFilter, ValidationError } from '@custos/core';

/** The raw query string of `GET /v1/audit/search` (each at most one value, bounded by the route schema). */
export interface AuditSearchQuerystring {
  identity?: string;
  task?: string;
  path?: string;
  action?: string;
  decision?: string;
  since?: string;
  until?: string;
  limit?: string;
  before_seq?: string;
}

export const AUDIT_SEARCH_DEFAULT_LIMIT = 100;
export const AUDIT_SEARCH_MAX_LIMIT = 500;

const text = { type: 'string', minLength: 1, maxLength: 1024 } as const;

/** The route's querystring schema: only strings of bounded length; their meaning is checked below. */
export const auditSearchQuerySchema = {
  type: 'object',
  properties: {
    identity: text,
    task: text,
    path: text,
    action: { type: 'string', minLength: 1, maxLength: 64 },
    decision: { type: 'string', maxLength: 16 },
    since: { type: 'string', maxLength: 64 },
    until: { type: 'string', maxLength: 64 },
    limit: { type: 'string', maxLength: 16 },
    before_seq: { type: 'string', maxLength: 32 },
  },
  additionalProperties: false,
} as const;

// An ISO-8601 date or date-time; anything Date.parse would read loosely (e.g. "1") is refused.
const ISO_TIME = /^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/;

/**
 * Turns the query string into a filter, page size and cursor. Every error
 * names the parameter, never its value: a value pasted into the wrong box
 * could be a secret, and error bodies end up in logs.
 */
export function parseAuditSearchQuery(q: AuditSearchQuerystring): {
  filter: AuditSearchFilter;
  limit: number;
  beforeSeq?: number;
} {
  const filter: { -readonly [K in keyof AuditSearchFilter]: AuditSearchFilter[K] } = {};
  if (q.identity !== undefined) filter.identity = q.identity;
  if (q.task !== undefined) filter.task = q.task;
  if (q.path !== undefined) filter.path = q.path;
  if (q.action !== undefined) filter.action = q.action;
  if (q.decision !== undefined) {
    if (q.decision !== 'allow' && q.decision !== 'deny' && q.decision !== 'error')
      throw new ValidationError('decision must be allow, deny or error.');
    filter.decision = q.decision;
  }
  for (const name of ['since', 'until'] as const) {
    const value = q[name];
    if (value === undefined) continue;
    if (!ISO_TIME.test(value) || Number.isNaN(Date.parse(value)))
      throw new ValidationError(`${name} must be an ISO-8601 time.`);
    filter[name] = new Date(value).toISOString();
  }
  if (filter.since && filter.until && filter.since > filter.until)
    throw new ValidationError('since must not be after until.');
  const limit = q.limit === undefined ? AUDIT_SEARCH_DEFAULT_LIMIT : positiveInteger(q.limit, 'limit');
  if (limit > AUDIT_SEARCH_MAX_LIMIT)
    throw new ValidationError(`limit must be between 1 and ${AUDIT_SEARCH_MAX_LIMIT}.`);
  const beforeSeq = q.before_seq === undefined ? undefined : positiveInteger(q.before_seq, 'before_seq');
  return { filter, limit, ...(beforeSeq === undefined ? {} : { beforeSeq }) };
}

/** A decimal integer ≥ 1 that is a safe integer (no sign, exponent, or overflow). */
function positiveInteger(value: string, name: string): number {
  const n = /^[1-9][0-9]{0,15}$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(n)) throw new ValidationError(`${name} must be a positive integer.`);
  return n;
}
