/** A Buffer view of `value` without copying (drivers bind Buffers as BLOB/bytea). */
export function asBuffer(value: Uint8Array): Buffer {
  return Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}

/**
 * A value read from a driver as a plain `Uint8Array` with its own memory.
 * Drivers may hand out Buffers that are slices of a shared pool slab (pg does
 * for small bytea): a copy means a caller that zeroes the value, or reads its
 * `.buffer`, touches only this value's bytes.
 */
export function ownedBytes(value: Uint8Array): Uint8Array {
  return new Uint8Array(value);
}
