import { afterAll, describe, expect, it } from 'vitest';
import { fakeOpenAiKey } from './support/fake-keys.js';
import { gguf, hasPython, python, safetensors, tgz, u32, u64, zip } from './support/fixture-writers.js';
import { FixtureDir } from './support/scan-dir.js';

const dir = new FixtureDir();
afterAll(() => dir.cleanup());

/** How long a hostile scan may take to answer at all (they answer in milliseconds): a hang fails, a slow machine does not. */
const ANSWER_MS = 10_000;

/**
 * Every hostile file sits next to a clean file with a planted key: the key
 * must still be found, and the scan must answer. What a hostile file costs
 * in time and memory is measured by bench/scan.bench.mjs, not asserted here;
 * what must hold is that a bound refuses it (each test checks which).
 */
async function scanBeside(name: string, data: Buffer, limits = {}) {
  const key = fakeOpenAiKey();
  const sub = name.replace(/[^a-z0-9]/gi, '_');
  dir.write(`${sub}/${name}`, data);
  dir.write(`${sub}/zz-ok.env`, `OPENAI_API_KEY=${key}\n`);
  let timer: NodeJS.Timeout | undefined;
  const silent = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the scan of ${name} did not answer within ${ANSWER_MS} ms`)), ANSWER_MS);
  });
  const r = await Promise.race([dir.scan([sub], { limits }), silent]).finally(() => clearTimeout(timer));
  expect(r.findings.some((f) => f.file === `${sub}/zz-ok.env` && f.value === key)).toBe(true);
  return { ...r, mine: r.errors.filter((e) => e.file === `${sub}/${name}`) };
}

describe('hostile inputs give a per-file error and the scan goes on', () => {
  it('zip bomb by declared ratio is refused before inflating', async () => {
    const r = await scanBeside(
      'bomb.zip',
      zip([{ name: 'x.txt', data: Buffer.alloc(1000), deflate: true, declaredSize: 2 ** 31 }]),
    );
    expect(r.mine.map((e) => e.code)).toEqual(['SCAN_ERR_ZIP_BOMB']);
  });

  it('zip bomb that lies about its size is stopped while inflating', async () => {
    const data = Buffer.alloc(50 * 2 ** 20); // 50 MiB of zeros deflates ~1000:1
    const r = await scanBeside('liar.zip', zip([{ name: 'z.txt', data, deflate: true, declaredSize: 10 }]));
    expect(r.mine.map((e) => e.code)).toEqual(['SCAN_ERR_ZIP_BOMB']);
  });

  it('overlapping members (non-recursive bomb) are reported', async () => {
    const members = Array.from({ length: 5 }, (_, i) => ({ name: `m${i}.txt`, data: Buffer.from('hello') }));
    const r = await scanBeside('overlap.zip', zip(members, { overlap: true }));
    expect(r.mine.map((e) => e.code)).toContain('SCAN_ERR_ZIP_BOMB');
  });

  it('deeply nested archives stop at the depth limit', async () => {
    let data = Buffer.from('end');
    for (let i = 0; i < 20; i++) data = zip([{ name: `l${i}.zip`, data }]);
    const r = await scanBeside('deep.zip', data);
    expect(r.mine.map((e) => e.code)).toEqual(['SCAN_ERR_DEPTH']);
  });

  it('gzip bomb is stopped by the ratio limit', async () => {
    const r = await scanBeside('bomb.tar.gz', tgz([{ name: 'zeros', data: Buffer.alloc(30 * 2 ** 20) }]), {
      maxExpansionRatio: 50,
    });
    expect(r.mine.map((e) => e.code)).toEqual(['SCAN_ERR_ZIP_BOMB']);
  });

  it('too many zip entries hit the entry limit', async () => {
    const members = Array.from({ length: 50 }, (_, i) => ({ name: `f${i}`, data: Buffer.from('x') }));
    const r = await scanBeside('many.zip', zip(members), { maxEntries: 10 });
    expect(r.mine.map((e) => e.code)).toEqual(['SCAN_ERR_LIMIT']);
  });

  it('truncated zip, safetensors, GGUF and gzip are reported as such', async () => {
    const full = zip([{ name: 'a.txt', data: Buffer.from('abc'.repeat(100)) }]);
    const z = await scanBeside('cut.zip', Buffer.concat([full.subarray(0, 40), Buffer.from('PK')]));
    expect(z.mine.map((e) => e.code)).toEqual(['SCAN_ERR_TRUNCATED']);
    const st = safetensors({ a: 'b' });
    const s = await scanBeside('cut.safetensors', st.subarray(0, 20));
    expect(s.mine.map((e) => e.code)).toEqual(['SCAN_ERR_TRUNCATED']);
    const g = gguf({ 'general.name': 'x'.repeat(100) });
    const gg = await scanBeside('cut.gguf', g.subarray(0, 60));
    expect(gg.mine.map((e) => e.code)).toEqual(['SCAN_ERR_TRUNCATED']);
    const t = tgz([{ name: 'a', data: Buffer.from('hello'.repeat(1000)) }]);
    const tt = await scanBeside('cut.tgz', t.subarray(0, t.length - 30));
    expect(tt.mine.map((e) => e.code)).toEqual(['SCAN_ERR_CORRUPT']);
  });

  it('a safetensors header that claims 10 GB is refused without allocating', async () => {
    const r = await scanBeside('huge.safetensors', Buffer.concat([u64(10n * 2n ** 30n), Buffer.from('{}')]));
    expect(r.mine.map((e) => e.code)).toEqual(['SCAN_ERR_LIMIT']);
  });

  it('a GGUF with absurd counts fails at once', async () => {
    const a = await scanBeside('absurd.gguf', gguf({}, { kv: 2n ** 60n }));
    expect(a.mine.map((e) => e.code)).toEqual(['SCAN_ERR_CORRUPT']);
    const b = await scanBeside('absurd2.gguf', gguf({}, { kv: 2n ** 62n * 3n }));
    expect(b.mine).toHaveLength(1);
    // a string length of 2^40 in a small file
    const c = await scanBeside(
      'absurd3.gguf',
      Buffer.concat([Buffer.from('GGUF'), u32(3), u64(0n), u64(1n), u64(2n ** 40n), Buffer.alloc(64)]),
    );
    expect(c.mine.map((e) => e.code)).toEqual(['SCAN_ERR_LIMIT']);
  });

  it('corrupt pickles are reported, never executed', async () => {
    const r = await scanBeside('bad.pkl', Buffer.from([0x80, 0x04, 0xff, 0xfe, 0x2e]));
    expect(r.mine.map((e) => e.code)).toEqual(['SCAN_ERR_CORRUPT']);
    const u = await scanBeside('underflow.pkl', Buffer.from([0x80, 0x02, 0x52, 0x2e]));
    expect(u.mine.map((e) => e.code)).toEqual(['SCAN_ERR_CORRUPT']);
  });

  it.runIf(hasPython())('a pickle importing os is an unsafe-code finding, and nothing runs', async () => {
    const data = python(
      `class A:\n  def __reduce__(self): return (os.system, ('touch /tmp/custos-scan-pwned',))\nout.write(pickle.dumps(A(), protocol=4))`,
    );
    const r = await scanBeside('os.pkl', data);
    expect(r.findings.filter((f) => f.kind === 'unsafe-code').map((f) => f.value)).toEqual(['posix.system']);
  });

  it('non-UTF-8 text is scanned and does not stop the scan', async () => {
    const key = fakeOpenAiKey();
    const r = await scanBeside(
      'latin1.txt',
      Buffer.concat([Buffer.from([0xff, 0xfe, 0xe9, 0x80]), Buffer.from(` ${key}\n`)]),
    );
    expect(r.findings.some((f) => f.file.endsWith('latin1.txt') && f.value === key)).toBe(true);
    expect(r.mine).toEqual([]);
  });

  it('a file slower than the time limit is cut off with SCAN_ERR_TIMEOUT', async () => {
    dir.write('slow/slow.txt', 'a '.repeat(12 * 2 ** 20));
    const r = await dir.scan(['slow'], { limits: { maxFileMs: 1 } });
    expect(r.errors.map((e) => e.code)).toEqual(['SCAN_ERR_TIMEOUT']);
  });
});
