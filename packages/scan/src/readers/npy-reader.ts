import type { FormatReader } from '../reader-context.js';
import { ScanFault, truncated } from '../scan-fault.js';
import { sliceSource } from '../source/byte-source.js';
import { readPickle } from './pickle-reader.js';

/**
 * NumPy `.npy` (alone or inside `.npz`): the header dict is matched; numeric
 * payloads are skipped; object arrays (`descr` `|O`) are pickles and are read
 * as such — they are also where unsafe imports hide in `.npz` files.
 */
export const readNpy: FormatReader = async (source, location, ctx) => {
  const head = await source.read(0, 12);
  if (head.length < 10) throw truncated('npy header');
  const major = head[6] ?? 0;
  const lenSize = major >= 2 ? 4 : 2;
  const headerLen = lenSize === 4 ? head.readUInt32LE(8) : head.readUInt16LE(8);
  if (headerLen > ctx.limits.maxHeaderBytes)
    throw new ScanFault('SCAN_ERR_LIMIT', 'npy header is larger than the configured limit');
  const start = 8 + lenSize;
  if (start + headerLen > source.size) throw truncated('npy header');
  const header = (await source.read(start, headerLen)).toString('latin1');
  ctx.inspectString(header, [...location, 'header']);
  if (/'descr':\s*'\|O'/.test(header)) {
    const payload = sliceSource(source, start + headerLen, source.size - start - headerLen);
    await readPickle(payload, [...location, 'data'], ctx, 'data.pkl');
  }
};
