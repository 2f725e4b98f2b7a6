import type { AuditEvent } from '../audit/audit-event.js';
import type { AuditObservation } from '../audit/audit-log.js';
import type { AuditStore } from '../ports/storage.js';
import type { AnomalyEngine } from './anomaly-engine.js';

export interface AnomalyResumeOptions {
  /** Records before the resume point the rules learn from, raising nothing (baselines). */
  readonly warmEvents: number;
  /**
   * The engine's stored progress (see {@link AnomalyEngine.progress}): records
   * after it were acknowledged but may not have been through the rules
   * (a crash). They are fed to the rules raising findings as usual — ids are
   * derived from the rule and the record, so one raised before is stored
   * once. 0: no progress stored (a new deployment): nothing is resumed.
   */
  readonly cursor: number;
  /** Records resumed at most (default 100,000); older ones past the cursor are only learned from. */
  readonly maxResume?: number;
}

/**
 * Brings a new engine up to the stored audit history before live events:
 * the last `warmEvents` records before the resume point are learned from
 * silently, so baselines (usual denial rates, known paths) survive a
 * restart; the records after the stored progress are run through the rules
 * for real, so a crash between an event becoming durable and the rules
 * seeing it loses no finding. One bounded read at unseal, never per request.
 */
export async function resumeAnomalyEngine(
  engine: AnomalyEngine,
  store: AuditStore,
  options: AnomalyResumeOptions,
): Promise<{ warmed: number; resumed: number }> {
  const head = await store.head();
  if (!head) return { warmed: 0, resumed: 0 };
  const resumeFrom =
    options.cursor > 0 ? Math.max(options.cursor + 1, head.seq - (options.maxResume ?? 100_000) + 1) : head.seq + 1;
  let from = Math.max(1, Math.min(resumeFrom, head.seq + 1) - Math.max(0, options.warmEvents));
  let warmed = 0;
  let resumed = 0;
  while (from <= head.seq) {
    const records = await store.range(from, Math.min(1_000, head.seq - from + 1));
    if (records.length === 0) break;
    const learn: AuditObservation[] = [];
    const raise: AuditObservation[] = [];
    for (const r of records) {
      (r.seq < resumeFrom ? learn : raise).push({ seq: r.seq, hash: r.hash, event: JSON.parse(r.event) as AuditEvent });
    }
    if (learn.length > 0) engine.warm(learn);
    if (raise.length > 0) engine.offer(raise);
    warmed += learn.length;
    resumed += raise.length;
    from = records[records.length - 1]!.seq + 1;
  }
  return { warmed, resumed };
}

/** Learns from the last `maxEvents` stored records, raising nothing. */
export async function warmAnomalyEngine(engine: AnomalyEngine, store: AuditStore, maxEvents: number): Promise<number> {
  return (await resumeAnomalyEngine(engine, store, { warmEvents: maxEvents, cursor: 0 })).warmed;
}
