import { IntegrityError } from '../errors/index.js';

/** One stored signing key. Records are written once and never changed. */
export interface TaskSigningKeyRecord {
  /** 1, 2, 3, …: the storage slot, claimed with putIfAbsent, so each generation has exactly one key. */
  readonly generation: number;
  /** Epoch milliseconds. */
  readonly createdAt: number;
  /** Epoch milliseconds from which nodes sign with it (later than createdAt when pre-published). */
  readonly activateAt: number;
  /**
   * How long after this key activates the previous generation stays
   * verifiable and published: the longest lifetime a token signed with it
   * can have. null for generation 1.
   */
  readonly predecessorRetireAfterMs: number | null;
  /** The Ed25519 private key, PKCS#8 DER. */
  readonly pkcs8: Uint8Array;
}

const FORMAT = 1;

/*
 * Plaintext layout (inside the barrier): [format u8][metadata length u16 BE]
 * [metadata JSON][PKCS#8 DER]. The key stays in bytes rather than in a JSON
 * string so that the decrypted buffer holding it can be zeroed.
 */

/** Serialises a record; the caller zeroes the result once encrypted. */
export function encodeSigningKeyRecord(record: TaskSigningKeyRecord): Buffer {
  const meta = Buffer.from(
    JSON.stringify({
      generation: record.generation,
      createdAt: record.createdAt,
      activateAt: record.activateAt,
      predecessorRetireAfterMs: record.predecessorRetireAfterMs,
    }),
    'utf8',
  );
  const out = Buffer.alloc(3 + meta.length + record.pkcs8.length);
  out[0] = FORMAT;
  out.writeUInt16BE(meta.length, 1);
  meta.copy(out, 3);
  out.set(record.pkcs8, 3 + meta.length);
  return out;
}

/**
 * Parses a record. `pkcs8` is a view into `bytes`, so zeroing `bytes` after
 * the key is imported wipes it. Throws {@link IntegrityError} on any
 * malformation (the barrier authenticated the bytes, so this means a bug or
 * an unknown format).
 */
export function decodeSigningKeyRecord(bytes: Uint8Array): TaskSigningKeyRecord {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < 3 || buf[0] !== FORMAT) throw new IntegrityError();
  const metaEnd = 3 + buf.readUInt16BE(1);
  if (metaEnd > buf.length) throw new IntegrityError();
  let meta: Record<string, unknown>;
  try {
    meta = JSON.parse(buf.toString('utf8', 3, metaEnd)) as Record<string, unknown>;
  } catch (e) {
    throw new IntegrityError({ cause: e });
  }
  const { generation, createdAt, activateAt, predecessorRetireAfterMs } = meta;
  if (
    !isCount(generation) ||
    !isCount(createdAt) ||
    !isCount(activateAt) ||
    !(predecessorRetireAfterMs === null || isCount(predecessorRetireAfterMs))
  ) {
    throw new IntegrityError();
  }
  return { generation, createdAt, activateAt, predecessorRetireAfterMs, pkcs8: buf.subarray(metaEnd) };
}

function isCount(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}
