import type { FormatReader } from './reader-context.js';
import { readBinaryStrings } from './readers/binary-strings-reader.js';
import type { ScanFormat } from './readers/format-detect.js';
import { readGguf } from './readers/gguf-reader.js';
import { readGzip } from './readers/gzip-reader.js';
import { readNpy } from './readers/npy-reader.js';
import { readOnnx } from './readers/onnx-reader.js';
import { readPickle } from './readers/pickle-reader.js';
import { readSafetensors } from './readers/safetensors-reader.js';
import { readTar } from './readers/tar-reader.js';
import { readTensorflow } from './readers/tensorflow-reader.js';
import { readText } from './readers/text-reader.js';
import { readZip } from './readers/zip-reader.js';

/** One reader per format; `skip` has none. */
export const FORMAT_READERS: Readonly<Record<Exclude<ScanFormat, 'skip'>, FormatReader>> = {
  zip: readZip,
  tar: readTar,
  gzip: readGzip,
  pickle: readPickle,
  safetensors: readSafetensors,
  gguf: readGguf,
  onnx: readOnnx,
  tensorflow: readTensorflow,
  npy: readNpy,
  hdf5: readBinaryStrings,
  text: readText,
};

/** Formats whose nesting counts against `maxDepth` (containers of other files). */
export const CONTAINER_FORMATS: ReadonlySet<ScanFormat> = new Set(['zip', 'tar', 'gzip']);
