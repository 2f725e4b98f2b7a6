import { createHash } from 'node:crypto';
import { canonicalJson } from './canonical-json.js';

/**
 * The compact *stored* form of an audit event (docs/audit.md, "Stored form").
 *
 * The chain hash covers the event's full canonical JSON, exactly as before
 * (see audit-hash.ts); the stores keep a smaller encoding of it that expands
 * back to those exact bytes. So:
 * - verification, exports, `custos audit tail` and observers see the full
 *   event, unchanged; an export verifies offline as it always did;
 * - tamper evidence is unchanged and covers the dictionary too: an edited
 *   compact row, or an edited, swapped or deleted dictionary entry, expands
 *   to other bytes (or to nothing) and its chain hash no longer matches;
 * - a record that cannot be encoded exactly (an unknown field, a value of an
 *   unexpected form, a dictionary id already taken by another value) is
 *   stored in full, so compaction can never lose anything.
 *
 * The compact form is a JSON object whose first member is `"v":1` (a full
 * canonical event starts with `{"auth"`, `{"decision"`, …, never `{"v"`,
 * since it always has `time` and `type`, which sort before `v`):
 *
 * | stored | full | how |
 * |---|---|---|
 * | `v` | — | compact form version (1) |
 * | `t` | `time` | epoch milliseconds |
 * | `y` | `type` | omitted when `request` |
 * | `k` | `kind` | as is |
 * | `i` | `request_id` | a lower-case UUID as 22 base64url characters of its 16 bytes |
 * | `ri` | `request_id` | any other request id, as is |
 * | `a` | `auth` | dictionary id of the object's canonical JSON |
 * | `q` | `request` | dictionary id of the object's canonical JSON |
 * | `d` | `decision` | omitted when `allow` |
 * | `s` | `status` | as is |
 * | `c` | `error_code` | dictionary id |
 * | `r` | `reason` | dictionary id |
 * | `x` | `data` | as is (HMACs never repeat) |
 * | `p` | `details.phase` | omitted when `response`; `0`: the event has no phase (its `details`, if any, are all in `e`) |
 * | `e` | `details` | the other members, as is |
 *
 * Dictionary entries are *content-addressed*: an entry's id is the first 48
 * bits of SHA-256 of its value, in base64url (8 characters). Any node can
 * add one without coordination, the same value has the same id in every
 * store, and a reader checks each entry it loads against its id.
 */
export const AUDIT_COMPACT_VERSION = 1;

const COMPACT_PREFIX = '{"v":1,';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const ID = /^[A-Za-z0-9_-]{8}$/;
const TOP_LEVEL = new Set([
  'time',
  'type',
  'kind',
  'request_id',
  'auth',
  'request',
  'decision',
  'status',
  'error_code',
  'reason',
  'data',
  'details',
]);

/** The dictionary id of a value: base64url of the first 6 bytes of its SHA-256. */
export function auditDictionaryId(value: string): string {
  let id = recentIds.get(value);
  if (id === undefined) {
    id = createHash('sha256').update(value).digest().subarray(0, 6).toString('base64url');
    if (recentIds.size >= RECENT_MAX) recentIds.clear();
    recentIds.set(value, id);
  }
  return id;
}

/** Ids of values seen lately: the same few identities and requests recur in nearly every event. */
const recentIds = new Map<string, string>();

/** True when `stored` is in the compact form (anything else is a full event, stored as it was hashed). */
export function isCompactAuditEvent(stored: string): boolean {
  return stored.startsWith(COMPACT_PREFIX);
}

/**
 * Takes a value into the dictionary: returns its id, or `undefined` when the
 * store cannot reference it (the id is held by another value), in which case
 * the event is stored in full.
 */
export type AuditIntern = (value: string) => string | undefined;

/** Looks an entry up by id; `undefined` when the store has none (or none that matches its id). */
export type AuditLookup = (id: string) => string | undefined;

/**
 * The compact stored form of `event` (a full canonical event, as hashed), or
 * `event` itself when it cannot be encoded exactly. `intern` is called for
 * each value the compact form references; the caller must store every entry
 * it accepted before (or with) the record. `lookup` must answer for those
 * entries too: the encoding is expanded again and kept only if it gives back
 * the exact bytes.
 */
export function compactAuditEvent(event: string, intern: AuditIntern, lookup: AuditLookup): string {
  // Every event is compacted by each store (the database and the file) and
  // twice by a database store (entries first, then rows): the encoding is
  // the same each time (ids are content addresses), so it is made once and
  // remembered for a while; each store still decides whether it may
  // reference every entry it uses.
  let known = recent.get(event);
  if (known === undefined) {
    known = encodeChecked(event);
    if (recent.size >= RECENT_MAX) recent.clear();
    recent.set(event, known);
  }
  if (known === null) return event;
  // Every entry is offered to `intern` (a store collects its entries so), then checked.
  let accepted = true;
  for (const [id, value] of known.entries) if (intern(value) !== id) accepted = false;
  if (!accepted) return event;
  for (const [id, value] of known.entries) if (lookup(id) !== value) return event;
  return known.compact;
}

interface Encoded {
  readonly compact: string;
  readonly entries: ReadonlyArray<readonly [string, string]>;
}

const RECENT_MAX = 4_096;
const recent = new Map<string, Encoded | null>();

/** The compact form and the entries it references, kept only if it expands back to the exact bytes; `null` otherwise. */
function encodeChecked(event: string): Encoded | null {
  const entries = new Map<string, string>();
  const compact = encode(event, (value) => {
    const id = auditDictionaryId(value);
    // Two values with one id in one event: store it in full.
    if (entries.has(id) && entries.get(id) !== value) return undefined;
    entries.set(id, value);
    return id;
  });
  if (compact === undefined || expandAuditEvent(compact, (id) => entries.get(id)) !== event) return null;
  return { compact, entries: [...entries] };
}

function encode(event: string, intern: AuditIntern): string | undefined {
  let e: Record<string, unknown>;
  try {
    e = JSON.parse(event) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (typeof e !== 'object' || e === null || Array.isArray(e)) return undefined;
  for (const key of Object.keys(e)) if (!TOP_LEVEL.has(key)) return undefined;
  if (typeof e.time !== 'string' || typeof e.type !== 'string') return undefined;
  const t = Date.parse(e.time);
  if (!Number.isSafeInteger(t)) return undefined;
  const out: Record<string, unknown> = { v: AUDIT_COMPACT_VERSION, t };
  if (e.type !== 'request') out.y = e.type;
  if (e.kind !== undefined) out.k = e.kind;
  if (typeof e.request_id === 'string' && UUID.test(e.request_id)) {
    out.i = Buffer.from(e.request_id.replaceAll('-', ''), 'hex').toString('base64url');
  } else if (e.request_id !== undefined) out.ri = e.request_id;
  const ref = (value: unknown, asJson: boolean): string | undefined => {
    if (!asJson && typeof value !== 'string') return undefined;
    return intern(asJson ? canonicalJson(value) : (value as string));
  };
  for (const [full, short, asJson] of [
    ['auth', 'a', true],
    ['request', 'q', true],
    ['error_code', 'c', false],
    ['reason', 'r', false],
  ] as const) {
    if (e[full] === undefined) continue;
    const id = ref(e[full], asJson);
    if (id === undefined) return undefined;
    out[short] = id;
  }
  if (e.decision !== undefined && e.decision !== 'allow') out.d = e.decision;
  if (e.decision === undefined) out.d = 0;
  if (e.status !== undefined) out.s = e.status;
  if (e.data !== undefined) out.x = e.data;
  const details = e.details as Record<string, unknown> | undefined;
  if (details !== undefined && typeof details === 'object' && details !== null && typeof details.phase === 'string') {
    const { phase, ...rest } = details;
    if (phase !== 'response') out.p = phase;
    if (Object.keys(rest).length > 0) out.e = rest;
  } else {
    out.p = 0;
    if (details !== undefined) out.e = details;
  }
  return JSON.stringify(out);
}

/**
 * The full canonical event a stored event stands for: `stored` itself when
 * it is not compact, its expansion when it is. A compact event that cannot be
 * expanded (malformed, or an entry missing) is returned as it is stored:
 * it then fails verification at its own seq, which is where the fault is.
 */
export function expandAuditEvent(stored: string, lookup: AuditLookup): string {
  if (!isCompactAuditEvent(stored)) return stored;
  try {
    const parsed: unknown = JSON.parse(stored);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return stored;
    return expand(parsed as Record<string, unknown>, lookup) ?? stored;
  } catch {
    return stored;
  }
}

/** The dictionary ids a stored event references (none for a full event). */
export function auditEventRefs(stored: string): string[] {
  if (!isCompactAuditEvent(stored)) return [];
  try {
    const c = JSON.parse(stored) as Record<string, unknown>;
    return [c.a, c.q, c.c, c.r].filter((id): id is string => typeof id === 'string');
  } catch {
    return [];
  }
}

/**
 * The full canonical text, assembled as strings in canonical member order
 * (auth, data, decision, details, error_code, kind, reason, request,
 * request_id, status, time, type): the `auth` and `request` entries are
 * canonical JSON already, so they are spliced in, not parsed and written
 * again. Whether the result is the hashed event is for the chain hash to say.
 */
function expand(c: Record<string, unknown>, lookup: AuditLookup): string | undefined {
  if (c.v !== AUDIT_COMPACT_VERSION || typeof c.t !== 'number') return undefined;
  const ref = (id: unknown): string | undefined => (typeof id === 'string' && ID.test(id) ? lookup(id) : undefined);
  const members: string[] = [];
  const add = (key: string, json: string) => members.push(`"${key}":${json}`);
  if (c.a !== undefined) {
    const auth = ref(c.a);
    if (auth === undefined) return undefined;
    add('auth', auth);
  }
  if (c.x !== undefined) add('data', canonicalJson(c.x));
  if (c.d !== 0) add('decision', canonicalJson(c.d ?? 'allow'));
  if (c.p === 0) {
    if (c.e !== undefined) add('details', canonicalJson(c.e));
  } else {
    add('details', canonicalJson({ ...(c.e as Record<string, unknown> | undefined), phase: c.p ?? 'response' }));
  }
  for (const [key, short] of [
    ['error_code', 'c'],
    ['kind', 'k'],
    ['reason', 'r'],
    ['request', 'q'],
  ] as const) {
    if (c[short] === undefined) continue;
    if (short === 'k') {
      add(key, canonicalJson(c.k));
      continue;
    }
    const value = ref(c[short]);
    if (value === undefined) return undefined;
    add(key, short === 'q' ? value : canonicalJson(value));
  }
  if (typeof c.i === 'string') {
    const hex = Buffer.from(c.i, 'base64url').toString('hex');
    if (hex.length !== 32) return undefined;
    add(
      'request_id',
      `"${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}"`,
    );
  } else if (c.ri !== undefined) add('request_id', canonicalJson(c.ri));
  if (c.s !== undefined) add('status', canonicalJson(c.s));
  add('time', `"${new Date(c.t).toISOString()}"`);
  add('type', canonicalJson(c.y ?? 'request'));
  return `{${members.join(',')}}`;
}

/** An entry is genuine only when its id is its value's content address. */
export function isAuditDictionaryEntry(id: string, value: string): boolean {
  return auditDictionaryId(value) === id;
}
