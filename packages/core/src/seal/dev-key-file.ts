import { randomBytes } from 'node:crypto';
import { constants, promises as fs } from 'node:fs';
import { dirname } from 'node:path';
import { KEY_BYTES } from '../barrier/barrier-blob.js';
import { CustosError } from '../errors/index.js';

/**
 * The dev seal's key file: the root key itself, 32 raw bytes.
 *
 * This is the one place the root key is on disk unencrypted, and that is the
 * whole point of the dev seal: it trades the operator ceremony of unsealing
 * for "whoever can read this file can read every secret". That is acceptable
 * for the embedded single-machine default only because the file is readable
 * by its owner alone: the same user that owns the database file and runs the
 * server, so the file grants nothing that user does not already have. A key
 * file readable by group or others would hand every secret to every local
 * account, so it is refused rather than used (and never silently chmod-ed:
 * it may already have leaked, which the operator must know about).
 */

/** Owner read/write only. */
const FILE_MODE = 0o600;
/** Owner only, so other users cannot even list or replace the key file. */
const DIR_MODE = 0o700;

/**
 * Creates the key file with a fresh random key, or reads the existing one.
 * The file is created exclusively (`wx`): two processes starting at once end
 * up sharing one key instead of overwriting each other's.
 *
 * @returns the root key; the caller owns it and should zero it.
 */
export async function createOrReadDevKeyFile(path: string): Promise<Buffer> {
  await fs.mkdir(dirname(path), { recursive: true, mode: DIR_MODE });
  const key = randomBytes(KEY_BYTES);
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(path, 'wx', FILE_MODE);
  } catch (e) {
    key.fill(0);
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return readDevKeyFile(path);
    throw e;
  }
  try {
    await handle.writeFile(key);
    // The key must be on disk before anything it encrypts is: the store is
    // only marked initialised after this returns.
    await handle.sync();
  } catch (e) {
    key.fill(0);
    throw e;
  } finally {
    await handle.close();
  }
  return key;
}

/**
 * Reads the key file, refusing one that group or others can access
 * ({@link CustosError} `CUSTOS_ERR_INSECURE_KEY_FILE`), that is not a regular
 * file, or that is not exactly 32 bytes (`CUSTOS_ERR_UNSEAL_FAILED`).
 *
 * @returns the root key; the caller owns it and should zero it.
 */
export async function readDevKeyFile(path: string): Promise<Buffer> {
  // O_NOFOLLOW: the key file itself must be checked, not whatever a symlink
  // placed in its directory points to. The mode is checked on the open
  // descriptor, so the file checked is the file read.
  const handle = await fs.open(path, constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0));
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw new CustosError('CUSTOS_ERR_UNSEAL_FAILED', 'The dev seal key file is not a file.');
    // Windows has no POSIX mode bits (Node reports 0o666), so the check is
    // only meaningful, and only made, elsewhere.
    if (process.platform !== 'win32' && (stat.mode & 0o077) !== 0) {
      throw new CustosError('CUSTOS_ERR_INSECURE_KEY_FILE');
    }
    if (stat.size !== KEY_BYTES) {
      throw new CustosError('CUSTOS_ERR_UNSEAL_FAILED', 'The dev seal key file is not 32 bytes.');
    }
    const key = Buffer.alloc(KEY_BYTES);
    const { bytesRead } = await handle.read(key, 0, KEY_BYTES, 0);
    if (bytesRead !== KEY_BYTES) {
      key.fill(0);
      throw new CustosError('CUSTOS_ERR_UNSEAL_FAILED', 'The dev seal key file is not 32 bytes.');
    }
    return key;
  } finally {
    await handle.close();
  }
}
