import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ValidationError } from '@custos/core';
import { describe, expect, it } from 'vitest';
import { createStorage, PostgresStorage, SqliteStorage } from './index.js';

describe('createStorage', () => {
  it('opens SQLite for sqlite: URLs', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'custos-create-'));
    try {
      for (const url of ['sqlite::memory:', `sqlite:${join(dir, 'a.db')}`, `sqlite://${join(dir, 'b.db')}`]) {
        const storage = createStorage(url, { sqlite: { synchronous: 'normal' } });
        expect(storage).toBeInstanceOf(SqliteStorage);
        expect(storage.dialect).toBe('sqlite');
        await storage.migrate();
        await storage.entries.put('ns', 'k', new Uint8Array([1]));
        expect((storage as SqliteStorage).settings().synchronous).toBe(1);
        await storage.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('makes a PostgreSQL pool for postgres:// and postgresql:// URLs without connecting yet', async () => {
    for (const url of ['postgres://u@127.0.0.1:1/db', 'postgresql://u@127.0.0.1:1/db']) {
      const storage = createStorage(url, { postgres: { schema: 'other' } });
      expect(storage).toBeInstanceOf(PostgresStorage);
      expect((storage as PostgresStorage).schema).toBe('other');
      await storage.close();
    }
  });

  it('refuses other schemes without echoing the URL (it may hold a password)', () => {
    const fakePassword = `fake${Math.random().toString(36).slice(2)}`;
    for (const url of [`mysql://root:${fakePassword}@h/db`, 'sqlite:', 'file:/x.db', '']) {
      let err: unknown;
      try {
        createStorage(url);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ValidationError);
      expect((err as Error).message).not.toContain(fakePassword);
    }
  });
});
