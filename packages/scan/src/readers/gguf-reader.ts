import type { FormatReader } from '../reader-context.js';
import { ScanFault } from '../scan-fault.js';
import { SequentialReader } from '../source/sequential-reader.js';

const STRING = 8;
const ARRAY = 9;
/** Byte sizes of the fixed-width GGUF value types, by type id. */
const FIXED: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };

/**
 * GGUF (llama.cpp): metadata key/values are read one by one; string values
 * and string arrays are matched under their key (`general.source.url`,
 * `tokenizer.chat_template`). Tensor infos and data are never read. Counts
 * and lengths are checked against the bytes actually left, so a header that
 * claims 2^60 keys fails at once instead of allocating.
 */
export const readGguf: FormatReader = async (source, location, ctx) => {
  const r = new SequentialReader(source, 0, 'GGUF');
  await r.need(8);
  if (r.bytes(4).toString('latin1') !== 'GGUF') throw new ScanFault('SCAN_ERR_CORRUPT', 'not a GGUF file');
  const version = r.u32();
  if (version < 1 || version > 3)
    throw new ScanFault('SCAN_ERR_UNSUPPORTED', `GGUF version ${version} is not supported`);
  // Version 1 used 32-bit counts and lengths.
  const count = async (): Promise<number> => {
    await r.need(version === 1 ? 4 : 8);
    return version === 1 ? r.u32() : r.u64();
  };
  const checkCount = (n: number, minBytesEach: number, what: string): void => {
    if (n > ctx.limits.maxEntries)
      throw new ScanFault('SCAN_ERR_LIMIT', `GGUF ${what} count is above the configured limit`);
    if (n * minBytesEach > r.remaining)
      throw new ScanFault('SCAN_ERR_CORRUPT', `GGUF ${what} count exceeds the file size`);
  };
  const str = async (): Promise<string> => {
    const n = await count();
    if (n > ctx.limits.maxStringBytes)
      throw new ScanFault('SCAN_ERR_LIMIT', 'GGUF string is longer than the configured limit');
    await r.need(n);
    return r.bytes(n).toString('utf8');
  };
  await count(); // tensor count: tensors are not read
  const kvCount = await count();
  checkCount(kvCount, 12, 'metadata');
  for (let i = 0; i < kvCount; i++) {
    ctx.checkTime();
    const key = await str();
    await r.need(4);
    const type = r.u32();
    const where = [...location, key];
    if (type === STRING) {
      ctx.inspectString(await str(), where);
    } else if (type === ARRAY) {
      await r.need(4);
      const itemType = r.u32();
      const n = await count();
      if (itemType === STRING) {
        checkCount(n, version === 1 ? 4 : 8, 'array');
        for (let j = 0; j < n; j++) {
          if ((j & 0xfff) === 0) ctx.checkTime();
          ctx.inspectString(await str(), [...location, `${key}[${j}]`]);
        }
      } else {
        const size = FIXED[itemType];
        if (size === undefined) throw new ScanFault('SCAN_ERR_CORRUPT', `GGUF array item type ${itemType} is unknown`);
        if (n * size > r.remaining) throw new ScanFault('SCAN_ERR_CORRUPT', 'GGUF array count exceeds the file size');
        r.skip(n * size);
      }
    } else {
      const size = FIXED[type];
      if (size === undefined) throw new ScanFault('SCAN_ERR_CORRUPT', `GGUF value type ${type} is unknown`);
      await r.need(size);
      r.skip(size);
    }
  }
};
