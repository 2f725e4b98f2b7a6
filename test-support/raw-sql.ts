import Database from 'better-sqlite3';
import pg from 'pg';

/**
 * Raw SQL as someone with write access to the database runs it, outside
 * custos: `?` placeholders, a connection of its own for each statement, the
 * rows for a query (none for anything else).
 */
export function sqliteSql<T>(path: string, text: string, params: unknown[] = []): T[] {
  const db = new Database(path);
  try {
    const statement = db.prepare(text);
    if (statement.reader) return statement.all(...params) as T[];
    statement.run(...params);
    return [];
  } finally {
    db.close();
  }
}

/** {@link sqliteSql} on PostgreSQL, unqualified table names resolved in `schema`. */
export async function postgresSql<T>(url: string, schema: string, text: string, params: unknown[] = []): Promise<T[]> {
  let n = 0;
  const client = new pg.Client({ connectionString: url, options: `-c search_path=${schema}` });
  await client.connect();
  try {
    const { rows } = await client.query(
      text.replace(/\?/g, () => `$${++n}`),
      params,
    );
    return rows as T[];
  } finally {
    await client.end();
  }
}
