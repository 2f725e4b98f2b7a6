import { describe, expect, it } from 'vitest';
import { formatPrettyLogLine } from '../src/logging/log-pretty-format.js';

const json = (entry: Record<string, unknown>) => `${JSON.stringify({ pid: 1, hostname: 'h', time: 0, ...entry })}\n`;

describe('pretty log lines', () => {
  it('show time, level, message and the other fields as key=value', () => {
    const text = formatPrettyLogLine(
      json({ level: 30, msg: 'custos listening', address: 'http://127.0.0.1:8420', sealed: false, note: 'two words' }),
    );
    expect(text).toMatch(
      /^\d\d:\d\d:\d\d\.\d{3} INFO {2}custos listening {2}address=http:\/\/127\.0\.0\.1:8420 sealed=false note="two words"\n$/,
    );
    expect(text).not.toContain('pid=');
    expect(text).not.toContain('hostname=');
  });

  it('indent an error stack under its line', () => {
    const text = formatPrettyLogLine(
      json({ level: 50, msg: 'audit sink failed', sink: 'file', err: { type: 'Error', stack: 'Error: x\n    at y' } }),
    );
    expect(text.split('\n')).toEqual([
      expect.stringMatching(/ERROR audit sink failed {2}sink=file$/),
      '    Error: x',
      '        at y',
      '',
    ]);
  });

  it('colour the level only when asked', () => {
    expect(formatPrettyLogLine(json({ level: 40, msg: 'm' }), { color: true })).toContain('\u001b[33mWARN \u001b[0m');
    expect(formatPrettyLogLine(json({ level: 40, msg: 'm' }))).not.toContain('\u001b');
  });

  it('never pass a terminal escape sequence through, from any field, key, message or stack', () => {
    const esc = '\u001b]0;owned\u0007\u001b[2J';
    const c1 = '\u009b31m';
    const text = formatPrettyLogLine(
      json({
        level: 30,
        msg: `m${esc}`,
        [`k${esc}`]: `v${c1}`,
        nested: { a: c1 },
        err: { stack: `Error${esc}\n  at ${c1}` },
      }),
    );
    expect(text).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/);
    expect(text).toContain('\\u001b]0;owned');
    expect(formatPrettyLogLine(`not json ${esc}\n`)).toBe('not json \\u001b]0;owned\\u0007\\u001b[2J\n');
  });
});
