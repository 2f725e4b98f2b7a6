import type { FormatReader } from '../reader-context.js';

const WINDOW = 4 * 2 ** 20;
const MIN_RUN = 8;

/**
 * Formats too intricate to parse here (HDF5: Keras `.h5` weights with their
 * `model_config` and `training_config` attributes): the printable runs of the
 * first `maxMemberBytes` bytes are matched, each located by its offset. HDF5
 * keeps attributes in object headers, which come before the bulk data in the
 * files Keras and h5py write.
 */
export const readBinaryStrings: FormatReader = async (source, location, ctx) => {
  const end = Math.min(source.size, ctx.limits.maxMemberBytes);
  for (let at = 0; at < end; at += WINDOW) {
    ctx.checkTime();
    const buf = await source.read(at, Math.min(WINDOW + 4096, end - at));
    const text = buf.toString('latin1');
    for (const m of text.matchAll(/[\x20-\x7e\t\r\n]{8,}/g)) {
      if (m.index >= WINDOW) break; // owned by the next window
      if (m[0].length >= MIN_RUN) ctx.inspectString(m[0], [...location, `@0x${(at + m.index).toString(16)}`]);
    }
  }
};
