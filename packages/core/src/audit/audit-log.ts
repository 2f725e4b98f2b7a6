import { AuditUnavailableError } from '../errors/errors.js';
import type { AuditCheckpoint, AuditRecord, AuditStore } from '../ports/storage.js';
import { type AuditSigner, signAuditCheckpoint } from './audit-checkpoint.js';
import { AuditDatabaseSink } from './audit-database-sink.js';
import type { AuditEventInput } from './audit-event.js';
import { AUDIT_EMPTY_HEAD, type AuditChainHead, auditChainHash, chainAuditRecords } from './audit-hash.js';
import { isAuditHmac } from './audit-hmac.js';
import type { AuditSink } from './audit-sink.js';
import { canonicalJson } from './canonical-json.js';

export interface AuditLogOptions {
  /** The database: the chain authority, where checkpoints are kept. */
  readonly store: AuditStore;
  /** Further sinks (a JSON-lines file, stdout). Durable ones can acknowledge a batch while the database is down. */
  readonly sinks?: readonly AuditSink[];
  /** Ed25519 key that signs checkpoints. */
  readonly signer: AuditSigner;
  /** Seal a checkpoint after this many records (default 1,000). */
  readonly checkpointEvery?: number;
  /** …or when this many ms passed with new records (default 10,000). */
  readonly checkpointIntervalMs?: number;
  /** Largest batch given to one `append` (default 1,000). */
  readonly maxBatch?: number;
  /** Re-chain-and-retry rounds after a seq conflict before the database write counts as failed (default 5). */
  readonly maxConflictRetries?: number;
  /** Records acknowledged while the database is down that may wait for it (default 100,000); beyond, requests are refused. */
  readonly maxBacklog?: number;
  /** Clock (tests). */
  readonly now?: () => Date;
  /** Called when a sink or a checkpoint write fails; the log goes on. Never receives event contents. */
  readonly onSinkError?: (sink: string, error: unknown) => void;
}

interface Pending {
  readonly ts: string;
  readonly event: string;
  readonly resolve: (record: AuditRecord) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * The audit writer. Every request's event goes through {@link record}, which
 * resolves only once the event is durably written; otherwise the caller must
 * refuse the request (fail-closed).
 *
 * **Group commit.** Events recorded while a batch is being written, or within
 * the same tick, are chained in memory and written as one batch: one
 * `append` (one transaction, one fsync) for many requests. Batches are
 * written one at a time, in order, so the in-memory chain head is simple.
 *
 * **Acknowledgement.** A batch is acknowledged when the database or at least
 * one durable sink recorded it. If only a file did, the database keeps the
 * records as a backlog and writes them first on its next success, so its
 * chain has no gap. If nothing recorded it, every `record()` of the batch
 * rejects with {@link AuditUnavailableError} and the head does not move: the
 * next batch chains from the last durable record.
 *
 * **Checkpoints** every `checkpointEvery` records, every
 * `checkpointIntervalMs` with new records, when opened on an unsealed tail,
 * and on {@link close}.
 */
export class AuditLog {
  readonly #store: AuditStore;
  readonly #db: AuditDatabaseSink;
  readonly #sinks: readonly AuditSink[];
  readonly #signer: AuditSigner;
  readonly #checkpointEvery: number;
  readonly #maxBatch: number;
  readonly #now: () => Date;
  readonly #onSinkError: (sink: string, error: unknown) => void;
  readonly #timer: NodeJS.Timeout;

  /** Last record acknowledged (in the database or only in a durable sink). */
  #head: AuditChainHead;
  /** Last record known to be in the database: what checkpoints seal. */
  #dbHead: AuditChainHead;
  #lastCheckpointSeq: number;
  #timerDue = false;
  #pending: Pending[] = [];
  #scheduled = false;
  #loop: Promise<void> | undefined;
  #closed = false;

  private constructor(options: AuditLogOptions, head: AuditChainHead, lastCheckpointSeq: number) {
    this.#store = options.store;
    this.#db = new AuditDatabaseSink(options.store, {
      maxConflictRetries: options.maxConflictRetries ?? 5,
      maxBacklog: options.maxBacklog ?? 100_000,
    });
    this.#sinks = options.sinks ?? [];
    this.#signer = options.signer;
    this.#checkpointEvery = options.checkpointEvery ?? 1_000;
    this.#maxBatch = options.maxBatch ?? 1_000;
    this.#now = options.now ?? (() => new Date());
    this.#onSinkError = options.onSinkError ?? (() => undefined);
    this.#head = head;
    this.#dbHead = head;
    this.#lastCheckpointSeq = lastCheckpointSeq;
    this.#timer = setInterval(() => {
      this.#timerDue = true;
      this.#schedule();
    }, options.checkpointIntervalMs ?? 10_000);
    // The timer must not keep a process alive that has nothing else to do.
    this.#timer.unref();
  }

  /**
   * Opens the log on `store`: loads the chain head, gives the database any
   * records a durable sink holds beyond it (acknowledged through the file
   * while the database was down, just before a crash), and seals an
   * unsealed tail with a checkpoint.
   *
   * @throws AuditUnavailableError when the store cannot be read.
   */
  static async open(options: AuditLogOptions): Promise<AuditLog> {
    const sinks = options.sinks ?? [];
    const onSinkError = options.onSinkError ?? (() => undefined);
    let head: AuditChainHead;
    let lastCheckpointSeq: number;
    try {
      head = (await options.store.head()) ?? AUDIT_EMPTY_HEAD;
      for (const sink of sinks) {
        if (!sink.durable || !sink.recordsAfter) continue;
        const missing = await sink.recordsAfter(head.seq).catch((error: unknown) => {
          onSinkError(sink.name, error);
          return [];
        });
        if (missing.length > 0 && continuesChain(head, missing)) {
          await options.store.append(missing);
          head = missing[missing.length - 1]!;
        }
      }
      for (const sink of sinks) {
        // A sink that is behind (the process died between the database write and
        // the sink write) is given what it missed. A sink with no record yet is
        // new and starts at the head instead of copying the whole history.
        try {
          const last = await sink.lastRecordSeq?.();
          for (let from = (last ?? head.seq) + 1; from <= head.seq; ) {
            const missing = await options.store.range(from, 1_000);
            if (missing.length === 0) break;
            await sink.write(missing);
            from = missing[missing.length - 1]!.seq + 1;
          }
        } catch (error) {
          onSinkError(sink.name, error);
        }
      }
      const checkpoints = await options.store.checkpoints();
      lastCheckpointSeq = checkpoints.reduce((max, c) => Math.max(max, c.seq), 0);
    } catch (error) {
      throw new AuditUnavailableError({ cause: error });
    }
    const log = new AuditLog(options, { seq: head.seq, hash: head.hash }, lastCheckpointSeq);
    if (head.seq > lastCheckpointSeq) await log.checkpoint();
    return log;
  }

  /** The last acknowledged record's seq and hash. */
  get head(): AuditChainHead {
    return this.#head;
  }

  /** Records acknowledged through another sink that the database does not have yet. */
  get backlogSize(): number {
    return this.#db.backlogSize;
  }

  /**
   * Records one event. Resolves with the stored record once it is durably
   * written to at least one sink.
   *
   * @throws AuditUnavailableError when no sink could record it (refuse the request).
   * @throws TypeError when `data` holds a value that is not an audit HMAC, or the
   *   event has no JSON form (a programming error; the request must be refused too).
   */
  record(event: AuditEventInput): Promise<AuditRecord> {
    if (this.#closed) return Promise.reject(new AuditUnavailableError());
    let canonical: string;
    let ts: string;
    try {
      for (const value of Object.values(event.data ?? {})) {
        // Only HMACs may sit in `data`: a clear token here would be a leak.
        if (!isAuditHmac(value)) throw new TypeError('audit event data values must be audit HMACs');
      }
      ts = this.#now().toISOString();
      canonical = canonicalJson({ ...event, time: ts });
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise((resolve, reject) => {
      this.#pending.push({ ts, event: canonical, resolve, reject });
      this.#schedule();
    });
  }

  /**
   * Seals the database's chain head now (no-op when already sealed or the
   * database is behind). Failures are reported to `onSinkError`, not thrown.
   */
  async checkpoint(): Promise<AuditCheckpoint | undefined> {
    if (this.#db.backlogSize > 0 || this.#dbHead.seq <= this.#lastCheckpointSeq) return undefined;
    const { seq, hash } = this.#dbHead;
    const checkpoint = signAuditCheckpoint(this.#signer, seq, hash, this.#now().toISOString());
    try {
      await this.#store.appendCheckpoint(checkpoint);
    } catch (error) {
      this.#onSinkError('database', error);
      return undefined;
    }
    this.#lastCheckpointSeq = seq;
    await Promise.all(
      this.#sinks.map(async (sink) => {
        try {
          await sink.writeCheckpoint?.(checkpoint);
        } catch (error) {
          this.#onSinkError(sink.name, error);
        }
      }),
    );
    return checkpoint;
  }

  /** Writes what is pending, seals a final checkpoint and closes the sinks. Later `record()`s reject. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    while (this.#loop || this.#pending.length > 0) {
      if (!this.#loop) this.#kick();
      await this.#loop;
    }
    await this.checkpoint();
    for (const sink of this.#sinks) {
      await sink.close().catch((error: unknown) => this.#onSinkError(sink.name, error));
    }
  }

  #schedule(): void {
    if (this.#scheduled || this.#loop) return;
    this.#scheduled = true;
    // setImmediate runs after the current tick's microtasks: every record()
    // made in this tick joins the batch.
    setImmediate(() => {
      this.#scheduled = false;
      this.#kick();
    });
  }

  #kick(): void {
    if (this.#loop) return;
    this.#loop = this.#run().finally(() => {
      this.#loop = undefined;
      if (this.#pending.length > 0 && !this.#closed) this.#schedule();
    });
  }

  async #run(): Promise<void> {
    while (this.#pending.length > 0) {
      const batch = this.#pending.splice(0, this.#maxBatch);
      await this.#writeBatch(batch);
      const unsealed = this.#dbHead.seq - this.#lastCheckpointSeq;
      if (unsealed >= this.#checkpointEvery || (this.#timerDue && unsealed > 0)) {
        this.#timerDue = false;
        await this.checkpoint();
      }
    }
    if (this.#timerDue) {
      this.#timerDue = false;
      await this.checkpoint();
    }
  }

  async #writeBatch(batch: Pending[]): Promise<void> {
    let records = chainAuditRecords(this.#head, batch);
    const failures: unknown[] = [];
    const db = await this.#db.write(records);
    if (db.ok) {
      records = db.records;
    } else {
      failures.push(db.error);
      this.#onSinkError('database', db.error);
      if (!this.#db.canKeep(records.length)) {
        // The database has been down too long: acknowledging more through the
        // file alone would leave a gap it can never fill. Refuse instead.
        this.#reject(batch, failures);
        return;
      }
    }
    // Durable sinks first; the others only once the batch is acknowledged. A
    // batch nobody made durable is refused and its seqs are used again by the
    // next one: had a non-durable sink (a file without fsync, stdout) written
    // it, that sink would hold two different records with the same seq — as
    // it did after every refusal on a full disk.
    const wroteDurably = await this.#writeSinks(
      this.#sinks.filter((sink) => sink.durable),
      records,
      failures,
    );
    if (!db.ok && !wroteDurably) {
      this.#reject(batch, failures);
      return;
    }
    await this.#writeSinks(
      this.#sinks.filter((sink) => !sink.durable),
      records,
      failures,
    );
    const last = records[records.length - 1]!;
    if (db.ok) this.#dbHead = { seq: last.seq, hash: last.hash };
    else this.#db.keep(records);
    this.#head = { seq: last.seq, hash: last.hash };
    for (const [i, p] of batch.entries()) p.resolve(records[i]!);
  }

  /**
   * Writes `records` to `sinks` in parallel; a failure is reported and
   * collected, not thrown. True when at least one sink wrote them.
   */
  async #writeSinks(
    sinks: readonly AuditSink[],
    records: readonly AuditRecord[],
    failures: unknown[],
  ): Promise<boolean> {
    const results = await Promise.allSettled(sinks.map((sink) => sink.write(records)));
    let wrote = false;
    results.forEach((result, i) => {
      if (result.status === 'fulfilled') wrote = true;
      else {
        failures.push(result.reason);
        this.#onSinkError(sinks[i]!.name, result.reason);
      }
    });
    return wrote;
  }

  #reject(batch: Pending[], failures: unknown[]): void {
    // The head stays where it was: the next batch chains from the last durable record.
    const cause = failures.length === 1 ? failures[0] : new AggregateError(failures, 'every audit sink failed');
    for (const p of batch) p.reject(new AuditUnavailableError({ cause }));
  }
}

/** True when `records` are well-formed successors of `head` (used before trusting a sink's copy). */
function continuesChain(head: AuditChainHead, records: readonly AuditRecord[]): boolean {
  let prev = head;
  for (const r of records) {
    if (r.seq !== prev.seq + 1 || r.prevHash !== prev.hash || auditChainHash(r.prevHash, r.event) !== r.hash)
      return false;
    prev = r;
  }
  return true;
}
