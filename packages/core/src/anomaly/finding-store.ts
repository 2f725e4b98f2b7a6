import { type Cipher, openJson, sealJson } from '../common/cipher.js';
import { NotFoundError, ValidationError } from '../errors/index.js';
import type { EntryStore } from '../ports/storage.js';
import type { Finding, FindingActionResult, FindingSeverity, FindingState } from './finding.js';

/** Entries namespace of findings: one sealed entry per finding, keyed by its id. */
const ALERTS = 'alert';
/** Where the engine's progress is kept (one sealed entry). */
const CURSOR = 'alert.cursor';
const CURSOR_KEY = 'engine';
/**
 * The quarantine actions of each finding, apart from the finding itself:
 * acknowledging a finding (a rewrite of its entry) and recording what was
 * done on it never overwrite each other.
 */
const ACTIONS = 'alert.action';

/**
 * Where a finding's actions stand: `running` since `at` (claimed by a
 * runner; one that crashed leaves it for another to take over), or
 * `finished` with each action's outcome.
 */
export interface FindingActionRecord {
  readonly state: 'running' | 'finished';
  readonly at: string;
  readonly actions: readonly FindingActionResult[];
}
/** Ids: `al_` + inverted time and seq (24 hex) + `_` + rule: newest first in key order, one per (rule, record). */
export const FINDING_ID_SHAPE = /^al_[0-9a-f]{24}_[a-z0-9-]{1,64}$/;
/** Largest page a caller may ask for. */
export const ALERT_PAGE_MAX = 100;
/**
 * Records read (and decrypted) per page at most, whatever the filters: a
 * filter that matches few of many findings costs one bounded page, and the
 * caller continues with the cursor.
 */
export const ALERT_LIST_SCAN = 1_000;
const MAX_EPOCH_MS = 0xffff_ffff_ffff;

/**
 * The id of the finding `rule` raises on the record `seq` recorded at
 * `epochMs`. Deterministic, so raising it twice (a retry, a restart that
 * feeds the same records again) stores it once. The key holds only the time,
 * the seq and the rule name: nothing about the subject or the paths.
 */
export function findingId(rule: string, epochMs: number, seq: number): string {
  const inverted = (MAX_EPOCH_MS - Math.max(0, Math.min(MAX_EPOCH_MS, Math.floor(epochMs)))).toString(16);
  return `al_${inverted.padStart(12, '0')}${seq.toString(16).padStart(12, '0')}_${rule}`;
}

export interface FindingListQuery {
  readonly state?: FindingState;
  readonly rule?: string;
  readonly severity?: FindingSeverity;
  /** Continue after this id (the `cursor` of the previous page). */
  readonly cursor?: string;
  /** 1..{@link ALERT_PAGE_MAX} (default 50). */
  readonly limit?: number;
}

export interface FindingPage {
  readonly alerts: Finding[];
  /** Present when more findings may follow: pass it as `cursor` (the name task listings use too). */
  readonly next_cursor?: string;
}

/**
 * Findings in storage, newest first. Every finding is sealed whole behind
 * the barrier (its subject, evidence and explanation may name secret paths
 * and identities); only its id — time, seq, rule — is plain, for ordering.
 * Someone with write access to the database can delete a finding (as any
 * entry) but not forge or alter one: the AEAD binds each to its id.
 */
export class FindingStore {
  readonly #entries: EntryStore;
  readonly #cipher: Cipher;

  constructor(deps: { entries: EntryStore; cipher: Cipher }) {
    this.#entries = deps.entries;
    this.#cipher = deps.cipher;
  }

  /** Stores a new finding; false when it was stored before (the same rule on the same record). */
  raise(finding: Finding): Promise<boolean> {
    return this.#entries.putIfAbsent(ALERTS, finding.id, sealJson(this.#cipher, ALERTS, finding.id, finding));
  }

  /** A finding, with the actions taken on it (what `custos alerts show` says was done). */
  async get(id: string): Promise<Finding> {
    const finding = await this.#open(id);
    const actions = await this.readActions(id);
    return actions && actions.actions.length > 0 ? { ...finding, actions: actions.actions } : finding;
  }

  /**
   * Claims a finding's actions for one runner: true when no runner claimed
   * them before. One insert decides, on every node: a finding raised twice
   * (a restart, two nodes) acts once.
   */
  async #open(id: string): Promise<Finding> {
    if (!FINDING_ID_SHAPE.test(id)) throw new NotFoundError();
    const stored = await this.#entries.get(ALERTS, id);
    if (!stored) throw new NotFoundError();
    return openJson<Finding>(this.#cipher, ALERTS, id, stored.value);
  }

  claimActions(id: string, at: Date): Promise<boolean> {
    const record: FindingActionRecord = { state: 'running', at: at.toISOString(), actions: [] };
    return this.#entries.putIfAbsent(ACTIONS, id, sealJson(this.#cipher, ACTIONS, id, record));
  }

  async readActions(id: string): Promise<FindingActionRecord | undefined> {
    const stored = await this.#entries.get(ACTIONS, id);
    return stored ? openJson<FindingActionRecord>(this.#cipher, ACTIONS, id, stored.value) : undefined;
  }

  async writeActions(id: string, record: FindingActionRecord): Promise<void> {
    await this.#entries.put(ACTIONS, id, sealJson(this.#cipher, ACTIONS, id, record));
  }

  /**
   * Marks a finding acknowledged by `by` (an operator's accessor). Acking an
   * acknowledged finding changes nothing: the first acknowledgement stands.
   */
  async ack(id: string, by: string, at: Date): Promise<Finding> {
    const finding = await this.#open(id);
    if (finding.state === 'acked') return finding;
    const acked: Finding = { ...finding, state: 'acked', acked_by: by, acked_at: at.toISOString() };
    await this.#entries.put(ALERTS, id, sealJson(this.#cipher, ALERTS, id, acked));
    return acked;
  }

  /**
   * The engine's stored progress: the seq up to which records went through
   * the rules (0 when none is stored). Sealed, so someone with database
   * access cannot move it on to skip the records a restart would re-examine.
   */
  async readCursor(): Promise<number> {
    const stored = await this.#entries.get(CURSOR, CURSOR_KEY);
    if (!stored) return 0;
    const { seq } = await openJson<{ seq: number }>(this.#cipher, CURSOR, CURSOR_KEY, stored.value);
    return Number.isSafeInteger(seq) && seq > 0 ? seq : 0;
  }

  async writeCursor(seq: number): Promise<void> {
    await this.#entries.put(CURSOR, CURSOR_KEY, sealJson(this.#cipher, CURSOR, CURSOR_KEY, { seq }));
  }

  /** One page, newest first, filtered; at most {@link ALERT_LIST_SCAN} findings are read for it. */
  async list(query: FindingListQuery = {}): Promise<FindingPage> {
    const limit = query.limit ?? 50;
    if (!Number.isInteger(limit) || limit < 1 || limit > ALERT_PAGE_MAX) {
      throw new ValidationError(`limit must be 1..${ALERT_PAGE_MAX}.`);
    }
    if (query.cursor !== undefined && !FINDING_ID_SHAPE.test(query.cursor)) throw new ValidationError('bad cursor.');
    const alerts: Finding[] = [];
    let after = query.cursor;
    let read = 0;
    while (alerts.length < limit && read < ALERT_LIST_SCAN) {
      const batch = Math.min(ALERT_LIST_SCAN - read, 200);
      const entries = await this.#entries.scan(ALERTS, '', { ...(after ? { after } : {}), limit: batch });
      for (const entry of entries) {
        read++;
        after = entry.key;
        // The rule is in the id: no need to decrypt what it already excludes.
        if (query.rule !== undefined && !entry.key.endsWith(`_${query.rule}`)) continue;
        const finding = await openJson<Finding>(this.#cipher, ALERTS, entry.key, entry.value);
        if (query.state !== undefined && finding.state !== query.state) continue;
        if (query.severity !== undefined && finding.severity !== query.severity) continue;
        alerts.push(finding);
        if (alerts.length === limit) break;
      }
      // A full page ends here (a cursor that leads to an empty page is allowed); a short scan is the end.
      if (alerts.length < limit && entries.length < batch) return { alerts };
    }
    return after ? { alerts, next_cursor: after } : { alerts };
  }
}
