/** A Buffer view of `value` without copying (drivers bind Buffers as BLOB/bytea). */
export function asBuffer(value: Uint8Array): Buffer {
  return Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}
