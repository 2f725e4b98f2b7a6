import { looksLikeSafetensors } from './safetensors-reader.js';

/** Every format the scanner reads, plus `skip` (binary payload it does not read). */
export type ScanFormat =
  | 'zip'
  | 'tar'
  | 'gzip'
  | 'pickle'
  | 'safetensors'
  | 'gguf'
  | 'onnx'
  | 'tensorflow'
  | 'npy'
  | 'hdf5'
  | 'text'
  | 'skip';

const PICKLE_EXT = /\.(pkl|pickle|joblib|pt|pth|bin|ckpt|p)$/i;

/**
 * Picks a reader from the first bytes (magic numbers win) and the name.
 * Content that is neither a known structure nor text is skipped: tensor
 * payloads are never read as text.
 */
export function detectFormat(name: string, head: Buffer): ScanFormat {
  const lower = name.toLowerCase();
  if (head.length >= 4 && head.readUInt32LE(0) === 0x04034b50) return 'zip';
  if (head.length >= 4 && head.readUInt32LE(0) === 0x06054b50) return 'zip';
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 262 && head.toString('latin1', 257, 262) === 'ustar') return 'tar';
  if (head.toString('latin1', 0, 4) === 'GGUF') return 'gguf';
  if (head.toString('latin1', 0, 6) === '\x93NUMPY') return 'npy';
  if (head.toString('latin1', 0, 8) === '\x89HDF\r\n\x1a\n') return 'hdf5';
  if (lower.endsWith('.safetensors') || looksLikeSafetensors(head)) return 'safetensors';
  if (lower.endsWith('.onnx')) return 'onnx';
  if (lower.endsWith('.pb')) return 'tensorflow';
  if (head[0] === 0x80 && (head[1] ?? 0) >= 2 && (head[1] ?? 0) <= 5) return 'pickle';
  if (PICKLE_EXT.test(lower) && !isText(head)) return 'pickle';
  if (/\.(pkl|pickle)$/.test(lower)) return 'pickle'; // protocol 0 pickles are text-like
  if (/\.(h5|hdf5|keras)$/.test(lower)) return 'hdf5';
  return isText(head) ? 'text' : 'skip';
}

/** Text has no NUL in its first bytes and few control characters; UTF-8 and Latin-1 both pass. */
export function isText(head: Buffer): boolean {
  let control = 0;
  for (const b of head) {
    if (b === 0) return false;
    if (b < 9 || (b > 13 && b < 32)) control++;
  }
  return control <= head.length / 10;
}
