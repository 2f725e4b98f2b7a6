import { AuditConflictError, type AuditRecord, type AuditStore } from '../ports/storage.js';
import { AUDIT_EMPTY_HEAD, type AuditChainHead, chainAuditRecords } from './audit-hash.js';

/** What one write to the database ended as. */
export type AuditDatabaseWrite =
  | {
      readonly ok: true;
      /**
       * The records given that are now stored, as stored (re-chained, with new
       * seqs and hashes, if another node appended first): a prefix of them,
       * all unless the `maxSeq` bound left no room for the rest.
       */
      readonly records: AuditRecord[];
      /** Everything this write appended, in order: backlog first, then `records`. */
      readonly appended: AuditRecord[];
      /** The database head as this write left or found it (absent when it appended nothing and reloaded nothing). */
      readonly head?: AuditChainHead;
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
 *
 * Nothing is written beyond `maxSeq`, the last seq the checkpoint interval
 * allows before the next checkpoint: a re-chain that moves records past it
 * writes only those that fit, and the rest waits for that checkpoint.
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

  /** The last backlog record (what the next record chains to while the database is behind). */
  get backlogHead(): AuditChainHead | undefined {
    const last = this.#backlog[this.#backlog.length - 1];
    return last && { seq: last.seq, hash: last.hash };
  }

  /** True when `count` more records still fit in the backlog. */
  canKeep(count: number): boolean {
    return this.#backlog.length + count <= this.#maxBacklog;
  }

  /** Remember records the database missed (they were acknowledged through another sink). */
  keep(records: readonly AuditRecord[]): void {
    this.#backlog.push(...records);
  }

  /** Append the backlog, then `records`, none beyond `maxSeq`. Never throws. */
  async write(records: readonly AuditRecord[], maxSeq: number): Promise<AuditDatabaseWrite> {
    const backlogLength = this.#backlog.length;
    // What remains to be appended (backlog first), re-chained as needed, and what already was.
    let toAppend: AuditRecord[] = [...this.#backlog, ...records];
    let appended: AuditRecord[] = [];
    let head: AuditChainHead | undefined;
    for (let attempt = 0; ; attempt++) {
      const fit = toAppend.length === 0 ? 0 : Math.max(0, Math.min(toAppend.length, maxSeq - toAppend[0]!.seq + 1));
      try {
        if (fit > 0) await this.#store.append(toAppend.slice(0, fit));
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
          appended = appended.concat(toAppend.slice(0, same));
          const storeHead = (await this.#store.head()) ?? AUDIT_EMPTY_HEAD;
          head = { seq: storeHead.seq, hash: storeHead.hash };
          toAppend = chainAuditRecords(head, toAppend.slice(same));
        } catch (reloadError) {
          return { ok: false, error: reloadError };
        }
        continue;
      }
      appended = appended.concat(toAppend.slice(0, fit));
      const rest = toAppend.slice(fit);
      const last = appended[appended.length - 1];
      if (fit > 0 && last) head = { seq: last.seq, hash: last.hash };
      // The backlog not yet stored stays, as re-chained: it continues the head now.
      this.#backlog = rest.slice(0, Math.max(0, backlogLength - appended.length));
      return {
        ok: true,
        records: appended.slice(backlogLength),
        appended,
        ...(head ? { head } : {}),
      };
    }
  }
}
