/** Built-in statements used when a role gives none. */
export interface DefaultStatements {
  readonly creationStatements: readonly string[];
  readonly revocationStatements: readonly string[];
}

/**
 * PostgreSQL, a read-only role: log in until the lease ends, read every table
 * of schema `public`. (The engine also runs `REASSIGN OWNED`/`DROP OWNED` and
 * `DROP ROLE` itself on revocation, so these only undo the grants.)
 */
export const POSTGRES_DEFAULT_STATEMENTS: DefaultStatements = {
  creationStatements: [
    `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`,
    'GRANT USAGE ON SCHEMA public TO "{{name}}";',
    'GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{{name}}";',
  ],
  revocationStatements: [
    'REVOKE ALL PRIVILEGES ON ALL TABLES IN SCHEMA public FROM "{{name}}";',
    'REVOKE USAGE ON SCHEMA public FROM "{{name}}";',
  ],
};

/** Quotes a MySQL identifier with backticks (a backtick inside is doubled). */
export function quoteMysqlIdentifier(identifier: string): string {
  return `\`${identifier.replaceAll('`', '``')}\``;
}

/**
 * MySQL/MariaDB, a read-only role on `database` (the one in the engine's URL;
 * without one, every database: `*.*`). MySQL has no `VALID UNTIL`: the user
 * lives until custos revokes it when the lease ends.
 */
export function mysqlDefaultStatements(database: string | undefined): DefaultStatements {
  const on = database ? `${quoteMysqlIdentifier(database)}.*` : '*.*';
  return {
    creationStatements: [
      `CREATE USER '{{name}}'@'%' IDENTIFIED BY '{{password}}';`,
      `GRANT SELECT ON ${on} TO '{{name}}'@'%';`,
    ],
    revocationStatements: [`REVOKE ALL PRIVILEGES, GRANT OPTION FROM '{{name}}'@'%';`],
  };
}
