import { IntegrityError } from '../errors/index.js';
import type { EntryStore } from '../ports/index.js';
import { blobTerm, KEY_BYTES, MAX_TERM, openBlob, sealBlob } from './barrier-blob.js';

/**
 * Persistence of the keyring in the untrusted {@link EntryStore}.
 *
 * Layout: namespace `sys`, one row per term at
 * `keyring/<keyringId>/<term, 10 digits>`, each holding that term's data key
 * encrypted with the root key. One row per term (rather than one row for the
 * whole ring) is what makes rotation safe across nodes without a
 * compare-and-swap: a new term is claimed with `putIfAbsent`, so two nodes
 * rotating at once get two different terms and neither overwrites the other.
 *
 * The keyring id is random per initialisation, so rows left behind by an
 * initialisation that crashed, or that lost a race to another node, can never
 * be mistaken for the live keyring.
 */
export const KEYRING_NAMESPACE = 'sys';
const KEYRING_PREFIX = 'keyring/';
const TERM_DIGITS = 10;
const SCAN_PAGE = 1000;

/** Which keyring the root key opens, and what it is bound to. */
export interface KeyringBinding {
  /** Random id chosen at initialisation, named by the seal configuration. */
  readonly keyringId: string;
  /**
   * The canonical seal configuration. It is part of every term record's AAD:
   * the configuration is stored in plain text, and binding it here means an
   * edited configuration makes unsealing fail instead of being trusted.
   */
  readonly context: string;
}

/** The key prefix holding every keyring row, of any keyring id. */
export function keyringRowsPrefix(): string {
  return KEYRING_PREFIX;
}

function termPrefix(binding: KeyringBinding): string {
  return `${KEYRING_PREFIX}${binding.keyringId}/`;
}

function termRowKey(binding: KeyringBinding, term: number): string {
  return termPrefix(binding) + term.toString().padStart(TERM_DIGITS, '0');
}

// Purpose label first: a term record can never be confused with any other
// ciphertext the root key or a data key could produce.
function termAad(binding: KeyringBinding, rowKey: string): string {
  return `custos.keyring.v1\0${KEYRING_NAMESPACE}\0${rowKey}\0${binding.context}`;
}

/**
 * Stores `key` as `term`, encrypted with the root key. False when the term is
 * already taken (another node rotated first); the caller picks the next term.
 */
export async function claimTerm(
  store: EntryStore,
  rootKey: Uint8Array,
  binding: KeyringBinding,
  term: number,
  key: Uint8Array,
): Promise<boolean> {
  if (!Number.isInteger(term) || term < 1 || term > MAX_TERM) throw new RangeError('term out of range');
  const rowKey = termRowKey(binding, term);
  const blob = sealBlob(rootKey, term, termAad(binding, rowKey), key);
  return store.putIfAbsent(KEYRING_NAMESPACE, rowKey, blob);
}

/** The highest term stored for this keyring, 0 when none (no decryption). */
export async function highestStoredTerm(store: EntryStore, binding: KeyringBinding): Promise<number> {
  let highest = 0;
  let after: string | undefined;
  for (;;) {
    const keys = await store.list(KEYRING_NAMESPACE, termPrefix(binding), { after, limit: SCAN_PAGE });
    for (const key of keys) highest = Math.max(highest, parseTerm(binding, key));
    if (keys.length < SCAN_PAGE) return highest;
    after = keys[keys.length - 1];
  }
}

/**
 * Decrypts every stored term not yet in `skip` and returns them. Any row that
 * fails to open (wrong root key, edited configuration, tampered row) throws
 * {@link IntegrityError} and nothing is returned: a keyring is trusted whole
 * or not at all.
 */
export async function readTerms(
  store: EntryStore,
  rootKey: Uint8Array,
  binding: KeyringBinding,
  skip: (term: number) => boolean = () => false,
): Promise<Map<number, Buffer>> {
  const found = new Map<number, Buffer>();
  try {
    let after: string | undefined;
    for (;;) {
      const rows = await store.scan(KEYRING_NAMESPACE, termPrefix(binding), { after, limit: SCAN_PAGE });
      for (const row of rows) {
        const term = parseTerm(binding, row.key);
        if (skip(term)) continue;
        // The header term must match the row: the AAD already binds the row
        // key, this just refuses a record that names another term.
        if (blobTerm(row.value) !== term) throw new IntegrityError();
        const key = openBlob(rootKey, termAad(binding, row.key), row.value);
        if (key.length !== KEY_BYTES) {
          key.fill(0);
          throw new IntegrityError();
        }
        found.set(term, key);
      }
      if (rows.length < SCAN_PAGE) return found;
      after = rows[rows.length - 1]?.key;
    }
  } catch (e) {
    for (const key of found.values()) key.fill(0);
    throw e;
  }
}

/** Deletes keyring rows of other keyring ids (leftovers of crashed or lost initialisations). */
export async function deleteStaleKeyrings(store: EntryStore, binding: KeyringBinding): Promise<void> {
  const live = termPrefix(binding);
  let after: string | undefined;
  for (;;) {
    const keys = await store.list(KEYRING_NAMESPACE, KEYRING_PREFIX, { after, limit: SCAN_PAGE });
    for (const key of keys) if (!key.startsWith(live)) await store.delete(KEYRING_NAMESPACE, key);
    if (keys.length < SCAN_PAGE) return;
    after = keys[keys.length - 1];
  }
}

function parseTerm(binding: KeyringBinding, rowKey: string): number {
  const digits = rowKey.slice(termPrefix(binding).length);
  if (!/^[0-9]{10}$/.test(digits)) throw new IntegrityError();
  const term = Number(digits);
  if (term < 1 || term > MAX_TERM) throw new IntegrityError();
  return term;
}
