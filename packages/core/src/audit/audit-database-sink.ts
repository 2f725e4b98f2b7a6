import { AuditConflictError, type AuditRecord, type AuditStore } from '../ports/storage.js';
import { AUDIT_EMPTY_HEAD, chainAuditRecords } from './audit-hash.js';

/** What one write to the database ended as. */
export type AuditDatabaseWrite =
  | {
      readonly ok: true;
      /** The batch as stored: re-chained (new seqs and hashes) if another node appended first. */
      readonly records: AuditRecord[];
    }
  | { readonly ok: false; readonly error: unknown };

/**
 * The database side of the audit log: the authority on the chain.
 *
 * It keeps a *backlog* of records that were acknowledged through another sink
 * (the JSON-lines file) while the database was failing. Every later write
 * sends the backlog first, in order, in the same `append`, so once the
 * database recovers its chain has no gap.
 *
 * On {@link AuditConflictError} (another node appended the same seqs) it
 * reloads the store's head, re-chains what it is writing on top of it and
 * retries, a bounded number of times. Records that the store already holds
 * with the same hash (an append that committed but whose answer was lost)
 * are recognised and not written twice.
 */
export class AuditDatabaseSink {
  readonly #store: AuditStore;
  readonly #maxConflictRetries: number;
  readonly #maxBacklog: number;
  #backlog: AuditRecord[] = [];

  constructor(store: AuditStore, options: { maxConflictRetries: number; maxBacklog: number }) {
    this.#store = store;
    this.#maxConflictRetries = options.maxConflictRetries;
    this.#maxBacklog = options.maxBacklog;
  }

  /** Records acknowledged elsewhere and not yet in the database. */
  get backlogSize(): number {
    return this.#backlog.length;
  }

  /** True when `count` more records still fit in the backlog. */
  canKeep(count: number): boolean {
    return this.#backlog.length + count <= this.#maxBacklog;
  }

  /** Remember records the database missed (they were acknowledged through another sink). */
  keep(records: readonly AuditRecord[]): void {
    this.#backlog.push(...records);
  }

  /** Append the backlog, then `records`. Never throws. */
  async write(records: readonly AuditRecord[]): Promise<AuditDatabaseWrite> {
    const backlogLength = this.#backlog.length;
    let toAppend: AuditRecord[] = [...this.#backlog, ...records];
    let written: AuditRecord[] = [];
    for (let attempt = 0; ; attempt++) {
      try {
        if (toAppend.length > 0) await this.#store.append(toAppend);
        const all = [...written, ...toAppend];
        this.#backlog = [];
        return { ok: true, records: all.slice(backlogLength) };
      } catch (error) {
        if (!(error instanceof AuditConflictError) || attempt >= this.#maxConflictRetries) {
          return { ok: false, error };
        }
        try {
          const first = toAppend[0]!;
          // Keep the prefix the store already holds identically (a lost answer to a committed append).
          const stored = await this.#store.range(first.seq, toAppend.length);
          let same = 0;
          while (
            same < stored.length &&
            stored[same]!.seq === toAppend[same]!.seq &&
            stored[same]!.hash === toAppend[same]!.hash
          ) {
            same++;
          }
          written = [...written, ...toAppend.slice(0, same)];
          const head = (await this.#store.head()) ?? AUDIT_EMPTY_HEAD;
          toAppend = chainAuditRecords(head, toAppend.slice(same));
        } catch (reloadError) {
          return { ok: false, error: reloadError };
        }
      }
    }
  }
}
