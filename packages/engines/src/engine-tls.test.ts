import { describe, expect, it } from 'vitest';
import { engineTlsOptions } from './engine-tls.js';

const CA = '-----BEGIN CERTIFICATE-----\nfake\n-----END CERTIFICATE-----\n';

describe('engineTlsOptions', () => {
  it('plain TCP without sslmode or CA, or with sslmode=disable', () => {
    expect(engineTlsOptions(undefined, undefined)).toBe(false);
    expect(engineTlsOptions('disable', undefined)).toBe(false);
  });

  it('every TLS mode verifies the chain; require and verify-full also the name, verify-ca not', () => {
    for (const mode of ['require', 'verify-full'] as const) {
      const tls = engineTlsOptions(mode, undefined);
      expect(tls).toEqual({ rejectUnauthorized: true, verifyIdentity: true });
    }
    const verifyCa = engineTlsOptions('verify-ca', CA);
    expect(verifyCa).toMatchObject({ ca: CA, rejectUnauthorized: true, verifyIdentity: false });
    if (!verifyCa) throw new Error('expected TLS options');
    expect(verifyCa.checkServerIdentity).toBeTypeOf('function');
    expect(verifyCa.checkServerIdentity?.('db.example', {} as never)).toBeUndefined();
  });

  it('a CA alone means verify-full with that CA; a CA with sslmode=disable is refused', () => {
    expect(engineTlsOptions(undefined, CA)).toEqual({ ca: CA, rejectUnauthorized: true, verifyIdentity: true });
    expect(() => engineTlsOptions('disable', CA)).toThrow(/sslmode=disable/);
  });
});
