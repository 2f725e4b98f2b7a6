import { describe, expect, it } from 'vitest';
import { MAX_VALUE_BYTES } from '../secrets/secret-data.js';
import { sourceValueToData } from './source-value.js';

const code = (fn: () => unknown) => {
  try {
    fn();
  } catch (error) {
    return { code: (error as { code?: string }).code, message: (error as Error).message };
  }
  return undefined;
};

describe('sourceValueToData', () => {
  it('a JSON object becomes its fields; scalars become their text and nested values their JSON', () => {
    expect(
      sourceValueToData({ value: ' {"user":"svc","port":5432,"tls":true,"opts":{"a":1},"n":null}' }, 'auto'),
    ).toEqual({ user: 'svc', port: '5432', tls: 'true', opts: '{"a":1}', n: 'null' });
  });

  it('anything else is one `value` field; `raw` never parses', () => {
    expect(sourceValueToData({ value: 'plain' }, 'auto')).toEqual({ value: 'plain' });
    expect(sourceValueToData({ value: '[1,2]' }, 'auto')).toEqual({ value: '[1,2]' });
    expect(sourceValueToData({ value: '{"a":"b"}' }, 'raw')).toEqual({ value: '{"a":"b"}' });
  });

  it('declared JSON that is malformed, not an object, or has unusable field names is MALFORMED, without the value', () => {
    const secret = 'fake-secret-should-not-echo';
    for (const [value, format, contentType] of [
      [`{"k":"${secret}"`, 'auto', undefined],
      [`not json ${secret}`, 'auto', 'application/json'],
      [`"${secret}"`, 'json', undefined],
      [`{"bad name":"${secret}"}`, 'auto', undefined],
      ['{}', 'json', undefined],
    ] as const) {
      const e = code(() => sourceValueToData({ value, ...(contentType ? { content_type: contentType } : {}) }, format));
      expect(e?.code, value).toBe('CUSTOS_ERR_SOURCE_SECRET_MALFORMED');
      expect(e?.message).not.toContain(secret);
    }
  });

  it('a value over the kv limit is TOO_LARGE before any parsing (a deeply nested answer never reaches JSON.parse)', () => {
    const nested = `${'['.repeat(MAX_VALUE_BYTES)}`;
    expect(code(() => sourceValueToData({ value: `{${nested}` }, 'auto'))?.code).toBe(
      'CUSTOS_ERR_SOURCE_SECRET_TOO_LARGE',
    );
    expect(sourceValueToData({ value: 'x'.repeat(MAX_VALUE_BYTES) }, 'auto').value).toHaveLength(MAX_VALUE_BYTES);
  });
});
