import { createHmac, randomBytes } from 'node:crypto';
import { createRedactor } from '@custos/redact';
import type { VaultFingerprints, VaultMatch } from '@custos/scan';
import { describe, expect, it } from 'vitest';
import { RedactVaultWatch } from './redact-vault-watch.js';

/** A fingerprint list as the server answers it, for the given stored values. */
function fingerprints(values: Record<string, string>): VaultFingerprints {
  const key = randomBytes(32);
  const byHmac = new Map(
    Object.entries(values).map(([ref, value]) => {
      const [path, field] = ref.split('#') as [string, string];
      const hmac = createHmac('sha256', key).update(value, 'utf8').digest('hex');
      return [hmac, { path, field, version: 3, hmac }] as const;
    }),
  );
  return { key, minLength: 8, byHmac };
}

describe('RedactVaultWatch', () => {
  const stored = `fake${randomBytes(12).toString('hex')}`;
  const password = `pw${randomBytes(10).toString('hex')}`;
  const vault = fingerprints({ 'kv/app/token#value': stored, 'kv/app/db#password': password });

  it('sees a value split across chunks, once, with the version the list named', () => {
    const seen: VaultMatch[] = [];
    const watch = new RedactVaultWatch(createRedactor(), vault, (m) => seen.push(m));
    watch.write(`first line\ntoken=${stored.slice(0, 10)}`);
    expect(seen).toEqual([]);
    watch.write(`${stored.slice(10)} and again ${stored}\n`);
    watch.end();
    expect(seen).toEqual([{ path: 'kv/app/token', field: 'value', version: 3 }]);
  });

  it('sees a password inside a connection URL (cut out by the detector), and nothing in unrelated text', () => {
    const seen: VaultMatch[] = [];
    const watch = new RedactVaultWatch(createRedactor(), vault, (m) => seen.push(m));
    watch.write('nothing stored here at all\n');
    expect(seen).toEqual([]);
    watch.write(`connecting to postgres://app:${password}@db:5432/app`);
    watch.end();
    expect(seen).toEqual([{ path: 'kv/app/db', field: 'password', version: 3 }]);
  });
});
