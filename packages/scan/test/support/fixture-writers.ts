import { execFileSync } from 'node:child_process';
import { deflateRawSync, gzipSync } from 'node:zlib';

// ---- protobuf (for ONNX and TensorFlow fixtures) ----
function varint(n: number): Buffer {
  const out: number[] = [];
  let v = n;
  while (v >= 0x80) {
    out.push((v % 128) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return Buffer.from(out);
}
export function pbBytes(field: number, payload: Buffer | string): Buffer {
  const b = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  return Buffer.concat([varint(field * 8 + 2), varint(b.length), b]);
}
export function pbVarint(field: number, v: number): Buffer {
  return Buffer.concat([varint(field * 8), varint(v)]);
}
export const pbMsg = (field: number, ...parts: Buffer[]): Buffer => pbBytes(field, Buffer.concat(parts));

/** A small but real ONNX ModelProto: one Identity node, a float initializer, metadata_props. */
export function onnxModel(opts: { metadata: Record<string, string>; docString?: string; rawData?: Buffer }): Buffer {
  const tensor = Buffer.concat([
    pbVarint(1, 4), // dims
    pbVarint(2, 1), // FLOAT
    pbBytes(8, 'weight'),
    pbBytes(9, opts.rawData ?? Buffer.alloc(16)),
  ]);
  const node = Buffer.concat([pbBytes(1, 'x'), pbBytes(2, 'y'), pbBytes(3, 'id0'), pbBytes(4, 'Identity')]);
  const graph = Buffer.concat([pbMsg(1, node), pbBytes(2, 'g'), pbMsg(5, tensor)]);
  return Buffer.concat([
    pbVarint(1, 8), // ir_version
    pbBytes(2, 'custos-test'),
    pbBytes(3, '1.0'),
    ...(opts.docString ? [pbBytes(6, opts.docString)] : []),
    pbMsg(7, graph),
    pbMsg(8, pbVarint(2, 17)), // opset_import
    ...Object.entries(opts.metadata).map(([k, v]) => pbMsg(14, pbBytes(1, k), pbBytes(2, v))),
  ]);
}

// ---- safetensors ----
export function safetensors(metadata: Record<string, string>, payload = Buffer.alloc(64)): Buffer {
  const header = Buffer.from(
    JSON.stringify({ __metadata__: metadata, w: { dtype: 'F32', shape: [16], data_offsets: [0, 64] } }),
  );
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(header.length));
  return Buffer.concat([len, header, payload]);
}

// ---- GGUF (v3) ----
function ggufString(s: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(b.length));
  return Buffer.concat([len, b]);
}
export function gguf(
  kv: Record<string, string | number | string[]>,
  counts?: { tensors?: bigint; kv?: bigint },
): Buffer {
  const parts: Buffer[] = [
    Buffer.from('GGUF'),
    u32(3),
    u64(counts?.tensors ?? 0n),
    u64(counts?.kv ?? BigInt(Object.keys(kv).length)),
  ];
  for (const [k, v] of Object.entries(kv)) {
    parts.push(ggufString(k));
    if (typeof v === 'string') parts.push(u32(8), ggufString(v));
    else if (typeof v === 'number') parts.push(u32(4), u32(v));
    else parts.push(u32(9), u32(8), u64(BigInt(v.length)), ...v.map(ggufString));
  }
  return Buffer.concat(parts);
}
export function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}
export function u64(n: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(n);
  return b;
}

// ---- zip ----
export interface ZipMember {
  name: string;
  data: Buffer;
  deflate?: boolean;
  /** Lie about the uncompressed size (bomb fixtures). */
  declaredSize?: number;
}
export function zip(members: ZipMember[], opts: { overlap?: boolean } = {}): Buffer {
  const locals: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  let firstOffset = 0;
  for (const [i, m] of members.entries()) {
    const body = m.deflate ? deflateRawSync(m.data) : m.data;
    const name = Buffer.from(m.name);
    const size = m.declaredSize ?? m.data.length;
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(m.deflate ? 8 : 0, 8);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(size, 22);
    local.writeUInt16LE(name.length, 26);
    const cd = Buffer.alloc(46);
    cd.writeUInt32LE(0x02014b50, 0);
    cd.writeUInt16LE(20, 4);
    cd.writeUInt16LE(20, 6);
    cd.writeUInt16LE(m.deflate ? 8 : 0, 10);
    cd.writeUInt32LE(body.length, 20);
    cd.writeUInt32LE(size, 24);
    cd.writeUInt16LE(name.length, 28);
    cd.writeUInt32LE(opts.overlap && i > 0 ? firstOffset : offset, 42);
    if (i === 0) firstOffset = offset;
    central.push(cd, name);
    if (!(opts.overlap && i > 0)) {
      locals.push(local, name, body);
      offset += 30 + name.length + body.length;
    }
  }
  const cdBuf = Buffer.concat(central);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(members.length, 8);
  eocd.writeUInt16LE(members.length, 10);
  eocd.writeUInt32LE(cdBuf.length, 12);
  eocd.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cdBuf, eocd]);
}

// ---- tar ----
export function tar(members: { name: string; data: Buffer }[]): Buffer {
  const parts: Buffer[] = [];
  for (const m of members) {
    const h = Buffer.alloc(512);
    h.write(m.name, 0, 100, 'utf8');
    h.write('0000644\0', 100);
    h.write('0000000\0', 108);
    h.write('0000000\0', 116);
    h.write(`${m.data.length.toString(8).padStart(11, '0')}\0`, 124);
    h.write('00000000000\0', 136);
    h.write('        ', 148);
    h.write('0', 156);
    h.write('ustar\0', 257);
    h.write('00', 263);
    let sum = 0;
    for (const b of h) sum += b;
    h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
    parts.push(h, m.data, Buffer.alloc((512 - (m.data.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}
export const tgz = (members: { name: string; data: Buffer }[]): Buffer => gzipSync(tar(members));

// ---- pickle, made by the real CPython pickler ----
/** True when python3 is available; under CI it must be (the pickle tests do not skip there). */
export function hasPython(): boolean {
  try {
    execFileSync('python3', ['-c', 'import pickle'], { stdio: 'ignore' });
    return true;
  } catch {
    if (process.env.CI) throw new Error('python3 is required for the pickle fixtures under CI');
    return false;
  }
}

/** Runs a Python snippet that writes a pickle to stdout (`out` is sys.stdout.buffer); secrets pass by env. */
export function python(code: string, env: Record<string, string> = {}): Buffer {
  return execFileSync('python3', ['-c', `import sys, os, pickle\nout = sys.stdout.buffer\n${code}`], {
    env: { ...process.env, ...env },
    maxBuffer: 64 * 2 ** 20,
  });
}
