import {
  type AuditArchiveState,
  type AuditCheckpoint,
  AuditConflictError,
  type AuditRecord,
  type AuditStore,
} from '../ports/storage.js';

/**
 * An in-memory {@link AuditStore} for tests that honours the port: `append`
 * is all-or-nothing and throws {@link AuditConflictError} when a seq is taken.
 *
 * Test hooks: `failAppends` makes appends throw (a database outage),
 * `appendCalls` counts them, and `records`/`checkpointList` are the raw
 * arrays, open to tampering.
 */
export class MemoryAuditStore implements AuditStore {
  records: AuditRecord[] = [];
  checkpointList: AuditCheckpoint[] = [];
  appendCalls = 0;
  failAppends = false;
  failCheckpoints = false;

  async append(records: readonly AuditRecord[]): Promise<void> {
    this.appendCalls++;
    if (this.failAppends) throw new Error('memory audit store: append failed (test outage)');
    if (records.length === 0) return;
    const headSeq = this.records.length > 0 ? this.records[this.records.length - 1]!.seq : 0;
    const first = records[0]!.seq;
    // As the adapters: a batch that does not start right after the head was built on a stale view.
    if (first !== headSeq + 1) throw new AuditConflictError();
    records.forEach((r, i) => {
      if (r.seq !== first + i) throw new Error('memory audit store: seqs in a batch must be consecutive');
    });
    // Copies, so a caller mutating its objects cannot change what was stored.
    this.records.push(...records.map((r) => ({ ...r })));
  }

  async head(): Promise<AuditRecord | undefined> {
    const last = this.records[this.records.length - 1];
    return last ? { ...last } : undefined;
  }

  async range(fromSeq: number, limit: number): Promise<AuditRecord[]> {
    // Records are kept sorted by seq (tampering tests may leave gaps), so a binary search finds the start.
    let lo = 0;
    let hi = this.records.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.records[mid]!.seq < fromSeq) lo = mid + 1;
      else hi = mid;
    }
    return this.records.slice(lo, lo + limit).map((r) => ({ ...r }));
  }

  async firstSeqSince(ts: string): Promise<number | undefined> {
    return this.records.find((r) => r.ts >= ts)?.seq;
  }

  async appendCheckpoint(checkpoint: AuditCheckpoint): Promise<void> {
    if (this.failCheckpoints) throw new Error('memory audit store: checkpoint failed (test outage)');
    if (this.checkpointList.some((c) => c.seq === checkpoint.seq)) throw new AuditConflictError();
    if (checkpoint.version === 2) {
      const last = this.checkpointList.reduce((max, c) => Math.max(max, c.seq), 0);
      if (last !== checkpoint.prevSeq) throw new AuditConflictError();
    }
    this.checkpointList.push({ ...checkpoint });
  }

  async checkpoints(): Promise<AuditCheckpoint[]> {
    return [...this.checkpointList].sort((a, b) => a.seq - b.seq).map((c) => ({ ...c }));
  }

  async checkpointsFrom(fromSeq: number, limit: number): Promise<AuditCheckpoint[]> {
    return (await this.checkpoints()).filter((c) => c.seq >= fromSeq).slice(0, limit);
  }

  async lastCheckpoint(): Promise<AuditCheckpoint | undefined> {
    return (await this.checkpoints()).at(-1);
  }

  archive: AuditArchiveState | undefined;

  async archiveState(): Promise<AuditArchiveState | undefined> {
    return this.archive;
  }

  async setArchiveState(state: AuditArchiveState): Promise<void> {
    this.archive = state;
  }

  async deleteArchived(beforeSeq: number, limit: number): Promise<number> {
    const records = this.records.findIndex((r) => r.seq >= beforeSeq);
    const n = Math.min(limit, records === -1 ? this.records.length : records);
    if (n > 0) {
      this.records.splice(0, n);
      return n;
    }
    const checkpoints = this.checkpointList.findIndex((c) => c.seq >= beforeSeq);
    const m = Math.min(limit, checkpoints === -1 ? this.checkpointList.length : checkpoints);
    this.checkpointList.splice(0, m);
    return m;
  }

  lease: { holder: string; expiresAt: number } | undefined;

  async acquireArchiveLease(holder: string, now: number, expiresAt: number): Promise<boolean> {
    if (this.lease && this.lease.holder !== holder && this.lease.expiresAt >= now) return false;
    this.lease = { holder, expiresAt };
    return true;
  }

  async releaseArchiveLease(holder: string): Promise<void> {
    if (this.lease?.holder === holder) this.lease = undefined;
  }
}
