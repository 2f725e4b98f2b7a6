import type { ReaderContext } from '../reader-context.js';
import { ScanFault } from '../scan-fault.js';
import type { ByteSource } from '../source/byte-source.js';
import { SequentialReader } from '../source/sequential-reader.js';

/** How one field of a message is read. Fields without a spec (tensor payloads among them) are skipped unread. */
export type FieldSpec =
  | { readonly name: string; readonly kind: 'string' }
  /** `single` marks a non-repeated field, shown without an index. */
  | { readonly name: string; readonly kind: 'message'; readonly type: string; readonly single?: boolean }
  /** A repeated `{ key = 1; value = 2 }` of strings, shown as `name[key]`. */
  | { readonly name: string; readonly kind: 'string-map' }
  /** A map<string, Message>, shown as `name[key].…`. */
  | { readonly name: string; readonly kind: 'message-map'; readonly type: string };

/** Message name → field number → spec. Only the fields that can hold text are listed. */
export type ProtoSchema = Readonly<Record<string, Readonly<Record<number, FieldSpec>>>>;

const MAX_NESTING = 64;

/**
 * Walks a protobuf message straight from a ByteSource, guided by a partial
 * schema. Length-delimited fields outside the schema (raw tensor data) are
 * skipped by their length, so a 2 GB model costs its metadata.
 */
export async function walkProtobuf(
  source: ByteSource,
  schema: ProtoSchema,
  rootType: string,
  rootPath: string,
  location: readonly string[],
  ctx: ReaderContext,
): Promise<void> {
  const r = new SequentialReader(source, 0, 'protobuf');
  await walkMessage(r, source.size, schema, rootType, rootPath, location, ctx, 0);
}

async function walkMessage(
  r: SequentialReader,
  end: number,
  schema: ProtoSchema,
  type: string,
  path: string,
  location: readonly string[],
  ctx: ReaderContext,
  depth: number,
): Promise<void> {
  if (depth > MAX_NESTING) throw new ScanFault('SCAN_ERR_LIMIT', 'protobuf nesting is deeper than the limit');
  const fields = schema[type] ?? {};
  const counts = new Map<number, number>();
  while (r.pos < end) {
    ctx.checkTime();
    const tag = await r.varint();
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    if (wire === 0) {
      await r.varint();
      continue;
    }
    if (wire === 1 || wire === 5) {
      const n = wire === 1 ? 8 : 4;
      if (r.pos + n > end) throw new ScanFault('SCAN_ERR_CORRUPT', 'protobuf field overruns its message');
      r.skip(n);
      continue;
    }
    if (wire !== 2) throw new ScanFault('SCAN_ERR_CORRUPT', `protobuf wire type ${wire} is not valid here`);
    const len = await r.varint();
    const fieldEnd = r.pos + len;
    if (fieldEnd > end) throw new ScanFault('SCAN_ERR_CORRUPT', 'protobuf field overruns its message');
    const spec = fields[field];
    if (!spec) {
      r.skip(len);
      continue;
    }
    const i = counts.get(field) ?? 0;
    counts.set(field, i + 1);
    const at = path === '' ? spec.name : `${path}.${spec.name}`;
    if (spec.kind === 'string') {
      ctx.inspectString(await stringOf(r, len, ctx), [...location, i === 0 ? at : `${at}[${i}]`]);
    } else if (spec.kind === 'message') {
      await walkMessage(r, fieldEnd, schema, spec.type, spec.single ? at : `${at}[${i}]`, location, ctx, depth + 1);
    } else {
      // map entry: key = 1 (string), value = 2 (string or message)
      let key = String(i);
      while (r.pos < fieldEnd) {
        const t = await r.varint();
        if ((t & 7) !== 2) throw new ScanFault('SCAN_ERR_CORRUPT', 'protobuf map entry is malformed');
        const l = await r.varint();
        if (r.pos + l > fieldEnd) throw new ScanFault('SCAN_ERR_CORRUPT', 'protobuf field overruns its message');
        if (t >> 3 === 1) key = await stringOf(r, l, ctx);
        else if (t >> 3 === 2 && spec.kind === 'string-map') {
          // A key written after its value (legal, rare) leaves the value named by index; it is still matched.
          ctx.inspectString(await stringOf(r, l, ctx), [...location, `${at}[${safeKey(key)}]`]);
        } else if (t >> 3 === 2 && spec.kind === 'message-map') {
          await walkMessage(r, r.pos + l, schema, spec.type, `${at}[${safeKey(key)}]`, location, ctx, depth + 1);
        } else r.skip(l);
      }
      ctx.inspectString(key, [...location, `${at}{${i}}`]);
    }
    if (r.pos !== fieldEnd) throw new ScanFault('SCAN_ERR_CORRUPT', 'protobuf field length does not match its content');
  }
}

async function stringOf(r: SequentialReader, len: number, ctx: ReaderContext): Promise<string> {
  if (len > ctx.limits.maxStringBytes) {
    r.skip(len);
    ctx.error('SCAN_ERR_LIMIT', 'protobuf string is longer than the configured limit', []);
    return '';
  }
  await r.need(len);
  return r.bytes(len).toString('utf8');
}

/** Map keys name locations; a key long enough to be a secret itself is shortened so a location never prints one. */
function safeKey(key: string): string {
  return key.length > 64 ? `${key.slice(0, 16)}…` : key;
}
