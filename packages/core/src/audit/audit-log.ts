import { createPublicKey, type KeyObject } from 'node:crypto';
import { AuditIntegrityError, AuditUnavailableError } from '../errors/errors.js';
import { type AuditCheckpoint, AuditConflictError, type AuditRecord, type AuditStore } from '../ports/storage.js';
import {
  AUDIT_CHECKPOINT_GENESIS_DIGEST,
  type AuditSigner,
  auditCheckpointDigest,
  signAuditCheckpoint,
  verifyAuditCheckpointSignature,
} from './audit-checkpoint.js';
import { AuditDatabaseSink } from './audit-database-sink.js';
import type { AuditEvent, AuditEventInput } from './audit-event.js';
import { AUDIT_EMPTY_HEAD, type AuditChainHead, auditChainHash, chainAuditRecords } from './audit-hash.js';
import { isAuditHmac } from './audit-hmac.js';
import { catchUpAuditSink, checkAuditAtOpen } from './audit-open-check.js';
import type { AuditSink } from './audit-sink.js';
import { canonicalJson } from './canonical-json.js';

export interface AuditLogOptions {
  /** The database: the chain authority, where checkpoints are kept. */
  readonly store: AuditStore;
  /** Further sinks (a JSON-lines file, stdout). Durable ones can acknowledge a batch while the database is down. */
  readonly sinks?: readonly AuditSink[];
  /** Ed25519 key that signs checkpoints. */
  readonly signer: AuditSigner;
  /**
   * Keys that stored checkpoints (this node's earlier ones, other nodes')
   * must verify with (default: the signer's public key).
   */
  readonly publicKeys?: ReadonlyMap<string, KeyObject>;
  /** At most this many records between consecutive checkpoints (default 1,000). */
  readonly checkpointEvery?: number;
  /** Seal new records at least this often (ms, default 10,000). */
  readonly checkpointIntervalMs?: number;
  /** Largest batch given to one `append` (default 1,000). */
  readonly maxBatch?: number;
  /** Re-chain-and-retry rounds after a seq conflict before the database write counts as failed (default 5). */
  readonly maxConflictRetries?: number;
  /**
   * Records acknowledged while the database is down that may wait for it
   * (default 100,000); beyond, requests are refused. The checkpoint interval
   * bounds it too: no record is acknowledged more than `checkpointEvery`
   * records after the last checkpoint, and checkpoints need the database.
   */
  readonly maxBacklog?: number;
  /** Clock (tests). */
  readonly now?: () => Date;
  /** Called when a sink or a checkpoint write fails; the log goes on. Never receives event contents. */
  readonly onSinkError?: (sink: string, error: unknown) => void;
  /**
   * Called once if the log finds, while it runs, that the stored chain no
   * longer continues what it wrote and sealed (records or checkpoints
   * deleted or rewritten under it). The log then signs nothing more and
   * refuses every record; the node seals itself.
   */
  readonly onIntegrityFailure?: (error: AuditIntegrityError) => void;
}

interface Pending {
  readonly ts: string;
  readonly event: string;
  /** The event as recorded (with its time), handed to observers without parsing the JSON again. */
  readonly input: AuditEvent;
  readonly resolve: (record: AuditRecord) => void;
  readonly reject: (error: unknown) => void;
}

/** One acknowledged event, as observers see it: its chain position and the event itself. */
export interface AuditObservation {
  readonly seq: number;
  readonly hash: string;
  readonly event: AuditEvent;
}

/**
 * Told of every batch once it is acknowledged as durable. Called
 * synchronously in the writer's loop, after the batch's `record()` calls have
 * resolved: a listener must only queue the batch and return; what it throws
 * is swallowed (see {@link AuditLog.observe}).
 */
export type AuditObserver = (batch: readonly AuditObservation[]) => void;

/** The last checkpoint of the store's chain as this log knows it (seq 0: none yet). */
interface ChainPoint {
  readonly seq: number;
  readonly hash: string;
  readonly digest: string;
  /** 0: the start of the chain; 1: a legacy checkpoint; 2: a chained one. */
  readonly version: 0 | 1 | 2;
  /** The signed interval of a chained checkpoint (0 otherwise). */
  readonly every: number;
}

/**
 * Rounds a write or a checkpoint may lose to other nodes (the room before the
 * next checkpoint taken, or a checkpoint chained first) before it is given
 * up. Each lost round means another node moved the chain on, so this only
 * bounds starvation under heavy contention; it is not a retry on failure.
 */
const MAX_CONTENDED_ROUNDS = 100;

const START: ChainPoint = {
  seq: 0,
  hash: AUDIT_EMPTY_HEAD.hash,
  digest: AUDIT_CHECKPOINT_GENESIS_DIGEST,
  version: 0,
  every: 0,
};

function chainPoint(cp: AuditCheckpoint): ChainPoint {
  return {
    seq: cp.seq,
    hash: cp.hash,
    digest: auditCheckpointDigest(cp),
    version: cp.version,
    every: cp.version === 2 ? cp.every : 0,
  };
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
 * **Checkpoints** are chained (each names the one before it) and kept at
 * most `checkpointEvery` records apart — exactly: a batch that would carry
 * the chain past that bound is cut there, the checkpoint is sealed, and the
 * rest follows. If no checkpoint can be written (the database is down),
 * records beyond the bound are refused, so the rule the verifier enforces
 * always holds. Checkpoints are also sealed every `checkpointIntervalMs` with
 * new records, when opened on an unsealed tail, and on {@link close}.
 *
 * **Signing only what it verified.** A checkpoint seals the chain up to a
 * record this log wrote, or read and checked to continue its last checkpoint
 * (another node's records; see {@link open} for the start).
 */
export class AuditLog {
  readonly #store: AuditStore;
  readonly #db: AuditDatabaseSink;
  readonly #sinks: readonly AuditSink[];
  readonly #signer: AuditSigner;
  readonly #publicKeys: ReadonlyMap<string, KeyObject>;
  readonly #every: number;
  readonly #intervalMs: number;
  readonly #maxBatch: number;
  readonly #now: () => Date;
  readonly #onSinkError: (sink: string, error: unknown) => void;
  readonly #onIntegrityFailure: (error: AuditIntegrityError) => void;
  readonly #timer: NodeJS.Timeout;

  /** Last record acknowledged (in the database or only in a durable sink). */
  #head: AuditChainHead;
  /** Last record known to be in the database: what checkpoints seal. */
  #dbHead: AuditChainHead;
  /** The store's last checkpoint, as far as this log knows. */
  #last: ChainPoint;
  /** The furthest database record known to chain from {@link #last}. */
  #verified: AuditChainHead;
  #failure: AuditIntegrityError | undefined;
  #sealing: Promise<AuditCheckpoint | undefined> | undefined;
  #timerDue = false;
  #pending: Pending[] = [];
  #scheduled = false;
  #loop: Promise<void> | undefined;
  #closed = false;
  readonly #observers = new Set<AuditObserver>();

  private constructor(options: AuditLogOptions, head: AuditChainHead, last: ChainPoint) {
    this.#store = options.store;
    this.#db = new AuditDatabaseSink(options.store, {
      maxConflictRetries: options.maxConflictRetries ?? 5,
      maxBacklog: options.maxBacklog ?? 100_000,
    });
    this.#sinks = options.sinks ?? [];
    this.#signer = options.signer;
    this.#publicKeys = publicKeysOf(options);
    this.#every = options.checkpointEvery ?? 1_000;
    this.#intervalMs = options.checkpointIntervalMs ?? 10_000;
    this.#maxBatch = options.maxBatch ?? 1_000;
    this.#now = options.now ?? (() => new Date());
    this.#onSinkError = options.onSinkError ?? (() => undefined);
    this.#onIntegrityFailure = options.onIntegrityFailure ?? (() => undefined);
    this.#head = head;
    this.#dbHead = head;
    this.#verified = head;
    this.#last = last;
    this.#timer = setInterval(() => {
      this.#timerDue = true;
      this.#schedule();
    }, this.#intervalMs);
    // The timer must not keep a process alive that has nothing else to do.
    this.#timer.unref();
  }

  /**
   * Opens the log on `store`. Before signing anything it checks, at a
   * bounded cost, that the stored chain is what was sealed (see
   * `audit-open-check.ts`): the last checkpoint verifies and the chain
   * holds it, every sink's copy (the file) agrees with the database, and the records
   * after the last checkpoint (no more than its interval allows) chain from
   * it. It then gives the database any records a durable sink holds beyond
   * it (acknowledged while the database was down, just before a crash),
   * fills in a sink that fell behind, and seals an unsealed tail.
   *
   * The log owns the sinks it is given: {@link close} closes them, and so
   * does a failed open.
   *
   * @throws AuditIntegrityError when the chain was tampered with: nothing is signed.
   * @throws AuditUnavailableError when the store cannot be read.
   */
  static async open(options: AuditLogOptions): Promise<AuditLog> {
    const sinks = options.sinks ?? [];
    const onSinkError = options.onSinkError ?? (() => undefined);
    const every = options.checkpointEvery ?? 1_000;
    if (!Number.isSafeInteger(every) || every < 1) throw new RangeError('checkpointEvery must be a positive integer');
    let state: Awaited<ReturnType<typeof checkAuditAtOpen>>;
    try {
      state = await checkAuditAtOpen({
        store: options.store,
        sinks,
        publicKeys: publicKeysOf(options),
        every,
        onSinkError,
      });
      for (const sink of sinks) {
        try {
          await catchUpAuditSink(options.store, sink, state.head, every);
        } catch (error) {
          onSinkError(sink.name, error);
        }
      }
    } catch (error) {
      // The log owns its sinks: a log that does not open closes them.
      for (const sink of sinks) await sink.close().catch((e: unknown) => onSinkError(sink.name, e));
      if (error instanceof AuditIntegrityError) throw error;
      throw new AuditUnavailableError({ cause: error });
    }
    const last = state.lastCheckpoint ? chainPoint(state.lastCheckpoint) : START;
    const log = new AuditLog(options, { seq: state.head.seq, hash: state.head.hash }, last);
    if (state.head.seq > last.seq) await log.checkpoint();
    if (log.#failure) {
      await log.close();
      throw log.#failure;
    }
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
    if (this.#closed || this.#failure) return Promise.reject(new AuditUnavailableError({ cause: this.#failure }));
    let canonical: string;
    let ts: string;
    let input: AuditEvent;
    try {
      for (const value of Object.values(event.data ?? {})) {
        // Only HMACs may sit in `data`: a clear token here would be a leak.
        if (!isAuditHmac(value)) throw new TypeError('audit event data values must be audit HMACs');
      }
      ts = this.#now().toISOString();
      input = { ...event, time: ts } as AuditEvent;
      canonical = canonicalJson(input);
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise((resolve, reject) => {
      this.#pending.push({ ts, event: canonical, input, resolve, reject });
      this.#schedule();
    });
  }

  /**
   * Subscribes to acknowledged events (the anomaly engine). Each batch is
   * passed once it is durable — after the requests that wrote it were let
   * go — so an observer can neither delay nor fail a request, and sees only
   * what the chain holds: the seq and hash it reports are what
   * `custos audit verify` checks. A throwing observer is ignored, as a
   * failing subscriber must not stop the log. Returns the unsubscribe function.
   */
  observe(observer: AuditObserver): () => void {
    this.#observers.add(observer);
    return () => this.#observers.delete(observer);
  }

  /**
   * Seals the database's chain head now, chained to the last checkpoint
   * (no-op when already sealed). Failures are reported to `onSinkError`, not
   * thrown; a tampered chain makes the log fail (see `onIntegrityFailure`).
   */
  checkpoint(): Promise<AuditCheckpoint | undefined> {
    // One at a time: each chains to the one before.
    this.#sealing ??= this.#seal().finally(() => {
      this.#sealing = undefined;
    });
    return this.#sealing;
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
    if (this.#db.backlogSize > 0 && !this.#failure) {
      // Give the database what only the file holds while it can, so the final checkpoint seals it.
      const db = await this.#db.write([], this.#last.seq + this.#every);
      if (db.ok) {
        this.#extendVerified(db.appended);
        if (db.head && db.head.seq > this.#dbHead.seq) this.#dbHead = db.head;
      } else this.#onSinkError('database', db.error);
    }
    await this.checkpoint();
    for (const sink of this.#sinks) {
      await sink.close().catch((error: unknown) => this.#onSinkError(sink.name, error));
    }
  }

  async #seal(): Promise<AuditCheckpoint | undefined> {
    for (let attempt = 0; !this.#failure; attempt++) {
      const target = this.#dbHead;
      if (target.seq <= this.#last.seq) return undefined;
      try {
        await this.#verifyUpTo(target);
        const checkpoint = signAuditCheckpoint(
          this.#signer,
          { seq: target.seq, hash: target.hash, ts: this.#now().toISOString() },
          this.#last,
          { every: this.#every, intervalMs: this.#intervalMs },
        );
        await this.#store.appendCheckpoint(checkpoint);
        this.#last = chainPoint(checkpoint);
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
      } catch (error) {
        if (error instanceof AuditIntegrityError) this.#fail(error);
        else if (error instanceof AuditConflictError && attempt < MAX_CONTENDED_ROUNDS) {
          // Another node chained a checkpoint first: follow its chain, then seal what is still unsealed.
          try {
            await this.#followCheckpoints();
          } catch (followError) {
            if (followError instanceof AuditIntegrityError) this.#fail(followError);
            else this.#onSinkError('database', followError);
            return undefined;
          }
        } else {
          this.#onSinkError('database', error);
          return undefined;
        }
      }
    }
    return undefined;
  }

  /**
   * Makes sure the database chain runs from the last checkpoint to `target`
   * (a record this log wrote or found as the head): read and checked where
   * this log did not write it contiguously itself (another node appended in
   * between). Throws {@link AuditIntegrityError} when it does not.
   */
  async #verifyUpTo(target: AuditChainHead): Promise<void> {
    let prev = this.#verified;
    if (prev.seq === target.seq && prev.hash === target.hash) return;
    if (prev.seq >= target.seq) {
      throw new AuditIntegrityError(`the database chain at seq ${target.seq} is not the one this node verified.`);
    }
    while (prev.seq < target.seq) {
      const batch = await this.#store.range(prev.seq + 1, Math.min(1_000, target.seq - prev.seq));
      for (const r of batch) {
        if (r.seq !== prev.seq + 1 || r.prevHash !== prev.hash || auditChainHash(r.prevHash, r.event) !== r.hash) {
          throw new AuditIntegrityError(`the database chain breaks at seq ${prev.seq + 1}, after the last checkpoint.`);
        }
        prev = { seq: r.seq, hash: r.hash };
      }
      if (batch.length === 0) {
        throw new AuditIntegrityError(`the database chain ends at seq ${prev.seq}, before seq ${target.seq} it held.`);
      }
    }
    if (prev.hash !== target.hash) {
      throw new AuditIntegrityError(`the database record at seq ${target.seq} is not the one this node wrote.`);
    }
    this.#verified = prev;
  }

  /**
   * After a checkpoint conflict: reads the checkpoints from this log's last
   * one on and adopts them if they continue its chain (signed with a
   * trusted key, each naming the one before, within the interval). The last
   * checkpoint this log knows must still be there, unchanged.
   */
  async #followCheckpoints(): Promise<void> {
    const found = await this.#store.checkpointsFrom(this.#last.seq, 10_000);
    let cur = this.#last;
    let rest = found;
    if (cur.seq > 0) {
      const known = found[0];
      if (!known || known.seq !== cur.seq || auditCheckpointDigest(known) !== cur.digest) {
        throw new AuditIntegrityError(`the database lost or changed the checkpoint at seq ${cur.seq}.`);
      }
      rest = found.slice(1);
    }
    if (rest.length === 0) {
      throw new AuditIntegrityError(`the database's checkpoints do not continue from seq ${cur.seq}.`);
    }
    for (const cp of rest) {
      const key = this.#publicKeys.get(cp.keyId);
      if (
        cp.version !== 2 ||
        !key ||
        !verifyAuditCheckpointSignature(cp, key) ||
        cp.prevSeq !== cur.seq ||
        cp.prevDigest !== cur.digest ||
        cp.seq - cur.seq > (cur.version === 2 ? Math.max(cur.every, cp.every) : 2 * cp.every)
      ) {
        throw new AuditIntegrityError(`the database's checkpoint at seq ${cp.seq} does not continue the chain.`);
      }
      cur = chainPoint(cp);
    }
    this.#last = cur;
    // Records up to a checkpoint signed with the audit key were checked by the
    // node that signed it; checking resumes from there (at most one interval
    // is read again before this log's next checkpoint).
    this.#verified = { seq: cur.seq, hash: cur.hash };
  }

  #fail(error: AuditIntegrityError): void {
    if (this.#failure) return;
    this.#failure = error;
    try {
      this.#onIntegrityFailure(error);
    } catch {
      // The log has failed closed already; a failing listener changes nothing.
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
      const unsealed = this.#dbHead.seq - this.#last.seq;
      if (unsealed >= this.#every || (this.#timerDue && unsealed > 0)) {
        this.#timerDue = false;
        await this.checkpoint();
      }
    }
    if (this.#timerDue) {
      this.#timerDue = false;
      await this.checkpoint();
    }
  }

  /**
   * Writes a batch in chunks that never carry the chain more than
   * `checkpointEvery` records past the last checkpoint; between chunks the
   * checkpoint is sealed. Where that is impossible, the rest is refused.
   */
  async #writeBatch(batch: Pending[]): Promise<void> {
    let rest = batch;
    let stalls = 0;
    while (rest.length > 0) {
      if (this.#failure) {
        this.#reject(rest, [this.#failure]);
        return;
      }
      let room = this.#last.seq + this.#every - this.#head.seq;
      if (room <= 0) {
        await this.checkpoint();
        room = this.#last.seq + this.#every - this.#head.seq;
      }
      if (room <= 0 || stalls > MAX_CONTENDED_ROUNDS) {
        // No checkpoint could be written (the database is down), or other
        // nodes keep taking the room: acknowledging more would break the
        // interval the verifier holds the chain to.
        this.#reject(rest, [this.#failure ?? new Error('the audit checkpoint is overdue')]);
        return;
      }
      const chunk = rest.slice(0, room);
      const later = await this.#writeChunk(chunk);
      if (later.length === chunk.length) stalls++;
      rest = later.length > 0 ? [...later, ...rest.slice(room)] : rest.slice(room);
    }
  }

  /** Writes one chunk; returns the part the database had no room for (to retry after a checkpoint). */
  async #writeChunk(chunk: Pending[]): Promise<Pending[]> {
    let records = chainAuditRecords(this.#head, chunk);
    const failures: unknown[] = [];
    const db = await this.#db.write(records, this.#last.seq + this.#every);
    let later: Pending[] = [];
    if (db.ok) {
      if (db.head && db.head.seq < this.#dbHead.seq) {
        // Records this node wrote are gone from the database.
        this.#fail(
          new AuditIntegrityError(`the database chain went back from seq ${this.#dbHead.seq} to ${db.head.seq}.`),
        );
        this.#reject(chunk, [this.#failure]);
        return [];
      }
      this.#extendVerified(db.appended);
      if (db.head) this.#dbHead = db.head;
      if (db.records.length < records.length) {
        // Another node's records took the room left before the next checkpoint.
        later = chunk.slice(db.records.length);
        chunk = chunk.slice(0, db.records.length);
        this.#head = this.#db.backlogHead ?? this.#dbHead;
        if (chunk.length === 0) return later;
      }
      records = db.records;
    } else {
      failures.push(db.error);
      this.#onSinkError('database', db.error);
      if (!this.#db.canKeep(records.length)) {
        // The database has been down too long: acknowledging more through the
        // file alone would leave a gap it can never fill. Refuse instead.
        this.#reject(chunk, failures);
        return [];
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
      this.#reject(chunk, failures);
      return later;
    }
    await this.#writeSinks(
      this.#sinks.filter((sink) => !sink.durable),
      records,
      failures,
    );
    const last = records[records.length - 1]!;
    if (!db.ok) this.#db.keep(records);
    this.#head = { seq: last.seq, hash: last.hash };
    for (const [i, p] of chunk.entries()) p.resolve(records[i]!);
    this.#notify(chunk, records);
    return later;
  }

  /** Hands an acknowledged chunk to the observers (after its callers were resolved). */
  #notify(chunk: readonly Pending[], records: readonly AuditRecord[]): void {
    if (this.#observers.size === 0) return;
    const batch: AuditObservation[] = new Array(chunk.length);
    for (let i = 0; i < chunk.length; i++) {
      const r = records[i]!;
      batch[i] = { seq: r.seq, hash: r.hash, event: chunk[i]!.input };
    }
    for (const observer of this.#observers) {
      try {
        observer(batch);
      } catch {
        // Observing is never part of recording: the batch is durable and acknowledged already.
      }
    }
  }

  /** Records this log appended itself extend the verified chain when they follow it directly. */
  #extendVerified(appended: readonly AuditRecord[]): void {
    const first = appended[0];
    const last = appended[appended.length - 1];
    if (
      first &&
      last &&
      first.seq === this.#verified.seq + 1 &&
      first.prevHash === this.#verified.hash &&
      last.seq - first.seq === appended.length - 1
    ) {
      this.#verified = { seq: last.seq, hash: last.hash };
    }
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

function publicKeysOf(options: AuditLogOptions): ReadonlyMap<string, KeyObject> {
  return options.publicKeys ?? new Map([[options.signer.keyId, createPublicKey(options.signer.privateKey)]]);
}
