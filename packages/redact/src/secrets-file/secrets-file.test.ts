import { describe, expect, it } from 'vitest';
import { parseSecretsFile } from './secrets-file.js';

describe('parseSecretsFile', () => {
  it('reads one value per line and NAME=value lines, keeping the whole line too', () => {
    const parsed = parseSecretsFile('# comment\nplain-value-1\n\nexport DB_PASSWORD="p=ss word"\nYWJjZA==\n');
    expect(parsed).toEqual([
      { name: 'line-2', value: 'plain-value-1' },
      { name: 'DB_PASSWORD', value: 'p=ss word' },
      { name: 'line-4', value: 'export DB_PASSWORD="p=ss word"' },
      { name: 'line-5', value: 'YWJjZA==' },
    ]);
  });

  it('reads JSON arrays and objects', () => {
    expect(parseSecretsFile('[{"name":"a","value":"v1"}]')).toEqual([{ name: 'a', value: 'v1' }]);
    expect(parseSecretsFile('{"a":"v1","n":3}')).toEqual([{ name: 'a', value: 'v1' }]);
  });
});
