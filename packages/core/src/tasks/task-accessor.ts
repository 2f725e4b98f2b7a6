import { type Cipher, createCipheriv, createDecipheriv, createSecretKey, type Decipher } from 'node:crypto';

const ID = /^tsk_([A-Za-z0-9_-]{22})$/;
const ACCESSOR = /^tac_([A-Za-z0-9_-]{22})$/;
const BLOCK = 16;

/**
 * Task accessors, computed rather than stored.
 *
 * An accessor names a task to an orchestrator that must not hold its token
 * (look up, extend, revoke). It used to be a random value with an index row
 * mapping it to the task id: one more sealed row, index entry and B-tree
 * insert on every mint, the hottest write custos has. Instead the accessor
 * is the task id's 16 bytes encrypted as one AES-256 block under a node-wide
 * key kept behind the barrier: a keyed pseudorandom *permutation*, so
 * - it is unique per task (a permutation has no collisions) and decrypts
 *   back to the id, so a lookup needs no index;
 * - without the key it reveals nothing of the id, nor the id of it (task ids
 *   start with their creation time; accessors look random), exactly as the
 *   random accessors did;
 * - it is deterministic, which is harmless here: each id is encrypted once,
 *   and equal accessors can only mean the same task.
 * One block with no chaining is the textbook use of a block cipher as a PRP
 * (ECB's weakness, equal blocks of a long message, has no room to show).
 * Every lookup still checks the task record, sealed under the barrier,
 * names this accessor: a forged or stale accessor finds nothing.
 */
export class TaskAccessors {
  // ECB encrypts every block on its own, so one long-lived context turns
  // each 16-byte `update` into exactly that block's encryption (padding off:
  // nothing is held back, `final` is never needed). Setting up an OpenSSL
  // context per call cost 3 µs; an update costs under 1.
  readonly #encrypt: Cipher;
  readonly #decrypt: Decipher;

  constructor(key: Uint8Array) {
    if (key.length !== 32) throw new RangeError('a task accessor key is 32 bytes');
    const secret = createSecretKey(key);
    this.#encrypt = createCipheriv('aes-256-ecb', secret, null).setAutoPadding(false);
    this.#decrypt = createDecipheriv('aes-256-ecb', secret, null).setAutoPadding(false);
  }

  /** The accessor of a task id (`tsk_` and 22 base64url characters). */
  of(taskId: string): string {
    const bytes = decodeBlock(ID, taskId);
    if (!bytes) throw new TypeError('not a task id');
    return `tac_${this.#encrypt.update(bytes).toString('base64url')}`;
  }

  /** The task id an accessor stands for, or `undefined` when it has no accessor's form. */
  idOf(accessor: string): string | undefined {
    const bytes = decodeBlock(ACCESSOR, accessor);
    if (!bytes) return undefined;
    return `tsk_${this.#decrypt.update(bytes).toString('base64url')}`;
  }
}

/**
 * The 16 bytes behind `prefix_<22 base64url chars>`, or `undefined`. 22
 * characters carry 132 bits; only the canonical spelling (4 trailing zero
 * bits) is accepted, so one block has exactly one string form.
 */
function decodeBlock(format: RegExp, value: string): Buffer | undefined {
  const encoded = format.exec(value)?.[1];
  if (!encoded) return undefined;
  const bytes = Buffer.from(encoded, 'base64url');
  return bytes.length === BLOCK && bytes.toString('base64url') === encoded ? bytes : undefined;
}
