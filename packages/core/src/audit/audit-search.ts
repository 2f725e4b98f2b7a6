import type { AuditRecord, AuditStore } from '../ports/storage.js';
import type { AuditEvent } from './audit-event.js';

/** What `GET /v1/audit/search` and `custos audit search` filter on; every given field must match. */
export interface AuditSearchFilter {
  /** Exact: the caller's identity or display name (or the identity of a refused task). */
  readonly identity?: string;
  /** Exact: a task id anywhere in the caller's chain, so a root task finds its whole subtree. */
  readonly task?: string;
  /** Exact, or a prefix when it ends in `*` (`kv/finance/*`). */
  readonly path?: string;
  /** Exact: the request's policy action (or the kind of a non-request event). */
  readonly action?: string;
  readonly decision?: 'allow' | 'deny' | 'error';
  /** ISO-8601, inclusive, on the event time. */
  readonly since?: string;
  /** ISO-8601, inclusive, on the event time. */
  readonly until?: string;
}

export interface AuditSearchOptions {
  /** At most this many matches (newest first). */
  readonly limit: number;
  /** Only records with a lower seq (the previous answer's `nextBeforeSeq`). */
  readonly beforeSeq?: number;
  /** At most this many seqs are looked at per call; the answer says where it stopped. */
  readonly maxScan?: number;
  /** Records read from the store per query. */
  readonly batchSize?: number;
}

export interface AuditSearchResult {
  /** Matching records, newest first, with their event parsed. */
  readonly records: { readonly record: AuditRecord; readonly event: AuditEvent }[];
  /** Pass as `beforeSeq` to continue; absent when no older record can match. */
  readonly nextBeforeSeq?: number;
  /** The lowest seq looked at (0 when nothing was). */
  readonly scannedThroughSeq: number;
  /** True when every record the filter could match has been looked at. */
  readonly complete: boolean;
}

export const AUDIT_SEARCH_MAX_SCAN = 50_000;

/** How far past `until` the seq range is widened (see {@link searchAudit}). */
const UNTIL_SLACK_MS = 60_000;

/** Whether one event matches the filter (times are checked on `event.time`). */
export function auditEventMatches(event: AuditEvent, filter: AuditSearchFilter): boolean {
  const auth = event.auth;
  const refused = refusedTask(event);
  if (filter.identity !== undefined) {
    const names = [auth?.identity, auth?.display_name, refused?.identity];
    if (!names.includes(filter.identity)) return false;
  }
  if (filter.task !== undefined) {
    const tasks = [...(auth?.task_chain ?? []), auth?.task_id, ...(refused?.task_chain ?? []), refused?.task_id];
    if (!tasks.includes(filter.task)) return false;
  }
  if (filter.path !== undefined) {
    const path = event.request?.path;
    if (path === undefined) return false;
    // Only a trailing `*` is special: the rest is compared as plain text, never as a pattern.
    const ok = filter.path.endsWith('*') ? path.startsWith(filter.path.slice(0, -1)) : path === filter.path;
    if (!ok) return false;
  }
  if (filter.action !== undefined) {
    const action = event.request?.action ?? ('kind' in event ? event.kind : undefined);
    if (action !== filter.action) return false;
  }
  if (filter.decision !== undefined && event.decision !== filter.decision) return false;
  const at = Date.parse(event.time);
  if (filter.since !== undefined && !(at >= Date.parse(filter.since))) return false;
  if (filter.until !== undefined && !(at <= Date.parse(filter.until))) return false;
  return true;
}

/** The task a refused request named (a revoked or expired task token), if the event records one. */
function refusedTask(event: AuditEvent): { identity?: string; task_id?: string; task_chain?: string[] } | undefined {
  const refused = event.details?.refused_task;
  if (!refused || typeof refused !== 'object' || Array.isArray(refused)) return undefined;
  const r = refused as { [name: string]: unknown };
  return {
    ...(typeof r.identity === 'string' ? { identity: r.identity } : {}),
    ...(typeof r.task_id === 'string' ? { task_id: r.task_id } : {}),
    ...(Array.isArray(r.task_chain)
      ? { task_chain: r.task_chain.filter((t): t is string => typeof t === 'string') }
      : {}),
  };
}

/**
 * Search the online trail newest first, reading the store in bounded
 * batches. The work per call is bounded by `maxScan` seqs (not by matches),
 * so a filter that matches nothing cannot make one request scan the whole
 * database: the answer then says where it stopped and the caller continues.
 *
 * @example
 * const page = await searchAudit(store, { path: 'kv/finance/*', decision: 'deny' }, { limit: 100 });
 */
export async function searchAudit(
  store: AuditStore,
  filter: AuditSearchFilter,
  options: AuditSearchOptions,
): Promise<AuditSearchResult> {
  const maxScan = options.maxScan ?? AUDIT_SEARCH_MAX_SCAN;
  const batchSize = Math.max(1, Math.min(options.batchSize ?? 1_000, maxScan));
  const head = await store.head();
  const empty = { records: [], scannedThroughSeq: 0, complete: true };
  if (!head || options.limit <= 0) return empty;
  let top = Math.min(head.seq, (options.beforeSeq ?? Number.POSITIVE_INFINITY) - 1);
  // Narrow by time with the store's ts index (record ts is the event time, stamped by the log).
  let bottom = 1;
  if (filter.since !== undefined) {
    const first = await store.firstSeqSince(new Date(filter.since).toISOString());
    if (first === undefined) return empty;
    bottom = first;
  }
  if (filter.until !== undefined) {
    // Seqs follow append order, and nodes stamp times before appending: a record a little after a
    // later-stamped one may carry an earlier time. Narrow with a margin; the exact check is per record.
    const after = await store.firstSeqSince(new Date(Date.parse(filter.until) + UNTIL_SLACK_MS + 1).toISOString());
    if (after !== undefined) top = Math.min(top, after - 1);
  }
  const records: { record: AuditRecord; event: AuditEvent }[] = [];
  let cursor = top;
  let scanned = 0;
  let scannedThroughSeq = 0;
  while (cursor >= bottom && scanned < maxScan) {
    const from = Math.max(bottom, cursor - Math.min(batchSize, maxScan - scanned) + 1);
    const batch = await store.range(from, cursor - from + 1);
    // Seqs are counted whether or not a record is still online (archived ones are gone), so the bound holds.
    for (let i = batch.length - 1; i >= 0; i--) {
      const record = batch[i]!;
      if (record.seq > cursor) continue;
      const event = JSON.parse(record.event) as AuditEvent;
      if (auditEventMatches(event, filter)) {
        records.push({ record, event });
        if (records.length === options.limit) {
          const more = record.seq > bottom;
          return {
            records,
            ...(more ? { nextBeforeSeq: record.seq } : {}),
            scannedThroughSeq: record.seq,
            complete: !more,
          };
        }
      }
    }
    scanned += cursor - from + 1;
    scannedThroughSeq = from;
    cursor = from - 1;
  }
  const more = cursor >= bottom;
  return { records, ...(more ? { nextBeforeSeq: cursor + 1 } : {}), scannedThroughSeq, complete: !more };
}
