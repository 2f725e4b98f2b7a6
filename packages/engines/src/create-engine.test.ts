import { describe, expect, it } from 'vitest';
import { createEngine } from './create-engine.js';
import { MysqlEngine } from './mysql/mysql-engine.js';
import { PostgresEngine } from './postgres/postgres-engine.js';

describe('createEngine', () => {
  it('picks the engine by type', async () => {
    const pgEngine = createEngine({ type: 'postgres', url: 'postgres://a@127.0.0.1:1/x' });
    const myEngine = createEngine({ type: 'mysql', url: 'mysql://a@127.0.0.1:1/x' });
    expect(pgEngine).toBeInstanceOf(PostgresEngine);
    expect(pgEngine.type).toBe('postgres');
    expect(myEngine).toBeInstanceOf(MysqlEngine);
    expect(myEngine.type).toBe('mysql');
    await pgEngine.close();
    await myEngine.close();
  });

  it('refuses an unknown type', () => {
    expect(() => createEngine({ type: 'oracle' as 'mysql', url: 'x://' })).toThrow(/postgres or mysql/);
  });
});
