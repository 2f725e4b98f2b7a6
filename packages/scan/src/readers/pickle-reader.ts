import type { FormatReader, ReaderContext } from '../reader-context.js';
import { ScanFault } from '../scan-fault.js';
import { SequentialReader } from '../source/sequential-reader.js';
import { isUnsafeGlobal } from './pickle-unsafe-globals.js';

/**
 * Python pickles, protocols 0–5, read without executing anything: the opcodes
 * are walked on a symbolic stack that builds plain containers (dict, list,
 * tuple, "object of class X"), so every string ends up with a path such as
 * `config.openai_api_key`. Imports of code-running globals are reported as
 * unsafe-code findings. Several pickles in a row (legacy `torch.save`) are
 * read until the bytes stop looking like a pickle.
 */

type PValue =
  | { t: 'str'; v: string; at: number }
  | { t: 'atom' }
  | { t: 'mark' }
  | { t: 'seq'; kind: 'list' | 'tuple' | 'set'; items: PValue[] }
  | { t: 'dict'; entries: [PValue, PValue][] }
  | { t: 'global'; module: string; name: string }
  | { t: 'obj'; cls: PValue; args: PValue[]; items: PValue[]; entries: [PValue, PValue][]; state?: PValue };

const ATOM: PValue = { t: 'atom' };
const MARK: PValue = { t: 'mark' };
/** Bytes values above this are payload (numpy buffers), not configuration. */
const MAX_INSPECTED_BYTES = 2 ** 20;
/** Consecutive pickles read from one stream (legacy torch.save writes five). */
const MAX_PICKLES = 16;

export const readPickle: FormatReader = async (source, location, ctx) => {
  const r = new SequentialReader(source, 0, 'pickle');
  for (let n = 0; n < MAX_PICKLES && r.remaining > 0; n++) {
    if (n > 0) {
      await r.need(1);
      const next = r.u8();
      r.pos--;
      if (next !== 0x80) break; // not another protocol-2+ pickle: payload follows
    }
    const { root, strings } = await runPickle(r, ctx, location);
    const seen = new Set<PValue>();
    walk(root, n === 0 ? '' : `#${n}`, ctx, location, seen);
    // Strings the result does not reach (popped, or only in discarded frames) still count.
    for (const s of strings) if (!seen.has(s)) ctx.inspectString(s.v, [...location, `@${s.at}`]);
  }
};

async function runPickle(
  r: SequentialReader,
  ctx: ReaderContext,
  location: readonly string[],
): Promise<{ root: PValue; strings: Extract<PValue, { t: 'str' }>[] }> {
  const L = ctx.limits;
  const start = r.pos;
  const stack: PValue[] = [];
  const marks: number[] = [];
  const memo = new Map<number, PValue>();
  const strings: Extract<PValue, { t: 'str' }>[] = [];
  let ops = 0;

  const pop = (): PValue => {
    const v = stack.pop();
    if (v === undefined) throw new ScanFault('SCAN_ERR_CORRUPT', 'pickle stack underflow');
    return v;
  };
  const top = (): PValue => {
    const v = stack[stack.length - 1];
    if (v === undefined) throw new ScanFault('SCAN_ERR_CORRUPT', 'pickle stack underflow');
    return v;
  };
  const popMark = (): PValue[] => {
    const m = marks.pop();
    if (m === undefined) throw new ScanFault('SCAN_ERR_CORRUPT', 'pickle mark underflow');
    return stack.splice(m);
  };
  const str = (v: string, at: number): PValue => {
    const s: Extract<PValue, { t: 'str' }> = { t: 'str', v, at };
    strings.push(s);
    return s;
  };
  const len = (n: number): number => {
    if (n > L.maxStringBytes)
      throw new ScanFault('SCAN_ERR_LIMIT', 'pickle string is larger than the configured limit');
    return n;
  };
  const bytesVal = async (n: number): Promise<PValue> => {
    if (n > MAX_INSPECTED_BYTES) {
      r.skip(n);
      return ATOM;
    }
    const at = r.pos;
    await r.need(n);
    return str(r.bytes(n).toString('utf8'), at);
  };
  const unicode = async (n: number): Promise<PValue> => {
    const at = r.pos;
    await r.need(len(n));
    return str(r.bytes(n).toString('utf8'), at);
  };
  const global = (module: string, name: string): PValue => {
    if (isUnsafeGlobal(module, name)) {
      ctx.unsafe(
        'pickle-unsafe-import',
        `pickle imports ${module}.${name}, which runs code when loaded`,
        `${module}.${name}`,
        location,
      );
    }
    return { t: 'global', module, name };
  };
  const line = async (): Promise<string> => (await r.line(L.maxStringBytes)).toString('latin1');
  const addItems = (target: PValue, items: PValue[]): void => {
    if (target.t === 'seq' || target.t === 'obj') target.items.push(...items);
  };
  const addEntries = (target: PValue, flat: PValue[]): void => {
    if (flat.length % 2 !== 0) throw new ScanFault('SCAN_ERR_CORRUPT', 'pickle SETITEMS with an odd count');
    const dst = target.t === 'dict' || target.t === 'obj' ? target.entries : undefined;
    for (let i = 0; dst && i < flat.length; i += 2) dst.push([flat[i]!, flat[i + 1]!]);
  };
  const obj = (cls: PValue, args: PValue): PValue => ({
    t: 'obj',
    cls,
    args: args.t === 'seq' ? args.items : [args],
    items: [],
    entries: [],
  });

  for (;;) {
    if (r.pos - start > L.maxPickleBytes)
      throw new ScanFault('SCAN_ERR_LIMIT', 'pickle is larger than the configured limit');
    if ((++ops & 0xffff) === 0) ctx.checkTime();
    if (stack.length > L.maxEntries * 10)
      throw new ScanFault('SCAN_ERR_LIMIT', 'pickle stack is deeper than the limit');
    await r.need(1);
    const op = r.u8();
    switch (op) {
      case 0x80: // PROTO
        await r.need(1);
        if (r.u8() > 5) throw new ScanFault('SCAN_ERR_UNSUPPORTED', 'pickle protocol above 5');
        break;
      case 0x95: // FRAME
        await r.need(8);
        r.u64();
        break;
      case 0x2e: // STOP
        return { root: stack.pop() ?? ATOM, strings };
      case 0x28: // MARK
        marks.push(stack.length);
        stack.push(MARK);
        break;
      case 0x30: // POP
        pop();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        stack.push(top());
        break;
      case 0x46: // FLOAT
      case 0x49: // INT
      case 0x4c: // LONG
        await line();
        stack.push(ATOM);
        break;
      case 0x47: // BINFLOAT
        await r.need(8);
        r.skip(8);
        stack.push(ATOM);
        break;
      case 0x4a: // BININT
        await r.need(4);
        r.skip(4);
        stack.push(ATOM);
        break;
      case 0x4b: // BININT1
        await r.need(1);
        r.skip(1);
        stack.push(ATOM);
        break;
      case 0x4d: // BININT2
        await r.need(2);
        r.skip(2);
        stack.push(ATOM);
        break;
      case 0x8a: // LONG1
        await r.need(1);
        await skipN(r, r.u8());
        stack.push(ATOM);
        break;
      case 0x8b: // LONG4
        await r.need(4);
        await skipN(r, len(r.u32()));
        stack.push(ATOM);
        break;
      case 0x4e: // NONE
      case 0x88: // NEWTRUE
      case 0x89: // NEWFALSE
        stack.push(ATOM);
        break;
      case 0x50: {
        // PERSID: the id names external storage (a tensor); keep it as a string.
        const at = r.pos;
        stack.push(str(await line(), at));
        break;
      }
      case 0x51: // BINPERSID
        stack.push({ t: 'seq', kind: 'tuple', items: [pop()] });
        break;
      case 0x53: {
        // STRING: a Python repr, quoted
        const at = r.pos;
        stack.push(str(unquote(await line()), at));
        break;
      }
      case 0x54: // BINSTRING
        await r.need(4);
        stack.push(await unicode(r.i32()));
        break;
      case 0x55: // SHORT_BINSTRING
        await r.need(1);
        stack.push(await unicode(r.u8()));
        break;
      case 0x56: {
        // UNICODE: raw-unicode-escape
        const at = r.pos;
        stack.push(str(unescapeUnicode(await line()), at));
        break;
      }
      case 0x58: // BINUNICODE
        await r.need(4);
        stack.push(await unicode(r.u32()));
        break;
      case 0x8c: // SHORT_BINUNICODE
        await r.need(1);
        stack.push(await unicode(r.u8()));
        break;
      case 0x8d: // BINUNICODE8
        await r.need(8);
        stack.push(await unicode(r.u64()));
        break;
      case 0x42: // BINBYTES
        await r.need(4);
        stack.push(await bytesVal(r.u32()));
        break;
      case 0x43: // SHORT_BINBYTES
        await r.need(1);
        stack.push(await bytesVal(r.u8()));
        break;
      case 0x8e: // BINBYTES8
      case 0x96: // BYTEARRAY8
        await r.need(8);
        stack.push(await bytesVal(r.u64()));
        break;
      case 0x97: // NEXT_BUFFER (out-of-band data we do not have)
        stack.push(ATOM);
        break;
      case 0x98: // READONLY_BUFFER
        break;
      case 0x29: // EMPTY_TUPLE
        stack.push({ t: 'seq', kind: 'tuple', items: [] });
        break;
      case 0x74: // TUPLE
        stack.push({ t: 'seq', kind: 'tuple', items: popMark().slice(1) });
        break;
      case 0x85: // TUPLE1
      case 0x86: // TUPLE2
      case 0x87: {
        // TUPLE3
        const n = op - 0x84;
        if (stack.length < n) throw new ScanFault('SCAN_ERR_CORRUPT', 'pickle stack underflow');
        stack.push({ t: 'seq', kind: 'tuple', items: stack.splice(stack.length - n) });
        break;
      }
      case 0x5d: // EMPTY_LIST
        stack.push({ t: 'seq', kind: 'list', items: [] });
        break;
      case 0x6c: // LIST
        stack.push({ t: 'seq', kind: 'list', items: popMark().slice(1) });
        break;
      case 0x7d: // EMPTY_DICT
        stack.push({ t: 'dict', entries: [] });
        break;
      case 0x64: {
        // DICT
        const d: PValue = { t: 'dict', entries: [] };
        addEntries(d, popMark().slice(1));
        stack.push(d);
        break;
      }
      case 0x8f: // EMPTY_SET
        stack.push({ t: 'seq', kind: 'set', items: [] });
        break;
      case 0x91: // FROZENSET
        stack.push({ t: 'seq', kind: 'set', items: popMark().slice(1) });
        break;
      case 0x61: {
        // APPEND
        const v = pop();
        addItems(top(), [v]);
        break;
      }
      case 0x65: // APPENDS
      case 0x90: {
        // ADDITEMS
        const items = popMark().slice(1);
        addItems(top(), items);
        break;
      }
      case 0x73: {
        // SETITEM
        const v = pop();
        const k = pop();
        addEntries(top(), [k, v]);
        break;
      }
      case 0x75: {
        // SETITEMS
        const flat = popMark().slice(1);
        addEntries(top(), flat);
        break;
      }
      case 0x63: {
        // GLOBAL
        const module = await line();
        stack.push(global(module, await line()));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (module.t === 'str' && name.t === 'str') stack.push(global(module.v, name.v));
        else {
          ctx.unsafe('pickle-unsafe-import', 'pickle imports a global computed at load time', '?', location);
          stack.push(ATOM);
        }
        break;
      }
      case 0x69: {
        // INST: module and name on lines, args after the mark
        const module = await line();
        const cls = global(module, await line());
        const args = popMark().slice(1);
        stack.push(obj(cls, { t: 'seq', kind: 'tuple', items: args }));
        break;
      }
      case 0x6f: {
        // OBJ
        const [cls = ATOM, ...args] = popMark().slice(1);
        stack.push(obj(cls, { t: 'seq', kind: 'tuple', items: args }));
        break;
      }
      case 0x52: // REDUCE
      case 0x81: {
        // NEWOBJ
        const args = pop();
        stack.push(obj(pop(), args));
        break;
      }
      case 0x92: {
        // NEWOBJ_EX
        const kwargs = pop();
        const args = pop();
        const o = obj(pop(), args);
        if (o.t === 'obj') o.args.push(kwargs);
        stack.push(o);
        break;
      }
      case 0x62: {
        // BUILD
        const state = pop();
        const target = top();
        if (target.t === 'obj') target.state = state;
        break;
      }
      case 0x82: // EXT1
        await r.need(1);
        r.skip(1);
        stack.push(ATOM);
        break;
      case 0x83: // EXT2
        await r.need(2);
        r.skip(2);
        stack.push(ATOM);
        break;
      case 0x84: // EXT4
        await r.need(4);
        r.skip(4);
        stack.push(ATOM);
        break;
      case 0x70: // PUT
        memo.set(Number(await line()), top());
        break;
      case 0x71: // BINPUT
        await r.need(1);
        memo.set(r.u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        await r.need(4);
        memo.set(r.u32(), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x67: // GET
        stack.push(memoGet(memo, Number(await line())));
        break;
      case 0x68: // BINGET
        await r.need(1);
        stack.push(memoGet(memo, r.u8()));
        break;
      case 0x6a: // LONG_BINGET
        await r.need(4);
        stack.push(memoGet(memo, r.u32()));
        break;
      default:
        throw new ScanFault('SCAN_ERR_CORRUPT', `pickle has an unknown opcode 0x${op.toString(16)} at ${r.pos - 1}`);
    }
  }
}

async function skipN(r: SequentialReader, n: number): Promise<void> {
  await r.need(n);
  r.skip(n);
}

function memoGet(memo: Map<number, PValue>, i: number): PValue {
  const v = memo.get(i);
  if (v === undefined) throw new ScanFault('SCAN_ERR_CORRUPT', 'pickle reads a memo slot it never wrote');
  return v;
}

function unquote(s: string): string {
  const q = s[0];
  const body = (q === "'" || q === '"') && s.endsWith(q) ? s.slice(1, -1) : s;
  return body.replace(/\\(x[0-9a-fA-F]{2}|.)/g, (_, e: string) => {
    if (e[0] === 'x') return String.fromCharCode(Number.parseInt(e.slice(1), 16));
    return ({ n: '\n', r: '\r', t: '\t' } as Record<string, string>)[e] ?? e;
  });
}

function unescapeUnicode(s: string): string {
  return Buffer.from(s, 'latin1')
    .toString('utf8')
    .replace(/\\u([0-9a-fA-F]{4})|\\U([0-9a-fA-F]{8})/g, (_, u?: string, U?: string) =>
      String.fromCodePoint(Number.parseInt((u ?? U)!, 16)),
    );
}

/** A key as it reads in a path: `config.api_key` for strings, `[3]` otherwise. */
function keyOf(k: PValue): string | undefined {
  return k.t === 'str' ? k.v : undefined;
}

function join(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}

/** Gives every reachable string its path and inspects it, once (memo can make graphs, even cycles). */
function walk(v: PValue, path: string, ctx: ReaderContext, location: readonly string[], seen: Set<PValue>): void {
  if (seen.has(v)) return;
  seen.add(v);
  switch (v.t) {
    case 'str':
      ctx.inspectString(v.v, [...location, path === '' ? '<root>' : path]);
      return;
    case 'seq':
      for (const [i, item] of v.items.entries()) walk(item, `${path}[${i}]`, ctx, location, seen);
      return;
    case 'dict':
      walkEntries(v.entries, path, ctx, location, seen);
      return;
    case 'obj': {
      for (const [i, a] of v.args.entries()) walk(a, `${path}(${i})`, ctx, location, seen);
      for (const [i, item] of v.items.entries()) walk(item, `${path}[${i}]`, ctx, location, seen);
      walkEntries(v.entries, path, ctx, location, seen);
      if (v.state?.t === 'dict') walkEntries(v.state.entries, path, ctx, location, seen);
      else if (v.state?.t === 'seq') {
        // (state, slotstate): both dicts of attributes
        for (const s of v.state.items) if (s.t === 'dict') walkEntries(s.entries, path, ctx, location, seen);
      } else if (v.state) walk(v.state, `${path}.__state__`, ctx, location, seen);
      return;
    }
    default:
      return;
  }
}

function walkEntries(
  entries: [PValue, PValue][],
  path: string,
  ctx: ReaderContext,
  location: readonly string[],
  seen: Set<PValue>,
): void {
  entries.forEach(([k, val], i) => {
    const key = keyOf(k);
    // A key is matched too, but under its index: a secret used as a key must not print itself as a location.
    walk(k, `${path}{${i}}`, ctx, location, seen);
    walk(val, key === undefined ? `${path}[${i}]` : join(path, key), ctx, location, seen);
  });
}
