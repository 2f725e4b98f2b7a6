import { CustosError } from '@custos/core';
import { describe, expect, it } from 'vitest';
import { generatePassword, generateUsername } from './credential-generator.js';
import { formatExpiration, renderStatement } from './statement-template.js';

const at = new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 678));

describe('renderStatement', () => {
  it('fills name, password and expiration per dialect', () => {
    const password = generatePassword();
    const values = { name: 'custos_app_abc123', password, expiration: at };
    expect(
      renderStatement(
        `CREATE ROLE "{{name}}" PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'`,
        values,
        'postgres',
      ),
    ).toBe(`CREATE ROLE "custos_app_abc123" PASSWORD '${password}' VALID UNTIL '2026-01-02T03:04:05.678Z'`);
    expect(renderStatement(`'{{ name }}' '{{expiration}}'`, values, 'mysql')).toBe(
      `'custos_app_abc123' '2026-01-02 03:04:05'`,
    );
  });

  it.each([`x"; DROP ROLE admin; --`, "x'; DROP USER root; --", 'x`y', 'Upper', '', 'a'.repeat(64), 'x y', 'x\\'])(
    'refuses the unsafe name %j',
    (name) => {
      expect(() => renderStatement('"{{name}}"', { name }, 'postgres')).toThrow(CustosError);
    },
  );

  it('refuses unsafe or weak passwords without repeating them', () => {
    for (const password of ["abc'def".padEnd(40, 'x'), 'short', `${'a'.repeat(40)}\\`]) {
      try {
        renderStatement("'{{password}}'", { name: 'custos_x', password }, 'postgres');
        expect.unreachable();
      } catch (e) {
        expect((e as CustosError).code).toBe('CUSTOS_ERR_VALIDATION');
        expect((e as Error).message).not.toContain(password);
      }
    }
  });

  it('refuses unknown placeholders and ones without a value', () => {
    expect(() => renderStatement('{{database}}', { name: 'custos_x' }, 'postgres')).toThrow(/Unknown placeholder/);
    expect(() => renderStatement('{{password}}', { name: 'custos_x' }, 'postgres')).toThrow(/not available/);
    expect(() => formatExpiration(new Date(Number.NaN), 'postgres')).toThrow(CustosError);
  });
});

describe('generateUsername / generatePassword', () => {
  it('makes safe, unique names within the length limit', () => {
    const names = new Set<string>();
    for (const prefix of ['', 'Finance Enricher!', 'a'.repeat(100), '___', 'task-42']) {
      for (const max of [32, 63]) {
        const n = generateUsername(prefix, max);
        expect(n.length).toBeLessThanOrEqual(max);
        expect(n).toMatch(/^custos_([a-z0-9_]*[a-z0-9]_)?[a-z0-9]{16}$/);
        names.add(n);
      }
    }
    expect(generateUsername('Finance Enricher!', 63)).toMatch(/^custos_finance_enricher_[a-z0-9]{16}$/);
    expect(names.size).toBe(10);
  });

  it('makes 43-character base64url passwords', () => {
    const p = generatePassword();
    expect(p).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(generatePassword()).not.toBe(p);
  });
});
