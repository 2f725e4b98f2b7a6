import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LogDestination } from '../src/logging/log-destination.js';
import { createLogger } from '../src/start-server.js';

/** A write(2) the test controls: it fails with `code` while `failing`, else collects what it is given. */
function controllableWriter() {
  const state = {
    failing: undefined as string | undefined,
    /** Bytes accepted per call while not failing (a short write when smaller than the buffer). */
    chunk: Number.POSITIVE_INFINITY,
    calls: 0,
    written: '',
  };
  const writeSync = (_fd: number, buffer: Uint8Array): number => {
    state.calls++;
    if (state.failing) throw Object.assign(new Error(`${state.failing}: simulated`), { code: state.failing });
    const n = Math.min(buffer.length, state.chunk);
    state.written += Buffer.from(buffer.subarray(0, n)).toString('utf8');
    return n;
  };
  return { state, writeSync };
}

// Fixed width, so a byte budget of three lines holds exactly three.
const line = (i: number) => `${JSON.stringify({ level: 30, time: 1, msg: `line ${String(i).padStart(3, '0')}` })}\n`;
const waitFor = async (check: () => boolean) => {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
};

describe('LogDestination', () => {
  const dir = mkdtempSync(join(tmpdir(), 'custos-log-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('writes each line whole to its file descriptor', () => {
    const path = join(dir, 'out.log');
    const fd = openSync(path, 'a');
    try {
      const destination = new LogDestination({ fd });
      destination.write(line(1));
      destination.write(line(2));
      expect(readFileSync(path, 'utf8')).toBe(line(1) + line(2));
      expect(destination.failing).toBe(false);
    } finally {
      closeSync(fd);
    }
  });

  it('on a full disk tries each write once and never throws: no retry loop on the main thread', () => {
    const { state, writeSync } = controllableWriter();
    const destination = new LogDestination({ writeSync, maxHeldBytes: 0 });
    state.failing = 'ENOSPC';
    for (let i = 0; i < 100; i++) destination.write(line(i));
    // One attempt per line: what cannot be written waits, nothing spins.
    expect(state.calls).toBe(100);
    expect(destination.failing).toBe(true);
    destination.close();
  });

  it('holds what fits, drops and counts the rest, and reports the count once writing works again', () => {
    const { state, writeSync } = controllableWriter();
    const held = line(0).length * 3;
    const destination = new LogDestination({ writeSync, maxHeldBytes: held });
    state.failing = 'ENOSPC';
    for (let i = 0; i < 10; i++) destination.write(line(i));
    expect(destination.droppedTotal).toBe(7);
    state.failing = undefined;
    destination.write(line(10));
    const lines = state.written.split('\n').filter(Boolean);
    // The held lines first, in order; then the gap, counted; then the new line.
    expect(lines.slice(0, 3)).toEqual([0, 1, 2].map((i) => line(i).trim()));
    expect(JSON.parse(lines[3]!)).toMatchObject({ level: 40, dropped_lines: 7 });
    expect(lines[4]).toBe(line(10).trim());
    expect(destination.failing).toBe(false);
    // The count was reported: a later gap is counted from zero.
    state.failing = 'EAGAIN';
    destination.write(line(11));
    for (let i = 12; i < 20; i++) destination.write(line(i));
    state.failing = undefined;
    destination.flush();
    const report = state.written
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { dropped_lines?: number })
      .filter((l) => l.dropped_lines !== undefined);
    expect(report.map((r) => r.dropped_lines)).toEqual([7, 6]);
    destination.close();
  });

  it('a short write keeps the rest of the line first in line: lines are never torn or interleaved', () => {
    const { state, writeSync } = controllableWriter();
    const destination = new LogDestination({ writeSync });
    state.chunk = 7;
    destination.write(line(1));
    // 7 bytes went out, then the kernel took no more; the next line must wait behind the rest.
    state.chunk = 0;
    destination.write(line(2));
    state.chunk = Number.POSITIVE_INFINITY;
    destination.write(line(3));
    expect(state.written).toBe(line(1) + line(2) + line(3));
    destination.close();
  });

  it('retries on its own timer, so the report is written even when nothing else is logged', async () => {
    const { state, writeSync } = controllableWriter();
    const destination = new LogDestination({ writeSync, maxHeldBytes: 0, retryMs: 5 });
    state.failing = 'ENOSPC';
    destination.write(line(1));
    destination.write(line(2));
    state.failing = undefined;
    await waitFor(() => !destination.failing);
    expect(destination.failing).toBe(false);
    expect(state.written).toContain('"dropped_lines":1');
    destination.close();
  });

  it('formats every line it writes, the drop report too', () => {
    const { state, writeSync } = controllableWriter();
    const destination = new LogDestination({ writeSync, maxHeldBytes: 0, format: (l) => `> ${l}` });
    state.failing = 'ENOSPC';
    destination.write(line(1));
    destination.write(line(2));
    state.failing = undefined;
    destination.flush();
    expect(state.written.split('\n').filter(Boolean)).toEqual([
      `> ${line(1).trim()}`,
      expect.stringMatching(/^> \{.*"dropped_lines":1/),
    ]);
    destination.close();
  });

  it('under pino (createLogger), a failing log never throws into the code that logs', () => {
    const { state, writeSync } = controllableWriter();
    const destination = new LogDestination({ writeSync });
    const logger = createLogger('info', destination);
    state.failing = 'ENOSPC';
    expect(() => {
      for (let i = 0; i < 50; i++) logger.error({ err: new Error('fake failure') }, 'something failed');
    }).not.toThrow();
    state.failing = undefined;
    logger.info('back');
    expect(state.written).toContain('"msg":"back"');
    destination.close();
  });
});
