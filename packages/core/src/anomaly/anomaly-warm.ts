import type { AuditEvent } from '../audit/audit-event.js';
import type { AuditObservation } from '../audit/audit-log.js';
import type { AuditStore } from '../ports/storage.js';
import type { AnomalyEngine } from './anomaly-engine.js';

/**
 * Feeds the last `maxEvents` stored audit records to the engine's rules
 * without raising anything, so baselines (usual denial rates, known paths)
 * survive a restart instead of warming up from nothing. Runs once, at
 * unseal, before live events: a bounded read, never one per request.
 */
export async function warmAnomalyEngine(engine: AnomalyEngine, store: AuditStore, maxEvents: number): Promise<number> {
  if (maxEvents <= 0) return 0;
  const head = await store.head();
  if (!head) return 0;
  let from = Math.max(1, head.seq - maxEvents + 1);
  let fed = 0;
  while (from <= head.seq) {
    const records = await store.range(from, Math.min(1_000, head.seq - from + 1));
    if (records.length === 0) break;
    const batch: AuditObservation[] = records.map((r) => ({
      seq: r.seq,
      hash: r.hash,
      event: JSON.parse(r.event) as AuditEvent,
    }));
    engine.warm(batch);
    fed += batch.length;
    from = records[records.length - 1]!.seq + 1;
  }
  return fed;
}
