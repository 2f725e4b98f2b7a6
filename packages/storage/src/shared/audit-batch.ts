import type { AuditRecord } from '@custos/core';

/**
 * Checks that a batch is internally contiguous (each seq one more than the
 * previous, all positive safe integers). Whether it continues the stored chain
 * is checked by the adapter atomically with the insert.
 */
export function assertContiguous(records: readonly AuditRecord[]): void {
  let expected: number | undefined;
  for (const r of records) {
    if (!Number.isSafeInteger(r.seq) || r.seq < 1 || (expected !== undefined && r.seq !== expected)) {
      throw new RangeError('Audit records must have contiguous positive sequence numbers.');
    }
    expected = r.seq + 1;
  }
}
