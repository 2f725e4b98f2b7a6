import { KEY_BYTES } from '../barrier/barrier-blob.js';
import { CustosError, IntegrityError } from '../errors/index.js';
import type { EntryStore } from '../ports/index.js';
import type { RootKeyWrapper } from './root-key-wrapper.js';
import { type SealConfig, serializeSealConfig } from './seal-config.js';

/**
 * Persistence of the root key wrapped by a {@link RootKeyWrapper} (the
 * `wrapped` seal family), in the untrusted {@link EntryStore}.
 *
 * Layout: namespace `sys`, one row per wrapping generation at
 * `seal-wrapped/<keyringId>/<generation, 10 digits>`, each holding
 * `{ version, key: wrapper.describe(), blob }`. A new generation is written by
 * `rotate-seal` (the root key re-wrapped under another seal key) before any
 * older one is removed, so a crash at any point leaves at least one row that
 * opens the keyring.
 *
 * The row is in plain text, so everything in it is bound into the AAD the
 * wrapper authenticates: the row key (keyring id and generation), the
 * canonical seal configuration and the canonical description of the seal
 * key. Editing the described key (e.g. swapping a key label) or moving a blob
 * to another row or keyring makes the unwrap fail closed.
 */
const WRAPPED_NAMESPACE = 'sys';
const WRAPPED_PREFIX = 'seal-wrapped/';
const GENERATION_DIGITS = 10;
const MAX_GENERATION = 9_999_999_999;
const SCAN_PAGE = 1000;
/** A wrapped 32-byte key is well under this for every mechanism (GCM: iv + 32 + tag; key wrap: 40). */
const MAX_BLOB_BYTES = 4096;

/** One stored wrapping of the root key. */
export interface WrappedRootKey {
  readonly generation: number;
  readonly rowKey: string;
  /** The seal key's description as stored (non-secret). */
  readonly key: Readonly<Record<string, string>>;
  readonly blob: Uint8Array;
}

/** Canonical description: keys sorted, so the same key always yields the same bytes. */
export function canonicalKeyDescription(key: Readonly<Record<string, string>>): string {
  const sorted: Record<string, string> = {};
  for (const name of Object.keys(key).sort()) sorted[name] = key[name]!;
  return JSON.stringify(sorted);
}

function prefix(config: SealConfig): string {
  return `${WRAPPED_PREFIX}${config.keyringId}/`;
}

function rowKeyOf(config: SealConfig, generation: number): string {
  return prefix(config) + generation.toString().padStart(GENERATION_DIGITS, '0');
}

// Purpose label first: this AAD can never equal a keyring term's or a data row's.
function wrappedAad(config: SealConfig, rowKey: string, key: Readonly<Record<string, string>>): Uint8Array {
  return Buffer.from(
    `custos.seal.wrapped.v1\0${WRAPPED_NAMESPACE}\0${rowKey}\0${serializeSealConfig(config)}\0${canonicalKeyDescription(key)}`,
    'utf8',
  );
}

/**
 * Wraps `rootKey` with `wrapper` and stores it as `generation`. False when
 * that generation is already taken. `rootKey` stays the caller's.
 */
export async function storeWrappedRootKey(
  store: EntryStore,
  wrapper: RootKeyWrapper,
  config: SealConfig,
  rootKey: Uint8Array,
  generation: number,
): Promise<boolean> {
  if (!Number.isInteger(generation) || generation < 1 || generation > MAX_GENERATION) {
    throw new RangeError('generation out of range');
  }
  const rowKey = rowKeyOf(config, generation);
  const key = { ...wrapper.describe() };
  const blob = await wrapper.wrap(rootKey, wrappedAad(config, rowKey, key));
  const value = JSON.stringify({ version: 1, key: JSON.parse(canonicalKeyDescription(key)), blob: b64(blob) });
  return store.putIfAbsent(WRAPPED_NAMESPACE, rowKey, Buffer.from(value, 'utf8'));
}

/** Every stored wrapping of this keyring's root key, oldest generation first. Malformed rows: {@link IntegrityError}. */
export async function readWrappedRootKeys(store: EntryStore, config: SealConfig): Promise<WrappedRootKey[]> {
  const found: WrappedRootKey[] = [];
  let after: string | undefined;
  for (;;) {
    const rows = await store.scan(WRAPPED_NAMESPACE, prefix(config), { after, limit: SCAN_PAGE });
    for (const row of rows) found.push(parseRow(config, row.key, row.value));
    if (rows.length < SCAN_PAGE) break;
    after = rows[rows.length - 1]?.key;
  }
  return found.sort((a, b) => a.generation - b.generation);
}

/**
 * The stored wrapping made with the seal key `wrapper` names, or
 * `CUSTOS_ERR_SEAL_KEY_MISMATCH` when none is: the configuration names a seal
 * key that never wrapped this root key. The stored keys are named in the
 * error (they are non-secret labels and ids), so the operator can fix the
 * configuration.
 */
export function findWrappingFor(rows: readonly WrappedRootKey[], wrapper: RootKeyWrapper): WrappedRootKey {
  const wanted = canonicalKeyDescription(wrapper.describe());
  // The newest matching generation: after a rotation back to an earlier key
  // the newest row is the one the operator made last.
  for (let i = rows.length - 1; i >= 0; i--) {
    const row = rows[i]!;
    if (canonicalKeyDescription(row.key) === wanted) return row;
  }
  const stored = rows.map((r) => canonicalKeyDescription(r.key)).join(', ');
  throw new CustosError(
    'CUSTOS_ERR_SEAL_KEY_MISMATCH',
    `Configured: ${wanted}. Stored: ${stored === '' ? 'none' : stored}.`,
  );
}

/**
 * Unwraps one stored row. A blob that does not open under its own AAD (a
 * tampered row, a swapped key description, the wrong key behind the same
 * label) is `CUSTOS_ERR_UNSEAL_FAILED`; errors the wrapper raises with their
 * own code (HSM or KMS unreachable, access denied) pass through.
 */
export async function unwrapRootKey(wrapper: RootKeyWrapper, config: SealConfig, row: WrappedRootKey): Promise<Buffer> {
  let key: Uint8Array;
  try {
    key = await wrapper.unwrap(row.blob, wrappedAad(config, row.rowKey, row.key));
  } catch (e) {
    if (e instanceof CustosError && e.code !== 'CUSTOS_ERR_INTEGRITY') throw e;
    throw new CustosError('CUSTOS_ERR_UNSEAL_FAILED', 'The seal key did not unwrap the stored root key.');
  }
  const rootKey = Buffer.from(key);
  key.fill(0);
  if (rootKey.length !== KEY_BYTES) {
    rootKey.fill(0);
    throw new CustosError('CUSTOS_ERR_UNSEAL_FAILED', 'The seal key did not unwrap the stored root key.');
  }
  return rootKey;
}

/** Deletes this keyring's wrappings older than `generation` (their seal keys are retired). */
export async function deleteOlderWrappings(
  store: EntryStore,
  rows: readonly WrappedRootKey[],
  generation: number,
): Promise<void> {
  for (const row of rows) if (row.generation < generation) await store.delete(WRAPPED_NAMESPACE, row.rowKey);
}

/** Deletes wrapped rows of other keyring ids (leftovers of crashed initialisations or migrations). */
export async function deleteStaleWrappings(store: EntryStore, config: SealConfig | undefined): Promise<void> {
  const live = config === undefined ? undefined : prefix(config);
  let after: string | undefined;
  for (;;) {
    const keys = await store.list(WRAPPED_NAMESPACE, WRAPPED_PREFIX, { after, limit: SCAN_PAGE });
    for (const key of keys) if (live === undefined || !key.startsWith(live)) await store.delete(WRAPPED_NAMESPACE, key);
    if (keys.length < SCAN_PAGE) return;
    after = keys[keys.length - 1];
  }
}

function parseRow(config: SealConfig, rowKey: string, value: Uint8Array): WrappedRootKey {
  const digits = rowKey.slice(prefix(config).length);
  if (!/^[0-9]{10}$/.test(digits)) throw new IntegrityError();
  const generation = Number(digits);
  if (generation < 1) throw new IntegrityError();
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(value).toString('utf8'));
  } catch {
    throw new IntegrityError();
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new IntegrityError();
  const o = raw as Record<string, unknown>;
  if (o.version !== 1 || typeof o.blob !== 'string' || typeof o.key !== 'object' || o.key === null) {
    throw new IntegrityError();
  }
  const key: Record<string, string> = {};
  for (const [name, v] of Object.entries(o.key as Record<string, unknown>)) {
    if (typeof v !== 'string') throw new IntegrityError();
    key[name] = v;
  }
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(o.blob) || o.blob.length > (MAX_BLOB_BYTES * 4) / 3 + 4) {
    throw new IntegrityError();
  }
  return { generation, rowKey, key, blob: Buffer.from(o.blob, 'base64') };
}

function b64(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64');
}
