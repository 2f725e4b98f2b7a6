import type { AuditRecord, AuditStore } from '../ports/storage.js';

/**
 * The last `n` records, ascending (for `custos audit tail`).
 *
 * @example
 * for await (const record of tailAudit(store, 20)) console.log(record.event);
 */
export async function* tailAudit(store: AuditStore, n: number): AsyncGenerator<AuditRecord> {
  const head = await store.head();
  if (!head || n <= 0) return;
  yield* await store.range(Math.max(1, head.seq - n + 1), Math.min(n, head.seq));
}

/**
 * Every record whose ts is at or after `since` (ISO-8601), ascending, fetched
 * in batches of `batchSize` (for `custos audit export --since`). Stops at
 * the head as it was when the iteration reached it.
 */
export async function* exportAuditSince(
  store: AuditStore,
  since: string,
  options: { batchSize?: number } = {},
): AsyncGenerator<AuditRecord> {
  if (Number.isNaN(Date.parse(since))) throw new RangeError('since must be an ISO-8601 time');
  const batchSize = options.batchSize ?? 1_000;
  // Stored ts are ISO-8601 UTC with milliseconds; normalise so string order is time order.
  let next = await store.firstSeqSince(new Date(since).toISOString());
  while (next !== undefined) {
    const batch = await store.range(next, batchSize);
    yield* batch;
    next = batch.length < batchSize ? undefined : batch[batch.length - 1]!.seq + 1;
  }
}
